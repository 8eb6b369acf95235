//! Config errors and where they point: every error names `file:line:column: key: message`.
//!
//! Two kinds of error reach the admin. Serde's own (unknown key, wrong type) carry a byte span
//! and a message; the key is the unknown field's name, or else read off the offending line,
//! since a type error points at the value. Validation errors are raised with the span of the
//! value kept by [`toml::Spanned`] and name the dotted key (`collector.imap.tls`).

use std::ops::{Range, RangeBounds};
use std::path::Path;

/// A config file that could not be used, with the place that is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read the config file: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {key}: {message}")]
    Invalid {
        path: String,
        line: usize,
        column: usize,
        /// The key (dotted, e.g. `collector.schedule`) the error is about.
        key: String,
        message: String,
    },
}

/// Turns byte spans of one config text into `file:line:column` errors.
pub(super) struct ErrorSite<'a> {
    pub(super) path: &'a Path,
    pub(super) text: &'a str,
}

impl ErrorSite<'_> {
    /// The error for the value at `span` of `key`.
    pub(super) fn at(
        &self,
        span: Range<usize>,
        key: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        let (line, column) = line_column(self.text, span.start);
        ConfigError::Invalid {
            path: self.path.display().to_string(),
            line,
            column,
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// The whole number at `value` as a `T` within `range`, or `message` at its span.
    pub(super) fn number_in<T: TryFrom<i64> + PartialOrd>(
        &self,
        value: &toml::Spanned<i64>,
        range: impl RangeBounds<T>,
        key: &str,
        message: &str,
    ) -> Result<T, ConfigError> {
        T::try_from(*value.get_ref())
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| self.at(value.span(), key, message))
    }

    /// A serde/TOML error: the key is named in the message for unknown keys, and is otherwise
    /// read off the offending line (`key = value`), since type errors point at the value.
    pub(super) fn toml_error(&self, err: &toml::de::Error) -> ConfigError {
        let span = err.span().unwrap_or(0..0);
        let message = err.message().trim().to_string();
        let key = unknown_field_name(&message)
            .or_else(|| key_on_line(self.text, span.start))
            .unwrap_or_else(|| "(document)".to_string());
        self.at(span, &key, message)
    }
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn unknown_field_name(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest[..rest.find('`')?].to_string())
}

fn key_on_line(text: &str, offset: usize) -> Option<String> {
    let start = text[..offset.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line = text[start..].lines().next()?;
    let key = line.split_once('=')?.0.trim();
    (!key.is_empty() && !key.starts_with('[')).then(|| key.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let text = "a = 1\nкод = \"x\"\n";
        let offset = text.find('"').unwrap();
        assert_eq!(line_column(text, offset), (2, 7));
        assert_eq!(key_on_line(text, offset).as_deref(), Some("код"));
        assert_eq!(key_on_line("[table]\n", 1), None);
    }
}
