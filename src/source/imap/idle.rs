//! Waiting for new mail with IMAP IDLE (RFC 2177) on the connection the collector's passes
//! use: between two passes the connection idles, and the next pass runs on it as soon as the
//! server announces a message, with no login, no SELECT and no second connection.

use std::future::Future;
use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use async_imap::imap_proto::{MailboxDatum, Response};
use async_imap::types::UnsolicitedResponse;
use tokio::time::Instant;

use super::ImapError;
use super::connection::{ImapSession, timed};

/// IDLE is re-issued before servers drop it (RFC 2177 allows them to after 30 minutes).
pub const IDLE_RENEW: Duration = Duration::from_secs(25 * 60);

/// Why a wait on the connection ended (errors aside).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The server announced a new message (`* N EXISTS`): run a pass.
    NewMail,
    /// The deadline passed, or the renew time ([`IDLE_RENEW`]), or the server ended IDLE.
    Deadline,
    /// The caller's interrupt resolved (stop, or "collect now").
    Interrupted,
}

/// Holds IDLE on `session` (its mailbox selected) until the server announces a new message,
/// `until` (at the latest [`IDLE_RENEW`] from now), or `interrupt` resolves; then ends IDLE
/// and hands the session back. Mail announced before IDLE began (with the last pass's
/// commands, or with IDLE's own start) wakes at once: no one would announce it again.
pub(super) async fn idle_on(
    session: ImapSession,
    timeout: Duration,
    until: Instant,
    interrupt: impl Future<Output = ()>,
) -> Result<(ImapSession, Wake), ImapError> {
    // Whether the server announced new mail since this was last asked: `* N EXISTS` lines
    // that came with other commands' answers wait in async-imap's unsolicited queue.
    let queue = session.unsolicited_responses.clone();
    let announced_new_mail = || {
        let mut any = false;
        while let Ok(response) = queue.try_recv() {
            any |= matches!(response, UnsolicitedResponse::Exists(_));
        }
        any
    };
    if announced_new_mail() {
        return Ok((session, Wake::NewMail));
    }
    let mut idle = session.idle();
    timed(timeout, "IDLE", idle.init()).await?;
    let deadline = until.min(Instant::now() + IDLE_RENEW);
    tokio::pin!(interrupt);
    let wake = loop {
        if announced_new_mail() {
            break Wake::NewMail;
        }
        let (wait, stop) = idle.wait_with_timeout(IDLE_RENEW);
        tokio::pin!(wait);
        let ended = tokio::select! {
            response = &mut wait => Ok(response),
            () = &mut interrupt => Err(Wake::Interrupted),
            () = tokio::time::sleep_until(deadline) => Err(Wake::Deadline),
        };
        match ended {
            // Only `* N EXISTS` means new mail. NOTE: Dovecot follows it with `* N RECENT`
            // and announces other sessions' flag changes as `* N FETCH`; waking on those
            // would run empty passes.
            Ok(Ok(IdleResponse::NewData(data))) => {
                if matches!(
                    data.parsed(),
                    Response::MailboxData(MailboxDatum::Exists(_))
                ) {
                    break Wake::NewMail;
                }
            }
            Ok(Ok(_)) => break Wake::Deadline,
            Ok(Err(source)) => {
                return Err(ImapError::Command {
                    command: "IDLE",
                    source,
                });
            }
            Err(wake) => {
                // The stop source ends the wait at once; what it read meanwhile is kept.
                drop(stop);
                let _ = tokio::time::timeout(timeout, wait).await;
                break wake;
            }
        }
    };
    let session = timed(timeout, "IDLE", idle.done()).await?;
    Ok((session, wake))
}
