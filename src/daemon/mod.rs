//! `mailintake run`: every collector on its schedule, each in its own task.
//!
//! A collector never runs twice at once (one task, one loop; see `collector.rs`). A failing
//! collector (server down, wrong password) backs off exponentially, capped, and reports the
//! error in its state, while the others go on. [`run`] takes its stop and reload requests as
//! [`Signals`]: `main` wires them to SIGTERM/SIGINT and SIGHUP ([`Signals::from_os`]), a test
//! to a token and a channel. Stopping lets the batch in flight commit and acknowledge;
//! reloading re-reads `collectors.toml` (a broken file is rejected and the running
//! configuration stays). Beside the collectors one task delivers queued notifications
//! (`outbox.rs`), woken by passes that stored records. Several daemons may share one
//! database: a collector runs only in the daemon that holds its lease (`lease.rs`). systemd is told READY, RELOADING, STOPPING and pinged for its
//! watchdog (`systemd.rs`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use sd_notify::NotifyState;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use crate::config::{Config, SourceConfig, StorageUrl};
use crate::ingest::Shutdown;
use crate::source::blocking;
use crate::store;

mod collector;
mod lease;
mod outbox;
mod systemd;

pub use collector::{Backoff, schedule_of};
pub use lease::{IGNORE_LEASES_ENV, holding, leases_ignored, this_process};

/// How long shutdown waits for passes in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(60);

/// What asks the daemon to stop or to reload.
pub struct Signals {
    /// Cancelled to stop: passes in flight commit their batch, then [`run`] returns.
    pub shutdown: Shutdown,
    /// Each message reloads the configuration file.
    pub reload: mpsc::Receiver<()>,
}

impl Signals {
    /// SIGTERM and SIGINT stop, SIGHUP reloads. Call it inside the runtime, before
    /// [`run`], so no signal sent once the daemon is READY is missed.
    pub fn from_os() -> Result<Signals> {
        let mut terminate = signal(SignalKind::terminate()).context("SIGTERM handler")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("SIGINT handler")?;
        let mut hangup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
        let shutdown = Shutdown::new();
        // NOTE: one slot: SIGHUPs that arrive during a reload fold into one more reload.
        let (reload_tx, reload) = mpsc::channel(1);
        let stop = shutdown.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = terminate.recv() => break,
                    _ = interrupt.recv() => break,
                    _ = hangup.recv() => { let _ = reload_tx.try_send(()); }
                }
            }
            stop.cancel();
        });
        Ok(Signals { shutdown, reload })
    }
}

/// The collectors of one configuration, running.
struct Running {
    stop: Shutdown,
    tasks: JoinSet<()>,
    /// The lease keeper and the token that makes it release its leases (none when leases
    /// are ignored).
    keeper: Option<(Shutdown, tokio::task::JoinHandle<()>)>,
}

fn start(config: &Config, parent: &Shutdown) -> Running {
    let stop = parent.child_token();
    let mut tasks = JoinSet::new();
    let outbox = Arc::new(Notify::new());
    tasks.spawn(outbox::run(
        config.smtp.clone(),
        config.storage.clone(),
        stop.clone(),
        outbox.clone(),
    ));
    // A collector without a mailbox takes its forms over HTTP only: no pass to run.
    let mailboxes: Vec<_> = config
        .collectors
        .iter()
        .filter(|c| c.source != SourceConfig::HttpOnly)
        .collect();
    let (keeper, mut slots) = if lease::leases_ignored() {
        (None, Default::default())
    } else {
        let names: Vec<String> = mailboxes.iter().map(|c| c.name.clone()).collect();
        let (keeper, slots) =
            lease::Keeper::new(&names, config.storage.clone(), config.storage_lease);
        let release = Shutdown::new();
        let handle = tokio::spawn(keeper.run(stop.clone(), release.clone()));
        (Some((release, handle)), slots)
    };
    for collector in mailboxes {
        let pushed = Arc::new(Notify::new());
        let slot = slots
            .remove(&collector.name)
            .unwrap_or_else(|| lease::Slot::always(&stop));
        tasks.spawn(collector::run(
            collector.clone(),
            config.storage.clone(),
            config.unknown_customer.clone(),
            config.notify.clone(),
            stop.clone(),
            (slot, pushed),
            outbox.clone(),
        ));
    }
    info!(collectors = config.collectors.len(), "collectors started");
    Running {
        stop,
        tasks,
        keeper,
    }
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
        // NOTE: only now, with no batch in flight, may another daemon take the collectors.
        if let Some((release, keeper)) = self.keeper {
            release.cancel();
            let _ = keeper.await;
        }
    }
}

/// Runs the daemon until `signals.shutdown` is cancelled, reloading `config_path` on each
/// `signals.reload`.
pub async fn run(config_path: PathBuf, config: Config, signals: Signals) -> Result<()> {
    let Signals {
        shutdown,
        mut reload,
    } = signals;
    check_database(&config.storage)?;
    if lease::leases_ignored() {
        warn!(
            "{IGNORE_LEASES_ENV}=1: every collector runs here without a lease, whatever other daemons run (for tests and emergencies only)"
        );
    }
    let mut running = start(&config, &shutdown);
    systemd::notify(&[NotifyState::Ready, NotifyState::Status("collecting")]);
    let watchdog = tokio::spawn(systemd::watchdog());
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(()) = reload.recv() => running = reload_config(&config_path, running, &shutdown).await,
        }
    }
    info!("stopping: letting batches in flight finish");
    systemd::notify(&[NotifyState::Stopping]);
    running.stop().await;
    watchdog.abort();
    info!("stopped");
    Ok(())
}

/// Refuses to start on a damaged database (`PRAGMA quick_check`, which also clears the
/// damage note of a repaired one). A database that cannot be opened yet (a disk not yet
/// mounted) is left to the collectors, which retry.
fn check_database(storage: &StorageUrl) -> Result<()> {
    match blocking(|| store::open_checked(storage)) {
        Ok(_) => Ok(()),
        Err(e) if e.is_damage() => Err(e).context("refusing to start"),
        Err(e) => {
            warn!(error = %e, "cannot check the database yet; the collectors retry opening it");
            Ok(())
        }
    }
}

async fn reload_config(path: &Path, running: Running, root: &Shutdown) -> Running {
    systemd::notify(&[
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
    systemd::notify(&[NotifyState::Ready]);
    outcome
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Instant;

    use super::*;
    use crate::ingest::testing::{lead, maildir_config};
    use crate::store::Store;

    /// Waits (real time, the daemon does real I/O) until `done` holds.
    async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        let started = Instant::now();
        while !done() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "timed out waiting until {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn acknowledged(dir: &Path, maildir: &str) -> bool {
        std::fs::read_dir(dir.join(maildir).join("new"))
            .unwrap()
            .next()
            .is_none()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_in_process_reloads_on_request_and_stops_when_cancelled() {
        let dir = tempfile::tempdir().unwrap();
        let config = maildir_config(dir.path(), &["first"], "");
        std::fs::write(dir.path().join("first/new/1.M1.mx"), lead("a")).unwrap();
        let shutdown = Shutdown::new();
        let (reload, reload_rx) = mpsc::channel(1);
        let daemon = tokio::spawn(run(
            dir.path().join("collectors.toml"),
            config.clone(),
            Signals {
                shutdown: shutdown.clone(),
                reload: reload_rx,
            },
        ));
        wait_until("the first collector has run", || {
            acknowledged(dir.path(), "first")
        })
        .await;

        // A second collector appears in the file; a reload request starts it.
        maildir_config(dir.path(), &["first", "second"], "");
        std::fs::write(dir.path().join("second/new/2.M1.mx"), lead("b")).unwrap();
        reload.send(()).await.unwrap();
        wait_until("the second collector has run", || {
            acknowledged(dir.path(), "second")
        })
        .await;

        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(20), daemon)
            .await
            .expect("the daemon stops when cancelled")
            .unwrap()
            .unwrap();
        let mut store = Store::open(&config.storage).unwrap();
        let states = store.collector_states().unwrap();
        let succeeded: Vec<&str> = states
            .iter()
            .filter(|s| s.last_success_at.is_some() && s.last_error.is_none())
            .map(|s| s.collector.as_str())
            .collect();
        assert_eq!(succeeded, ["first", "second"]);
    }
}
