//! Keys that take one word of a fixed set (`tls = "starttls"`, `action = "move"`), read as
//! serde enums.
//!
//! A bare derived enum would reject an unknown word with serde's generic message and only the
//! key as written on its line. [`Choice`] instead keeps a word that names no variant, so the
//! validation step can answer "unknown TLS mode `x`; expected implicit, starttls or none"
//! under the dotted key (`collector.imap.tls`). The allowed words come from the enum's own
//! derive (serde hands them to [`de::Error::unknown_variant`]), so the message cannot drift
//! from the code.

use std::fmt;

use serde::de::{self, Deserialize, DeserializeOwned, Deserializer, IntoDeserializer};
use toml::Spanned;

use super::error::{ConfigError, ErrorSite};

/// A word read for an enum `T`: a variant, or the word it did not know.
#[derive(Debug, Clone)]
pub(super) enum Choice<T> {
    Known(T),
    Unknown {
        word: String,
        expected: &'static [&'static str],
    },
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Choice<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A non-string is a type error, reported by serde like any other.
        let word = String::deserialize(deserializer)?;
        let variant: de::value::StrDeserializer<'_, NotAVariant> =
            word.as_str().into_deserializer();
        Ok(match T::deserialize(variant) {
            Ok(value) => Choice::Known(value),
            Err(NotAVariant(expected)) => Choice::Unknown { word, expected },
        })
    }
}

/// The variant `value` names, or an error at its span: `unknown WHAT `word`; expected a, b or c`.
pub(super) fn pick<T: Clone>(
    site: &ErrorSite<'_>,
    value: &Spanned<Choice<T>>,
    key: &str,
    what: &str,
) -> Result<T, ConfigError> {
    match value.get_ref() {
        Choice::Known(known) => Ok(known.clone()),
        Choice::Unknown { word, expected } => Err(site.at(
            value.span(),
            key,
            format!("unknown {what} `{word}`; expected {}", or_list(expected)),
        )),
    }
}

/// `a, b or c`.
pub(super) fn or_list(words: &[&str]) -> String {
    match words.split_last() {
        Some((last, [])) => (*last).to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// Serde's report that a word names no variant, with the words that would have.
#[derive(Debug)]
struct NotAVariant(&'static [&'static str]);

impl fmt::Display for NotAVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected one of {}", or_list(self.0))
    }
}

impl std::error::Error for NotAVariant {}

impl de::Error for NotAVariant {
    fn custom<M: fmt::Display>(_: M) -> Self {
        NotAVariant(&[])
    }

    fn unknown_variant(_: &str, expected: &'static [&'static str]) -> Self {
        NotAVariant(expected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, serde::Deserialize)]
    #[serde(rename_all = "kebab-case")]
    enum Colour {
        Red,
        DarkBlue,
    }

    #[derive(serde::Deserialize)]
    struct Doc {
        colour: Spanned<Choice<Colour>>,
    }

    fn pick_colour(text: &str) -> Result<Colour, String> {
        let doc: Doc = toml::from_str(text).map_err(|e| e.message().to_string())?;
        let site = ErrorSite {
            path: std::path::Path::new("c.toml"),
            text,
        };
        pick(&site, &doc.colour, "paint.colour", "colour").map_err(|e| e.to_string())
    }

    #[test]
    fn a_known_word_is_its_variant_and_an_unknown_one_lists_the_variants() {
        assert_eq!(pick_colour("colour = \"dark-blue\""), Ok(Colour::DarkBlue));
        assert_eq!(
            pick_colour("\ncolour = \"green\"").unwrap_err(),
            "c.toml:2:10: paint.colour: unknown colour `green`; expected red or dark-blue"
        );
        assert!(
            pick_colour("colour = 5")
                .unwrap_err()
                .contains("invalid type")
        );
    }

    #[test]
    fn lists_read_as_prose() {
        assert_eq!(or_list(&["a"]), "a");
        assert_eq!(or_list(&["a", "b", "c"]), "a, b or c");
    }
}
