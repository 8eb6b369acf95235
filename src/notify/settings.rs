//! `[smtp]` as the delivery side takes it: the config reads and checks the section into
//! [`SmtpSettings`]; the sender never reads the config itself.

use std::path::PathBuf;
use std::time::Duration;

pub use crate::source::imap::{Secret, TlsMode};

/// Sends at most this many attempts before a notification is `failed`, unless configured.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 10;

/// How long a command that queued notifications tries to send them before it exits.
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// The SMTP server notifications go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    /// Server host name or IP address (also the name its certificate must carry).
    pub host: String,
    /// TCP port (default 465 implicit, 587 starttls, 25 none).
    pub port: u16,
    /// How the connection is protected; certificates are always verified.
    pub tls: TlsMode,
    /// The From header, as written (`"EMES <emes@example.com>"`); checked as a mailbox.
    pub from: String,
    /// Just the address of `from`, lower-cased: mail from it is never ingested (a loop).
    pub from_address: String,
    /// Login, when the server wants one.
    pub auth: Option<SmtpAuth>,
    /// Extra CA certificates (PEM) trusted besides the system ones.
    pub ca_file: Option<PathBuf>,
    /// Attempts before a notification becomes `failed`.
    pub max_attempts: u32,
    /// How long a CLI command tries to send what it queued before exiting.
    pub send_timeout: Duration,
    /// Delay after a failed attempt (not a config key; tests shorten it).
    pub retry: RetryDelays,
}

/// An SMTP login; the password is read when sending, never stored in the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpAuth {
    pub username: String,
    pub password: Secret,
}

/// Capped exponential backoff between attempts of one notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryDelays {
    /// After the first failure.
    pub first: Duration,
    /// The cap the doubling stops at.
    pub max: Duration,
}

impl Default for RetryDelays {
    /// 5 s doubling to 10 min: with 10 attempts the last comes about 30 minutes after the
    /// first, so a ten-minute outage is ridden out.
    fn default() -> Self {
        RetryDelays {
            first: Duration::from_secs(5),
            max: Duration::from_secs(600),
        }
    }
}

impl RetryDelays {
    /// The delay after the `attempts`-th failed attempt (1-based).
    pub fn after(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(31);
        self.first
            .checked_mul(1 << doublings)
            .map_or(self.max, |d| d.min(self.max))
    }
}
