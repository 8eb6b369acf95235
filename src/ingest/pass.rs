//! The collector pass, written once for every [`Mailbox`].

use std::collections::HashMap;
use std::ops::Range;

use tracing::debug;

use super::{CollectReport, Content, Fetched, IngestError, Shutdown, TooLarge, commit_messages};
use crate::config::Collector;
use crate::source::{Checkpoint, HEADER_LIMIT, Mailbox, blocking};
use crate::store::{CollectorState, Store};

/// Where the collector's last pass stopped, as saved in its state.
fn saved_checkpoint(state: Option<CollectorState>) -> Option<Checkpoint> {
    let state = state?;
    Some(Checkpoint {
        uidvalidity: u32::try_from(state.uidvalidity?).ok()?,
        last_uid: u32::try_from(state.last_uid?).ok()?,
    })
}

/// Runs one pass of `collector` over `mailbox`: batch by batch, ledger check, sizes, read,
/// commit (and checkpoint), then acknowledge and set aside; then expunge what expired. Stops
/// between batches when `shutdown` is cancelled.
///
/// Positions are taken `batch-size` at a time (a window): one ledger look-up and one size
/// query each. A window is then cut into batches of at most `batch-bytes` of messages to
/// read whole (one larger message is a batch of its own), so memory follows the budget,
/// never the backlog. Each batch commits in one transaction before it is acknowledged.
///
/// `report` counts each batch once it is committed, so a pass that fails part-way still
/// says what it stored.
pub(super) async fn run<M: Mailbox>(
    collector: &Collector,
    store: &mut Store,
    mut mailbox: M,
    shutdown: &Shutdown,
    report: &mut CollectReport,
) -> Result<(), IngestError> {
    let resume = saved_checkpoint(blocking(|| store.collector_state(&collector.name))?);
    let positions = mailbox.list_new(resume).await?;
    'windows: for window in positions.chunks(collector.batch_size) {
        if shutdown.is_cancelled() {
            break;
        }
        let steps = plan(collector, store, &mut mailbox, window).await?;
        for batch in cut(&steps, collector.batch_bytes) {
            if shutdown.is_cancelled() {
                break 'windows;
            }
            let steps = window[batch.clone()].iter().zip(&steps[batch]);
            run_batch(collector, store, &mut mailbox, steps, report).await?;
        }
    }
    if !shutdown.is_cancelled() {
        expunge_processed(collector, store, &mut mailbox).await?;
    }
    mailbox.finish().await;
    Ok(())
}

/// What a pass does with one listed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Committed by an earlier pass that died before acknowledging it: acknowledge.
    Acknowledge,
    /// Quarantined before: set aside again, never read or counted again.
    SetAside,
    /// New, of this many bytes: read it whole.
    Read(u64),
    /// New, and larger than `max-message-size` (this many bytes): read its headers only.
    TooLarge(u64),
    /// Gone from the mailbox since it was listed (another program took it).
    Vanished,
}

/// The step for each position of `window`: from the ledger, then from the sizes of the
/// positions it does not know.
async fn plan<M: Mailbox>(
    collector: &Collector,
    store: &mut Store,
    mailbox: &mut M,
    window: &[M::Position],
) -> Result<Vec<Step>, IngestError> {
    let keys: Vec<String> = window.iter().map(|p| mailbox.key(p)).collect();
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let known = blocking(|| store.ledger_entries(&collector.name, &key_refs))?;
    let unknown: Vec<M::Position> = window
        .iter()
        .zip(&keys)
        .filter(|(_, key)| !known.contains_key(*key))
        .map(|(position, _)| position.clone())
        .collect();
    let mut sizes = mailbox.sizes(&unknown).await?.into_iter();
    Ok(keys
        .iter()
        .map(|key| match known.get(key) {
            Some(seen) if seen.record_id.is_some() => Step::Acknowledge,
            Some(_) => Step::SetAside,
            None => match sizes.next().flatten() {
                None => Step::Vanished,
                Some(size) if size > collector.max_message_size => Step::TooLarge(size),
                Some(size) => Step::Read(size),
            },
        })
        .collect())
}

/// Cuts a window's steps into consecutive batches that read at most `budget` bytes each,
/// counting a too-large message as the [`HEADER_LIMIT`] bytes read of it; a message larger
/// than the budget is read in a batch of its own.
fn cut(steps: &[Step], budget: u64) -> Vec<Range<usize>> {
    let mut batches = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, step) in steps.iter().enumerate() {
        let cost = match *step {
            Step::Read(size) => size,
            Step::TooLarge(_) => HEADER_LIMIT as u64,
            _ => continue,
        };
        if bytes > 0 && bytes + cost > budget {
            batches.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += cost;
    }
    if start < steps.len() {
        batches.push(start..steps.len());
    }
    batches
}

/// Reads, commits (with the checkpoint), acknowledges and sets aside one batch; its counts
/// join `total` once the commit is confirmed.
async fn run_batch<'a, M: Mailbox>(
    collector: &Collector,
    store: &mut Store,
    mailbox: &mut M,
    steps: impl Iterator<Item = (&'a M::Position, &'a Step)>,
    total: &mut CollectReport,
) -> Result<(), IngestError>
where
    M::Position: 'a,
{
    let mut report = CollectReport::for_collector(&collector.name);
    let mut batch = Vec::new();
    let mut to_acknowledge = Vec::new();
    let mut to_set_aside = Vec::new();
    let mut to_read = Vec::new();
    let mut too_large = HashMap::new();
    for (position, step) in steps {
        batch.push(position.clone());
        match *step {
            Step::Acknowledge => {
                report.fetched += 1;
                report.duplicates += 1;
                to_acknowledge.push(position.clone());
            }
            Step::SetAside => to_set_aside.push(position.clone()),
            Step::Read(_) => to_read.push(position.clone()),
            Step::TooLarge(size) => {
                too_large.insert(mailbox.key(position), size);
            }
            Step::Vanished => {}
        }
    }
    // The positions of `messages`, in the same order.
    let mut read = Vec::new();
    let mut messages: Vec<Fetched> = Vec::new();
    if !too_large.is_empty() {
        let positions: Vec<M::Position> = batch
            .iter()
            .filter(|p| too_large.contains_key(&mailbox.key(p)))
            .cloned()
            .collect();
        for (position, headers) in mailbox.read_headers(&positions).await? {
            let key = mailbox.key(&position);
            let size = too_large[&key];
            let limit = collector.max_message_size;
            read.push(position);
            messages.push(Fetched {
                key,
                content: Content::TooLarge(TooLarge {
                    headers,
                    size,
                    limit,
                }),
            });
        }
    }
    let mut read_bytes = 0;
    for (position, raw) in mailbox.read(&to_read).await? {
        read_bytes += raw.len();
        messages.push(Fetched::whole(mailbox.key(&position), raw));
        read.push(position);
    }
    debug!(
        collector = %collector.name,
        positions = batch.len(),
        read = read.len(),
        bytes = read_bytes,
        "batch read"
    );
    let checkpoint = mailbox.checkpoint(&batch);
    let committed = blocking(|| {
        let committed = commit_messages(collector, store, messages, &mut report)?;
        if let Some(at) = checkpoint {
            store.save_position(&collector.name, at.uidvalidity, at.last_uid)?;
        }
        // The gate: durable, in the configured file, not damaged; else nothing below.
        store.confirm_committed()?;
        Ok::<_, IngestError>(committed)
    })?;
    total.add(&report);
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

    use super::*;
    use crate::ingest::testing::{form_message, lead, maildir_config};
    use crate::source::{ReadBatch, SourceError};

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

    impl Mailbox for &mut Requests {
        type Position = u32;

        fn key(&self, id: &u32) -> String {
            format!("request:{id}")
        }

        async fn list_new(&mut self, _: Option<Checkpoint>) -> Result<Vec<u32>, SourceError> {
            Ok(self.bodies.keys().copied().collect())
        }

        async fn sizes(&mut self, ids: &[u32]) -> Result<Vec<Option<u64>>, SourceError> {
            Ok(ids
                .iter()
                .map(|id| Some(self.bodies[id].len() as u64))
                .collect())
        }

        async fn read_headers(&mut self, ids: &[u32]) -> Result<ReadBatch<u32>, SourceError> {
            self.headers_read.extend(ids);
            Ok(ids
                .iter()
                .map(|id| (*id, crate::source::header_section(self.bodies[id].clone())))
                .collect())
        }

        async fn read(&mut self, ids: &[u32]) -> Result<ReadBatch<u32>, SourceError> {
            self.read.extend(ids);
            Ok(ids
                .iter()
                .map(|id| (*id, self.bodies[id].clone()))
                .collect())
        }

        async fn acknowledge(&mut self, ids: &[u32]) -> Result<(), SourceError> {
            if self
                .refuse_after
                .is_some_and(|n| self.acknowledged.len() >= n)
            {
                return Err(SourceError::NotAMaildir {
                    path: "refused".into(),
                });
            }
            self.acknowledged.extend(ids);
            Ok(())
        }

        async fn set_aside(&mut self, ids: &[u32]) -> Result<(), SourceError> {
            self.set_aside.extend(ids);
            Ok(())
        }
    }

    /// One pass that must succeed; its report.
    async fn pass(
        collector: &Collector,
        store: &mut Store,
        requests: &mut Requests,
        stop: &Shutdown,
    ) -> CollectReport {
        let mut report = CollectReport::for_collector(&collector.name);
        run(collector, store, requests, stop, &mut report)
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

        // Everything is listed again: only the skipped request is read, the stored ones are
        // acknowledged as duplicates, the quarantined one set aside without being counted.
        let (read, acknowledged, set_aside) = (
            requests.read.len(),
            requests.acknowledged.len(),
            requests.set_aside.len(),
        );
        let report = pass(collector, &mut store, &mut requests, &stop).await;
        assert_eq!(counts(&report), [3, 0, 1, 0, 2], "{report:?}");
        assert_eq!(requests.read[read..], [3]);
        assert_eq!(requests.acknowledged[acknowledged..], [1, 4]);
        assert_eq!(requests.set_aside[set_aside..], [2]);
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
        let result = run(
            collector,
            &mut store,
            &mut requests,
            &Shutdown::new(),
            &mut report,
        )
        .await;
        assert!(result.is_err());
        // The second batch committed, then its acknowledgement failed; the third never ran.
        assert_eq!(counts(&report), [2, 2, 0, 0, 0], "{report:?}");
        assert_eq!(requests.acknowledged, [1]);
        assert_eq!(requests.read, [1, 2]);
    }

    #[test]
    fn batches_are_cut_by_bytes_and_a_message_over_the_budget_goes_alone() {
        use Step::*;
        let steps = [
            Read(40),
            Acknowledge,
            Read(50),
            Read(20),
            SetAside,
            Read(150),
            Vanished,
            Read(10),
            TooLarge(10_000),
        ];
        assert_eq!(cut(&steps, 100), [0..3, 3..5, 5..7, 7..8, 8..9]);
        assert_eq!(cut(&steps, 1_000_000), vec![(0..9)]);
        assert_eq!(cut(&[SetAside, Acknowledge], 1), vec![(0..2)]);
        assert!(cut(&[], 100).is_empty());
        // Each too-large message costs the header bytes read of it.
        let headers = HEADER_LIMIT as u64;
        assert_eq!(cut(&[TooLarge(1), TooLarge(1)], headers), [0..1, 1..2]);
    }
}
