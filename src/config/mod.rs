//! `collectors.toml`: the admin's interface.
//!
//! The file is read in two steps: serde turns the TOML into raw sections (`Raw*`, unknown keys
//! rejected, words of a fixed set read as enums), then [`Config::from_toml`] checks what serde
//! cannot (queues that exist, cron expressions, charsets, unique names, templates) and
//! resolves paths against the file's folder. Every error names the file, the line and the key,
//! so a typo never passes silently.
//!
//! Each section's raw shape sits next to its validation and the typed value it becomes:
//! `collector.rs` (with `[collector.maildir]`), `imap.rs`, `intake.rs` (`[collector.http]`), `after.rs`, `format.rs` and
//! `workflow.rs` (with `[unknown-customer]`); `error.rs` turns spans into
//! `file:line:column`, `keyword.rs` reads words of a fixed set as serde enums, `size.rs`
//! reads sizes (`"25MB"`).
//!
//! The config is plain data: it imports the types of the stages it configures (the store's
//! [`StorageUrl`] and `UnknownCustomer`, the mapper's formats), never the other way round,
//! and each stage is handed only its part.

mod after;
mod collector;
mod duration;
mod endpoint;
mod error;
mod format;
mod http;
mod imap;
mod intake;
mod keyword;
mod notify;
mod quantity;
mod size;
mod smtp;
mod storage;
mod workflow;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use self::collector::{Known, Probe, RawCollector};
use self::error::ErrorSite;
use self::format::{Formats, RawFormat};
use self::http::RawHttp;
use self::notify::RawNotify;
use self::smtp::{RawSms, RawSmtp};
use self::storage::{RawStorage, Storage};
use self::workflow::RawUnknownCustomer;

pub use self::collector::{
    CollectMode, Collector, DEFAULT_BATCH_BYTES, DEFAULT_BATCH_SIZE, DEFAULT_MAX_MESSAGE_SIZE,
    SourceConfig,
};
pub use self::duration::display as display_duration;
pub use self::error::ConfigError;
pub use self::format::ORDER_JSON_FORMAT;
pub use self::http::{DEFAULT_LISTEN, HttpSettings};
pub use self::intake::{DEFAULT_MAX_BODY, HttpIntake};
pub use self::size::display as display_size;
pub use self::workflow::Workflow;
pub use crate::notify::rules::NotifyRules;
pub use crate::notify::settings::SmtpSettings;
pub use crate::source::imap::{AfterAction, AfterPolicy, ImapConfig, Secret, TlsMode};
pub use crate::store::StorageUrl;

/// Where the config is looked for when neither `--config` nor `MAILINTAKE_CONFIG` is given.
pub const DEFAULT_CONFIG_PATH: &str = "collectors.toml";

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was read from (for messages).
    pub path: PathBuf,
    /// Where records are stored (`[storage] url`; for PostgreSQL with the password's
    /// reference, `password-env` / `password-file`).
    pub storage: StorageUrl,
    /// How long a daemon's hold on a collector lasts unless renewed (`[storage] lease-secs`).
    pub storage_lease: std::time::Duration,
    /// The declared `[[queue]]`s, in file order.
    pub queues: Vec<Queue>,
    /// The `[[collector]]`s, in file order.
    pub collectors: Vec<Collector>,
    /// Status names (`[workflow]`).
    pub workflow: Workflow,
    /// Fallback for records naming a customer id no counterparty has.
    pub unknown_customer: Option<crate::domain::UnknownCustomer>,
    /// The SMTP server notifications go through (`[smtp]`); none: no notifications.
    pub smtp: Option<SmtpSettings>,
    /// The `[[notify]]` rules with the `[sms]` gateway, as the store applies them.
    pub notify: Arc<NotifyRules>,
    /// The review page (`[http]`).
    pub http: HttpSettings,
}

/// A queue (the seed's "calendar") that records are routed into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    /// Identifier collectors route into.
    pub name: String,
    /// Human title (the name when none is given); not shown by any command yet.
    pub title: String,
}

/// The whole file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawConfig {
    /// `[storage]`. Default: `sqlite://mailintake.db` beside the config.
    storage: Option<RawStorage>,
    /// `[[queue]]`s, declared before collectors refer to them.
    #[serde(default)]
    queue: Vec<RawQueue>,
    /// `[[collector]]`s.
    #[serde(default)]
    collector: Vec<RawCollector>,
    /// `[[format]]`s: declarative payload formats.
    #[serde(default)]
    format: Vec<RawFormat>,
    /// `[workflow]`. Default: [`Workflow::default`].
    #[serde(default)]
    workflow: Workflow,
    /// `[unknown-customer]`. Default: none (such records get no counterparty).
    unknown_customer: Option<RawUnknownCustomer>,
    /// `[smtp]`. Default: none (no notifications; `[[notify]]` needs it).
    smtp: Option<RawSmtp>,
    /// `[sms]`. Default: none (`channel = "sms"` rules need it).
    sms: Option<RawSms>,
    /// `[[notify]]` rules. Default: none.
    #[serde(default)]
    notify: Vec<RawNotify>,
    /// `[http]`. Default: [`HttpSettings::default`].
    http: Option<RawHttp>,
}

/// `[[queue]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawQueue {
    /// Identifier collectors and `records list --queue` use; unique. Required.
    name: Spanned<String>,
    /// Human title. Default: the name.
    title: Option<String>,
}

impl Config {
    /// Reads and validates the config file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::from_toml(path, &read_text(path)?)
    }

    /// Reads and validates the config file at `path`, and checks what its sources refer to
    /// as far as can be done without a network (`mailintake check`): each Maildir exists and
    /// lists, each `ca-file` holds PEM certificates, each password can be read (here, in this
    /// environment). `load` leaves that to the pass, so one broken source never stops the
    /// other collectors.
    pub fn load_and_probe(path: &Path) -> Result<Config, ConfigError> {
        Config::validate(path, &read_text(path)?, Probe::Sources)
    }

    /// Validates config text; `path` names the file in errors and anchors relative paths.
    pub fn from_toml(path: &Path, text: &str) -> Result<Config, ConfigError> {
        Config::validate(path, text, Probe::Nothing)
    }

    fn validate(path: &Path, text: &str, probe: Probe) -> Result<Config, ConfigError> {
        let site = ErrorSite { path, text };
        let raw: RawConfig = toml::from_str(text).map_err(|e| site.toml_error(&e))?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));

        let Storage {
            url: storage,
            lease: storage_lease,
        } = match &raw.storage {
            Some(storage) => storage.validate(&site, base, &probe)?,
            None => Storage {
                url: StorageUrl::Sqlite(base.join("mailintake.db")),
                ..Storage::default()
            },
        };
        let (queues, queue_names) = validate_queues(&site, &raw.queue)?;
        let formats = Formats::validate(&site, &raw.format, &queue_names)?;
        let mut known = Known {
            base,
            queues: &queue_names,
            formats: &formats,
            collectors: HashSet::new(),
            probe,
        };
        let mut collectors: Vec<Collector> = raw
            .collector
            .iter()
            .map(|c| c.validate(&site, &mut known))
            .collect::<Result<_, _>>()?;
        let smtp = raw
            .smtp
            .as_ref()
            .map(|s| s.validate(&site, base))
            .transpose()?;
        for collector in &mut collectors {
            // Mail from our own notifications address is never ingested (a loop).
            collector.rules.own_address = smtp.as_ref().map(|s| s.from_address.clone());
        }
        let notify = validate_notify(&site, &raw, &queue_names, &formats, &collectors)?;
        if let (Some(rule), None) = (raw.notify.first(), &smtp) {
            return Err(site.at(
                rule.name_span(),
                "notify",
                "[[notify]] rules need an [smtp] section to send through",
            ));
        }
        let http = raw
            .http
            .as_ref()
            .map(|h| h.validate(&site))
            .transpose()?
            .unwrap_or_default();
        Ok(Config {
            path: path.to_path_buf(),
            storage,
            storage_lease,
            queues,
            collectors,
            workflow: raw.workflow,
            unknown_customer: raw
                .unknown_customer
                .map(|u| crate::domain::UnknownCustomer {
                    counterparty: u.counterparty,
                    status: u.status,
                }),
            smtp,
            notify: Arc::new(notify),
            http,
        })
    }

    /// The collector called `name`.
    pub fn collector(&self, name: &str) -> Option<&Collector> {
        self.collectors.iter().find(|c| c.name == name)
    }
}

/// The `[sms]` gateway and the `[[notify]]` rules, checked against the queues, formats and
/// collectors.
fn validate_notify(
    site: &ErrorSite<'_>,
    raw: &RawConfig,
    queues: &HashSet<String>,
    formats: &Formats,
    collectors: &[Collector],
) -> Result<NotifyRules, ConfigError> {
    let sms_gateway = raw.sms.as_ref().map(|s| s.validate(site)).transpose()?;
    let known = notify::Known {
        queues,
        collectors,
        formats: formats.kinds(),
        sms_gateway: sms_gateway.is_some(),
    };
    let mut names = HashSet::new();
    let rules = raw
        .notify
        .iter()
        .map(|r| r.validate(site, &known, &mut names))
        .collect::<Result<_, _>>()?;
    Ok(NotifyRules {
        rules,
        sms_gateway,
        formats: collectors
            .iter()
            .map(|c| (c.name.clone(), c.format.name().to_string()))
            .collect(),
    })
}

/// The config file's text.
fn read_text(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// The queues, and their names for the collectors to refer to.
fn validate_queues(
    site: &ErrorSite<'_>,
    raw: &[RawQueue],
) -> Result<(Vec<Queue>, HashSet<String>), ConfigError> {
    let mut queues = Vec::new();
    let mut names = HashSet::new();
    for q in raw {
        let name = q.name.get_ref().trim();
        if name.is_empty() {
            return Err(site.at(q.name.span(), "queue.name", "a queue needs a name"));
        }
        if !names.insert(name.to_string()) {
            return Err(site.at(
                q.name.span(),
                "queue.name",
                format!("queue `{name}` is declared twice"),
            ));
        }
        queues.push(Queue {
            name: name.to_string(),
            title: q.title.clone().unwrap_or_else(|| name.to_string()),
        });
    }
    Ok((queues, names))
}
