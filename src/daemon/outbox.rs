//! The daemon's dispatcher task: sends queued notifications while `mailintake run` runs.
//!
//! It wakes when a collector pass has stored records (their notifications are committed
//! with them), when the earliest backoff of a queued notification runs out, and at least
//! every [`LOOK_AGAIN`] for rows other processes queued (a `records triage` whose own
//! send-before-exit left some). Every wait races the stop token; a stop during a round lets
//! the send in flight finish and gives the rest back untried.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Notify;
use tracing::error;

use super::collector::open_store;
use crate::config::StorageUrl;
use crate::ingest::Shutdown;
use crate::notify::dispatch::{DispatchError, dispatch, note_no_smtp};
use crate::notify::settings::SmtpSettings;
use crate::source::blocking;
use crate::store::Due;

/// The longest the dispatcher sleeps without looking at the outbox.
const LOOK_AGAIN: Duration = Duration::from_secs(10);

/// How long after the earliest backoff end a round starts, so rows that failed together
/// (milliseconds apart) are tried together: one round, one connection try, one log line.
const GATHER: Duration = Duration::from_secs(1);

/// Runs until `stop`; without `[smtp]` it says so once and ends (rows stay queued).
pub(super) async fn run(
    settings: Option<SmtpSettings>,
    storage: StorageUrl,
    stop: Shutdown,
    wake: Arc<Notify>,
) {
    let Some(settings) = settings else {
        note_no_smtp();
        return;
    };
    let Some(mut store) = open_store(&storage, "(notifications)", &stop).await else {
        return;
    };
    loop {
        let wait = match dispatch(&mut store, &settings, Due::ByBackoff, None, &stop).await {
            Ok(_) => match blocking(|| store.next_notification_due()) {
                Ok(Some(due)) => (due - Utc::now().naive_utc())
                    .to_std()
                    .map_or(Duration::ZERO, |wait| wait + GATHER)
                    .min(LOOK_AGAIN),
                Ok(None) => LOOK_AGAIN,
                Err(e) => {
                    error!(error = %e, "cannot read the outbox");
                    blocking(|| store.heal());
                    LOOK_AGAIN
                }
            },
            Err(e @ DispatchError::Settings(_)) => {
                error!(error = %e, "notifications stay queued until the [smtp] settings work");
                LOOK_AGAIN
            }
            Err(e) => {
                error!(error = %e, "sending notifications failed");
                blocking(|| store.heal());
                LOOK_AGAIN
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = wake.notified() => {}
            _ = stop.cancelled() => return,
        }
    }
}
