//! The dispatcher: sends what the outbox holds, and records what the server said.
//!
//! A round claims the due `queued` rows (see `store/outbox.rs` for why a claim cannot be
//! taken twice), sends each, and marks it: `sent` with the server's reply, or, on failure,
//! `queued` again with the error and a capped exponential backoff
//! ([`RetryDelays`](super::smtp::RetryDelays)), or `failed` once `max-attempts` are spent.
//! A 550–553 reply (the mailbox does not exist, is not local, is full, or its name is not
//! allowed) and a recipient that is no address fail at once: retrying cannot help. A server
//! that cannot be reached at all (refused, timed out, TLS failing) fails the rest of the
//! round's rows with the same error, each an attempt, without a connection each: an outage
//! costs one connection try per round, and the log says it once per round (each row's
//! attempt is logged at debug), so a daemon with its server down stays quiet between
//! backoffs. Settings
//! that cannot work (the password unreadable, the CA file broken) leave every row queued and
//! untouched: they are the admin's to fix, not the notification's fault.
//!
//! Three callers: the daemon's task (`daemon/outbox.rs`), the CLI commands that queue
//! notifications ([`send_pending`] before they exit), and `notifications send`
//! ([`Due::IgnoringBackoff`]).

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use super::settings::SmtpSettings;
use super::smtp::{SmtpError, SmtpSender};
use crate::ingest::Shutdown;
use crate::source::blocking;
use crate::store::{Attempt, Claimed, Due, Store, StoreError};

/// Notifications claimed per round.
const BATCH: i64 = 100;

/// How long a claim holds a row: beyond any one send (each SMTP command is bounded), so only
/// a dispatcher that died mid-send lets its rows wait that long.
const CLAIM: chrono::TimeDelta = chrono::TimeDelta::minutes(15);

/// Errors that stop a round (a notification's own failure never does).
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The `[smtp]` settings cannot work; nothing was claimed.
    #[error(transparent)]
    Settings(SmtpError),
    #[error("cannot start a tokio runtime: {0}")]
    Runtime(std::io::Error),
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DispatchReport {
    pub sent: usize,
    /// Failed this time, queued for another attempt.
    pub retrying: usize,
    /// Given up: `failed`.
    pub failed: usize,
    /// Claimed but not tried before the deadline or the stop; still queued.
    pub untried: usize,
}

/// What the store should record for a failed attempt: another one after the backoff, or
/// none (`failed`) once the attempts are spent or the error is permanent.
fn after_failure(
    settings: &SmtpSettings,
    attempts: i32,
    error: &SmtpError,
) -> Option<chrono::NaiveDateTime> {
    let attempts = u32::try_from(attempts).unwrap_or(0);
    if error.is_permanent() || attempts >= settings.max_attempts {
        return None;
    }
    let delay = chrono::TimeDelta::from_std(settings.retry.after(attempts)).ok()?;
    Some(crate::store::now() + delay)
}

/// Sends the due notifications (`due`) until none is left, `deadline` passes, or `stop` is
/// cancelled; a send in flight is bounded by the deadline too.
pub async fn dispatch(
    store: &mut Store,
    settings: &SmtpSettings,
    due: Due,
    deadline: Option<Instant>,
    stop: &Shutdown,
) -> Result<DispatchReport, DispatchError> {
    let sender = SmtpSender::new(settings).map_err(DispatchError::Settings)?;
    let mut report = DispatchReport::default();
    // The server's failure to answer, once met: the rest of the round shares it.
    let mut down: Option<SmtpError> = None;
    let mut retrying: Option<(String, chrono::NaiveDateTime)> = None;
    // NOTE: ignoring the backoff, a failed row is due again at once: take every queued row
    // in one claim, so each is tried exactly once.
    let limit = match due {
        Due::ByBackoff => BATCH,
        Due::IgnoringBackoff => i64::MAX,
    };
    loop {
        let hold = crate::store::now() + CLAIM;
        let claimed = blocking(|| store.claim_notifications(due, limit, hold))?;
        let full = claimed.len() as i64 == limit;
        let mut rows = claimed.iter();
        for notification in rows.by_ref() {
            let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if stop.is_cancelled() || remaining.is_some_and(|r| r.is_zero()) {
                blocking(|| store.release_notification(notification))?;
                report.untried += 1;
                continue;
            }
            let sent = match (&down, remaining) {
                (Some(e), _) => Err(e.clone()),
                (None, Some(r)) => tokio::time::timeout(r, sender.send(notification))
                    .await
                    .unwrap_or_else(|_| {
                        Err(SmtpError::Transport {
                            host: settings.host.clone(),
                            message: "the send did not finish before the command's deadline".into(),
                            permanent: false,
                            unreachable: false,
                        })
                    }),
                (None, None) => sender.send(notification).await,
            };
            if let Err(e) = &sent
                && e.is_unreachable()
            {
                down = Some(e.clone());
            }
            if let Some(later) = record(store, settings, notification, sent, &mut report)? {
                retrying = Some(later);
            }
        }
        if !full || report.untried > 0 {
            if let Some((error, retry_at)) = retrying {
                warn!(notifications = report.retrying, %error, retry_at = %retry_at, "notifications not sent; they stay queued and are tried again");
            }
            return Ok(report);
        }
    }
}

/// Marks one attempt; for one to be tried again, returns its error and when.
fn record(
    store: &mut Store,
    settings: &SmtpSettings,
    notification: &Claimed,
    sent: Result<String, SmtpError>,
    report: &mut DispatchReport,
) -> Result<Option<(String, chrono::NaiveDateTime)>, StoreError> {
    let (id, rule) = (notification.id, notification.rule.as_str());
    match sent {
        Ok(reply) => {
            info!(notification = id, rule, %reply, "notification sent");
            blocking(|| store.mark_notification(notification, &Attempt::Sent { reply: &reply }))?;
            report.sent += 1;
            crate::metrics::notification("sent");
        }
        Err(e) => {
            let retry_at = after_failure(settings, notification.attempts, &e);
            let text = e.to_string();
            match retry_at {
                Some(at) => {
                    debug!(notification = id, rule, error = %text, retry_at = %at, attempts = notification.attempts, "notification not sent; retrying later");
                    report.retrying += 1;
                    crate::metrics::notification("retrying");
                }
                None => {
                    error!(notification = id, rule, error = %text, attempts = notification.attempts, "notification failed");
                    report.failed += 1;
                    crate::metrics::notification("failed");
                }
            }
            let attempt = Attempt::Failed {
                error: &text,
                retry_at,
            };
            blocking(|| store.mark_notification(notification, &attempt))?;
            return Ok(retry_at.map(|at| (text, at)));
        }
    }
    Ok(None)
}

/// Says once per process that nothing is sent without `[smtp]`.
pub fn note_no_smtp() {
    static SAID: AtomicBool = AtomicBool::new(false);
    if !SAID.swap(true, Ordering::Relaxed) {
        info!("no [smtp] section in the config: notifications are not sent and stay queued");
    }
}

/// What a CLI command that queued notifications runs before it exits: sends what is due
/// until `settings.send_timeout` has passed, then leaves the rest queued. Problems are logged,
/// never returned: the command's own change has succeeded and its exit status says so.
pub fn send_pending(store: &mut Store, settings: Option<&SmtpSettings>) -> Option<DispatchReport> {
    let Some(settings) = settings else {
        if store.next_notification_due().is_ok_and(|due| due.is_some()) {
            note_no_smtp();
        }
        return None;
    };
    run_once(store, settings, Due::ByBackoff, Some(settings.send_timeout))
        .inspect_err(|e| warn!(error = %e, "notifications not sent now; they stay queued"))
        .ok()
}

/// One round from synchronous code, on a runtime of its own; `within` bounds it.
pub fn run_once(
    store: &mut Store,
    settings: &SmtpSettings,
    due: Due,
    within: Option<std::time::Duration>,
) -> Result<DispatchReport, DispatchError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(DispatchError::Runtime)?;
    runtime.block_on(async {
        let deadline = within.map(|w| Instant::now() + w);
        dispatch(store, settings, due, deadline, &Shutdown::new()).await
    })
}
