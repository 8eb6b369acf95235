//! The two stages of a pass that run beside its writer: fetch (a task that owns the mailbox
//! and its connection) and decode (a blocking thread that decodes each batch on every core
//! but the writer's).
//!
//! The fetch stage is the only one that talks to the mailbox, so the acknowledgements the
//! writer sends back (after each durable commit) go out on the same connection, between two
//! reads: one connection per pass, and the `STORE` of batch N rides behind the `FETCH` of a
//! later batch instead of holding up the commit of the next one.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tracing::debug;

use super::plan::Step;
use super::workers::Workers;
use super::{CollectReport, Content, Fetched, IngestError, PreparedBatch, Shutdown, TooLarge};
use crate::config::Collector;
use crate::source::{Checkpoint, Mailbox};

/// A batch as the plan cut it: its positions and what to do with each.
pub(super) struct Planned<P> {
    pub positions: Vec<P>,
    pub steps: Vec<Step>,
}

/// What the mailbox is told about a batch once its commit is durable.
pub(super) struct Verdicts<P> {
    /// Stored (now or before): the collector's after-action.
    pub acknowledge: Vec<P>,
    /// Quarantined: kept, never read again.
    pub set_aside: Vec<P>,
}

/// A batch between two stages: read, then decoded (`B` goes from the messages to the
/// [`PreparedBatch`]); the rest travels with it to the writer.
pub(super) struct InFlight<P, B> {
    /// The positions of what was read, in the order of `messages`.
    pub read: Vec<P>,
    pub messages: B,
    /// What the ledger already decided (acknowledge again, set aside again).
    pub known: Verdicts<P>,
    /// Saved with the commit.
    pub checkpoint: Option<Checkpoint>,
    /// The counts known before the commit (the known duplicates).
    pub report: CollectReport,
    /// Held from before the read to after the commit: bounds the batches in memory.
    pub permit: OwnedSemaphorePermit,
}

pub(super) type Read<P> = InFlight<P, Vec<Fetched>>;
pub(super) type Decoded<P> = InFlight<P, PreparedBatch>;

/// The fetch stage: reads each planned batch (waiting for a permit first, so at most as
/// many batches as the semaphore holds are in memory) and hands it on; applies the writer's
/// verdicts as they come, ahead of the next read. Stops reading when `shutdown` is
/// cancelled or the decode stage is gone, then applies the verdicts still to come, and
/// returns the mailbox for the end of the pass.
pub(super) async fn fetch<M: Mailbox>(
    collector: Arc<Collector>,
    mut mailbox: M,
    batches: Vec<Planned<M::Position>>,
    permits: Arc<Semaphore>,
    to_decode: mpsc::Sender<Read<M::Position>>,
    mut verdicts: mpsc::UnboundedReceiver<Verdicts<M::Position>>,
    shutdown: Shutdown,
) -> Result<M, IngestError> {
    for batch in batches {
        let permit = loop {
            tokio::select! {
                biased;
                Some(verdict) = verdicts.recv() => apply(&mut mailbox, verdict).await?,
                permit = permits.clone().acquire_owned() => {
                    break permit.expect("the pass never closes its semaphore");
                }
            }
        };
        if shutdown.is_cancelled() || to_decode.is_closed() {
            break;
        }
        let read = read_batch(&collector, &mut mailbox, batch, permit).await?;
        if to_decode.send(read).await.is_err() {
            break;
        }
    }
    drop(to_decode);
    while let Some(verdict) = verdicts.recv().await {
        apply(&mut mailbox, verdict).await?;
    }
    Ok(mailbox)
}

async fn apply<M: Mailbox>(
    mailbox: &mut M,
    verdict: Verdicts<M::Position>,
) -> Result<(), IngestError> {
    mailbox.acknowledge(&verdict.acknowledge).await?;
    mailbox.set_aside(&verdict.set_aside).await?;
    Ok(())
}

/// Reads one batch: the messages to read whole, the headers of the too-large ones.
async fn read_batch<M: Mailbox>(
    collector: &Collector,
    mailbox: &mut M,
    batch: Planned<M::Position>,
    permit: OwnedSemaphorePermit,
) -> Result<Read<M::Position>, IngestError> {
    let mut report = CollectReport::for_collector(&collector.name);
    let mut known = Verdicts {
        acknowledge: Vec::new(),
        set_aside: Vec::new(),
    };
    let mut to_read = Vec::new();
    let mut too_large = HashMap::new();
    let mut too_large_positions = Vec::new();
    for (position, step) in batch.positions.iter().zip(&batch.steps) {
        match *step {
            Step::Acknowledge => {
                report.fetched += 1;
                report.duplicates += 1;
                known.acknowledge.push(position.clone());
            }
            Step::SetAside => known.set_aside.push(position.clone()),
            Step::Read(_) => to_read.push(position.clone()),
            Step::TooLarge(size) => {
                too_large.insert(mailbox.key(position), size);
                too_large_positions.push(position.clone());
            }
            Step::Skipped | Step::Vanished => {}
        }
    }
    let mut read = Vec::new();
    let mut messages = Vec::new();
    if !too_large_positions.is_empty() {
        for (position, headers) in mailbox.read_headers(&too_large_positions).await? {
            let key = mailbox.key(&position);
            let size = too_large[&key];
            read.push(position);
            messages.push(Fetched {
                key,
                content: Content::TooLarge(TooLarge {
                    headers,
                    size,
                    limit: collector.max_message_size,
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
        positions = batch.positions.len(),
        read = read.len(),
        bytes = read_bytes,
        "batch read"
    );
    let checkpoint = mailbox.checkpoint(&batch.positions);
    Ok(InFlight {
        read,
        messages,
        known,
        checkpoint,
        report,
        permit,
    })
}

/// The decode stage, on a blocking thread: decodes and maps each batch read (on every core
/// but the writer's, see `workers.rs`) and hands it to the writer, until the fetch stage is
/// done or the writer gone.
pub(super) fn decode<P>(
    collector: Arc<Collector>,
    mut read: mpsc::Receiver<Read<P>>,
    to_write: mpsc::Sender<Decoded<P>>,
) {
    std::thread::scope(|scope| {
        let mut workers = None;
        while let Some(batch) = read.blocking_recv() {
            let workers = workers.get_or_insert_with(|| Workers::start(scope, collector.clone()));
            let decoded = InFlight {
                messages: workers.prepare(batch.messages),
                read: batch.read,
                known: batch.known,
                checkpoint: batch.checkpoint,
                report: batch.report,
                permit: batch.permit,
            };
            if to_write.blocking_send(decoded).is_err() {
                return;
            }
        }
    });
}
