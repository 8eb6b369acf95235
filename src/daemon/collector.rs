//! One collector's life in the daemon: a pass at start-up, then one per schedule tick or
//! IDLE push; after a failure, retries with capped exponential backoff, while the other
//! collectors go on. Backoff wins over the schedule: a collector ticking every 5 s must not
//! hammer a dead server every 5 s, so after a failure the next pass waits the backoff delay
//! even when a tick comes sooner (and no longer than it when the tick is later).

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tracing::{error, warn};

use super::lease::Slot;
use crate::config::{CollectMode, Collector, NotifyRules, StorageUrl};
use crate::domain::UnknownCustomer;
use crate::ingest::{
    CollectReport, FailedPass, Held, IngestError, Shutdown, collect_holding, record_run,
};
use crate::source::Mailbox;
use crate::source::blocking;
use crate::source::imap::Features;
use crate::source::imap::idle::Wake;
use crate::store::Store;

/// Schedule of a collector that names none: every five minutes.
const DEFAULT_SCHEDULE: &str = "0 */5 * * * *";
/// First retry delay after a failure; doubles up to [`BACKOFF_CAP`].
const BACKOFF_START: Duration = Duration::from_secs(2);
const BACKOFF_CAP: Duration = Duration::from_secs(300);
/// The wait when a schedule has no next tick.
const NO_NEXT_TICK: Duration = Duration::from_secs(365 * 24 * 3600);

/// Exponential backoff, capped.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: BACKOFF_START,
        }
    }
}

impl Backoff {
    /// The delay before the next retry; each call doubles the one after, up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(BACKOFF_CAP);
        delay
    }
}

/// When a collector runs next: at its schedule's next tick after a success, after the
/// backoff delay after a failure.
pub(super) struct Cadence {
    schedule: cron::Schedule,
    backoff: Backoff,
}

/// The schedule `collector` runs on: its own, else the daemon's default.
pub fn schedule_of(collector: &Collector) -> cron::Schedule {
    collector.schedule.clone().unwrap_or_else(|| {
        cron::Schedule::from_str(DEFAULT_SCHEDULE).expect("the default schedule is valid")
    })
}

impl Cadence {
    pub(super) fn of(collector: &Collector) -> Cadence {
        Cadence {
            schedule: schedule_of(collector),
            backoff: Backoff::default(),
        }
    }

    /// How long to wait after a pass that ended at `now`, successfully or not.
    fn wait_after(&mut self, succeeded: bool, now: DateTime<Utc>) -> Duration {
        if !succeeded {
            // NOTE: the backoff alone, not capped by the next tick: a schedule faster than
            // the backoff would otherwise turn every tick into a retry (issue 15).
            return self.backoff.next_delay();
        }
        self.backoff = Backoff::default();
        self.schedule
            .after(&now)
            .next()
            .map_or(NO_NEXT_TICK, |tick| {
                (tick - now).to_std().unwrap_or(Duration::ZERO)
            })
    }
}

/// One collector's passes, as [`drive`] runs them; a trait so the timing is tested without
/// a mailbox or a database.
pub(super) trait Pass {
    fn run(&mut self) -> impl Future<Output = Result<CollectReport, FailedPass>> + Send;
    /// Records how the pass ended and when the next one is due.
    fn record(&mut self, result: &Result<CollectReport, FailedPass>, next_run: DateTime<Utc>);
    /// Waits for the next pass: at most `wait`, less if `pushed` is notified or `stop`
    /// cancelled (or, for a collector idling on its connection, the server announces mail).
    fn wait(
        &mut self,
        wait: Duration,
        pushed: &Notify,
        stop: &Shutdown,
    ) -> impl Future<Output = ()> + Send;
}

/// The wait of a collector that does not idle: a timer, a push, or stop.
async fn sleep_or_push(wait: Duration, pushed: &Notify, stop: &Shutdown) {
    tokio::select! {
        _ = tokio::time::sleep(wait) => {}
        _ = pushed.notified() => {}
        _ = stop.cancelled() => {}
    }
}

/// The real pass: the collector over its mailbox, into the store.
struct CollectorPass {
    collector: Collector,
    storage: StorageUrl,
    unknown_customer: Option<UnknownCustomer>,
    /// The `[[notify]]` rules the store applies in each commit.
    notify: Arc<NotifyRules>,
    /// `None` after a pass failed in the store: the next pass opens the configured file
    /// anew, since the old connection may write into a deleted file, or hold a file opened
    /// read-only that has since been made writable.
    store: Option<Store>,
    stop: Shutdown,
    /// Woken after a pass stored records: their notifications are queued.
    outbox: Arc<Notify>,
    /// The IMAP connection of the last pass, kept while it idles until the next one.
    held: Option<Held>,
    /// Delay before idling again after IDLE failed on a connection whose pass succeeded.
    idle_backoff: Backoff,
    /// Whether the collector said once that its server cannot push (`mode = "idle"`).
    told_no_push: bool,
}

impl CollectorPass {
    /// Whether `features` let this collector wait with IDLE; says once why not, when its
    /// `mode = "idle"` asks for it.
    fn idles(&mut self, features: &Features) -> bool {
        if self.collector.mode != CollectMode::Idle {
            return false;
        }
        let why_not = if !features.idle {
            "the server does not offer IDLE; polling on the schedule only"
        } else if features.idle_polls {
            "the server's IDLE only polls (Courier without IMAP_ENHANCEDIDLE=1); polling on the schedule only"
        } else {
            return true;
        };
        if !std::mem::replace(&mut self.told_no_push, true) {
            warn!(collector = %self.collector.name, "{why_not}");
        }
        false
    }
}

impl Pass for CollectorPass {
    async fn run(&mut self) -> Result<CollectReport, FailedPass> {
        let store = match &mut self.store {
            Some(store) => store,
            None => {
                let mut store = blocking(|| Store::open(&self.storage))
                    .map_err(|e| FailedPass::at_start(&self.collector.name, e))?;
                store.set_unknown_customer(self.unknown_customer.clone());
                store.set_notify_rules(self.notify.clone());
                self.store.insert(store)
            }
        };
        collect_holding(&self.collector, store, &self.stop, &mut self.held).await
    }

    /// Idles on the last pass's connection when the server pushes, else logs it out and
    /// sleeps. IDLE is renewed within
    /// [`IDLE_RENEW`](crate::source::imap::idle::IDLE_RENEW); when it fails, the connection is
    /// dropped and the next pass connects anew (after a backoff delay, so a server whose
    /// IDLE keeps failing is not drained in a loop).
    async fn wait(&mut self, wait: Duration, pushed: &Notify, stop: &Shutdown) {
        let until = tokio::time::Instant::now() + wait;
        loop {
            let Some(held) = self.held.take() else {
                let left = until.saturating_duration_since(tokio::time::Instant::now());
                return sleep_or_push(left, pushed, stop).await;
            };
            if stop.is_cancelled() || !self.idles(&held.features) {
                held.mailbox.finish().await;
                continue;
            }
            let interrupt = async {
                tokio::select! {
                    _ = pushed.notified() => {}
                    _ = stop.cancelled() => {}
                }
            };
            match held.mailbox.idle(until, interrupt).await {
                Ok((mailbox, wake)) => {
                    self.held = Some(Held {
                        mailbox,
                        features: held.features,
                    });
                    if wake != Wake::Deadline {
                        self.idle_backoff = Backoff::default();
                    }
                    if wake == Wake::Deadline && tokio::time::Instant::now() < until {
                        continue;
                    }
                    if stop.is_cancelled()
                        && let Some(held) = self.held.take()
                    {
                        held.mailbox.finish().await;
                    }
                    return;
                }
                Err(e) => {
                    let delay = self.idle_backoff.next_delay();
                    warn!(collector = %self.collector.name, error = %e, retry_in = ?delay, "IDLE failed; reconnecting");
                    let left = until.saturating_duration_since(tokio::time::Instant::now());
                    return sleep_or_push(delay.min(left), pushed, stop).await;
                }
            }
        }
    }

    fn record(&mut self, result: &Result<CollectReport, FailedPass>, next_run: DateTime<Utc>) {
        let name = &self.collector.name;
        if let Err(e) = result {
            error!(collector = %name, error = %e, retry_at = %next_run, "collector pass failed");
        }
        if let Some(store) = &mut self.store {
            blocking(|| record_run(store, name, result, Some(next_run)));
        }
        // A failed pass may have committed batches (and their notifications) before failing.
        let accepted = match result {
            Ok(report) => report.accepted,
            Err(failed) => failed.report.accepted,
        };
        if accepted > 0 {
            self.outbox.notify_one();
        }
        if let Err(failed) = result
            && let IngestError::Store(_) = *failed.error
        {
            // NOTE: dropped before the next open, so SQLite closes the old files first.
            self.store = None;
        }
    }
}

/// Runs `pass` at start, then whenever `cadence` says or `pushed` is notified, until `stop`.
pub(super) async fn drive(
    mut pass: impl Pass,
    mut cadence: Cadence,
    stop: &Shutdown,
    pushed: &Notify,
) {
    loop {
        let result = pass.run().await;
        let now = Utc::now();
        let wait = cadence.wait_after(result.is_ok(), now);
        pass.record(
            &result,
            now + chrono::Duration::from_std(wait).unwrap_or_default(),
        );
        pass.wait(wait, pushed, stop).await;
        if stop.is_cancelled() {
            return;
        }
    }
}

/// Opens the store, retrying with backoff (the database may be on a disk not yet mounted).
pub(super) async fn open_store(url: &StorageUrl, name: &str, stop: &Shutdown) -> Option<Store> {
    let mut backoff = Backoff::default();
    loop {
        match blocking(|| Store::open(url)) {
            Ok(store) => return Some(store),
            Err(e) => {
                let delay = backoff.next_delay();
                error!(collector = name, error = %e, retry_in = ?delay, "cannot open the database");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.cancelled() => return None,
                }
            }
        }
    }
}

/// One collector's task: waits for its lease, opens its store, then [`drive`]s its passes
/// until the lease is lost (then waits for it again) or `stop`.
pub(super) async fn run(
    collector: Collector,
    storage: StorageUrl,
    unknown_customer: Option<UnknownCustomer>,
    notify: Arc<NotifyRules>,
    stop: Shutdown,
    (mut slot, pushed): (Slot, Arc<Notify>),
    outbox: Arc<Notify>,
) {
    while let Some(held) = slot.held(&stop).await {
        let Some(mut store) = open_store(&storage, &collector.name, &held).await else {
            continue;
        };
        store.set_unknown_customer(unknown_customer.clone());
        store.set_notify_rules(notify.clone());
        let cadence = Cadence::of(&collector);
        let pass = CollectorPass {
            collector: collector.clone(),
            storage: storage.clone(),
            unknown_customer: unknown_customer.clone(),
            notify: notify.clone(),
            store: Some(store),
            stop: held.clone(),
            outbox: outbox.clone(),
            held: None,
            idle_backoff: Backoff::default(),
            told_no_push: false,
        };
        drive(pass, cadence, &held, &pushed).await;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use chrono::TimeZone;
    use tokio::time::Instant;

    use super::*;
    use crate::source::SourceError;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut backoff = Backoff::default();
        let delays: Vec<u64> = (0..10).map(|_| backoff.next_delay().as_secs()).collect();
        assert_eq!(delays, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
    }

    fn every_five_minutes() -> Cadence {
        Cadence {
            schedule: cron::Schedule::from_str(DEFAULT_SCHEDULE).unwrap(),
            backoff: Backoff::default(),
        }
    }

    #[test]
    fn a_failure_retries_after_the_backoff_even_past_the_next_tick() {
        let mut cadence = every_five_minutes();
        let now = Utc.with_ymd_and_hms(2026, 6, 1, 12, 1, 30).unwrap();
        assert_eq!(cadence.wait_after(true, now), Duration::from_secs(210));
        let waits: Vec<u64> = (0..10)
            .map(|_| cadence.wait_after(false, now).as_secs())
            .collect();
        assert_eq!(waits, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(cadence.wait_after(true, now), Duration::from_secs(210));
        assert_eq!(
            cadence.wait_after(false, now),
            Duration::from_secs(2),
            "a success resets the backoff"
        );
    }

    /// A pass that plays a script of outcomes and notes when (in tokio's paused time) it
    /// ran; it cancels `stop` when the script runs out.
    struct Scripted {
        outcomes: VecDeque<bool>,
        ran_at: Vec<Instant>,
        stop: Shutdown,
    }

    impl Scripted {
        fn new(outcomes: &[bool], stop: &Shutdown) -> Scripted {
            Scripted {
                outcomes: outcomes.iter().copied().collect(),
                ran_at: Vec::new(),
                stop: stop.clone(),
            }
        }

        /// Seconds between consecutive passes.
        fn gaps(&self) -> Vec<u64> {
            self.ran_at
                .windows(2)
                .map(|w| (w[1] - w[0]).as_secs())
                .collect()
        }
    }

    impl Pass for &mut Scripted {
        async fn run(&mut self) -> Result<CollectReport, FailedPass> {
            self.ran_at.push(Instant::now());
            match self.outcomes.pop_front() {
                Some(true) => Ok(CollectReport::for_collector("scripted")),
                Some(false) => Err(FailedPass::at_start(
                    "scripted",
                    SourceError::NotAMaildir {
                        path: "scripted".into(),
                    },
                )),
                None => {
                    self.stop.cancel();
                    Ok(CollectReport::for_collector("scripted"))
                }
            }
        }

        fn record(&mut self, _: &Result<CollectReport, FailedPass>, _: DateTime<Utc>) {}

        async fn wait(&mut self, wait: Duration, pushed: &Notify, stop: &Shutdown) {
            sleep_or_push(wait, pushed, stop).await;
        }
    }

    fn yearly() -> Cadence {
        Cadence {
            schedule: cron::Schedule::from_str("0 0 0 1 1 *").unwrap(),
            backoff: Backoff::default(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn failed_passes_are_retried_with_backoff_and_a_success_waits_for_the_schedule() {
        let stop = Shutdown::new();
        let mut pass = Scripted::new(&[false, false, false, true, false], &stop);
        drive(&mut pass, yearly(), &stop, &Notify::new()).await;
        let gaps = pass.gaps();
        assert_eq!(gaps.len(), 5, "{gaps:?}");
        assert_eq!(gaps[..3], [2, 4, 8]);
        assert!(
            gaps[3] > 24 * 3600,
            "after a success, the next tick: {gaps:?}"
        );
        assert_eq!(gaps[4], 2, "the success reset the backoff");
    }

    /// Issue 15: a 5-second schedule once capped every retry at 5 s.
    #[tokio::test(start_paused = true)]
    async fn a_fast_schedule_does_not_shorten_the_backoff() {
        let stop = Shutdown::new();
        let mut pass = Scripted::new(&[false; 7], &stop);
        let every_five_seconds = Cadence {
            schedule: cron::Schedule::from_str("*/5 * * * * *").unwrap(),
            backoff: Backoff::default(),
        };
        drive(&mut pass, every_five_seconds, &stop, &Notify::new()).await;
        assert_eq!(pass.gaps(), [2, 4, 8, 16, 32, 64, 128]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_push_runs_a_pass_before_the_tick_and_stop_ends_the_wait() {
        let stop = Shutdown::new();
        let pushed = Arc::new(Notify::new());
        let pusher = {
            let pushed = pushed.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(10)).await;
                pushed.notify_one();
            })
        };
        let mut pass = Scripted::new(&[true], &stop);
        drive(&mut pass, yearly(), &stop, &pushed).await;
        pusher.await.unwrap();
        assert_eq!(pass.gaps(), [10]);

        // Stopped while waiting for a tick a year away: returns at once.
        let stop = Shutdown::new();
        let mut pass = Scripted::new(&[true, true], &stop);
        let started = Instant::now();
        let canceller = {
            let stop = stop.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(5)).await;
                stop.cancel();
            })
        };
        drive(&mut pass, yearly(), &stop, &Notify::new()).await;
        canceller.await.unwrap();
        assert_eq!(pass.ran_at.len(), 1);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }
}
