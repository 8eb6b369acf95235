//! `[collector.http]`: the collector also takes its forms over HTTP
//! (`POST /api/v1/intake/{collector}`), with the same format, queue, ledger and
//! notifications as its mailbox; alone, the collector has no mailbox at all.

use serde::Deserialize;
use toml::Spanned;

use super::error::{ConfigError, ErrorSite};
use super::size::{KIB, MIB, size_in};

/// The largest request body a collector takes when `max-body` is not given: a form's JSON
/// is a few kilobytes, and an order with every goods line far below this.
pub const DEFAULT_MAX_BODY: u64 = MIB;

/// `max-body` from 1 KB to 512 MB, the bound of `max-message-size`: a body is held whole in
/// memory, as a message is.
const MAX_BODY_RANGE: std::ops::RangeInclusive<u64> = KIB..=512 * MIB;

/// `[collector.http]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawIntake {
    /// Larger request bodies are refused with 413 ("1MB", or a number of bytes). Default: 1 MB.
    max_body: Option<Spanned<toml::Value>>,
}

/// A collector's HTTP intake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpIntake {
    /// Request bodies larger than this many bytes are refused (413), unread.
    pub max_body: u64,
}

impl RawIntake {
    pub(super) fn validate(&self, site: &ErrorSite<'_>) -> Result<HttpIntake, ConfigError> {
        let max_body = match &self.max_body {
            Some(v) => size_in(site, v, MAX_BODY_RANGE, "collector.http.max-body")?,
            None => DEFAULT_MAX_BODY,
        };
        Ok(HttpIntake { max_body })
    }
}
