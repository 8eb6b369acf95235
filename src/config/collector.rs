//! `[[collector]]`: one mailbox bound to one queue, with its schedule and decoding rules.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use encoding_rs::Encoding;
use serde::Deserialize;
use toml::Spanned;

use super::after::RawAfter;
use super::duration::duration_in;
use super::error::{ConfigError, ErrorSite};
use super::format::Formats;
use super::imap::RawImap;
use super::intake::{HttpIntake, RawIntake};
use super::keyword::{Choice, pick};
use super::size::{GIB, KIB, MIB, size_in};
use crate::decode::DecodeRules;
use crate::mapping::PayloadFormat;
use crate::source::imap::AfterPolicy;
use crate::source::imap::ImapConfig;
use crate::source::maildir::Maildir;

/// Messages a collector reads and commits in one transaction when nothing else is configured.
pub const DEFAULT_BATCH_SIZE: usize = 200;

/// Messages larger than this are quarantined as too large, unread, unless the collector says
/// otherwise: 25 MB, the limit most mail providers put on what they accept.
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 25 * MIB;

/// Raw bytes a batch reads at most when nothing else is configured: with the decoder's
/// working copies, a batch stays within a few times this, whatever the backlog. A message
/// larger than this (up to `max-message-size`) is read in a batch of its own.
pub const DEFAULT_BATCH_BYTES: u64 = 16 * MIB;

/// The largest `max-message-size`: the IMAP client buffers one response whole and refuses
/// responses above 512 MB.
const MESSAGE_SIZE_RANGE: std::ops::RangeInclusive<u64> = KIB..=512 * MIB;
/// `batch-bytes` from 1 KB (a test's tiny batches) to 1 GB.
const BATCH_BYTES_RANGE: std::ops::RangeInclusive<u64> = KIB..=GIB;
/// `stale-after` from 1 second (a test's) to 30 days, in seconds.
const STALE_AFTER_RANGE: std::ops::RangeInclusive<u64> = 1..=30 * 86_400;

/// `[[collector]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawCollector {
    /// Unique name (`collect --collector NAME`, recorded with every message). Required.
    name: Spanned<String>,
    /// The `[[queue]]` its records go to. Required.
    queue: Spanned<String>,
    /// Payload format: `order-json` or a `[[format]]` name. Default: `order-json`.
    format: Option<Spanned<String>>,
    /// Several formats, tried in order (each with its `when`); instead of `format`.
    formats: Option<Spanned<Vec<Spanned<String>>>>,
    /// Cron, seconds first (6 or 7 fields). Default: the daemon's every 5 minutes.
    schedule: Option<Spanned<String>>,
    /// Word the subject must contain. Default: `ORDER`.
    subject_keyword: Option<Spanned<String>>,
    /// Charset for attachments that declare none and are not UTF-8. Default: windows-1251.
    default_charset: Option<Spanned<String>>,
    /// Messages per transaction (1..10000). Default: 200.
    batch_size: Option<Spanned<i64>>,
    /// Raw bytes read per transaction ("16MB", or a number of bytes). Default: 16 MB.
    batch_bytes: Option<Spanned<toml::Value>>,
    /// Larger messages are quarantined unread ("25MB", or a number of bytes). Default: 25 MB.
    max_message_size: Option<Spanned<toml::Value>>,
    /// `poll` (schedule only) or `idle` (IMAP IDLE push too). Default: `poll`.
    mode: Option<Spanned<Choice<CollectMode>>>,
    /// How long the collector may keep failing before `/healthz` answers 503 ("15m", or a
    /// number of seconds). Default: three periods of its schedule.
    stale_after: Option<Spanned<toml::Value>>,
    /// `[collector.maildir]`; give this or `imap` (or neither, with `http`).
    maildir: Option<RawMaildir>,
    /// `[collector.imap]`; give this or `maildir` (or neither, with `http`).
    imap: Option<RawImap>,
    /// `[collector.http]`: forms posted over HTTP too (or only). Default: none.
    http: Option<RawIntake>,
    /// `[collector.after]` (IMAP only). Default: mark seen.
    after: Option<RawAfter>,
}

/// `[collector.maildir]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawMaildir {
    /// The Maildir (with new/, cur/, tmp/), relative to the config's folder. Required.
    path: Spanned<String>,
}

/// One collector: a mailbox bound to a queue.
#[derive(Debug, Clone)]
pub struct Collector {
    /// Unique name, recorded with every message it stores.
    pub name: String,
    /// The queue its records go to (declared, checked at load), unless their format names
    /// its own.
    pub queue: String,
    /// How payloads become records (one format, or several tried in order).
    pub format: PayloadFormat,
    /// Cron schedule (6 or 7 fields, seconds first); used by the daemon.
    pub schedule: Option<cron::Schedule>,
    /// Subject keyword and default charset for decoding.
    pub rules: DecodeRules,
    /// Messages read and committed per transaction.
    pub batch_size: usize,
    /// Raw bytes read per transaction at most (a larger message is read alone).
    pub batch_bytes: u64,
    /// Messages larger than this many bytes are quarantined with their headers only.
    pub max_message_size: u64,
    /// The mailbox.
    pub source: SourceConfig,
    /// HTTP intake (`[collector.http]`); none: the collector takes no forms over HTTP.
    pub http: Option<HttpIntake>,
    /// What happens to a processed message in the mailbox.
    pub after: AfterPolicy,
    /// Poll on the schedule only, or IMAP IDLE too.
    pub mode: CollectMode,
    /// How long it may keep failing before `/healthz` answers 503; `None`: three periods of
    /// its schedule (see `web/health.rs`).
    pub stale_after: Option<std::time::Duration>,
}

/// Where a collector reads mail from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceConfig {
    /// A local Maildir (what an MTA delivers into).
    Maildir {
        /// The Maildir folder (with new/, cur/, tmp/).
        path: PathBuf,
    },
    /// An IMAP mailbox.
    Imap(ImapConfig),
    /// No mailbox: the collector takes its forms over HTTP only (`[collector.http]` alone),
    /// so it has nothing to collect and the daemon runs no pass for it.
    HttpOnly,
}

/// How the daemon notices new mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CollectMode {
    /// On the cron schedule only.
    Poll,
    /// IMAP IDLE push, with the schedule as a reconciliation pass.
    Idle,
}

/// What a collector may refer to, and the names already taken.
pub(super) struct Known<'a> {
    pub(super) base: &'a Path,
    pub(super) queues: &'a HashSet<String>,
    pub(super) formats: &'a Formats,
    pub(super) collectors: HashSet<String>,
    pub(super) probe: Probe,
}

/// Whether validation also looks at what the sources refer to (files, folders, variables).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Probe {
    /// The text alone: what every command that loads the config needs.
    Nothing,
    /// Also each Maildir, `ca-file` and password, without a network (`mailintake check`).
    Sources,
}

impl RawCollector {
    /// Checks the collector against the declared queues and formats, and takes its name.
    pub(super) fn validate(
        &self,
        site: &ErrorSite<'_>,
        known: &mut Known<'_>,
    ) -> Result<Collector, ConfigError> {
        let name = self.name.get_ref().trim().to_string();
        if name.is_empty() {
            return Err(site.at(
                self.name.span(),
                "collector.name",
                "a collector needs a name",
            ));
        }
        if !known.collectors.insert(name.clone()) {
            return Err(site.at(
                self.name.span(),
                "collector.name",
                format!("collector `{name}` is declared twice"),
            ));
        }
        let queue = self.queue.get_ref().trim().to_string();
        if !known.queues.contains(&queue) {
            return Err(site.at(
                self.queue.span(),
                "collector.queue",
                format!("queue `{queue}` is not declared; add a [[queue]] with name = \"{queue}\""),
            ));
        }
        let format = known
            .formats
            .resolve(site, self.format.as_ref(), self.formats.as_ref())?;
        let schedule = self
            .schedule
            .as_ref()
            .map(|s| {
                cron::Schedule::from_str(s.get_ref()).map_err(|e| {
                    site.at(
                        s.span(),
                        "collector.schedule",
                        format!(
                            "`{}` is not a cron expression ({e}); use 6 or 7 fields, seconds first, e.g. \"0 */5 * * * *\"",
                            s.get_ref()
                        ),
                    )
                })
            })
            .transpose()?;
        let rules = self.rules(site)?;
        let batch_size = match &self.batch_size {
            Some(size) => site.number_in(
                size,
                1..=10_000,
                "collector.batch-size",
                "must be between 1 and 10000",
            )?,
            None => DEFAULT_BATCH_SIZE,
        };
        let batch_bytes = match &self.batch_bytes {
            Some(v) => size_in(site, v, BATCH_BYTES_RANGE, "collector.batch-bytes")?,
            None => DEFAULT_BATCH_BYTES,
        };
        let max_message_size = match &self.max_message_size {
            Some(v) => size_in(site, v, MESSAGE_SIZE_RANGE, "collector.max-message-size")?,
            None => DEFAULT_MAX_MESSAGE_SIZE,
        };
        let http = self.http.as_ref().map(|h| h.validate(site)).transpose()?;
        let source = self.source(site, known, &name)?;
        let is_imap = matches!(source, SourceConfig::Imap(_));
        let after = match &self.after {
            Some(after) => after.validate(site, is_imap)?,
            None => AfterPolicy::default(),
        };
        let mode = match &self.mode {
            None => CollectMode::Poll,
            Some(m) => match pick(site, m, "collector.mode", "mode")? {
                CollectMode::Idle if !is_imap => {
                    return Err(site.at(
                        m.span(),
                        "collector.mode",
                        "mode = \"idle\" needs an IMAP collector",
                    ));
                }
                mode => mode,
            },
        };
        let stale_after = self
            .stale_after
            .as_ref()
            .map(|v| duration_in(site, v, STALE_AFTER_RANGE, "collector.stale-after"))
            .transpose()?;
        Ok(Collector {
            name,
            queue,
            format,
            schedule,
            rules,
            batch_size,
            batch_bytes,
            max_message_size,
            source,
            http,
            after,
            mode,
            stale_after,
        })
    }

    /// The subject keyword and default charset.
    fn rules(&self, site: &ErrorSite<'_>) -> Result<DecodeRules, ConfigError> {
        let mut rules = DecodeRules::default();
        if let Some(keyword) = &self.subject_keyword {
            let word = keyword.get_ref().trim();
            if word.is_empty() || word.chars().any(char::is_whitespace) {
                return Err(site.at(
                    keyword.span(),
                    "collector.subject-keyword",
                    "the keyword must be one non-empty word",
                ));
            }
            rules.subject_keyword = word.to_string();
        }
        if let Some(label) = &self.default_charset {
            rules.default_charset = Encoding::for_label(label.get_ref().trim().as_bytes())
                .ok_or_else(|| {
                    site.at(
                        label.span(),
                        "collector.default-charset",
                        format!(
                            "unknown charset `{}` (e.g. windows-1251, koi8-r, utf-8)",
                            label.get_ref()
                        ),
                    )
                })?;
        }
        Ok(rules)
    }

    /// At most one of `[collector.maildir]` and `[collector.imap]`; neither only with
    /// `[collector.http]`.
    fn source(
        &self,
        site: &ErrorSite<'_>,
        known: &Known<'_>,
        name: &str,
    ) -> Result<SourceConfig, ConfigError> {
        let base = known.base;
        match (&self.maildir, &self.imap) {
            (Some(_), Some(imap)) => Err(site.at(
                imap.host.span(),
                "collector.imap",
                format!(
                    "collector `{name}` has both [collector.maildir] and [collector.imap]; keep one"
                ),
            )),
            (Some(m), None) if m.path.get_ref().trim().is_empty() => Err(site.at(
                m.path.span(),
                "collector.maildir.path",
                "the Maildir path is empty",
            )),
            (Some(m), None) => {
                let path = base.join(m.path.get_ref());
                if known.probe == Probe::Sources {
                    Maildir::probe(&path).map_err(|e| {
                        site.at(
                            m.path.span(),
                            "collector.maildir.path",
                            format!("collector `{name}`: {e}"),
                        )
                    })?;
                }
                Ok(SourceConfig::Maildir { path })
            }
            (None, Some(imap)) => {
                let config = imap.validate(site, base)?;
                if known.probe == Probe::Sources {
                    imap.probe(site, &config, name)?;
                }
                Ok(SourceConfig::Imap(config))
            }
            (None, None) if self.http.is_some() => Ok(SourceConfig::HttpOnly),
            (None, None) => Err(site.at(
                self.name.span(),
                "collector",
                format!("collector `{name}` has no source; add a [collector.imap], [collector.maildir] or [collector.http] table"),
            )),
        }
    }
}
