//! The decode stage's threads, started once per pass and kept for all its batches.
//!
//! Starting threads for every batch gave each one a fresh stack and a fresh allocator heap,
//! so a drain spent a fifth of its time in the kernel handing out zeroed pages; these
//! threads, and the memory they decode in, are reused from batch to batch. Each has a stack
//! of [`DECODE_STACK_BYTES`], like the per-batch ones (see `prepare.rs`), and decodes with
//! [`prepare_guarded`], so a decoder panic quarantines its message and the thread goes on.

use std::ops::Range;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::Scope;

use super::prepare::{DECODE_STACK_BYTES, prepare_all};
use super::{Content, Fetched, Prepared, PreparedBatch, assemble_batch, prepare_guarded};
use crate::config::Collector;

/// A batch needs this many messages per thread before another thread is worth using.
const MIN_PER_THREAD: usize = 16;

/// A batch's raw messages and the part of them a worker decodes. The worker drops its
/// handle before it answers, so the batch gets its bytes back without a copy; a worker that
/// died leaves them readable, and its part is decoded anyway.
type Job = (Arc<Vec<Vec<u8>>>, Range<usize>);
type Done = Vec<Prepared>;

/// One thread: where its jobs go in and come back.
struct Worker {
    jobs: Sender<Job>,
    done: Receiver<Done>,
}

/// The decode threads of one pass. They end when this is dropped (their job channels
/// close), and the scope they were started in waits for them.
pub(super) struct Workers {
    collector: Arc<Collector>,
    workers: Vec<Worker>,
}

/// One thread per core but one, and at least one.
///
/// The writer is the pass's serial stage (its commits run on a core of their own), and
/// decoding a batch takes well under half the time committing it does: on 2 cores one
/// decode thread keeps the writer fed, while a second one only took CPU time from the writer
/// (a 5,000-message IMAP drain: median 0.685 s with two decode threads, 0.650 s with one).
fn decode_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    cores.saturating_sub(1).max(1)
}

impl Workers {
    /// Starts [`decode_threads`] threads in `scope` (fewer if some cannot be started).
    pub(super) fn start<'scope>(
        scope: &'scope Scope<'scope, '_>,
        collector: Arc<Collector>,
    ) -> Workers {
        let threads = decode_threads();
        let workers = (0..threads)
            .filter_map(|_| {
                let (jobs, inbox) = channel::<Job>();
                let (outbox, done) = channel::<Done>();
                let collector = collector.clone();
                std::thread::Builder::new()
                    .name("decode".into())
                    .stack_size(DECODE_STACK_BYTES)
                    .spawn_scoped(scope, move || {
                        for (raws, part) in inbox {
                            let prepared = raws[part]
                                .iter()
                                .map(|raw| {
                                    prepare_guarded(raw, &collector.rules, &collector.format)
                                })
                                .collect();
                            drop(raws);
                            if outbox.send(prepared).is_err() {
                                return;
                            }
                        }
                    })
                    .ok()
                    .map(|_| Worker { jobs, done })
            })
            .collect();
        Workers { collector, workers }
    }

    /// Decodes and maps `messages` on the threads, as [`super::prepare_batch`] does.
    pub(super) fn prepare(&self, mut messages: Vec<Fetched>) -> PreparedBatch {
        let raws: Vec<Vec<u8>> = messages
            .iter_mut()
            .filter_map(|m| match &mut m.content {
                Content::Whole(raw) => Some(std::mem::take(raw)),
                Content::TooLarge(_) => None,
            })
            .collect();
        let total = raws.len();
        let raws = Arc::new(raws);
        let threads = self.workers.len().min(total / MIN_PER_THREAD).max(1);
        let per_thread = total.div_ceil(threads).max(1);
        let parts: Vec<Range<usize>> = (0..total)
            .step_by(per_thread)
            .map(|start| start..(start + per_thread).min(total))
            .collect();
        let sent: Vec<(Range<usize>, Option<&Worker>)> = parts
            .into_iter()
            .zip(self.workers.iter().map(Some).chain(std::iter::repeat(None)))
            .map(|(part, worker)| {
                let worker = worker.filter(|w| w.jobs.send((raws.clone(), part.clone())).is_ok());
                (part, worker)
            })
            .collect();
        let mut prepared = Vec::with_capacity(total);
        for (part, worker) in sent {
            match worker.map(|w| w.done.recv()) {
                Some(Ok(done)) => prepared.extend(done),
                // No thread to take it, or it is gone: decoded on threads of its own.
                _ => {
                    let refs: Vec<&[u8]> = raws[part].iter().map(Vec::as_slice).collect();
                    let rules = &self.collector.rules;
                    prepared.extend(prepare_all(&refs, rules, &self.collector.format));
                }
            }
        }
        // NOTE: every worker dropped its handle before answering; a copy only if one died
        // holding it.
        let raws = Arc::try_unwrap(raws).unwrap_or_else(|shared| (*shared).clone());
        let mut raws = raws.into_iter();
        for message in &mut messages {
            if let Content::Whole(raw) = &mut message.content {
                *raw = raws.next().expect("each raw comes back");
            }
        }
        assemble_batch(&self.collector, messages, prepared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::prepare_batch;
    use crate::ingest::testing::{form_message, lead, maildir_config};

    /// Messages of every fate, `n` of them, keyed by their index.
    fn messages(n: usize) -> Vec<Fetched> {
        (0..n)
            .map(|i| {
                let id = format!("m{i}");
                let raw = match i % 4 {
                    0 | 1 => lead(&id),
                    2 => form_message(&id, "Hello", "{}"),
                    _ => form_message(&id, "ORDER: 2", "{\"Тема\": "),
                };
                Fetched::whole(format!("key:{i}"), raw)
            })
            .collect()
    }

    /// Per committed message: its key, whether it maps, its bytes.
    type Items = Vec<(String, bool, Vec<u8>)>;

    /// What a batch says of each message: where it went (or that it was skipped), and each
    /// committed one's [`Items`] entry.
    fn summary(batch: &PreparedBatch) -> (Vec<Option<usize>>, Items) {
        let items = batch
            .items
            .iter()
            .map(|i| (i.source_key.clone(), i.record.is_ok(), i.raw.clone()))
            .collect();
        (batch.slots.clone(), items)
    }

    #[test]
    fn kept_threads_prepare_batch_after_batch_as_fresh_ones_do() {
        let dir = tempfile::tempdir().unwrap();
        let config = maildir_config(dir.path(), &["web"], "");
        let collector = Arc::new(config.collectors[0].clone());
        std::thread::scope(|scope| {
            let workers = Workers::start(scope, collector.clone());
            // Small batches go to one thread, large ones are split; the same threads serve all.
            for n in [0, 1, 5, 100, 3, 257] {
                let kept = workers.prepare(messages(n));
                let fresh = prepare_batch(&collector, messages(n));
                assert_eq!(kept.count, n);
                assert_eq!(summary(&kept), summary(&fresh), "batch of {n}");
                assert_eq!(kept.skipped, fresh.skipped);
                assert_eq!(kept.skipped.len(), n / 4 + usize::from(n % 4 > 2));
            }
        });
    }
}
