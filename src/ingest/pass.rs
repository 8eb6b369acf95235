//! The collector pass, written once for every [`Mailbox`].

use super::{CollectReport, Fetched, IngestError, Shutdown, commit_messages};
use crate::config::Collector;
use crate::source::{Checkpoint, Mailbox, blocking};
use crate::store::{CollectorState, Store};

/// Where the collector's last pass stopped, as saved in its state.
fn saved_checkpoint(state: Option<CollectorState>) -> Option<Checkpoint> {
    let state = state?;
    Some(Checkpoint {
        uidvalidity: u32::try_from(state.uidvalidity?).ok()?,
        last_uid: u32::try_from(state.last_uid?).ok()?,
    })
}

/// Runs one pass of `collector` over `mailbox`: batch by batch, ledger check, read, commit
/// (and checkpoint), then acknowledge and set aside; then expunge what expired. Stops between
/// batches when `shutdown` is cancelled.
pub(super) async fn run<M: Mailbox>(
    collector: &Collector,
    store: &mut Store,
    mut mailbox: M,
    shutdown: &Shutdown,
) -> Result<CollectReport, IngestError> {
    let mut report = CollectReport::for_collector(&collector.name);
    let resume = saved_checkpoint(blocking(|| store.collector_state(&collector.name))?);
    let positions = mailbox.list_new(resume).await?;
    for batch in positions.chunks(collector.batch_size) {
        if shutdown.is_cancelled() {
            break;
        }
        let keys: Vec<String> = batch.iter().map(|p| mailbox.key(p)).collect();
        let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let known = blocking(|| store.ledger_entries(&collector.name, &key_refs))?;
        let mut to_acknowledge = Vec::new();
        let mut to_set_aside = Vec::new();
        let mut to_read = Vec::new();
        for (position, key) in batch.iter().zip(&keys) {
            match known.get(key) {
                // Committed by an earlier pass that died before acknowledging it.
                Some(seen) if seen.record_id.is_some() => {
                    report.fetched += 1;
                    report.duplicates += 1;
                    to_acknowledge.push(position.clone());
                }
                // Quarantined before: set aside again, never read or counted again.
                Some(_) => to_set_aside.push(position.clone()),
                None => to_read.push(position.clone()),
            }
        }
        let (read, messages): (Vec<M::Position>, Vec<Fetched>) = mailbox
            .read(&to_read)
            .await?
            .into_iter()
            .map(|(position, raw)| {
                let key = mailbox.key(&position);
                (position, Fetched { key, raw })
            })
            .unzip();
        let checkpoint = mailbox.checkpoint(batch);
        let committed = blocking(|| {
            let committed = commit_messages(collector, store, messages, &mut report)?;
            if let Some(at) = checkpoint {
                store.save_position(&collector.name, at.uidvalidity, at.last_uid)?;
            }
            // The gate: durable, in the configured file, not damaged; else nothing below.
            store.confirm_committed()?;
            Ok::<_, IngestError>(committed)
        })?;
        for (position, committed) in read.into_iter().zip(committed) {
            match committed {
                // Skipped: not ours, left untouched.
                None => {}
                Some(c) if c.record_id().is_some() => to_acknowledge.push(position),
                Some(_) => to_set_aside.push(position),
            }
        }
        mailbox.acknowledge(&to_acknowledge).await?;
        mailbox.set_aside(&to_set_aside).await?;
    }
    if !shutdown.is_cancelled() {
        expunge_processed(collector, store, &mut mailbox).await?;
    }
    mailbox.finish().await;
    Ok(report)
}

/// Expunges expired messages that the ledger links to a record; messages that are not ours,
/// or quarantined, are never touched.
async fn expunge_processed<M: Mailbox>(
    collector: &Collector,
    store: &mut Store,
    mailbox: &mut M,
) -> Result<(), IngestError> {
    let expired = mailbox.expired().await?;
    if expired.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> = expired.iter().map(|p| mailbox.key(p)).collect();
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let known = blocking(|| store.ledger_entries(&collector.name, &key_refs))?;
    let processed: Vec<M::Position> = expired
        .into_iter()
        .zip(&keys)
        .filter(|(_, key)| known.get(*key).is_some_and(|e| e.record_id.is_some()))
        .map(|(position, _)| position)
        .collect();
    // The ledger that says "processed" must be the configured, sound one.
    blocking(|| store.confirm_committed())?;
    mailbox.expunge(&processed).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::ingest::testing::{form_message, lead, maildir_config};
    use crate::source::{ReadBatch, SourceError};

    /// A source with nothing to acknowledge in, as the HTTP intake will be: positions are
    /// request ids, and every request stays listed, so a pass sees what earlier passes did.
    #[derive(Default)]
    struct Requests {
        bodies: BTreeMap<u32, Vec<u8>>,
        read: Vec<u32>,
        acknowledged: Vec<u32>,
        set_aside: Vec<u32>,
    }

    impl Mailbox for &mut Requests {
        type Position = u32;

        fn key(&self, id: &u32) -> String {
            format!("request:{id}")
        }

        async fn list_new(&mut self, _: Option<Checkpoint>) -> Result<Vec<u32>, SourceError> {
            Ok(self.bodies.keys().copied().collect())
        }

        async fn read(&mut self, ids: &[u32]) -> Result<ReadBatch<u32>, SourceError> {
            self.read.extend(ids);
            Ok(ids
                .iter()
                .map(|id| (*id, self.bodies[id].clone()))
                .collect())
        }

        async fn acknowledge(&mut self, ids: &[u32]) -> Result<(), SourceError> {
            self.acknowledged.extend(ids);
            Ok(())
        }

        async fn set_aside(&mut self, ids: &[u32]) -> Result<(), SourceError> {
            self.set_aside.extend(ids);
            Ok(())
        }
    }

    fn counts(report: &CollectReport) -> [usize; 5] {
        [
            report.fetched,
            report.accepted,
            report.skipped,
            report.quarantined,
            report.duplicates,
        ]
    }

    #[tokio::test]
    async fn known_messages_are_not_read_again_and_quarantined_ones_are_set_aside_uncounted() {
        let dir = tempfile::tempdir().unwrap();
        let config = maildir_config(dir.path(), &["web"], "batch-size = 2");
        let collector = &config.collectors[0];
        let mut store = Store::open(&config.storage).unwrap();
        let mut requests = Requests::default();
        requests.bodies.insert(1, lead("r1"));
        requests
            .bodies
            .insert(2, form_message("r2", "ORDER: 2", "{\"Тема\": "));
        requests.bodies.insert(3, form_message("r3", "Hello", "{}"));
        requests.bodies.insert(4, lead("r1"));
        let stop = Shutdown::new();

        let report = run(collector, &mut store, &mut requests, &stop)
            .await
            .unwrap();
        assert_eq!(counts(&report), [4, 1, 1, 1, 1], "{report:?}");
        assert_eq!(requests.read, [1, 2, 3, 4]);
        assert_eq!(requests.acknowledged, [1, 4], "the record and its copy");
        assert_eq!(requests.set_aside, [2]);

        // Everything is listed again: only the skipped request is read, the stored ones are
        // acknowledged as duplicates, the quarantined one set aside without being counted.
        let (read, acknowledged, set_aside) = (
            requests.read.len(),
            requests.acknowledged.len(),
            requests.set_aside.len(),
        );
        let report = run(collector, &mut store, &mut requests, &stop)
            .await
            .unwrap();
        assert_eq!(counts(&report), [3, 0, 1, 0, 2], "{report:?}");
        assert_eq!(requests.read[read..], [3]);
        assert_eq!(requests.acknowledged[acknowledged..], [1, 4]);
        assert_eq!(requests.set_aside[set_aside..], [2]);
    }
}
