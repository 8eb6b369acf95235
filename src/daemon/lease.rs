//! Work sharing: a collector runs in this daemon only while this daemon holds its lease
//! (`store/lease.rs`), so several daemons on one database run each collector once.
//!
//! One keeper task per daemon holds the leases. Every third of a lease length
//! (`[storage] lease-secs`) it renews the leases it holds and tries to take the free ones
//! (never taken, released, or expired because their holder died). A collector waits in
//! [`Slot::held`] for its lease and runs its passes under the token it gets there; when the
//! lease is lost (another daemon took it over after this one failed to renew it in time)
//! the token is cancelled, so the pass stops after its batch in flight, the IDLE connection
//! is dropped, and the collector waits for its lease again. A dead daemon's leases expire one
//! lease length after their last renewal, and a survivor's next attempt, at most a third of a
//! lease later, takes them: within two lease lengths.
//!
//! The collectors are shared: each keeper announces its daemon at every tick (`daemons`
//! table) and holds at most the configured collectors divided by the daemons alive, rounded
//! up. A daemon holding more (it started first, or another joined) hands the surplus over:
//! its collectors stop after their batch in flight and the rows are deleted a tick later,
//! for the others to take. A dead daemon's announcement expires with its leases, and the
//! survivors' shares grow.
//!
//! The keeper trusts a lease only until one lease length after the renewal that last
//! succeeded began, by this process's monotonic clock: when the database stops answering,
//! the collectors stop before another daemon may take their leases over.
//!
//! `MAILINTAKE_IGNORE_LEASES=1` runs every collector without a lease: for tests and
//! emergencies only (the ledger's unique constraints still refuse a second record).

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use crate::config::StorageUrl;
use crate::ingest::Shutdown;
use crate::source::blocking;
use crate::store::{Acquisition, LeaseHolder, Store};

/// The environment switch that makes a daemon (and `collect`) run without leases.
pub const IGNORE_LEASES_ENV: &str = "MAILINTAKE_IGNORE_LEASES";

/// Whether [`IGNORE_LEASES_ENV`] is set to `1`.
pub fn leases_ignored() -> bool {
    std::env::var(IGNORE_LEASES_ENV).is_ok_and(|v| v == "1")
}

/// This process as a lease holder: a random id drawn once, the host name and the pid.
pub fn this_process() -> LeaseHolder {
    static ME: std::sync::OnceLock<LeaseHolder> = std::sync::OnceLock::new();
    ME.get_or_init(|| {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).expect("the OS random source works");
        LeaseHolder {
            id: bytes.iter().map(|b| format!("{b:02x}")).collect(),
            // NOTE: Linux's own answer to gethostname(2), without unsafe code or a crate.
            host: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "localhost".to_string()),
            pid: i64::from(std::process::id()),
        }
    })
    .clone()
}

/// How often leases are renewed and free ones tried: a third of a lease.
fn renew_every(length: Duration) -> Duration {
    (length / 3).max(Duration::from_millis(100))
}

/// A collector's side of its lease: the token it runs under while the lease is held.
pub(super) struct Slot(watch::Receiver<Option<Shutdown>>);

impl Slot {
    /// A slot that is always held, under `stop` (leases ignored).
    pub(super) fn always(stop: &Shutdown) -> Slot {
        Slot(watch::channel(Some(stop.clone())).1)
    }

    /// Waits until the lease is held and returns the token cancelled when it is lost (or
    /// the daemon stops); `None` once `stop` is cancelled.
    pub(super) async fn held(&mut self, stop: &Shutdown) -> Option<Shutdown> {
        loop {
            if stop.is_cancelled() {
                return None;
            }
            let current = self.0.borrow_and_update().clone();
            if let Some(token) = current.filter(|t| !t.is_cancelled()) {
                return Some(token);
            }
            tokio::select! {
                changed = self.0.changed() => {
                    if changed.is_err() {
                        stop.cancelled().await;
                    }
                }
                _ = stop.cancelled() => {}
            }
        }
    }
}

/// A lease this daemon holds.
struct Held {
    /// Cancelled when the lease is lost.
    token: Shutdown,
    /// Until when it may be trusted without a renewal.
    trusted_until: Instant,
}

/// One collector's entry in the keeper.
struct Entry {
    tx: watch::Sender<Option<Shutdown>>,
    held: Option<Held>,
}

/// The daemon's lease keeper: see the module doc.
pub(super) struct Keeper {
    me: LeaseHolder,
    storage: StorageUrl,
    length: Duration,
    entries: BTreeMap<String, Entry>,
    store: Option<Store>,
    /// Leases given up to share the work: their collectors were told to stop; the rows are
    /// deleted at the next tick, once the batch in flight has had a third of a lease to end.
    handing_over: Vec<String>,
}

impl Keeper {
    /// A keeper for `collectors`, and each one's [`Slot`].
    pub(super) fn new(
        collectors: &[String],
        storage: StorageUrl,
        length: Duration,
    ) -> (Keeper, BTreeMap<String, Slot>) {
        let mut entries = BTreeMap::new();
        let mut slots = BTreeMap::new();
        for name in collectors {
            let (tx, rx) = watch::channel(None);
            entries.insert(name.clone(), Entry { tx, held: None });
            slots.insert(name.clone(), Slot(rx));
        }
        let keeper = Keeper {
            me: this_process(),
            storage,
            length,
            entries,
            store: None,
            handing_over: Vec::new(),
        };
        (keeper, slots)
    }

    /// Keeps the leases until `release` is cancelled, then gives them back. Collectors get
    /// tokens that are children of `collectors`; once it is cancelled (the daemon stops)
    /// no new lease is taken, but the held ones are still renewed, so batches in flight
    /// finish under their lease.
    pub(super) async fn run(mut self, collectors: Shutdown, release: Shutdown) {
        let every = renew_every(self.length);
        loop {
            self.tick(&collectors);
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = release.cancelled() => break,
            }
        }
        self.release();
    }

    /// The collectors whose lease this daemon holds (`held`), or the others.
    fn collectors(&self, held: bool) -> Vec<String> {
        self.entries
            .iter()
            .filter(|(_, e)| e.held.is_some() == held)
            .map(|(name, _)| name.clone())
            .collect()
    }

    fn tick(&mut self, collectors: &Shutdown) {
        let started = Instant::now();
        self.release_handed_over();
        if self.renew(started).is_err() || collectors.is_cancelled() {
            return;
        }
        let Some(share) = self.share() else { return };
        self.hand_over_beyond(share);
        let free = self.collectors(false);
        let (me, length) = (self.me.clone(), self.length);
        for name in free {
            if self.collectors(true).len() >= share {
                break;
            }
            let Some(store) = self.store() else { return };
            match blocking(|| store.acquire_lease(&name, &me, length)) {
                Ok(Acquisition::Acquired) => {
                    info!(collector = %name, "lease acquired: this daemon runs the collector");
                    let token = collectors.child_token();
                    let entry = self.entries.get_mut(&name).expect("a known collector");
                    entry.tx.send_replace(Some(token.clone()));
                    entry.held = Some(Held {
                        token,
                        trusted_until: started + self.length,
                    });
                }
                Ok(Acquisition::Held(lease)) => {
                    debug!(collector = %name, host = %lease.host, pid = lease.pid, "held by another daemon");
                }
                Err(e) => {
                    error!(collector = %name, error = %e, "cannot acquire the lease; the collector waits for the database");
                    self.store = None;
                    return;
                }
            }
        }
    }

    /// How many collectors this daemon may hold: the configured ones shared among the daemons
    /// alive now (announcing this one). `None` when the database did not answer.
    fn share(&mut self) -> Option<usize> {
        let (me, length) = (self.me.clone(), self.length);
        let store = self.store()?;
        match blocking(|| store.announce_daemon(&me, length)) {
            Ok(alive) => Some(self.entries.len().div_ceil(alive)),
            Err(e) => {
                let waiting = self.collectors(false);
                error!(collectors = ?waiting, error = %e, "cannot announce this daemon; each of its collectors waits for the database");
                self.store = None;
                None
            }
        }
    }

    /// Gives up the leases beyond `share` (the last collectors by name), so a daemon that
    /// joined takes them: their collectors stop after the batch in flight, and the rows go
    /// at the next tick.
    fn hand_over_beyond(&mut self, share: usize) {
        let held = self.collectors(true);
        for name in held.iter().skip(share) {
            let entry = self.entries.get_mut(name).expect("a known collector");
            lose(
                name,
                entry,
                "handed over to share the work with another daemon",
            );
            self.handing_over.push(name.clone());
        }
    }

    /// Deletes the lease rows handed over at the last tick.
    fn release_handed_over(&mut self) {
        if self.handing_over.is_empty() {
            return;
        }
        let names = std::mem::take(&mut self.handing_over);
        let me = self.me.clone();
        if let Some(store) = self.store()
            && let Err(e) = blocking(|| store.release_leases(&names, &me))
        {
            warn!(error = %e, "cannot release the leases handed over; they expire by themselves");
            self.store = None;
        }
    }

    /// Renews the held leases; those another daemon took over, or that could not be renewed
    /// before they ran out, are lost. `Err` when the database did not answer.
    fn renew(&mut self, started: Instant) -> Result<(), ()> {
        let held = self.collectors(true);
        let (me, length) = (self.me.clone(), self.length);
        let renewed = match self.store() {
            Some(store) => blocking(|| store.renew_leases(&held, &me, length))
                .inspect_err(|e| warn!(error = %e, "cannot renew the leases")),
            None => return Err(()),
        };
        let Ok(renewed) = renewed else {
            self.store = None;
            self.lose_untrusted();
            return Err(());
        };
        for name in held {
            let entry = self.entries.get_mut(&name).expect("a known collector");
            if renewed.contains(&name) {
                if let Some(h) = &mut entry.held {
                    h.trusted_until = started + self.length;
                }
            } else {
                lose(&name, entry, "another daemon took it over");
            }
        }
        Ok(())
    }

    /// Gives up the leases whose trust ran out while the database did not answer.
    fn lose_untrusted(&mut self) {
        let now = Instant::now();
        for (name, entry) in &mut self.entries {
            if entry.held.as_ref().is_some_and(|h| h.trusted_until <= now) {
                lose(name, entry, "it could not be renewed in time");
            }
        }
    }

    /// The keeper's own connection, opened when missing (`None` while the database does not
    /// answer; the next tick tries again).
    fn store(&mut self) -> Option<&mut Store> {
        if self.store.is_none() {
            match blocking(|| Store::open(&self.storage)) {
                Ok(store) => self.store = Some(store),
                Err(e) => {
                    warn!(error = %e, "cannot open the database for the leases");
                    self.lose_untrusted();
                    return None;
                }
            }
        }
        self.store.as_mut()
    }

    /// Gives back every held lease (graceful stop: the collectors have finished), and says
    /// this daemon is gone.
    fn release(&mut self) {
        let me = self.me.clone();
        if let Some(store) = self.store() {
            let _ = blocking(|| store.retire_daemon(&me));
        }
        let mut held = self.collectors(true);
        held.append(&mut self.handing_over);
        if held.is_empty() {
            return;
        }
        match self.store() {
            Some(store) => match blocking(|| store.release_leases(&held, &me)) {
                Ok(_) => info!(collectors = ?held, "leases released"),
                Err(e) => warn!(error = %e, "cannot release the leases; they expire by themselves"),
            },
            None => warn!("cannot release the leases; they expire by themselves"),
        }
    }
}

fn lose(name: &str, entry: &mut Entry, why: &str) {
    if let Some(held) = entry.held.take() {
        info!(collector = %name, "lease lost ({why}): the collector stops after its batch in flight");
        held.token.cancel();
        entry.tx.send_replace(None);
    }
}

/// Runs `work` while renewing `collector`'s lease for `me` every third of `length` on
/// `store` (a connection of its own); cancels `lost` if the lease is taken over, so the
/// work stops after its batch in flight. For `mailintake collect`.
pub async fn holding<T>(
    store: &mut Store,
    me: &LeaseHolder,
    collector: &str,
    length: Duration,
    lost: &Shutdown,
    work: impl Future<Output = T>,
) -> T {
    let names = [collector.to_string()];
    let mut work = std::pin::pin!(work);
    loop {
        tokio::select! {
            done = &mut work => return done,
            _ = tokio::time::sleep(renew_every(length)) => {
                let renewed = blocking(|| store.renew_leases(&names, me, length));
                if !matches!(renewed.as_deref(), Ok([_])) {
                    warn!(collector, "lease lost: stopping after the batch in flight");
                    lost.cancel();
                }
            }
        }
    }
}
