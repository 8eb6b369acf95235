//! `[[format]]`: declarative payload formats, and how a collector's `format` names one.
//!
//! A format maps a website's own JSON keys to record fields with templates; the templates are
//! parsed here, once, by [`Template::parse`], so a broken one fails the load, not a message.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use super::error::{ConfigError, ErrorSite};
use super::keyword::{Choice, pick};
use crate::mapping::declarative::{DeclarativeFormat, Target};
use crate::mapping::selector::{Condition, Selector, Want};
use crate::mapping::template::{PayloadPath, Template, ValueTables};
use crate::mapping::{PayloadFormat, RecordKind};

/// The only payload format built in so far (the seed's v0.1 order file).
pub const ORDER_JSON_FORMAT: &str = "order-json";

/// `[[format]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawFormat {
    /// Name collectors give as `format = "..."`; unique, and not `order-json`. Required.
    name: Spanned<String>,
    /// Record kind: `lead`, `order` or `service-request`. Required.
    kind: Spanned<Choice<RecordKind>>,
    /// Fields a payload must give a value for, or it is quarantined. Default: none.
    #[serde(default)]
    required: Vec<Spanned<String>>,
    /// Service request numbers: this prefix + local date + daily sequence. Default: `SR`.
    number_prefix: Option<String>,
    /// `[format.fields]`: record field = template. Required.
    fields: Spanned<BTreeMap<String, Spanned<String>>>,
    /// `[format.maps.NAME]`: value tables for the `map:NAME` filter. Default: none.
    #[serde(default)]
    maps: HashMap<String, HashMap<String, String>>,
    /// `[format.map-defaults]`: table name = value for words a table does not list.
    /// Default: none (an unlisted word is quarantined).
    #[serde(default)]
    map_defaults: HashMap<String, String>,
    /// The queue this format's records go to, instead of the collector's. Default: the
    /// collector's.
    queue: Option<Spanned<String>>,
    /// Which payloads are this form: payload path (`a.b`) = value, all must hold; `"*"`
    /// means the key is present. Default: every payload.
    when: Option<Spanned<BTreeMap<String, Spanned<toml::Value>>>>,
    /// Text the decoded subject must contain. Default: any subject.
    when_subject: Option<Spanned<String>>,
}

impl RawFormat {
    /// `when` and `when-subject`: each path parses, each value is one word, number or bool.
    fn selector(&self, site: &ErrorSite<'_>) -> Result<Selector, ConfigError> {
        let mut when = Vec::new();
        if let Some(table) = &self.when {
            if table.get_ref().is_empty() {
                return Err(site.at(
                    table.span(),
                    "format.when",
                    "an empty `when` matches every payload; leave it out instead",
                ));
            }
            for (key, value) in table.get_ref() {
                let at =
                    |message: String| site.at(value.span(), &format!("format.when.{key}"), message);
                let path = PayloadPath::parse(key)
                    .map_err(|e| at(format!("`{key}` is not a payload path: {e}")))?;
                let want = match value.get_ref() {
                    toml::Value::String(text) if text == "*" => Want::Present,
                    toml::Value::String(text) => Want::Equals(text.clone()),
                    toml::Value::Integer(n) => Want::Equals(n.to_string()),
                    toml::Value::Boolean(b) => Want::Equals(b.to_string()),
                    other => {
                        let kind = other.type_str();
                        let article = if kind.starts_with(['a', 'i']) {
                            "an"
                        } else {
                            "a"
                        };
                        return Err(at(format!(
                            "a condition is a text, a whole number, true/false or \"*\" (present), not {article} {kind}"
                        )));
                    }
                };
                when.push(Condition { path, want });
            }
        }
        let subject = match &self.when_subject {
            Some(text) if text.get_ref().trim().is_empty() => {
                return Err(site.at(
                    text.span(),
                    "format.when-subject",
                    "the text the subject must contain is empty",
                ));
            }
            Some(text) => Some(text.get_ref().clone()),
            None => None,
        };
        Ok(Selector { when, subject })
    }

    /// Checks the fields against the record kind and parses their templates.
    fn validate(
        &self,
        site: &ErrorSite<'_>,
        queues: &HashSet<String>,
    ) -> Result<DeclarativeFormat, ConfigError> {
        let name = self.name.get_ref().trim().to_string();
        if name.is_empty() {
            return Err(site.at(self.name.span(), "format.name", "a format needs a name"));
        }
        let kind = pick(site, &self.kind, "format.kind", "kind")?;
        let mut fields = Vec::new();
        for (key, text) in self.fields.get_ref() {
            let at =
                |message: String| site.at(text.span(), &format!("format.fields.{key}"), message);
            let target = Target::parse(key).ok_or_else(|| {
                at(format!(
                    "unknown field `{key}`; known fields: {}",
                    Target::all_names()
                ))
            })?;
            if !target.fits(kind) {
                return Err(at(format!(
                    "field `{key}` is only for service-request formats"
                )));
            }
            let template = Template::parse(text.get_ref()).map_err(|e| at(e.to_string()))?;
            if let Some(missing) = template.maps().find(|m| !self.maps.contains_key(*m)) {
                return Err(at(format!(
                    "value table `{missing}` is not defined; add [format.maps.{missing}]"
                )));
            }
            fields.push((target, template));
        }
        let mut required = Vec::new();
        for field in &self.required {
            let target = Target::parse(field.get_ref())
                .filter(|t| fields.iter().any(|(f, _)| f == t))
                .ok_or_else(|| {
                    site.at(
                        field.span(),
                        "format.required",
                        format!("`{}` is not one of this format's fields", field.get_ref()),
                    )
                })?;
            required.push(target);
        }
        if let Some(unknown) = self
            .map_defaults
            .keys()
            .find(|m| !self.maps.contains_key(*m))
        {
            return Err(site.at(
                self.fields.span(),
                "format.map-defaults",
                format!("default for value table `{unknown}`, which is not defined"),
            ));
        }
        let queue = match &self.queue {
            Some(q) if !queues.contains(q.get_ref().trim()) => {
                return Err(site.at(
                    q.span(),
                    "format.queue",
                    format!(
                        "queue `{}` is not declared; add a [[queue]] with name = \"{}\"",
                        q.get_ref().trim(),
                        q.get_ref().trim()
                    ),
                ));
            }
            Some(q) => Some(q.get_ref().trim().to_string()),
            None => None,
        };
        Ok(DeclarativeFormat {
            selector: self.selector(site)?,
            queue,
            name,
            kind,
            fields,
            required,
            tables: ValueTables {
                maps: self.maps.clone(),
                defaults: self.map_defaults.clone(),
            },
            number_prefix: self
                .number_prefix
                .clone()
                .unwrap_or_else(|| "SR".to_string()),
        })
    }
}

/// The declared formats by name, for the collectors to refer to.
pub(super) struct Formats(HashMap<String, Arc<DeclarativeFormat>>);

impl Formats {
    /// Validates every `[[format]]`; names are unique and never the built-in one.
    pub(super) fn validate(
        site: &ErrorSite<'_>,
        raw: &[RawFormat],
        queues: &HashSet<String>,
    ) -> Result<Self, ConfigError> {
        let mut formats = HashMap::new();
        for f in raw {
            let format = f.validate(site, queues)?;
            if format.name == ORDER_JSON_FORMAT || formats.contains_key(&format.name) {
                return Err(site.at(
                    f.name.span(),
                    "format.name",
                    format!(
                        "format `{}` is declared twice (or is built in)",
                        format.name
                    ),
                ));
            }
            formats.insert(format.name.clone(), Arc::new(format));
        }
        Ok(Formats(formats))
    }

    /// Every format's name (the built-in one too) with the kinds of records it makes.
    pub(super) fn kinds(&self) -> HashMap<String, Vec<RecordKind>> {
        let mut kinds: HashMap<String, Vec<RecordKind>> = self
            .0
            .iter()
            .map(|(name, f)| (name.clone(), vec![f.kind]))
            .collect();
        kinds.insert(
            ORDER_JSON_FORMAT.to_string(),
            super::notify::kinds_of(&PayloadFormat::OrderJson),
        );
        kinds
    }

    /// The format a collector's `format = "..."` names (none: `order-json`), or the list its
    /// `formats = [...]` names, tried in order. Giving both is an error.
    pub(super) fn resolve(
        &self,
        site: &ErrorSite<'_>,
        name: Option<&Spanned<String>>,
        names: Option<&Spanned<Vec<Spanned<String>>>>,
    ) -> Result<PayloadFormat, ConfigError> {
        let Some(names) = names else {
            return match name {
                Some(name) => self.one(site, name, "collector.format"),
                None => Ok(PayloadFormat::OrderJson),
            };
        };
        if name.is_some() {
            return Err(site.at(
                names.span(),
                "collector.formats",
                "give `format = \"...\"` or `formats = [...]`, not both",
            ));
        }
        if names.get_ref().is_empty() {
            return Err(site.at(
                names.span(),
                "collector.formats",
                "list at least one format",
            ));
        }
        let mut seen = HashSet::new();
        let mut list = Vec::new();
        for name in names.get_ref() {
            if !seen.insert(name.get_ref().as_str()) {
                return Err(site.at(
                    name.span(),
                    "collector.formats",
                    format!("format `{}` is listed twice", name.get_ref()),
                ));
            }
            list.push(self.one(site, name, "collector.formats")?);
        }
        Ok(PayloadFormat::FirstOf(list.into()))
    }

    /// The single format called `name`.
    fn one(
        &self,
        site: &ErrorSite<'_>,
        name: &Spanned<String>,
        key: &str,
    ) -> Result<PayloadFormat, ConfigError> {
        if name.get_ref() == ORDER_JSON_FORMAT {
            return Ok(PayloadFormat::OrderJson);
        }
        if let Some(format) = self.0.get(name.get_ref()) {
            return Ok(PayloadFormat::Declarative(format.clone()));
        }
        let mut known: Vec<&str> = self.0.keys().map(String::as_str).collect();
        known.sort_unstable();
        known.insert(0, ORDER_JSON_FORMAT);
        Err(site.at(
            name.span(),
            key,
            format!(
                "unknown format `{}`; known formats: {}",
                name.get_ref(),
                known.join(", ")
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;
    use crate::mapping::PayloadFormat;

    /// Two queues, two forms and a collector listing both (`{collector}` replaced).
    const TWO_FORMS: &str = r#"[[queue]]
name = "consult"
[[queue]]
name = "triage"
[[format]]
name = "consult"
kind = "service-request"
when = { form = "consult" }
[format.fields]
contact-phone = "{{手机}}"
[[format]]
name = "fault"
kind = "service-request"
queue = "triage"
when = { "meta.form" = "fault", "描述" = "*", version = 2 }
when-subject = "报障"
[format.fields]
contact-phone = "{{手机}}"
[[collector]]
name = "site"
queue = "consult"
{collector}
[collector.maildir]
path = "md"
"#;

    fn load(collector: &str) -> Result<Config, String> {
        Config::from_toml(
            Path::new("/etc/mi/collectors.toml"),
            &TWO_FORMS.replace("{collector}", collector),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn a_collector_lists_formats_with_their_conditions_and_queues() {
        let config = load(r#"formats = ["consult", "fault"]"#).unwrap();
        let format = &config.collectors[0].format;
        assert_eq!(format.name(), "consult, fault");
        let members = format.members();
        assert_eq!(members.len(), 2);
        assert_eq!(members[0].queue(), None);
        assert_eq!(members[1].queue(), Some("triage"));
        let PayloadFormat::Declarative(fault) = members[1] else {
            panic!("{members:?}")
        };
        assert_eq!(fault.selector.when.len(), 3);
        assert_eq!(fault.selector.subject.as_deref(), Some("报障"));
        let one = load(r#"format = "fault""#).unwrap();
        assert_eq!(
            one.collectors[0].format.name(),
            "fault",
            "format alone works"
        );
    }

    #[test]
    fn format_errors_name_file_line_and_key() {
        for (collector, want) in [
            (
                "format = \"consult\"\nformats = [\"fault\"]",
                ":23:11: collector.formats: give `format = \"...\"` or `formats = [...]`, not both",
            ),
            (
                "formats = [\"consult\", \"complaint\"]",
                ":22:23: collector.formats: unknown format `complaint`; known formats: order-json, consult, fault",
            ),
            (
                "formats = []",
                ":22:11: collector.formats: list at least one format",
            ),
            (
                "formats = [\"fault\", \"fault\"]",
                ":22:21: collector.formats: format `fault` is listed twice",
            ),
        ] {
            let err = load(collector).unwrap_err();
            assert!(err.starts_with("/etc/mi/collectors.toml"), "{err}");
            assert!(err.ends_with(want), "{collector}: {err}");
        }
    }

    #[test]
    fn bad_conditions_and_queues_are_config_errors() {
        let bad = |from: &str, to: &str| {
            Config::from_toml(
                Path::new("c.toml"),
                &TWO_FORMS.replace("{collector}", "").replacen(from, to, 1),
            )
            .unwrap_err()
            .to_string()
        };
        assert_eq!(
            bad("when = { form = \"consult\" }", "when = { form = [\"a\"] }"),
            "c.toml:8:17: format.when.form: a condition is a text, a whole number, true/false or \"*\" (present), not an array"
        );
        assert_eq!(
            bad(
                "when = { form = \"consult\" }",
                "when = { \"a[x]\" = \"1\" }"
            ),
            "c.toml:8:19: format.when.a[x]: `a[x]` is not a payload path: `x` is not a list index"
        );
        assert_eq!(
            bad("when = { form = \"consult\" }", "when = {}"),
            "c.toml:8:8: format.when: an empty `when` matches every payload; leave it out instead"
        );
        assert_eq!(
            bad("when-subject = \"报障\"", "when-subject = \" \""),
            "c.toml:16:16: format.when-subject: the text the subject must contain is empty"
        );
        assert_eq!(
            bad("queue = \"triage\"\nwhen", "queue = \"dispatch\"\nwhen"),
            "c.toml:14:9: format.queue: queue `dispatch` is not declared; add a [[queue]] with name = \"dispatch\""
        );
    }
}
