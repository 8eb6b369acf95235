//! Source stage: where messages come from and how they are acknowledged.
//!
//! A source is a [`Mailbox`]: it lists what is new, reads a batch, and after the commit
//! acknowledges what was stored and sets aside what was quarantined. The collector pass that
//! drives one ([`crate::ingest`]) is written once for every source, so the exactly-once rules
//! (ledger check, commit, then acknowledge) cannot drift between them.
//!
//! The sources today are an IMAP mailbox ([`imap::ImapMailbox`]) and a local Maildir
//! ([`maildir::Maildir`]). An HTTP intake fits the same shape: its positions are request ids,
//! `read` hands over the queued bodies, and `acknowledge` and `set_aside` do nothing, since
//! the request is answered once the commit is done.

use std::future::Future;

pub mod imap;
pub mod maildir;

/// Errors reading or acknowledging in a mailbox.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path} is not a Maildir (it needs new/ and cur/ folders)")]
    NotAMaildir { path: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Imap(#[from] imap::ImapError),
}

/// How far an incremental source got: saved after each committed batch, handed back at the
/// start of the next pass. IMAP's terms, because IMAP is the source that needs it (a Maildir
/// lists its unseen files instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub uidvalidity: u32,
    /// The highest UID of a committed batch.
    pub last_uid: u32,
}

/// Messages read from a mailbox: each one's position with its bytes.
pub type ReadBatch<P> = Vec<(P, Vec<u8>)>;

/// How much of a too-large message is read to keep its headers: the header section ends at
/// the first blank line, and what is past this many bytes is cut off.
pub const HEADER_LIMIT: usize = 64 * 1024;

/// Where the header section of `start` (the first bytes of a message) ends: just after the
/// blank line that closes it (CRLF or LF), or `None` if `start` does not contain it.
pub fn header_end(start: &[u8]) -> Option<usize> {
    let mut line_start = 0;
    for (i, _) in start.iter().enumerate().filter(|(_, b)| **b == b'\n') {
        let line = &start[line_start..i];
        if line.is_empty() || line == b"\r" {
            return Some(i + 1);
        }
        line_start = i + 1;
    }
    None
}

/// The header section of a message's first bytes, with its closing blank line; all of `start`
/// when the blank line is not in it (headers longer than [`HEADER_LIMIT`] are cut there).
pub fn header_section(mut start: Vec<u8>) -> Vec<u8> {
    if let Some(end) = header_end(&start) {
        start.truncate(end);
    }
    start.shrink_to_fit();
    start
}

/// A place messages arrive in, as one collector pass sees it.
///
/// The pass calls, in this order: [`list_new`](Mailbox::list_new) once, then
/// [`sizes`](Mailbox::sizes) for positions the ledger does not know (a batch's worth at a
/// time), then per batch [`read`](Mailbox::read) for the messages within the collector's
/// `max-message-size` and [`read_headers`](Mailbox::read_headers) for those above it,
/// [`checkpoint`](Mailbox::checkpoint), the commit, [`acknowledge`](Mailbox::acknowledge)
/// and [`set_aside`](Mailbox::set_aside); at the end [`expired`](Mailbox::expired),
/// [`expunge`](Mailbox::expunge) and [`finish`](Mailbox::finish). Nothing is acknowledged
/// before its commit, so a crash between the two re-reads a batch the ledger recognises.
///
/// The methods return `Send` futures so a pass can run in a spawned task.
pub trait Mailbox: Send {
    /// Where a message sits: a Maildir file, an IMAP UID, an HTTP request id.
    type Position: Clone + Send + Sync;

    /// The position as the ledger stores it: unique within the collector and stable across
    /// passes (a Maildir unique name, `UIDVALIDITY:UID`).
    fn key(&self, position: &Self::Position) -> String;

    /// Positions of messages not processed yet, oldest first. `resume` is the last saved
    /// [`Checkpoint`], if any.
    fn list_new(
        &mut self,
        resume: Option<Checkpoint>,
    ) -> impl Future<Output = Result<Vec<Self::Position>, SourceError>> + Send;

    /// The size in bytes of each of these messages, in the order given, known without reading
    /// them (IMAP's `RFC822.SIZE`, a file's length); `None` for a message that vanished. The
    /// pass decides from these what it reads and how many messages make a batch.
    fn sizes(
        &mut self,
        positions: &[Self::Position],
    ) -> impl Future<Output = Result<Vec<Option<u64>>, SourceError>> + Send;

    /// The header section of each of these messages (at most [`HEADER_LIMIT`] bytes, see
    /// [`header_section`]), read without reading the rest: what the quarantine keeps of a
    /// message too large to read. A message that vanished meanwhile is left out.
    fn read_headers(
        &mut self,
        positions: &[Self::Position],
    ) -> impl Future<Output = Result<ReadBatch<Self::Position>, SourceError>> + Send;

    /// The bytes of these messages, in the order given; a message that vanished meanwhile
    /// (another program took it) is left out.
    fn read(
        &mut self,
        positions: &[Self::Position],
    ) -> impl Future<Output = Result<ReadBatch<Self::Position>, SourceError>> + Send;

    /// The checkpoint to save once `batch` (a slice of what `list_new` returned) is
    /// committed; `None` for sources that do not read incrementally.
    fn checkpoint(&mut self, _batch: &[Self::Position]) -> Option<Checkpoint> {
        None
    }

    /// Applies the after-processing action (seen, move, delete) to stored messages.
    /// Required (no default) so every source decides it.
    fn acknowledge(
        &mut self,
        positions: &[Self::Position],
    ) -> impl Future<Output = Result<(), SourceError>> + Send;

    /// Keeps quarantined messages in the mailbox, so they are never read again (the ledger
    /// already has their bytes). Required (no default) so every source decides it.
    fn set_aside(
        &mut self,
        positions: &[Self::Position],
    ) -> impl Future<Output = Result<(), SourceError>> + Send;

    /// Messages old enough to be expunged once processed (`delete-after-days`).
    fn expired(&mut self) -> impl Future<Output = Result<Vec<Self::Position>, SourceError>> + Send {
        async { Ok(Vec::new()) }
    }

    /// Expunges these expired messages, all of which the ledger links to a record.
    fn expunge(
        &mut self,
        _positions: &[Self::Position],
    ) -> impl Future<Output = Result<(), SourceError>> + Send {
        async { Ok(()) }
    }

    /// Ends the pass (IMAP logs out).
    fn finish(self) -> impl Future<Output = ()> + Send
    where
        Self: Sized,
    {
        async {}
    }
}

/// Runs blocking I/O (files, SQLite) from async code: in place on a multi-thread runtime,
/// telling it to move other tasks off this worker (so one pass keeps one database
/// connection); directly on a current-thread runtime (tests with paused time), which has no
/// other worker to hand them to.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}
