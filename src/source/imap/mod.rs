//! An IMAP mailbox as a collector source.
//!
//! Incremental: the collector remembers UIDVALIDITY and the highest UID it has committed
//! (its [`Checkpoint`]), and asks only for newer messages, plus older unseen ones with the
//! keyword that are not marked quarantined (e.g. ones a user marked unread). Messages are
//! fetched with `BODY.PEEK[]`, so reading never sets `\Seen`, after one `RFC822.SIZE` fetch
//! per batch: a message above the collector's `max-message-size` is never fetched whole,
//! only its first bytes for its headers (`BODY.PEEK[]<0.65536>`). Acknowledging applies the
//! collector's after-action; a quarantined message gets [`QUARANTINE_KEYWORD`] (or moves to
//! `quarantine-move-to`) so no later search returns it.
//!
//! `connection.rs` speaks the protocol; [`idle`] waits for new mail with IDLE.

use chrono::{Duration as Days, Utc};
use tracing::{info, warn};

use std::collections::HashMap;

use super::{Checkpoint, HEADER_LIMIT, Mailbox, ReadBatch, SourceError, header_section};

mod connection;
mod features;
mod folder;
pub mod idle;
mod probe;
mod raw;
mod server;
mod settings;
pub mod utf7;

pub use connection::{Connection, add_ca_file};
pub use features::{Features, NO_IDLE_MODE, POLLING_IDLE_MODE, PROCESSED_KEYWORD};
pub use folder::Hierarchy;
pub use probe::{Probe, ProbedFolder, probe};
pub use server::{Presence, Server};
pub use settings::{AfterAction, AfterPolicy, ImapConfig, Secret, TlsMode};

/// The keyword that marks a quarantined message so it is not fetched again.
pub const QUARANTINE_KEYWORD: &str = "$MailintakeQuarantined";

/// Errors talking to an IMAP server. None of them carries the password.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("cannot connect to {host}:{port}: {source}")]
    Connect {
        host: String,
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS with {host}: {message}")]
    Tls { host: String, message: String },
    #[error("login as {username} refused: {message}")]
    Login { username: String, message: String },
    #[error("password: {0}")]
    Secret(String),
    #[error("IMAP {command}: {source}")]
    Command {
        command: &'static str,
        #[source]
        source: async_imap::error::Error,
    },
    #[error("IMAP {0}: no answer within the timeout")]
    Timeout(&'static str),
    #[error("the server did not send a greeting")]
    NoGreeting,
    // NOTE: the server's words come before the long parts, so a cut-off view (the
    // `collectors status` table) still shows them.
    #[error("the server refused folder \"{folder}\": {reply} (written `{written}` in the config)")]
    FolderRefused {
        /// The name sent (resolved, modified UTF-7).
        folder: String,
        written: String,
        /// The server's own words.
        reply: String,
    },
    #[error("mailbox {0} has no UIDVALIDITY; the server does not support UIDs")]
    NoUidValidity(String),
}

/// One collector's IMAP mailbox for one pass: a connection plus what the collector says
/// about acknowledging.
pub struct ImapMailbox {
    connection: Connection,
    /// The collector's name, for logs.
    collector: String,
    after: AfterPolicy,
    /// The collector's subject keyword: older unseen messages are searched by it.
    subject_keyword: String,
    /// The highest UID committed so far (0: none, or UIDVALIDITY changed).
    last_uid: u32,
}

impl ImapMailbox {
    /// Connects, logs in and selects the configured mailbox for `collector`.
    pub async fn open(
        config: &ImapConfig,
        collector: &str,
        after: &AfterPolicy,
        subject_keyword: &str,
    ) -> Result<ImapMailbox, ImapError> {
        Ok(ImapMailbox {
            connection: Connection::open(config).await?,
            collector: collector.to_string(),
            after: after.clone(),
            subject_keyword: subject_keyword.to_string(),
            last_uid: 0,
        })
    }
}

impl ImapMailbox {
    /// What the server offers that changes what the collector does.
    pub fn features(&self) -> Features {
        self.connection.features()
    }

    /// Waits with IDLE on this mailbox's connection until the server announces a new
    /// message, `until` (or the renew time, [`idle::IDLE_RENEW`]), or `interrupt` resolves;
    /// hands the mailbox back for the next pass. After an error the connection is gone.
    pub async fn idle(
        self,
        until: tokio::time::Instant,
        interrupt: impl std::future::Future<Output = ()>,
    ) -> Result<(ImapMailbox, idle::Wake), ImapError> {
        let mut mailbox = self;
        let (connection, wake) = mailbox.connection.idle(until, interrupt).await?;
        mailbox.connection = connection;
        Ok((mailbox, wake))
    }

    /// For a collector with `mode = "idle"`: tries IDLE once, so [`ImapMailbox::features`]
    /// says whether it pushes or only polls (and `collectors status` the mode in use).
    pub async fn try_idle(&mut self) -> Result<(), ImapError> {
        self.connection.try_idle().await.map(drop)
    }
}

/// UIDs sorted ascending, so the IMAP set compresses into ranges.
fn sorted(uids: &[u32]) -> Vec<u32> {
    let mut uids = uids.to_vec();
    uids.sort_unstable();
    uids
}

impl Mailbox for ImapMailbox {
    type Position = u32;

    fn key(&self, uid: &u32) -> String {
        format!("{}:{uid}", self.connection.uidvalidity)
    }

    async fn list_new(&mut self, resume: Option<Checkpoint>) -> Result<Vec<u32>, SourceError> {
        let uidvalidity = self.connection.uidvalidity;
        self.last_uid = match resume {
            Some(saved) if saved.uidvalidity == uidvalidity => saved.last_uid,
            Some(saved) => {
                warn!(collector = %self.collector, old = saved.uidvalidity, new = uidvalidity, "UIDVALIDITY changed; rescanning the mailbox");
                0
            }
            None => 0,
        };
        let last_uid = self.last_uid;
        if last_uid == u32::MAX {
            return Ok(Vec::new());
        }
        // NOTE: `N:*` always matches the highest UID even when it is below N, which an OR
        // cannot filter out afterwards: the range ends at the highest UID there can be.
        let newer = format!("UID {}:{}", last_uid + 1, u32::MAX);
        // One search, one round trip: newer messages, or older unseen ones with the keyword
        // not set aside. The keyword was validated as one word without quotes or backslashes.
        let query = if last_uid == 0 {
            newer
        } else {
            format!(
                "OR {newer} (UID 1:{last_uid} UNSEEN UNKEYWORD {QUARANTINE_KEYWORD} SUBJECT \"{}\")",
                self.subject_keyword
            )
        };
        // Whatever the server announced before this search, the search sees.
        self.connection.forget_announcements();
        Ok(self.connection.search(&query).await?)
    }

    /// One `UID FETCH (UID RFC822.SIZE)` for all of `uids`.
    async fn sizes(&mut self, uids: &[u32]) -> Result<Vec<Option<u64>>, SourceError> {
        let sizes: HashMap<u32, u32> = self
            .connection
            .sizes(&sorted(uids))
            .await?
            .into_iter()
            .collect();
        Ok(uids
            .iter()
            .map(|uid| sizes.get(uid).map(|&size| u64::from(size)))
            .collect())
    }

    /// A partial fetch of each message's first [`HEADER_LIMIT`] bytes, cut at its headers' end.
    async fn read_headers(&mut self, uids: &[u32]) -> Result<ReadBatch<u32>, SourceError> {
        let starts = self
            .connection
            .fetch_start(&sorted(uids), HEADER_LIMIT)
            .await?;
        Ok(starts
            .into_iter()
            .map(|(uid, start)| (uid, header_section(start)))
            .collect())
    }

    async fn read(&mut self, uids: &[u32]) -> Result<ReadBatch<u32>, SourceError> {
        Ok(self.connection.fetch(uids).await?)
    }

    fn checkpoint(&mut self, batch: &[u32]) -> Option<Checkpoint> {
        self.last_uid = batch.iter().copied().fold(self.last_uid, u32::max);
        Some(Checkpoint {
            uidvalidity: self.connection.uidvalidity,
            last_uid: self.last_uid,
        })
    }

    async fn acknowledge(&mut self, uids: &[u32]) -> Result<(), SourceError> {
        let uids = sorted(uids);
        match &self.after.action {
            AfterAction::Seen => self.connection.add_flags(&uids, "\\Seen").await?,
            AfterAction::Move(folder) => self.connection.move_to(&uids, folder).await?,
            AfterAction::Delete => self.connection.delete(&uids).await?,
        }
        Ok(())
    }

    async fn set_aside(&mut self, uids: &[u32]) -> Result<(), SourceError> {
        let uids = sorted(uids);
        match &self.after.quarantine_move_to {
            Some(folder) => self.connection.move_to(&uids, folder).await?,
            None => self.connection.add_flags(&uids, QUARANTINE_KEYWORD).await?,
        }
        Ok(())
    }

    /// Messages older than `delete-after-days`, if the collector sets it.
    async fn expired(&mut self) -> Result<Vec<u32>, SourceError> {
        let Some(days) = self.after.delete_after_days else {
            return Ok(Vec::new());
        };
        let before = (Utc::now() - Days::days(i64::from(days)))
            .format("%d-%b-%Y")
            .to_string();
        // Without UIDPLUS "expunged" means flagged (see `features`): flag each one once.
        let unflagged = if self.connection.features().uidplus {
            String::new()
        } else {
            format!(" UNKEYWORD {PROCESSED_KEYWORD}")
        };
        Ok(self
            .connection
            .search(&format!("BEFORE {before}{unflagged}"))
            .await?)
    }

    async fn expunge(&mut self, uids: &[u32]) -> Result<(), SourceError> {
        if !uids.is_empty() {
            info!(collector = %self.collector, count = uids.len(), days = self.after.delete_after_days, "expunging processed messages older than the limit");
            self.connection.delete(&sorted(uids)).await?;
        }
        Ok(())
    }

    async fn finish(self) {
        self.connection.logout().await;
    }
}
