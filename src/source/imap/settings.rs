//! What a collector's settings say about its IMAP mailbox and what happens to a message in
//! it once it is committed. The config reads `[collector.imap]` and `[collector.after]` into
//! these; the source takes them as they are and never reads the config itself.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

pub use crate::secret::Secret;

/// An IMAP mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapConfig {
    /// Server host name or IP address (also the name its certificate must carry).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// How the connection is protected.
    pub tls: TlsMode,
    /// Login name.
    pub username: String,
    /// The password, read at connect time.
    pub password: Secret,
    /// Folder read.
    pub mailbox: String,
    /// Extra CA certificates (PEM) trusted besides the system ones, for a private CA.
    pub ca_file: Option<PathBuf>,
    /// Limit for one IMAP command; a server slower than this is reconnected.
    pub timeout: Duration,
}

/// How the IMAP connection is protected. Certificates are always verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// TLS from the first byte (port 993).
    Implicit,
    /// Plain connection upgraded with STARTTLS (port 143).
    Starttls,
    /// No TLS: only to a loopback host, or with `allow-insecure = true`.
    None,
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
    /// What happens to a stored message.
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
