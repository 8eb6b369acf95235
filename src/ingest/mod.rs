//! One collector pass: source -> decode -> map -> store -> acknowledge.
//!
//! Messages are processed in batches; each batch commits in one transaction and only then
//! are its messages acknowledged in the mailbox. A crash before the commit leaves them
//! unseen (read again next pass); a crash after the commit but before the acknowledgement
//! is caught by the ledger (the message is known by its position), so it is acknowledged
//! then, and counted as a duplicate, never stored twice.
//!
//! # The journey of one message
//!
//! 1. **Source** ([`crate::source`]): the collector's [`Mailbox`](crate::source::Mailbox)
//!    lists the message's position; the pass (`pass.rs`) looks the position up in the ledger.
//!    A known position is not read again: acknowledged if it produced a record, set aside if
//!    it was quarantined. Otherwise its size is asked first: within the collector's
//!    `max-message-size` its bytes are read into a [`Fetched`], in batches bounded by count
//!    (`batch-size`) and by bytes (`batch-bytes`); above it only its headers are read, and it
//!    is quarantined as [`TooLarge`] without going through steps 2 and 3.
//! 2. **Decode** ([`crate::decode`]): the bytes give an [`Envelope`](crate::decode::Envelope)
//!    (Message-ID, subject, fingerprint) and decode's [`Verdict`](crate::decode::Verdict):
//!    skipped (not for us), quarantined (for us, unreadable), or matched with its payload.
//! 3. **Map** ([`crate::mapping`]): a matched payload becomes a record, or a quarantine reason
//!    if it does not fit the collector's format. [`prepare`] does steps 2 and 3 and says
//!    what came of it as [`Mapped`]: `Skip`, `Quarantine` or `Accept`.
//! 4. **Commit** ([`crate::store`]): a skipped message stops here, leaving no trace. Every
//!    other one becomes an [`Incoming`] (its record, or its reason and raw bytes) and the
//!    batch commits in one transaction ([`commit_messages`]). The store answers
//!    [`Committed`] per message: created, quarantined, or a duplicate of a message it knows
//!    (same position, or same content under another position).
//! 5. **Acknowledge**: [`Committed::record_id`] tells the source what to do. A message
//!    with a record (new, or a duplicate of one) is acknowledged with the collector's
//!    after-action; one without (quarantined) is set aside, kept in the mailbox, never read
//!    again. A skipped message is left untouched.
//!
//! [`CollectReport`] counts each message once, by what became of it; [`record_run`] writes
//! the pass's outcome into the collector's state.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::{debug, info, warn};

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, PoisonError};

use crate::config::{CollectMode, Collector, SourceConfig};
use crate::source::imap::{Features, ImapMailbox};
use crate::source::maildir::Maildir;
use crate::source::{Mailbox, SourceError, blocking};
use crate::store::{Committed, Incoming, RunOutcome, Store, StoreError, Unusable};

mod http;
mod pass;
mod plan;
mod prepare;
mod retry;
mod stages;
#[cfg(test)]
pub(crate) mod testing;
mod too_large;
mod workers;

pub use http::prepare_body;
pub use prepare::{Mapped, Prepared, prepare, prepare_guarded};
pub use retry::{Retried, RetryError, retry_quarantined};
pub use too_large::{TOO_LARGE, TooLarge};

/// Errors that stop a collector pass (per-message problems never do).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<crate::source::imap::ImapError> for IngestError {
    fn from(e: crate::source::imap::ImapError) -> Self {
        IngestError::Source(e.into())
    }
}

/// Counts of one collector pass.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CollectReport {
    pub collector: String,
    /// Messages read from the mailbox in this pass.
    pub fetched: usize,
    pub accepted: usize,
    pub skipped: usize,
    pub quarantined: usize,
    /// Messages already stored (same position or same content); acknowledged, not stored.
    pub duplicates: usize,
}

impl CollectReport {
    /// An empty report for `collector`.
    pub fn for_collector(collector: &str) -> CollectReport {
        CollectReport {
            collector: collector.to_string(),
            ..CollectReport::default()
        }
    }

    /// Adds the counts of `other` (a batch of the same pass).
    fn add(&mut self, other: &CollectReport) {
        self.fetched += other.fetched;
        self.accepted += other.accepted;
        self.skipped += other.skipped;
        self.quarantined += other.quarantined;
        self.duplicates += other.duplicates;
    }
}

/// A pass that stopped on an error, with what it did before: the batches it committed are
/// in `report` (and stay committed), so `collect --json` and the recorded run can say so.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct FailedPass {
    pub report: CollectReport,
    /// Boxed: the `Err` of every pass result stays small.
    pub error: Box<IngestError>,
}

impl FailedPass {
    /// A pass of `collector` that failed before it did anything.
    pub fn at_start(collector: &str, error: impl Into<IngestError>) -> FailedPass {
        FailedPass {
            report: CollectReport::for_collector(collector),
            error: Box::new(error.into()),
        }
    }
}

/// A message read from a mailbox, with its position there.
pub struct Fetched {
    /// Position key (Maildir unique name, or `UIDVALIDITY:UID`).
    pub key: String,
    pub content: Content,
}

/// What was read of a message.
pub enum Content {
    /// All of its bytes.
    Whole(Vec<u8>),
    /// Only its headers: it is larger than the collector's `max-message-size`.
    TooLarge(TooLarge),
}

impl Fetched {
    /// A message read whole.
    pub fn whole(key: String, raw: Vec<u8>) -> Fetched {
        Fetched {
            key,
            content: Content::Whole(raw),
        }
    }
}

/// A batch decoded and mapped, not committed yet: what a pass's decode stage hands to its
/// writer, so the next batch can be decoded while this one commits.
pub struct PreparedBatch {
    /// Messages in the batch, skipped ones included.
    count: usize,
    /// Per message in batch order: its index into `items`, or `None` if it was skipped.
    slots: Vec<Option<usize>>,
    items: Vec<Incoming>,
    /// The position keys of the skipped messages, for the pass to remember.
    skipped: Vec<String>,
}

/// Decodes and maps fetched messages (on every core, [`prepare::prepare_all`]); pure, no
/// store. A skipped message (not ours) is logged here and dropped with its bytes.
pub fn prepare_batch(collector: &Collector, messages: Vec<Fetched>) -> PreparedBatch {
    let raws: Vec<&[u8]> = messages
        .iter()
        .filter_map(|m| match &m.content {
            Content::Whole(raw) => Some(raw.as_slice()),
            Content::TooLarge(_) => None,
        })
        .collect();
    let prepared = prepare::prepare_all(&raws, &collector.rules, &collector.format);
    drop(raws);
    assemble_batch(collector, messages, prepared)
}

/// The batch of `messages`, given what decoding made of each one read whole (`prepared`, in
/// order; a too-large one is prepared from its headers here).
fn assemble_batch(
    collector: &Collector,
    messages: Vec<Fetched>,
    prepared: Vec<Prepared>,
) -> PreparedBatch {
    let mut prepared_all = prepared.into_iter();
    let count = messages.len();
    let mut slots = Vec::with_capacity(count);
    let mut items = Vec::with_capacity(count);
    let mut skipped = Vec::new();
    for message in messages {
        // What the record or the quarantine keeps: the whole message (moved, not copied), or
        // a too-large one's headers.
        let (prepared, raw) = match message.content {
            Content::Whole(raw) => {
                let prepared = prepared_all.next().expect("one Prepared per whole message");
                (prepared, raw)
            }
            Content::TooLarge(too_large) => {
                (too_large.prepared(&collector.rules), too_large.headers)
            }
        };
        let record = match prepared.mapped {
            Mapped::Skip(reason) => {
                debug!(key = %message.key, %reason, "skipped");
                slots.push(None);
                skipped.push(message.key);
                continue;
            }
            Mapped::Quarantine(reason) => Err(Unusable { reason }),
            Mapped::Accept(record) => Ok(record),
        };
        slots.push(Some(items.len()));
        items.push(Incoming {
            source_key: message.key,
            envelope: prepared.envelope,
            raw,
            record,
        });
    }
    PreparedBatch {
        count,
        slots,
        items,
        skipped,
    }
}

/// Commits a prepared batch in one transaction, counting its messages into `report`.
/// Returns one entry per message, in order: what the commit did with it, or `None` for a
/// skipped message (not ours; never committed).
pub fn commit_prepared(
    collector: &Collector,
    store: &mut Store,
    batch: PreparedBatch,
    report: &mut CollectReport,
) -> Result<Vec<Option<Committed>>, StoreError> {
    let results = store.commit_batch(&collector.name, &collector.queue, &batch.items)?;
    report.fetched += batch.count;
    let mut committed = Vec::with_capacity(results.len());
    for (item, result) in batch.items.iter().zip(results) {
        match result {
            Committed::Created(_) => report.accepted += 1,
            Committed::Quarantined(id) => {
                report.quarantined += 1;
                if let Err(unusable) = &item.record {
                    warn!(
                        collector = %collector.name,
                        message_id = item.envelope.message_id.as_deref().unwrap_or("-"),
                        quarantine_id = id,
                        reason = %unusable.reason,
                        "message quarantined"
                    );
                }
            }
            Committed::Duplicate { .. } => report.duplicates += 1,
        }
        committed.push(result);
    }
    Ok(batch
        .slots
        .iter()
        .map(|slot| match slot {
            Some(i) => Some(committed[*i]),
            None => {
                report.skipped += 1;
                None
            }
        })
        .collect())
}

/// Decodes, maps and commits fetched messages in one transaction, counting them into
/// `report` ([`prepare_batch`] then [`commit_prepared`], one after the other). Returns one
/// entry per message, in order: what the commit did with it, or `None` for a skipped
/// message (not ours; never committed).
pub fn commit_messages(
    collector: &Collector,
    store: &mut Store,
    messages: Vec<Fetched>,
    report: &mut CollectReport,
) -> Result<Vec<Option<Committed>>, StoreError> {
    commit_prepared(collector, store, prepare_batch(collector, messages), report)
}

/// Asks a running pass to stop after the batch in flight.
pub type Shutdown = tokio_util::sync::CancellationToken;

/// An IMAP collector's connection kept open after a pass, with what its server offers: the
/// daemon waits on it with IDLE and runs the next pass on it, without a new login or SELECT.
pub struct Held {
    pub mailbox: ImapMailbox,
    pub features: Features,
}

/// Runs one pass of `collector`. Store calls block; on a multi-thread runtime they run in
/// place (`block_in_place`), so the pass keeps one database connection throughout.
pub async fn collect(
    collector: &Collector,
    store: &mut Store,
    shutdown: &Shutdown,
) -> Result<CollectReport, FailedPass> {
    let mut held = None;
    let result = collect_holding(collector, store, shutdown, &mut held).await;
    if let Some(held) = held {
        held.mailbox.finish().await;
    }
    result
}

/// Runs one pass of `collector` ([`collect`]) on the connection in `held`, if there is one.
/// An IMAP pass that succeeds leaves its connection there, logged in, its mailbox selected;
/// one that fails drops it, so the next pass connects anew.
pub async fn collect_holding(
    collector: &Collector,
    store: &mut Store,
    shutdown: &Shutdown,
    held: &mut Option<Held>,
) -> Result<CollectReport, FailedPass> {
    let _timer = crate::metrics::PassTimer::start(&collector.name);
    let mut report = CollectReport::for_collector(&collector.name);
    if let Err(error) = collect_into(collector, store, shutdown, &mut report, held).await {
        return Err(FailedPass {
            report,
            error: Box::new(error),
        });
    }
    info!(
        collector = %report.collector,
        fetched = report.fetched,
        accepted = report.accepted,
        skipped = report.skipped,
        quarantined = report.quarantined,
        duplicates = report.duplicates,
        "collector pass done"
    );
    Ok(report)
}

async fn collect_into(
    collector: &Collector,
    store: &mut Store,
    shutdown: &Shutdown,
    report: &mut CollectReport,
    held: &mut Option<Held>,
) -> Result<(), IngestError> {
    match &collector.source {
        SourceConfig::Maildir { path } => {
            let maildir = Maildir::open(path)?;
            pass::run(collector, store, maildir, shutdown, report)
                .await?
                .finish()
                .await;
            Ok(())
        }
        SourceConfig::Imap(imap) => {
            let mut mailbox = match held.take() {
                Some(held) => held.mailbox,
                None => {
                    ImapMailbox::open(
                        imap,
                        &collector.name,
                        &collector.after,
                        &collector.rules.subject_keyword,
                    )
                    .await?
                }
            };
            let features = if collector.mode == CollectMode::Idle {
                idle_learnt(imap, &mut mailbox).await?
            } else {
                mailbox.features()
            };
            note_server(collector, store, features);
            let mailbox = pass::run(collector, store, mailbox, shutdown, report).await?;
            *held = Some(Held { mailbox, features });
            Ok(())
        }
        // Its forms come over HTTP (`web::api::intake`); there is no mailbox to read.
        SourceConfig::HttpOnly => Ok(()),
    }
}

/// The server's features with what a trial IDLE taught about them (pushes, or only polls),
/// tried once per server per process: a server's IDLE does not change between passes, and
/// the trial is a round trip that every pass IDLE wakes would otherwise pay first.
async fn idle_learnt(
    imap: &crate::source::imap::ImapConfig,
    mailbox: &mut ImapMailbox,
) -> Result<Features, crate::source::imap::ImapError> {
    /// `host:port/mailbox` -> (IDLE offered, IDLE only polls).
    static LEARNT: Mutex<BTreeMap<String, (bool, bool)>> = Mutex::new(BTreeMap::new());
    let server = format!("{}:{}/{}", imap.host, imap.port, imap.mailbox);
    let known = LEARNT
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&server)
        .copied();
    let mut features = mailbox.features();
    match known {
        Some((idle, idle_polls)) => {
            features.idle = idle;
            features.idle_polls = idle_polls;
        }
        None => {
            mailbox.try_idle().await?;
            features = mailbox.features();
            LEARNT
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(server, (features.idle, features.idle_polls));
        }
    }
    Ok(features)
}

/// Says what the server makes the collector do differently: each fallback once per process
/// in the log, and the mode in use and the fallbacks in the collector's state (for
/// `collectors status`). A failure to write is logged; the pass goes on.
fn note_server(collector: &Collector, store: &mut Store, features: Features) {
    static LOGGED: Mutex<BTreeSet<(String, String)>> = Mutex::new(BTreeSet::new());
    let fallbacks = features.fallbacks(&collector.after);
    for fallback in &fallbacks {
        let first = LOGGED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((collector.name.clone(), fallback.clone()));
        if first {
            warn!(collector = %collector.name, "{fallback}");
        }
    }
    let mode = features.mode(collector.mode == CollectMode::Idle);
    if let Err(e) = blocking(|| store.record_server(&collector.name, mode, &fallbacks)) {
        warn!(collector = %collector.name, error = %e, "could not record the server's fallbacks");
    }
}

/// Writes how a pass ended into the collector's state (for `collectors status`), with when
/// the next one is due if something schedules it. A failure to write is logged, not
/// returned: the pass itself is done either way. A pass that failed because the database
/// is damaged first raises the store's alarm, which stops every collector's
/// acknowledgements.
pub fn record_run(
    store: &mut Store,
    collector: &str,
    result: &Result<CollectReport, FailedPass>,
    next_run: Option<DateTime<Utc>>,
) {
    crate::metrics::messages(result.as_ref().unwrap_or_else(|failed| &failed.report));
    if let Err(failed) = result
        && let IngestError::Store(e) = &*failed.error
    {
        store.alarm_on_damage(e);
    }
    let json = |report| serde_json::to_value(report).expect("a report serialises to JSON");
    let recorded = match result {
        Ok(report) => store.record_run(collector, RunOutcome::Success(&json(report)), next_run),
        Err(failed) => {
            let counts = json(&failed.report);
            let error = failed.error.to_string();
            store.record_run(
                collector,
                RunOutcome::Failure(&error, Some(&counts)),
                next_run,
            )
        }
    };
    if let Err(e) = recorded {
        warn!(collector, error = %e, "could not record the run");
    }
}

/// A runtime for running passes from synchronous code (the CLI, the benchmark). Multi-thread,
/// because store calls use `block_in_place`.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// Runs one pass from synchronous code.
pub fn collect_blocking(
    collector: &Collector,
    store: &mut Store,
) -> Result<CollectReport, FailedPass> {
    let runtime = runtime().map_err(|source| {
        let error = SourceError::Io {
            path: "tokio runtime".into(),
            source,
        };
        FailedPass::at_start(&collector.name, error)
    })?;
    runtime.block_on(collect(collector, store, &Shutdown::new()))
}
