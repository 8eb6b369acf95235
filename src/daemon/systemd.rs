//! Telling systemd how the daemon is doing: READY, RELOADING, STOPPING, and watchdog pings.
//! Without `NOTIFY_SOCKET` (not started by systemd) every call is a no-op.

use std::time::Duration;

use sd_notify::NotifyState;
use tracing::warn;

pub(super) fn notify(state: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(false, state) {
        warn!(error = %e, "could not notify systemd");
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

/// Pings the watchdog forever, if systemd asked for it; otherwise never returns.
pub(super) async fn watchdog() {
    let Some(period) = watchdog_interval() else {
        return std::future::pending().await;
    };
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        notify(&[NotifyState::Watchdog]);
    }
}
