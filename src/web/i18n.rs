//! The page's languages: one catalogue per language (`i18n/en.toml`, `ru.toml`, `zh.toml`),
//! every label a template shows looked up by key, so translators edit one file each.
//!
//! The language is `?lang=` when given (then remembered in the `lang` cookie), else the
//! cookie, else the first of `Accept-Language` we have, else English.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::LazyLock;

use axum::extract::{FromRequestParts, Request};
use axum::http::header::{ACCEPT_LANGUAGE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use super::auth::cookie;

/// The cookie that remembers the `?lang=` choice.
const LANG_COOKIE: &str = "lang";

/// A language the page is translated into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    En,
    Ru,
    Zh,
}

impl Lang {
    pub const ALL: [Lang; 3] = [Lang::En, Lang::Ru, Lang::Zh];

    /// The code in `?lang=`, the cookie and `<html lang>`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ru => "ru",
            Lang::Zh => "zh",
        }
    }

    /// The language of a code or language tag (`zh-CN` is Chinese).
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        Lang::ALL.into_iter().find(|l| l.code() == primary)
    }

    /// The first language of an `Accept-Language` header we have, by quality.
    fn from_accept_language(header: &str) -> Option<Lang> {
        let mut ranked: Vec<(f32, Lang)> = header
            .split(',')
            .filter_map(|item| {
                let mut parts = item.split(';');
                let lang = Lang::from_tag(parts.next()?)?;
                let quality = parts
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .map_or(Some(1.0), |q| q.trim().parse().ok())?;
                (quality > 0.0).then_some((quality, lang))
            })
            .collect();
        // A stable sort keeps the header's order among equal qualities.
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        ranked.first().map(|(_, lang)| *lang)
    }

    /// The language for a request: `?lang=`, the cookie, `Accept-Language`, English.
    pub fn choose(query: Option<&str>, remembered: Option<&str>, accept: Option<&str>) -> Lang {
        query
            .and_then(Lang::from_tag)
            .or_else(|| remembered.and_then(Lang::from_tag))
            .or_else(|| accept.and_then(Lang::from_accept_language))
            .unwrap_or(Lang::En)
    }

    /// The label `key` in this language (the key itself if a catalogue lacks it; a test
    /// checks none does).
    pub fn t(self, key: &str) -> &'static str {
        CATALOGUES
            .get(&self)
            .and_then(|c| c.get(key))
            .map(String::as_str)
            .unwrap_or_else(|| {
                tracing::warn!(key, lang = self.code(), "no such label");
                "?"
            })
    }
}

fn parse(lang: Lang, text: &str) -> HashMap<String, String> {
    toml::from_str(text)
        .unwrap_or_else(|e| panic!("the {} catalogue does not parse: {e}", lang.code()))
}

static CATALOGUES: LazyLock<HashMap<Lang, HashMap<String, String>>> = LazyLock::new(|| {
    HashMap::from([
        (Lang::En, parse(Lang::En, include_str!("i18n/en.toml"))),
        (Lang::Ru, parse(Lang::Ru, include_str!("i18n/ru.toml"))),
        (Lang::Zh, parse(Lang::Zh, include_str!("i18n/zh.toml"))),
    ])
});

/// `lang=` in a query string.
fn query_lang(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("lang="))
}

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Lang, Infallible> {
        Ok(lang_of(parts.uri.query(), &parts.headers))
    }
}

fn lang_of(query: Option<&str>, headers: &HeaderMap) -> Lang {
    Lang::choose(
        query_lang(query),
        cookie(headers, LANG_COOKIE).as_deref(),
        headers.get(ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()),
    )
}

/// Remembers a `?lang=` choice in a cookie for the following pages.
pub(super) async fn remember_lang(request: Request, next: Next) -> Response {
    let chosen = query_lang(request.uri().query()).and_then(Lang::from_tag);
    let mut response = next.run(request).await;
    if let Some(lang) = chosen {
        let value = format!(
            "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
            lang.code()
        );
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().append(SET_COOKIE, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::{CATALOGUES, Lang};

    #[test]
    fn every_catalogue_has_the_same_keys() {
        let english = &CATALOGUES[&Lang::En];
        for lang in Lang::ALL {
            let catalogue = &CATALOGUES[&lang];
            for key in english.keys() {
                assert!(catalogue.contains_key(key), "{} lacks `{key}`", lang.code());
            }
            for key in catalogue.keys() {
                assert!(
                    english.contains_key(key),
                    "{} has extra `{key}`",
                    lang.code()
                );
            }
        }
    }

    /// Every `t("key")` a template asks for exists (askama cannot check this at build time).
    #[test]
    fn every_label_the_templates_use_exists() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            for piece in text.split(".t(\"").skip(1) {
                let key = piece.split('"').next().unwrap();
                assert!(CATALOGUES[&Lang::En].contains_key(key), "no label `{key}`");
                seen += 1;
            }
        }
        assert!(seen > 5, "the templates use labels");
    }

    /// Labels the code passes to templates by key (record fields, login errors).
    #[test]
    fn every_label_the_code_names_exists() {
        let mut seen = 0;
        for text in [include_str!("records.rs"), include_str!("auth.rs")] {
            for piece in text.split('"').skip(1).step_by(2) {
                if ["field-", "login-"].iter().any(|p| piece.starts_with(p)) && !piece.contains('{')
                {
                    assert!(
                        CATALOGUES[&Lang::En].contains_key(piece),
                        "no label `{piece}`"
                    );
                    seen += 1;
                }
            }
        }
        assert!(seen > 20, "the code names labels");
        for name in super::super::actions::TRIAGE_FIELDS {
            let key = format!("field-{name}");
            assert!(CATALOGUES[&Lang::En].contains_key(&key), "no label `{key}`");
        }
    }

    #[test]
    fn query_beats_cookie_beats_accept_language() {
        assert_eq!(Lang::choose(Some("zh"), Some("ru"), Some("en")), Lang::Zh);
        assert_eq!(Lang::choose(None, Some("ru"), Some("zh-CN")), Lang::Ru);
        assert_eq!(
            Lang::choose(None, None, Some("de-DE, ru;q=0.5, zh-CN;q=0.8")),
            Lang::Zh
        );
        assert_eq!(Lang::choose(Some("xx"), None, Some("de")), Lang::En);
    }
}
