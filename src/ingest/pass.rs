//! The collector pass, written once for every [`Mailbox`]: three stages over bounded
//! channels, so reading, decoding and committing overlap.
//!
//! ```text
//!  fetch (task; owns the    ──batch──> decode (blocking thread; ──batch──> write (the pass's
//!  mailbox and connection)             cores but the writer's)             task; one store)
//!        ^                                                                     │
//!        └──── verdicts: acknowledge / set aside, once the commit is durable ──┘
//! ```
//!
//! While batch N commits, N+1 is decoded and N+2 read; the acknowledgement of N goes out on
//! the mailbox's one connection between two reads ([`stages`](super::stages)). At most
//! [`IN_FLIGHT`] batches are held at once (a permit travels with each from before its read
//! to after its commit), so memory follows `batch-bytes`, never the backlog.
//!
//! Exactly once is the sequential pass's: each batch's records commit in one transaction with
//! their ledger rows, the mailbox position is saved right after it, and the messages are
//! acknowledged only after [`Store::confirm_committed`] said both are durable. A crash at
//! any moment leaves unacknowledged messages whose positions the ledger knows (acknowledged
//! then, not stored twice) or does not (read again); a position saved late only means
//! listing a few known messages again.

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};

use super::plan::{cut, plan, skip_rules};
use super::stages::{self, Decoded, Planned, Verdicts};
use super::{CollectReport, IngestError, Shutdown, commit_prepared};
use crate::config::Collector;
use crate::source::{Checkpoint, Mailbox, blocking};
use crate::store::{CollectorState, Store};

/// Batches held at once, from before their read to after their commit: one being read, one
/// being decoded, one committing. More would only queue.
const IN_FLIGHT: usize = 3;

/// Where the collector's last pass stopped, as saved in its state.
fn saved_checkpoint(state: Option<CollectorState>) -> Option<Checkpoint> {
    let state = state?;
    Some(Checkpoint {
        uidvalidity: u32::try_from(state.uidvalidity?).ok()?,
        last_uid: u32::try_from(state.last_uid?).ok()?,
    })
}

/// Runs one pass of `collector` over `mailbox`: lists what is new, plans every position
/// (one ledger look-up and one size query for the lot), cuts the plan into batches of at
/// most `batch-size` positions and `batch-bytes` bytes to read (one larger message is a
/// batch of its own), then runs the stages over them; then expunges what expired. Stops
/// reading when `shutdown` is cancelled; what was read by then still commits and is
/// acknowledged.
///
/// `report` counts each batch once it is committed, so a pass that fails part-way still
/// says what it stored. Hands the mailbox back for the caller to [`Mailbox::finish`], or to
/// keep for the next pass.
pub(super) async fn run<M: Mailbox + 'static>(
    collector: &Collector,
    store: &mut Store,
    mut mailbox: M,
    shutdown: &Shutdown,
    report: &mut CollectReport,
) -> Result<M, IngestError> {
    let resume = saved_checkpoint(blocking(|| store.collector_state(&collector.name))?);
    let positions = mailbox.list_new(resume).await?;
    let rules = skip_rules(collector);
    let steps = plan(collector, store, &mut mailbox, &positions, &rules).await?;
    let batches: Vec<Planned<M::Position>> =
        cut(&steps, collector.batch_size, collector.batch_bytes)
            .into_iter()
            .map(|range| Planned {
                positions: positions[range.clone()].to_vec(),
                steps: steps[range].to_vec(),
            })
            .collect();
    drop((positions, steps));

    let shared = Arc::new(collector.clone());
    let (to_decode, decoding) = mpsc::channel(IN_FLIGHT);
    let (to_write, mut writing) = mpsc::channel(IN_FLIGHT);
    let (to_mailbox, verdicts) = mpsc::unbounded_channel();
    let fetcher = tokio::spawn(stages::fetch(
        shared.clone(),
        mailbox,
        batches,
        Arc::new(Semaphore::new(IN_FLIGHT)),
        to_decode,
        verdicts,
        shutdown.clone(),
    ));
    let decoder = tokio::task::spawn_blocking(move || stages::decode(shared, decoding, to_write));
    let written = write(collector, &rules, store, &mut writing, &to_mailbox, report).await;
    drop((writing, to_mailbox));
    if written.is_err() {
        fetcher.abort();
    }
    let fetched = fetcher.await;
    if let Err(e) = decoder.await
        && e.is_panic()
    {
        std::panic::resume_unwind(e.into_panic());
    }
    written?;
    let mut mailbox = match fetched {
        Ok(result) => result?,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    if !shutdown.is_cancelled() {
        expunge_processed(collector, store, &mut mailbox).await?;
    }
    Ok(mailbox)
}

/// The write stage: commits each decoded batch with its checkpoint, confirms it durable,
/// counts it into `total`, and sends the mailbox its verdicts. A verdict the fetch stage is
/// no longer there to apply (it failed) is dropped: the ledger has those messages, and the
/// next pass acknowledges them.
async fn write<P: Clone>(
    collector: &Collector,
    rules: &str,
    store: &mut Store,
    batches: &mut mpsc::Receiver<Decoded<P>>,
    to_mailbox: &mpsc::UnboundedSender<Verdicts<P>>,
    total: &mut CollectReport,
) -> Result<(), IngestError> {
    while let Some(mut batch) = batches.recv().await {
        let mut report = batch.report;
        let skipped = std::mem::take(&mut batch.messages.skipped);
        let committed = blocking(|| {
            let committed = commit_prepared(collector, store, batch.messages, &mut report)?;
            if let Some(at) = batch.checkpoint {
                store.save_position(&collector.name, at.uidvalidity, at.last_uid)?;
            }
            if !skipped.is_empty() {
                store.remember_skipped(&collector.name, rules, &skipped)?;
            }
            // The gate: durable, in the configured file, not damaged; else nothing below.
            store.confirm_committed()?;
            Ok::<_, IngestError>(committed)
        })?;
        drop(batch.permit);
        total.add(&report);
        let mut verdicts = batch.known;
        for (position, committed) in batch.read.into_iter().zip(committed) {
            match committed {
                // Skipped: not ours, left untouched.
                None => {}
                Some(c) if c.record_id().is_some() => verdicts.acknowledge.push(position),
                Some(_) => verdicts.set_aside.push(position),
            }
        }
        let _ = to_mailbox.send(verdicts);
    }
    Ok(())
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
    use std::sync::Mutex;

    use super::*;
    use crate::ingest::testing::{form_message, lead, maildir_config};
    use crate::source::{ReadBatch, SourceError, header_section};
    use crate::store::RecordFilter;

    /// A source with nothing to acknowledge in, as the HTTP intake will be: positions are
    /// request ids, and every request stays listed, so a pass sees what earlier passes did.
    #[derive(Default)]
    struct Requests {
        bodies: BTreeMap<u32, Vec<u8>>,
        read: Vec<u32>,
        headers_read: Vec<u32>,
        acknowledged: Vec<u32>,
        set_aside: Vec<u32>,
        /// Acknowledging fails once this many messages are acknowledged (a server refusing).
        refuse_after: Option<usize>,
    }

    /// The pass owns its mailbox (its fetch stage is a task of its own): a handle on the
    /// requests, which the test takes back after the pass.
    struct Shared(Arc<Mutex<Requests>>);

    impl Mailbox for Shared {
        type Position = u32;

        fn key(&self, id: &u32) -> String {
            format!("request:{id}")
        }

        async fn list_new(&mut self, _: Option<Checkpoint>) -> Result<Vec<u32>, SourceError> {
            Ok(self.0.lock().unwrap().bodies.keys().copied().collect())
        }

        async fn sizes(&mut self, ids: &[u32]) -> Result<Vec<Option<u64>>, SourceError> {
            let requests = self.0.lock().unwrap();
            Ok(ids
                .iter()
                .map(|id| Some(requests.bodies[id].len() as u64))
                .collect())
        }

        async fn read_headers(&mut self, ids: &[u32]) -> Result<ReadBatch<u32>, SourceError> {
            let mut requests = self.0.lock().unwrap();
            requests.headers_read.extend(ids);
            Ok(ids
                .iter()
                .map(|id| (*id, header_section(requests.bodies[id].clone())))
                .collect())
        }

        async fn read(&mut self, ids: &[u32]) -> Result<ReadBatch<u32>, SourceError> {
            let mut requests = self.0.lock().unwrap();
            requests.read.extend(ids);
            Ok(ids
                .iter()
                .map(|id| (*id, requests.bodies[id].clone()))
                .collect())
        }

        async fn acknowledge(&mut self, ids: &[u32]) -> Result<(), SourceError> {
            let mut requests = self.0.lock().unwrap();
            if requests
                .refuse_after
                .is_some_and(|n| requests.acknowledged.len() >= n)
            {
                return Err(SourceError::NotAMaildir {
                    path: "refused".into(),
                });
            }
            requests.acknowledged.extend(ids);
            Ok(())
        }

        async fn set_aside(&mut self, ids: &[u32]) -> Result<(), SourceError> {
            self.0.lock().unwrap().set_aside.extend(ids);
            Ok(())
        }
    }

    /// One pass over `requests`, which are handed to it and taken back after.
    async fn run_over(
        collector: &Collector,
        store: &mut Store,
        requests: &mut Requests,
        stop: &Shutdown,
        report: &mut CollectReport,
    ) -> Result<(), IngestError> {
        let shared = Arc::new(Mutex::new(std::mem::take(requests)));
        let result = run(collector, store, Shared(shared.clone()), stop, report)
            .await
            .map(drop);
        *requests = std::mem::take(&mut *shared.lock().unwrap());
        result
    }

    /// One pass that must succeed; its report.
    async fn pass(
        collector: &Collector,
        store: &mut Store,
        requests: &mut Requests,
        stop: &Shutdown,
    ) -> CollectReport {
        let mut report = CollectReport::for_collector(&collector.name);
        run_over(collector, store, requests, stop, &mut report)
            .await
            .unwrap();
        report
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

        let report = pass(collector, &mut store, &mut requests, &stop).await;
        assert_eq!(counts(&report), [4, 1, 1, 1, 1], "{report:?}");
        assert_eq!(requests.read, [1, 2, 3, 4]);
        assert_eq!(requests.acknowledged, [1, 4], "the record and its copy");
        assert_eq!(requests.set_aside, [2]);

        // Everything is listed again: nothing is read, the stored ones are acknowledged as
        // duplicates, the quarantined one set aside and the skipped one (remembered) left
        // alone, neither counted.
        let (read, acknowledged, set_aside) = (
            requests.read.len(),
            requests.acknowledged.len(),
            requests.set_aside.len(),
        );
        let report = pass(collector, &mut store, &mut requests, &stop).await;
        assert_eq!(counts(&report), [2, 0, 0, 0, 2], "{report:?}");
        assert!(requests.read[read..].is_empty());
        assert_eq!(requests.acknowledged[acknowledged..], [1, 4]);
        assert_eq!(requests.set_aside[set_aside..], [2]);
    }

    #[tokio::test]
    async fn a_skip_is_forgotten_when_the_rules_change_or_the_position_is_no_longer_listed() {
        let dir = tempfile::tempdir().unwrap();
        let config = maildir_config(dir.path(), &["web"], "");
        let mut collector = config.collectors[0].clone();
        let mut store = Store::open(&config.storage).unwrap();
        let mut requests = Requests::default();
        requests
            .bodies
            .insert(1, form_message("r1", "order: 1", "{}"));
        requests.bodies.insert(2, form_message("r2", "Hello", "{}"));
        let stop = Shutdown::new();

        let report = pass(&collector, &mut store, &mut requests, &stop).await;
        assert_eq!(counts(&report), [2, 0, 2, 0, 0], "{report:?}");
        let remembered = |store: &mut Store| {
            let mut keys: Vec<String> = store
                .skipped_positions("web")
                .unwrap()
                .into_iter()
                .map(|(key, _)| key)
                .collect();
            keys.sort();
            keys
        };
        assert_eq!(remembered(&mut store), ["request:1", "request:2"]);

        // Request 2 is gone from the listing: forgotten; request 1 is not read again.
        requests.bodies.remove(&2);
        let report = pass(&collector, &mut store, &mut requests, &stop).await;
        assert_eq!(counts(&report), [0, 0, 0, 0, 0], "{report:?}");
        assert_eq!(requests.read, [1, 2]);
        assert_eq!(remembered(&mut store), ["request:1"]);

        // Another keyword: what was skipped under the old one is looked at again.
        collector.rules.subject_keyword = "order".into();
        let report = pass(&collector, &mut store, &mut requests, &stop).await;
        assert_eq!(requests.read, [1, 2, 1]);
        assert_eq!(report.fetched, 1, "{report:?}");
        assert_eq!(report.skipped, 0, "read as ours now: {report:?}");
        assert!(remembered(&mut store).is_empty());
    }

    #[tokio::test]
    async fn an_oversized_message_has_only_its_headers_read_and_is_quarantined_then_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let config = maildir_config(dir.path(), &["web"], "max-message-size = 2048");
        let collector = &config.collectors[0];
        let mut store = Store::open(&config.storage).unwrap();
        let mut requests = Requests::default();
        let mut big = lead("big");
        big.resize(4096, b'x');
        requests.bodies.insert(1, lead("r1"));
        requests.bodies.insert(2, big);
        requests.bodies.insert(3, lead("r3"));
        let stop = Shutdown::new();

        let report = pass(collector, &mut store, &mut requests, &stop).await;
        assert_eq!(counts(&report), [3, 2, 0, 1, 0], "{report:?}");
        assert_eq!(requests.read, [1, 3], "the big one is never read whole");
        assert_eq!(requests.headers_read, [2]);
        assert_eq!(requests.acknowledged, [1, 3]);
        assert_eq!(requests.set_aside, [2]);
        let entry = store.quarantine_entry(1).unwrap();
        assert_eq!(entry.reason, "too large: 4096 bytes, limit 2KB");
        assert!(entry.raw.ends_with(b"\r\n\r\n") && entry.raw.len() < 2048);

        // Known by its position now: set aside again, neither read nor counted.
        let report = pass(collector, &mut store, &mut requests, &stop).await;
        assert_eq!(counts(&report), [2, 0, 0, 0, 2], "{report:?}");
        assert_eq!(requests.headers_read, [2]);
        assert_eq!(requests.set_aside, [2, 2]);
    }

    #[tokio::test]
    async fn a_pass_failing_after_committed_batches_counts_what_it_committed() {
        let dir = tempfile::tempdir().unwrap();
        let config = maildir_config(dir.path(), &["web"], "batch-size = 1");
        let collector = &config.collectors[0];
        let mut store = Store::open(&config.storage).unwrap();
        let mut requests = Requests {
            refuse_after: Some(1),
            ..Requests::default()
        };
        for id in 1..=3 {
            requests.bodies.insert(id, lead(&format!("r{id}")));
        }
        let mut report = CollectReport::for_collector(&collector.name);
        let result = run_over(
            collector,
            &mut store,
            &mut requests,
            &Shutdown::new(),
            &mut report,
        )
        .await;
        assert!(result.is_err());
        // The second batch's acknowledgement failed; batches read ahead of it still committed,
        // and the report counts exactly what the database holds.
        let stored = store.list_records(&RecordFilter::default()).unwrap().len();
        assert!(stored >= 2, "{report:?}");
        assert_eq!(counts(&report), [stored, stored, 0, 0, 0], "{report:?}");
        assert_eq!(requests.acknowledged, [1]);
        assert_eq!(requests.read[..2], [1, 2]);

        // The server takes acknowledgements again: the committed ones are acknowledged as
        // duplicates, unread; only what never committed is read.
        requests.refuse_after = None;
        let read = requests.read.len();
        let report = pass(collector, &mut store, &mut requests, &Shutdown::new()).await;
        assert_eq!(counts(&report), [3, 3 - stored, 0, 0, stored], "{report:?}");
        assert_eq!(requests.read[read..].len(), 3 - stored);
        assert_eq!(requests.acknowledged[1..], [1, 2, 3]);
        assert_eq!(
            store.list_records(&RecordFilter::default()).unwrap().len(),
            3
        );
    }
}
