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
use crate::map::{Record, map_order_json};
use crate::source::SourceError;
use crate::source::maildir::{Maildir, MaildirEntry};
use crate::store::{Committed, Incoming, IncomingOutcome, Store, StoreError};

/// Errors that stop a collector pass (per-message problems never do).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
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
pub fn prepare(raw: &[u8], rules: &DecodeRules) -> Prepared {
    let decoded = decode_message(raw, rules);
    let decision = match decoded.verdict {
        Verdict::Skipped(reason) => Decision::Skip(reason),
        Verdict::Quarantined(reason) => Decision::Quarantine(reason),
        Verdict::Matched { order_ref, payload } => {
            match map_order_json(&payload, order_ref, &decoded.envelope) {
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

/// Runs one pass of `collector`.
pub fn collect(collector: &Collector, store: &mut Store) -> Result<CollectReport, IngestError> {
    let report = match &collector.source {
        SourceConfig::Maildir { path } => collect_maildir(collector, &Maildir::open(path)?, store)?,
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

fn collect_maildir(
    collector: &Collector,
    maildir: &Maildir,
    store: &mut Store,
) -> Result<CollectReport, IngestError> {
    let mut report = CollectReport {
        collector: collector.name.clone(),
        ..CollectReport::default()
    };
    let entries = maildir.unseen()?;
    for batch in entries.chunks(collector.batch_size) {
        let keys: Vec<&str> = batch.iter().map(|e| e.key.as_str()).collect();
        let known = store.ledger_entries(&collector.name, &keys)?;
        let mut to_ack: Vec<&MaildirEntry> = Vec::new();
        let mut pending: Vec<&MaildirEntry> = Vec::new();
        let mut items: Vec<Incoming> = Vec::new();
        for entry in batch {
            if let Some(seen) = known.get(&entry.key) {
                // Committed earlier: acknowledge what has a record; a quarantined message stays.
                if seen.record_id.is_some() {
                    report.fetched += 1;
                    report.duplicates += 1;
                    to_ack.push(entry);
                }
                continue;
            }
            let Some(raw) = maildir.read(entry)? else {
                debug!(key = %entry.key, "message vanished before it was read");
                continue;
            };
            report.fetched += 1;
            let prepared = prepare(&raw, &collector.rules);
            let outcome = match prepared.decision {
                Decision::Skip(reason) => {
                    debug!(key = %entry.key, %reason, "skipped");
                    report.skipped += 1;
                    continue;
                }
                Decision::Quarantine(reason) => IncomingOutcome::Quarantine { reason, raw },
                Decision::Accept(record) => IncomingOutcome::Record(record),
            };
            pending.push(entry);
            items.push(Incoming {
                source_key: entry.key.clone(),
                envelope: prepared.envelope,
                outcome,
            });
        }
        let results = store.commit_batch(&collector.name, &collector.queue, &items)?;
        for ((entry, item), committed) in pending.into_iter().zip(&items).zip(results) {
            match committed {
                Committed::Created(_) => {
                    report.accepted += 1;
                    to_ack.push(entry);
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
                }
                Committed::Duplicate { record_id } => {
                    report.duplicates += 1;
                    if record_id.is_some() {
                        to_ack.push(entry);
                    }
                }
            }
        }
        for entry in to_ack {
            if let Err(e) = maildir.mark_seen(entry) {
                // Stored already: the next pass finds it in the ledger and acknowledges it.
                warn!(key = %entry.key, error = %e, "could not mark the message seen");
            }
        }
    }
    Ok(report)
}
