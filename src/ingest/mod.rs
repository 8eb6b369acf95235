//! One collector pass: source -> decode -> map -> store -> acknowledge.
//!
//! Messages are processed in batches; each batch commits in one transaction and only then
//! are its messages acknowledged in the mailbox. A crash before the commit leaves them
//! unseen (read again next pass); a crash after the commit but before the acknowledgement
//! is caught by the ledger (the message is known by its position), so it is acknowledged
//! then, and counted as a duplicate, never stored twice.

use serde::Serialize;
use tracing::{debug, info, warn};

use crate::config::{Collector, SourceConfig};
use crate::decode::{DecodeRules, Envelope, Verdict, decode_message};
use crate::map::{PayloadFormat, Record};
use crate::source::SourceError;
use crate::source::imap::ImapError;
use crate::source::maildir::Maildir;

mod imap;
mod maildir;
use crate::store::{Committed, Incoming, IncomingOutcome, Store, StoreError};

/// Errors that stop a collector pass (per-message problems never do).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Imap(#[from] ImapError),
}

/// What happens to a message, decided without I/O.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Not for us; left untouched.
    Skip(String),
    /// For us but unusable.
    Quarantine(String),
    Accept(Box<Record>),
}

/// A decoded and mapped message.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    pub envelope: Envelope,
    pub decision: Decision,
}

/// Decodes and maps one raw message (the pure core of a pass; also `parse` and `retry`).
pub fn prepare(raw: &[u8], rules: &DecodeRules, format: &PayloadFormat) -> Prepared {
    let decoded = decode_message(raw, rules);
    let decision = match decoded.verdict {
        Verdict::Skipped(reason) => Decision::Skip(reason),
        Verdict::Quarantined(reason) => Decision::Quarantine(reason),
        Verdict::Matched { order_ref, payload } => {
            match format.map(&payload, order_ref, &decoded.envelope) {
                Ok(record) => Decision::Accept(Box::new(record)),
                Err(e) => {
                    Decision::Quarantine(format!("attachment `{}`: {e}", payload.attachment_name))
                }
            }
        }
    };
    Prepared {
        envelope: decoded.envelope,
        decision,
    }
}

/// [`prepare`], but a panic in a parser becomes a quarantine reason: one poisoned message
/// must not take the daemon down and then crash it again on every restart.
pub fn prepare_guarded(raw: &[u8], rules: &DecodeRules, format: &PayloadFormat) -> Prepared {
    std::panic::catch_unwind(|| prepare(raw, rules, format)).unwrap_or_else(|_| Prepared {
        envelope: Envelope {
            message_id: None,
            subject: None,
            fingerprint: crate::decode::Fingerprint::of(raw),
        },
        decision: Decision::Quarantine(
            "the decoder failed on this message (internal error); kept for inspection".into(),
        ),
    })
}

/// Decodes a batch on every core (decoding is pure), keeping the order.
fn prepare_all(messages: &[Fetched], rules: &DecodeRules, format: &PayloadFormat) -> Vec<Prepared> {
    const MIN_PER_THREAD: usize = 16;
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(messages.len() / MIN_PER_THREAD)
        .max(1);
    if threads == 1 {
        return messages
            .iter()
            .map(|m| prepare_guarded(&m.raw, rules, format))
            .collect();
    }
    let per_thread = messages.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = messages
            .chunks(per_thread)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|m| prepare_guarded(&m.raw, rules, format))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    })
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
}

/// A message read from a mailbox, with its position there.
pub struct Fetched {
    /// Position key (Maildir unique name, or `UIDVALIDITY:UID`).
    pub key: String,
    pub raw: Vec<u8>,
}

/// What the source should do with a message after the commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Stored (now or before): apply the after-processing action.
    Acknowledge,
    /// Quarantined (now or before): keep it, marked so it is not fetched again.
    Quarantined,
    /// Not for us: leave it untouched.
    Leave,
}

/// Decodes, maps and commits fetched messages in one transaction, counting them into
/// `report`; returns one disposition per message, in order.
pub fn commit_messages(
    collector: &Collector,
    store: &mut Store,
    messages: Vec<Fetched>,
    report: &mut CollectReport,
) -> Result<Vec<Disposition>, StoreError> {
    let mut dispositions = vec![Disposition::Leave; messages.len()];
    let mut positions = Vec::new();
    let mut items = Vec::new();
    let prepared_all = prepare_all(&messages, &collector.rules, &collector.format);
    for (i, (message, prepared)) in messages.into_iter().zip(prepared_all).enumerate() {
        report.fetched += 1;
        let outcome = match prepared.decision {
            Decision::Skip(reason) => {
                debug!(key = %message.key, %reason, "skipped");
                report.skipped += 1;
                continue;
            }
            Decision::Quarantine(reason) => IncomingOutcome::Quarantine {
                reason,
                raw: message.raw,
            },
            Decision::Accept(record) => IncomingOutcome::Record(record),
        };
        positions.push(i);
        items.push(Incoming {
            source_key: message.key,
            envelope: prepared.envelope,
            outcome,
        });
    }
    let results = store.commit_batch(&collector.name, &collector.queue, &items)?;
    for ((i, item), committed) in positions.into_iter().zip(&items).zip(results) {
        dispositions[i] = match committed {
            Committed::Created(_) => {
                report.accepted += 1;
                Disposition::Acknowledge
            }
            Committed::Quarantined(id) => {
                report.quarantined += 1;
                if let IncomingOutcome::Quarantine { reason, .. } = &item.outcome {
                    warn!(
                        collector = %collector.name,
                        message_id = item.envelope.message_id.as_deref().unwrap_or("-"),
                        quarantine_id = id,
                        %reason,
                        "message quarantined"
                    );
                }
                Disposition::Quarantined
            }
            Committed::Duplicate { record_id } => {
                report.duplicates += 1;
                if record_id.is_some() {
                    Disposition::Acknowledge
                } else {
                    Disposition::Quarantined
                }
            }
        };
    }
    Ok(dispositions)
}

/// Asks a running pass to stop after the batch in flight.
pub type Shutdown = tokio_util::sync::CancellationToken;

/// Runs one pass of `collector`. Store calls block; on a multi-thread runtime they run in
/// place (`block_in_place`), so the pass keeps one database connection throughout.
pub async fn collect(
    collector: &Collector,
    store: &mut Store,
    shutdown: &Shutdown,
) -> Result<CollectReport, IngestError> {
    let report = match &collector.source {
        SourceConfig::Maildir { path } => tokio::task::block_in_place(|| {
            maildir::collect(collector, &Maildir::open(path)?, store, shutdown)
        })?,
        SourceConfig::Imap(imap) => imap::collect(collector, imap, store, shutdown).await?,
    };
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
) -> Result<CollectReport, IngestError> {
    runtime()
        .map_err(|source| SourceError::Io {
            path: "tokio runtime".into(),
            source,
        })?
        .block_on(collect(collector, store, &Shutdown::new()))
}
