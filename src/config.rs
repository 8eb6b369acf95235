//! `collectors.toml`: the admin's interface.
//!
//! The file is read in two steps: serde turns the TOML into raw sections (unknown keys are
//! rejected there), then [`Config::from_toml`] checks what serde cannot (queues that exist,
//! cron expressions, charsets, unique names) and resolves paths against the file's folder.
//! Every error names the file, the line and the key, so a typo never passes silently.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use encoding_rs::Encoding;
use serde::Deserialize;
use toml::Spanned;

use crate::decode::DecodeRules;
use crate::map::declarative::{DeclarativeFormat, Target};
use crate::map::template::{Template, ValueTables};
use crate::map::{PayloadFormat, RecordKind};

/// Where the config is looked for when neither `--config` nor `MAILINTAKE_CONFIG` is given.
pub const DEFAULT_CONFIG_PATH: &str = "collectors.toml";

/// The only payload format built in so far (the seed's v0.1 order file).
pub const ORDER_JSON_FORMAT: &str = "order-json";

/// Messages a collector reads and commits in one transaction when nothing else is configured.
pub const DEFAULT_BATCH_SIZE: usize = 200;

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

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was read from (for messages).
    pub path: PathBuf,
    pub storage: StorageUrl,
    pub queues: Vec<Queue>,
    pub collectors: Vec<Collector>,
    pub workflow: Workflow,
    /// Fallback for records naming a customer id no counterparty has.
    pub unknown_customer: Option<crate::store::UnknownCustomer>,
}

/// Status names of the record workflow: new -> in progress -> resolved -> accepted |
/// rejected (seed 001 lets each installation name them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workflow {
    pub in_progress: String,
    pub resolved: String,
    pub accepted: String,
    pub rejected: String,
    /// Statuses in which the result is shown to the customer.
    pub visible_to_customer: Vec<String>,
}

impl Default for Workflow {
    fn default() -> Self {
        Workflow {
            in_progress: "in-progress".into(),
            resolved: "resolved".into(),
            accepted: "accepted".into(),
            rejected: "rejected".into(),
            visible_to_customer: vec!["resolved".into(), "accepted".into(), "rejected".into()],
        }
    }
}

/// Where records are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageUrl {
    /// A SQLite database file (created and migrated on first use).
    Sqlite(PathBuf),
}

impl fmt::Display for StorageUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageUrl::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
        }
    }
}

impl StorageUrl {
    /// Parses `sqlite://PATH` (relative paths resolve against `base`).
    pub fn parse(url: &str, base: &Path) -> Result<StorageUrl, String> {
        if let Some(rest) = url.strip_prefix("sqlite://") {
            if rest.is_empty() {
                return Err("the SQLite URL has no file path (e.g. sqlite://mailintake.db)".into());
            }
            return Ok(StorageUrl::Sqlite(base.join(rest)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Err(
                "PostgreSQL storage is not available in this version; use sqlite://FILE".into(),
            );
        }
        Err(format!(
            "unsupported storage URL `{url}`; expected sqlite://FILE"
        ))
    }
}

/// A queue (the seed's "calendar") that records are routed into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    pub name: String,
    pub title: String,
}

/// One collector: a mailbox bound to a queue.
#[derive(Debug, Clone)]
pub struct Collector {
    pub name: String,
    pub queue: String,
    /// How payloads become records.
    pub format: PayloadFormat,
    /// Cron schedule (6 or 7 fields, seconds first); used by the daemon.
    pub schedule: Option<cron::Schedule>,
    pub rules: DecodeRules,
    pub batch_size: usize,
    pub source: SourceConfig,
    /// What happens to a processed message in the mailbox.
    pub after: AfterPolicy,
    pub mode: CollectMode,
}

/// Where a collector reads mail from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceConfig {
    /// A local Maildir (what an MTA delivers into).
    Maildir {
        path: PathBuf,
    },
    Imap(ImapConfig),
}

/// An IMAP mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapConfig {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: String,
    pub password: Secret,
    pub mailbox: String,
    /// Extra CA certificates (PEM) trusted besides the system ones, for a private CA.
    pub ca_file: Option<PathBuf>,
    /// Limit for one IMAP command; a server slower than this is reconnected.
    pub timeout: std::time::Duration,
}

/// How the IMAP connection is protected. Certificates are always verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// TLS from the first byte (port 993).
    Implicit,
    /// Plain connection upgraded with STARTTLS (port 143).
    Starttls,
    /// No TLS: only to a loopback host, or with `allow-insecure = true`.
    None,
}

/// A secret given by reference, never inline.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// The value of an environment variable.
    Env(String),
    /// The contents of a file (trailing newline removed), e.g. a systemd credential.
    File(PathBuf),
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Env(name) => write!(f, "Secret::Env({name})"),
            Secret::File(path) => write!(f, "Secret::File({})", path.display()),
        }
    }
}

impl Secret {
    /// Reads the secret now (at connect time, so a rotated credential is picked up).
    pub fn read(&self) -> Result<String, String> {
        match self {
            Secret::Env(name) => {
                std::env::var(name).map_err(|_| format!("environment variable {name} is not set"))
            }
            Secret::File(path) => std::fs::read_to_string(path)
                .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
                .map_err(|e| format!("cannot read password file {}: {e}", path.display())),
        }
    }
}

/// What happens to a message once it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterAction {
    /// Set `\Seen` (the Maildir `S` flag).
    Seen,
    /// Move to this folder (created if missing).
    Move(String),
    /// Delete (expunge) it.
    Delete,
}

/// After-processing policy of a collector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfterPolicy {
    pub action: AfterAction,
    /// Expunge processed messages older than this many days.
    pub delete_after_days: Option<u32>,
    /// Move quarantined messages here instead of flagging them in place.
    pub quarantine_move_to: Option<String>,
}

impl Default for AfterPolicy {
    fn default() -> Self {
        AfterPolicy {
            action: AfterAction::Seen,
            delete_after_days: None,
            quarantine_move_to: None,
        }
    }
}

/// How the daemon notices new mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectMode {
    /// On the cron schedule only.
    Poll,
    /// IMAP IDLE push, with the schedule as a reconciliation pass.
    Idle,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawConfig {
    storage: Option<RawStorage>,
    #[serde(default)]
    queue: Vec<RawQueue>,
    #[serde(default)]
    collector: Vec<RawCollector>,
    #[serde(default)]
    format: Vec<RawFormat>,
    workflow: Option<RawWorkflow>,
    unknown_customer: Option<RawUnknownCustomer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawUnknownCustomer {
    counterparty: String,
    status: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawWorkflow {
    in_progress: Option<String>,
    resolved: Option<String>,
    accepted: Option<String>,
    rejected: Option<String>,
    visible_to_customer: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawFormat {
    name: Spanned<String>,
    kind: Spanned<String>,
    #[serde(default)]
    required: Vec<Spanned<String>>,
    number_prefix: Option<String>,
    fields: Spanned<BTreeMap<String, Spanned<String>>>,
    #[serde(default)]
    maps: HashMap<String, HashMap<String, String>>,
    #[serde(default)]
    map_defaults: HashMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawStorage {
    url: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawQueue {
    name: Spanned<String>,
    title: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawCollector {
    name: Spanned<String>,
    queue: Spanned<String>,
    format: Option<Spanned<String>>,
    schedule: Option<Spanned<String>>,
    subject_keyword: Option<Spanned<String>>,
    default_charset: Option<Spanned<String>>,
    batch_size: Option<Spanned<i64>>,
    mode: Option<Spanned<String>>,
    maildir: Option<RawMaildir>,
    imap: Option<RawImap>,
    after: Option<RawAfter>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawImap {
    host: Spanned<String>,
    port: Option<Spanned<i64>>,
    tls: Option<Spanned<String>>,
    #[serde(default)]
    allow_insecure: bool,
    username: Spanned<String>,
    /// Only here to say why it is refused.
    password: Option<Spanned<toml::Value>>,
    password_env: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
    mailbox: Option<Spanned<String>>,
    ca_file: Option<Spanned<String>>,
    timeout_secs: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawAfter {
    action: Option<Spanned<String>>,
    move_to: Option<Spanned<String>>,
    delete_after_days: Option<Spanned<i64>>,
    quarantine_move_to: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawMaildir {
    path: Spanned<String>,
}

/// Turns byte spans into `file:line:column` errors.
struct ErrorSite<'a> {
    path: &'a Path,
    text: &'a str,
}

impl ErrorSite<'_> {
    fn at(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> ConfigError {
        let (line, column) = line_column(self.text, span.start);
        ConfigError::Invalid {
            path: self.path.display().to_string(),
            line,
            column,
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// A serde/TOML error: the key is named in the message for unknown keys, and is otherwise
    /// read off the offending line (`key = value`), since type errors point at the value.
    fn toml_error(&self, err: &toml::de::Error) -> ConfigError {
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

impl Config {
    /// Reads and validates the config file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::from_toml(path, &text)
    }

    /// Validates config text; `path` names the file in errors and anchors relative paths.
    pub fn from_toml(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let site = ErrorSite { path, text };
        let raw: RawConfig = toml::from_str(text).map_err(|e| site.toml_error(&e))?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));

        let storage = match &raw.storage {
            Some(storage) => StorageUrl::parse(storage.url.get_ref(), base)
                .map_err(|m| site.at(storage.url.span(), "storage.url", m))?,
            None => StorageUrl::Sqlite(base.join("mailintake.db")),
        };

        let mut queues = Vec::new();
        let mut queue_names = HashSet::new();
        for q in &raw.queue {
            let name = q.name.get_ref().trim();
            if name.is_empty() {
                return Err(site.at(q.name.span(), "queue.name", "a queue needs a name"));
            }
            if !queue_names.insert(name.to_string()) {
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

        let mut formats: HashMap<String, Arc<DeclarativeFormat>> = HashMap::new();
        for f in &raw.format {
            let format = validate_format(&site, f)?;
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

        let mut collectors = Vec::new();
        let mut collector_names = HashSet::new();
        for c in &raw.collector {
            collectors.push(validate_collector(
                &site,
                base,
                c,
                &queue_names,
                &formats,
                &mut collector_names,
            )?);
        }

        let defaults = Workflow::default();
        let workflow = match raw.workflow {
            Some(w) => Workflow {
                in_progress: w.in_progress.unwrap_or(defaults.in_progress),
                resolved: w.resolved.unwrap_or(defaults.resolved),
                accepted: w.accepted.unwrap_or(defaults.accepted),
                rejected: w.rejected.unwrap_or(defaults.rejected),
                visible_to_customer: w
                    .visible_to_customer
                    .unwrap_or(defaults.visible_to_customer),
            },
            None => defaults,
        };
        Ok(Config {
            path: path.to_path_buf(),
            storage,
            queues,
            collectors,
            workflow,
            unknown_customer: raw.unknown_customer.map(|u| crate::store::UnknownCustomer {
                counterparty: u.counterparty,
                status: u.status,
            }),
        })
    }

    /// The collector called `name`.
    pub fn collector(&self, name: &str) -> Option<&Collector> {
        self.collectors.iter().find(|c| c.name == name)
    }
}

fn validate_collector(
    site: &ErrorSite<'_>,
    base: &Path,
    c: &RawCollector,
    queue_names: &HashSet<String>,
    formats: &HashMap<String, Arc<DeclarativeFormat>>,
    collector_names: &mut HashSet<String>,
) -> Result<Collector, ConfigError> {
    let name = c.name.get_ref().trim().to_string();
    if name.is_empty() {
        return Err(site.at(c.name.span(), "collector.name", "a collector needs a name"));
    }
    if !collector_names.insert(name.clone()) {
        return Err(site.at(
            c.name.span(),
            "collector.name",
            format!("collector `{name}` is declared twice"),
        ));
    }
    let queue = c.queue.get_ref().trim().to_string();
    if !queue_names.contains(&queue) {
        return Err(site.at(
            c.queue.span(),
            "collector.queue",
            format!("queue `{queue}` is not declared; add a [[queue]] with name = \"{queue}\""),
        ));
    }
    let format = match &c.format {
        None => PayloadFormat::OrderJson,
        Some(f) if f.get_ref() == ORDER_JSON_FORMAT => PayloadFormat::OrderJson,
        Some(f) => match formats.get(f.get_ref()) {
            Some(format) => PayloadFormat::Declarative(format.clone()),
            None => {
                let mut known: Vec<&str> = formats.keys().map(String::as_str).collect();
                known.sort_unstable();
                known.insert(0, ORDER_JSON_FORMAT);
                return Err(site.at(
                    f.span(),
                    "collector.format",
                    format!(
                        "unknown format `{}`; known formats: {}",
                        f.get_ref(),
                        known.join(", ")
                    ),
                ));
            }
        },
    };
    let schedule = c
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
    let mut rules = DecodeRules::default();
    if let Some(keyword) = &c.subject_keyword {
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
    if let Some(label) = &c.default_charset {
        rules.default_charset =
            Encoding::for_label(label.get_ref().trim().as_bytes()).ok_or_else(|| {
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
    let batch_size = match &c.batch_size {
        Some(size) => usize::try_from(*size.get_ref())
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| {
                site.at(
                    size.span(),
                    "collector.batch-size",
                    "must be between 1 and 10000",
                )
            })?,
        None => DEFAULT_BATCH_SIZE,
    };
    let source = match (&c.maildir, &c.imap) {
        (Some(_), Some(imap)) => {
            return Err(site.at(
                imap.host.span(),
                "collector.imap",
                format!(
                    "collector `{name}` has both [collector.maildir] and [collector.imap]; keep one"
                ),
            ));
        }
        (Some(m), None) if m.path.get_ref().trim().is_empty() => {
            return Err(site.at(
                m.path.span(),
                "collector.maildir.path",
                "the Maildir path is empty",
            ));
        }
        (Some(m), None) => SourceConfig::Maildir {
            path: base.join(m.path.get_ref()),
        },
        (None, Some(imap)) => SourceConfig::Imap(validate_imap(site, base, imap)?),
        (None, None) => {
            return Err(site.at(
                c.name.span(),
                "collector",
                format!("collector `{name}` has no source; add a [collector.imap] or [collector.maildir] table"),
            ));
        }
    };
    let is_imap = matches!(source, SourceConfig::Imap(_));
    let after = match &c.after {
        Some(after) => validate_after(site, after, is_imap)?,
        None => AfterPolicy::default(),
    };
    let mode = match &c.mode {
        None => CollectMode::Poll,
        Some(m) => match m.get_ref().as_str() {
            "poll" => CollectMode::Poll,
            "idle" if is_imap => CollectMode::Idle,
            "idle" => {
                return Err(site.at(
                    m.span(),
                    "collector.mode",
                    "mode = \"idle\" needs an IMAP collector",
                ));
            }
            other => {
                return Err(site.at(
                    m.span(),
                    "collector.mode",
                    format!("unknown mode `{other}`; expected poll or idle"),
                ));
            }
        },
    };
    Ok(Collector {
        name,
        queue,
        format,
        schedule,
        rules,
        batch_size,
        source,
        after,
        mode,
    })
}

fn validate_format(site: &ErrorSite<'_>, f: &RawFormat) -> Result<DeclarativeFormat, ConfigError> {
    let name = f.name.get_ref().trim().to_string();
    if name.is_empty() {
        return Err(site.at(f.name.span(), "format.name", "a format needs a name"));
    }
    let kind = RecordKind::parse(f.kind.get_ref()).ok_or_else(|| {
        site.at(
            f.kind.span(),
            "format.kind",
            format!(
                "unknown kind `{}`; expected lead, order or service-request",
                f.kind.get_ref()
            ),
        )
    })?;
    let mut fields = Vec::new();
    for (key, text) in f.fields.get_ref() {
        let at = |message: String| site.at(text.span(), &format!("format.fields.{key}"), message);
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
        if let Some(missing) = template.maps().find(|m| !f.maps.contains_key(*m)) {
            return Err(at(format!(
                "value table `{missing}` is not defined; add [format.maps.{missing}]"
            )));
        }
        fields.push((target, template));
    }
    let mut required = Vec::new();
    for field in &f.required {
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
    if let Some(unknown) = f.map_defaults.keys().find(|m| !f.maps.contains_key(*m)) {
        return Err(site.at(
            f.fields.span(),
            "format.map-defaults",
            format!("default for value table `{unknown}`, which is not defined"),
        ));
    }
    Ok(DeclarativeFormat {
        name,
        kind,
        fields,
        required,
        tables: ValueTables {
            maps: f.maps.clone(),
            defaults: f.map_defaults.clone(),
        },
        number_prefix: f.number_prefix.clone().unwrap_or_else(|| "SR".to_string()),
    })
}

/// Folder names go into IMAP commands: refuse what could break out of a quoted string.
fn check_folder(
    site: &ErrorSite<'_>,
    value: &Spanned<String>,
    key: &str,
) -> Result<String, ConfigError> {
    let name = value.get_ref().trim();
    if name.is_empty()
        || name
            .chars()
            .any(|c| c.is_control() || c == '"' || c == '\\')
    {
        return Err(site.at(
            value.span(),
            key,
            "a folder name must be non-empty, without quotes, backslashes or control characters",
        ));
    }
    Ok(name.to_string())
}

fn validate_imap(
    site: &ErrorSite<'_>,
    base: &Path,
    imap: &RawImap,
) -> Result<ImapConfig, ConfigError> {
    if let Some(password) = &imap.password {
        return Err(site.at(
            password.span(),
            "collector.imap.password",
            "passwords are never written in the config; use password-env = \"VAR\" or password-file = \"/run/credentials/...\"",
        ));
    }
    let host = imap.host.get_ref().trim().to_string();
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(site.at(imap.host.span(), "collector.imap.host", "not a host name"));
    }
    let tls = match imap.tls.as_ref().map(|t| (t, t.get_ref().as_str())) {
        None | Some((_, "implicit")) => TlsMode::Implicit,
        Some((_, "starttls")) => TlsMode::Starttls,
        Some((t, "none")) => {
            let loopback = host == "localhost"
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if !loopback && !imap.allow_insecure {
                return Err(site.at(
                    t.span(),
                    "collector.imap.tls",
                    format!("tls = \"none\" sends the password in clear to `{host}`; allowed only for a loopback host or with allow-insecure = true"),
                ));
            }
            TlsMode::None
        }
        Some((t, other)) => {
            return Err(site.at(
                t.span(),
                "collector.imap.tls",
                format!("unknown TLS mode `{other}`; expected implicit, starttls or none"),
            ));
        }
    };
    let port = match &imap.port {
        Some(p) => u16::try_from(*p.get_ref())
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| site.at(p.span(), "collector.imap.port", "not a TCP port"))?,
        None if tls == TlsMode::Implicit => 993,
        None => 143,
    };
    let password = match (&imap.password_env, &imap.password_file) {
        (Some(var), None) => Secret::Env(var.get_ref().clone()),
        (None, Some(file)) => Secret::File(base.join(file.get_ref())),
        (Some(var), Some(_)) => {
            return Err(site.at(
                var.span(),
                "collector.imap.password-env",
                "give password-env or password-file, not both",
            ));
        }
        (None, None) => {
            return Err(site.at(
                imap.username.span(),
                "collector.imap",
                "the IMAP login needs password-env or password-file",
            ));
        }
    };
    let timeout_secs = match &imap.timeout_secs {
        Some(t) => u64::try_from(*t.get_ref())
            .ok()
            .filter(|t| (1..=3600).contains(t))
            .ok_or_else(|| {
                site.at(
                    t.span(),
                    "collector.imap.timeout-secs",
                    "must be between 1 and 3600",
                )
            })?,
        None => 60,
    };
    Ok(ImapConfig {
        host,
        port,
        tls,
        username: imap.username.get_ref().clone(),
        password,
        mailbox: match &imap.mailbox {
            Some(m) => check_folder(site, m, "collector.imap.mailbox")?,
            None => "INBOX".to_string(),
        },
        ca_file: imap.ca_file.as_ref().map(|f| base.join(f.get_ref())),
        timeout: std::time::Duration::from_secs(timeout_secs),
    })
}

fn validate_after(
    site: &ErrorSite<'_>,
    after: &RawAfter,
    is_imap: bool,
) -> Result<AfterPolicy, ConfigError> {
    let action = match after.action.as_ref().map(|a| (a, a.get_ref().as_str())) {
        None | Some((_, "seen")) => AfterAction::Seen,
        Some((a, "move")) => match &after.move_to {
            Some(folder) => {
                AfterAction::Move(check_folder(site, folder, "collector.after.move-to")?)
            }
            None => {
                return Err(site.at(
                    a.span(),
                    "collector.after.action",
                    "action = \"move\" needs move-to = \"FOLDER\"",
                ));
            }
        },
        Some((_, "delete")) => AfterAction::Delete,
        Some((a, other)) => {
            return Err(site.at(
                a.span(),
                "collector.after.action",
                format!("unknown action `{other}`; expected seen, move or delete"),
            ));
        }
    };
    let delete_after_days = after
        .delete_after_days
        .as_ref()
        .map(|d| {
            u32::try_from(*d.get_ref())
                .ok()
                .filter(|d| *d >= 1)
                .ok_or_else(|| {
                    site.at(
                        d.span(),
                        "collector.after.delete-after-days",
                        "must be a whole number of days, at least 1",
                    )
                })
        })
        .transpose()?;
    let quarantine_move_to = after
        .quarantine_move_to
        .as_ref()
        .map(|f| check_folder(site, f, "collector.after.quarantine-move-to"))
        .transpose()?;
    let policy = AfterPolicy {
        action,
        delete_after_days,
        quarantine_move_to,
    };
    if !is_imap && policy != AfterPolicy::default() {
        let span = after.action.as_ref().map_or(0..0, Spanned::span);
        return Err(site.at(span, "collector.after", "Maildir collectors only mark messages seen; [collector.after] options need an IMAP collector"));
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[storage]
url = "sqlite://data/mi.db"

[[queue]]
name = "site-orders"
title = "Заказы с сайта"

[[collector]]
name = "site-orders"
queue = "site-orders"
format = "order-json"
schedule = "0 */5 * * * *"
subject-keyword = "ORDER"
default-charset = "cp1251"
[collector.maildir]
path = "samples/maildir"
"#;

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(Path::new("/etc/mi/collectors.toml"), text)
    }

    fn error_text(text: &str) -> String {
        load(text).unwrap_err().to_string()
    }

    #[test]
    fn good_config_resolves_paths_against_its_folder() {
        let config = load(GOOD).unwrap();
        assert_eq!(
            config.storage,
            StorageUrl::Sqlite(PathBuf::from("/etc/mi/data/mi.db"))
        );
        let c = &config.collectors[0];
        assert_eq!(
            c.source,
            SourceConfig::Maildir {
                path: PathBuf::from("/etc/mi/samples/maildir")
            }
        );
        assert_eq!(c.rules.default_charset, encoding_rs::WINDOWS_1251);
        assert_eq!(c.batch_size, DEFAULT_BATCH_SIZE);
        assert_eq!(config.queues[0].title, "Заказы с сайта");
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let text = GOOD.replace("path = \"samples/maildir\"", "pth = \"samples/maildir\"");
        let err = error_text(&text);
        assert!(
            err.starts_with("/etc/mi/collectors.toml:17:1: pth: unknown field `pth`"),
            "{err}"
        );
    }

    #[test]
    fn wrong_type_names_the_key_from_its_line() {
        let text = GOOD.replace("queue = \"site-orders\"\nformat", "queue = 5\nformat");
        let err = error_text(&text);
        assert!(
            err.starts_with("/etc/mi/collectors.toml:11:9: queue: "),
            "{err}"
        );
    }

    #[test]
    fn undeclared_queue_is_rejected() {
        let err = error_text(&GOOD.replace("queue = \"site-orders\"", "queue = \"shop\""));
        assert!(
            err.contains(":11:") && err.contains("collector.queue") && err.contains("`shop`"),
            "{err}"
        );
    }

    #[test]
    fn bad_cron_and_charset_are_rejected_at_load() {
        let err = error_text(&GOOD.replace("0 */5 * * * *", "*/5 * * * *"));
        assert!(
            err.contains(":13:") && err.contains("collector.schedule"),
            "{err}"
        );
        let err = error_text(&GOOD.replace("cp1251", "cp9999"));
        assert!(
            err.contains(":15:") && err.contains("collector.default-charset"),
            "{err}"
        );
    }

    #[test]
    fn collector_without_source_is_rejected() {
        let text = GOOD.replace("[collector.maildir]\npath = \"samples/maildir\"\n", "");
        assert!(error_text(&text).contains("has no source"));
    }

    #[test]
    fn duplicate_collector_names_are_rejected() {
        let block = &GOOD[GOOD.find("[[collector]]").unwrap()..];
        let err = error_text(&format!("{GOOD}\n{block}"));
        assert!(
            err.contains("declared twice") && err.contains(":20:"),
            "{err}"
        );
    }

    const IMAP: &str = r#"
[[queue]]
name = "shop"

[[collector]]
name = "shop"
queue = "shop"
mode = "idle"
[collector.imap]
host = "imap.example.com"
username = "orders@example.com"
password-file = "secrets/imap"
[collector.after]
action = "move"
move-to = "Processed"
delete-after-days = 30
"#;

    #[test]
    fn imap_collector_defaults_to_verified_implicit_tls() {
        let config = load(IMAP).unwrap();
        let c = &config.collectors[0];
        let SourceConfig::Imap(imap) = &c.source else {
            panic!("not IMAP")
        };
        assert_eq!(
            (imap.tls, imap.port, imap.mailbox.as_str()),
            (TlsMode::Implicit, 993, "INBOX")
        );
        assert_eq!(
            imap.password,
            Secret::File(PathBuf::from("/etc/mi/secrets/imap"))
        );
        assert_eq!(c.after.action, AfterAction::Move("Processed".into()));
        assert_eq!(
            (c.after.delete_after_days, c.mode),
            (Some(30), CollectMode::Idle)
        );
    }

    #[test]
    fn inline_passwords_are_refused() {
        let err =
            error_text(&IMAP.replace("password-file = \"secrets/imap\"", "password = \"hunter2\""));
        assert!(
            err.contains(":12:12:") && err.contains("password-env") && !err.contains("hunter2"),
            "{err}"
        );
    }

    #[test]
    fn plain_imap_is_only_for_loopback_unless_allowed() {
        let plain = IMAP.replace("username =", "tls = \"none\"\nusername =");
        assert!(error_text(&plain).contains("collector.imap.tls"));
        let local = plain.replace("imap.example.com", "127.0.0.1");
        let SourceConfig::Imap(imap) = &load(&local).unwrap().collectors[0].source else {
            panic!()
        };
        assert_eq!((imap.tls, imap.port), (TlsMode::None, 143));
        assert!(
            load(&plain.replace("tls = \"none\"", "tls = \"none\"\nallow-insecure = true")).is_ok()
        );
    }

    #[test]
    fn after_and_mode_rules_are_checked() {
        assert!(
            error_text(&IMAP.replace("move-to = \"Processed\"\n", "")).contains("needs move-to")
        );
        assert!(error_text(&IMAP.replace("\"move\"", "\"archive\"")).contains("unknown action"));
        assert!(
            error_text(&IMAP.replace("Processed", "Pro\\\"cessed"))
                .contains("collector.after.move-to")
        );
        let maildir_idle = GOOD.replace(
            "format = \"order-json\"",
            "format = \"order-json\"\nmode = \"idle\"",
        );
        assert!(error_text(&maildir_idle).contains("needs an IMAP collector"));
        let maildir_move = format!("{GOOD}[collector.after]\naction = \"delete\"\n");
        assert!(error_text(&maildir_move).contains("need an IMAP collector"));
    }
}
