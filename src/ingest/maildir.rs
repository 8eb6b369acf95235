//! A collector pass over a local Maildir.

use tracing::{debug, warn};

use super::{CollectReport, Disposition, Fetched, IngestError, Shutdown, commit_messages};
use crate::config::Collector;
use crate::source::maildir::{Maildir, MaildirEntry};
use crate::store::Store;

pub(super) fn collect(
    collector: &Collector,
    maildir: &Maildir,
    store: &mut Store,
    shutdown: &Shutdown,
) -> Result<CollectReport, IngestError> {
    let mut report = CollectReport::for_collector(&collector.name);
    let entries = maildir.unseen()?;
    for batch in entries.chunks(collector.batch_size) {
        if shutdown.is_cancelled() {
            break;
        }
        let keys: Vec<&str> = batch.iter().map(|e| e.key.as_str()).collect();
        let known = store.ledger_entries(&collector.name, &keys)?;
        let mut to_ack: Vec<&MaildirEntry> = Vec::new();
        let mut read: Vec<&MaildirEntry> = Vec::new();
        let mut messages = Vec::new();
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
            read.push(entry);
            messages.push(Fetched {
                key: entry.key.clone(),
                raw,
            });
        }
        let dispositions = commit_messages(collector, store, messages, &mut report)?;
        to_ack.extend(
            read.into_iter()
                .zip(dispositions)
                .filter(|(_, d)| *d == Disposition::Acknowledge)
                .map(|(entry, _)| entry),
        );
        for entry in to_ack {
            if let Err(e) = maildir.mark_seen(entry) {
                // Stored already: the next pass finds it in the ledger and acknowledges it.
                warn!(key = %entry.key, error = %e, "could not mark the message seen");
            }
        }
    }
    Ok(report)
}
