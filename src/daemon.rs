//! `mailintake run`: every collector on its schedule, each in its own task.
//!
//! A collector never runs twice at once (one task, one loop). A failing collector (server
//! down, wrong password) backs off exponentially, capped, and reports the error in its
//! state, while the others go on. SIGTERM/SIGINT stop new work and let the batch in flight
//! commit and acknowledge; SIGHUP reloads `collectors.toml` (a broken file is rejected and
//! the running configuration stays). systemd is told READY, RELOADING, STOPPING and pinged
//! for its watchdog.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use async_imap::extensions::idle::IdleResponse;
use async_imap::imap_proto::{MailboxDatum, Response};
use chrono::{DateTime, Utc};
use sd_notify::NotifyState;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use crate::config::{CollectMode, Collector, Config, SourceConfig, StorageUrl};
use crate::ingest::{Shutdown, collect};
use crate::source::imap::ImapMailbox;
use crate::store::{RunOutcome, Store, UnknownCustomer};

/// Schedule of a collector that names none: every five minutes.
const DEFAULT_SCHEDULE: &str = "0 */5 * * * *";
/// First retry delay after a failed pass; doubles up to [`BACKOFF_CAP`].
const BACKOFF_START: Duration = Duration::from_secs(2);
const BACKOFF_CAP: Duration = Duration::from_secs(300);
/// How long shutdown waits for passes in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(60);
/// IDLE is re-issued before servers drop it (RFC 2177 allows them to after 30 minutes).
const IDLE_RENEW: Duration = Duration::from_secs(25 * 60);

fn notify_systemd(state: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(false, state) {
        warn!(error = %e, "could not notify systemd");
    }
}

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

fn schedule_of(collector: &Collector) -> cron::Schedule {
    collector.schedule.clone().unwrap_or_else(|| {
        cron::Schedule::from_str(DEFAULT_SCHEDULE).expect("the default schedule is valid")
    })
}

fn next_run(schedule: &cron::Schedule) -> DateTime<Utc> {
    schedule
        .upcoming(Utc)
        .next()
        .unwrap_or_else(|| Utc::now() + chrono::Duration::days(365))
}

async fn sleep_until(at: DateTime<Utc>) {
    let wait = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
    tokio::time::sleep(wait).await;
}

/// Opens the store, retrying with backoff (the database may be on a disk not yet mounted).
async fn open_store(url: &StorageUrl, name: &str, stop: &Shutdown) -> Option<Store> {
    let mut backoff = Backoff::default();
    loop {
        match tokio::task::block_in_place(|| Store::open(url)) {
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

/// One collector's life: a pass at start-up, then one per schedule tick (or IDLE push).
async fn collector_loop(
    collector: Collector,
    storage: StorageUrl,
    unknown_customer: Option<UnknownCustomer>,
    stop: Shutdown,
    pushed: Arc<Notify>,
) {
    let Some(mut store) = open_store(&storage, &collector.name, &stop).await else {
        return;
    };
    store.set_unknown_customer(unknown_customer);
    let schedule = schedule_of(&collector);
    let mut backoff = Backoff::default();
    loop {
        let result = collect(&collector, &mut store, &stop).await;
        let wake_at = match &result {
            Ok(_) => {
                backoff = Backoff::default();
                next_run(&schedule)
            }
            Err(e) => {
                let retry = Utc::now()
                    + chrono::Duration::from_std(backoff.next_delay()).unwrap_or_default();
                error!(collector = %collector.name, error = %e, retry_at = %retry, "collector pass failed");
                retry.min(next_run(&schedule))
            }
        };
        let record = tokio::task::block_in_place(|| match &result {
            Ok(report) => store.record_run(
                &collector.name,
                RunOutcome::Success(&serde_json::to_value(report).unwrap_or_default()),
                Some(wake_at),
            ),
            Err(e) => store.record_run(
                &collector.name,
                RunOutcome::Failure(&e.to_string()),
                Some(wake_at),
            ),
        });
        if let Err(e) = record {
            warn!(collector = %collector.name, error = %e, "could not record the run");
        }
        tokio::select! {
            _ = sleep_until(wake_at) => {}
            _ = pushed.notified() => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// Keeps an IMAP IDLE session open and wakes the collector when the server announces mail.
/// Falls back to the schedule alone if the server has no IDLE.
async fn idle_watch(collector: Collector, stop: Shutdown, pushed: Arc<Notify>) {
    let SourceConfig::Imap(config) = &collector.source else {
        return;
    };
    let mut backoff = Backoff::default();
    while !stop.is_cancelled() {
        match idle_session(&collector, config, &stop, &pushed).await {
            Ok(true) => return,
            Ok(false) => backoff = Backoff::default(),
            Err(e) => {
                let delay = backoff.next_delay();
                warn!(collector = %collector.name, error = %e, retry_in = ?delay, "IDLE session failed");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.cancelled() => return,
                }
            }
        }
    }
}

/// One IDLE connection until the renew deadline; `Ok(true)` means stop watching.
async fn idle_session(
    collector: &Collector,
    config: &crate::config::ImapConfig,
    stop: &Shutdown,
    pushed: &Notify,
) -> Result<bool> {
    let mailbox = ImapMailbox::open(config).await?;
    if !mailbox.has_idle {
        warn!(collector = %collector.name, "the server does not offer IDLE; polling on the schedule only");
        mailbox.logout().await;
        return Ok(true);
    }
    let (session, timeout) = mailbox.into_session();
    let mut idle = session.idle();
    tokio::time::timeout(timeout, idle.init())
        .await
        .context("IDLE start timed out")??;
    let deadline = tokio::time::Instant::now() + IDLE_RENEW;
    let stopped = loop {
        let (wait, _interrupt) = idle.wait_with_timeout(IDLE_RENEW);
        tokio::select! {
            response = tokio::time::timeout_at(deadline, wait) => match response {
                Ok(Ok(IdleResponse::NewData(data))) => {
                    // Only `* N EXISTS` means new mail. NOTE: Dovecot follows it with
                    // `* N RECENT` and echoes our own `\Seen` stores as `* N FETCH`; waking
                    // on those ran three passes per message.
                    if matches!(data.parsed(), Response::MailboxData(MailboxDatum::Exists(_))) {
                        pushed.notify_one();
                    }
                }
                Ok(Ok(_)) | Err(_) => break false,
                Ok(Err(e)) => return Err(e.into()),
            },
            _ = stop.cancelled() => break true,
        }
    };
    if let Ok(Ok(mut session)) = tokio::time::timeout(timeout, idle.done()).await {
        let _ = tokio::time::timeout(timeout, session.logout()).await;
    }
    Ok(stopped)
}

/// The collectors of one configuration, running.
struct Running {
    stop: Shutdown,
    tasks: JoinSet<()>,
}

fn start(config: &Config, parent: &Shutdown) -> Running {
    let stop = parent.child_token();
    let mut tasks = JoinSet::new();
    for collector in &config.collectors {
        let pushed = Arc::new(Notify::new());
        if collector.mode == CollectMode::Idle {
            tasks.spawn(idle_watch(collector.clone(), stop.clone(), pushed.clone()));
        }
        tasks.spawn(collector_loop(
            collector.clone(),
            config.storage.clone(),
            config.unknown_customer.clone(),
            stop.clone(),
            pushed,
        ));
    }
    info!(collectors = config.collectors.len(), "collectors started");
    Running { stop, tasks }
}

impl Running {
    /// Stops the collectors after their batch in flight.
    async fn stop(mut self) {
        self.stop.cancel();
        if tokio::time::timeout(SHUTDOWN_GRACE, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await
        .is_err()
        {
            warn!("collectors did not stop in time; aborting them");
            self.tasks.abort_all();
        }
    }
}

/// Half the watchdog period systemd asked for, if it asked this process.
///
/// NOTE: read by hand with libsystemd's rules: `WATCHDOG_PID`, when set, must be our pid;
/// when unset the watchdog applies to us (sd-notify's helper wants it set).
fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC")
        .ok()?
        .parse()
        .ok()
        .filter(|u| *u > 0)?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    Some(Duration::from_micros(usec / 2))
}

async fn watchdog() {
    let Some(period) = watchdog_interval() else {
        return std::future::pending().await;
    };
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        notify_systemd(&[NotifyState::Watchdog]);
    }
}

/// Runs the daemon until SIGTERM/SIGINT.
pub async fn run(config_path: PathBuf, config: Config) -> Result<()> {
    let mut terminate = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut hangup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    let root = Shutdown::new();
    let mut running = start(&config, &root);
    notify_systemd(&[NotifyState::Ready, NotifyState::Status("collecting")]);
    let watchdog = tokio::spawn(watchdog());
    loop {
        tokio::select! {
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            _ = hangup.recv() => running = reload(&config_path, running, &root).await,
        }
    }
    info!("stopping: letting batches in flight finish");
    notify_systemd(&[NotifyState::Stopping]);
    running.stop().await;
    watchdog.abort();
    info!("stopped");
    Ok(())
}

async fn reload(path: &Path, running: Running, root: &Shutdown) -> Running {
    notify_systemd(&[
        NotifyState::Reloading,
        NotifyState::monotonic_usec_now().unwrap_or(NotifyState::Status("reloading")),
    ]);
    let outcome = match Config::load(path) {
        Ok(config) => {
            info!(path = %path.display(), "configuration reloaded");
            running.stop().await;
            start(&config, root)
        }
        Err(e) => {
            error!(error = %e, "the new configuration is rejected; the running one stays in force");
            running
        }
    };
    notify_systemd(&[NotifyState::Ready]);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut backoff = Backoff::default();
        let delays: Vec<u64> = (0..10).map(|_| backoff.next_delay().as_secs()).collect();
        assert_eq!(delays, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
    }
}
