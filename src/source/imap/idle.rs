//! Waiting for new mail with IMAP IDLE (RFC 2177), on a connection of its own beside the
//! collector's passes: the watcher only says "look now", the pass does the reading.

use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use async_imap::imap_proto::{MailboxDatum, Response};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::ImapConfig;
use super::{Connection, ImapError};

/// IDLE is re-issued before servers drop it (RFC 2177 allows them to after 30 minutes).
const IDLE_RENEW: Duration = Duration::from_secs(25 * 60);

/// How one IDLE session ended (errors aside).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleEnd {
    /// `stop` was cancelled.
    Stopped,
    /// The renew deadline passed, or the server ended IDLE: start another session.
    Renew,
    /// The server does not offer IDLE; polling on the schedule is all there is.
    Unsupported,
    /// The server's IDLE only polls (Courier's default, every 60 s): no faster than a
    /// schedule, and an extra connection held open for nothing.
    OnlyPolls,
}

/// Holds one IDLE session on `config`'s mailbox and notifies `new_mail` whenever the server
/// announces a new message, until `stop`, the renew deadline or an error.
pub async fn wait_for_mail(
    config: &ImapConfig,
    stop: &CancellationToken,
    new_mail: &Notify,
) -> Result<IdleEnd, ImapError> {
    let mut connection = Connection::open(config).await?;
    if connection.try_idle().await? {
        new_mail.notify_one();
    }
    let features = connection.features();
    if !features.idle || features.idle_polls {
        connection.logout().await;
        return Ok(if features.idle {
            IdleEnd::OnlyPolls
        } else {
            IdleEnd::Unsupported
        });
    }
    let (session, timeout) = connection.into_session();
    let mut idle = session.idle();
    let idle_error = |source| ImapError::Command {
        command: "IDLE",
        source,
    };
    tokio::time::timeout(timeout, idle.init())
        .await
        .map_err(|_| ImapError::Timeout("IDLE"))?
        .map_err(idle_error)?;
    // NOTE: mail that arrived after the last pass listed the mailbox but before this session
    // selected it is in the count SELECT gave, never announced as a new EXISTS: look once now
    // that IDLE listens, so it waits for no schedule.
    new_mail.notify_one();
    let deadline = tokio::time::Instant::now() + IDLE_RENEW;
    let end = loop {
        let (wait, _interrupt) = idle.wait_with_timeout(IDLE_RENEW);
        tokio::select! {
            response = tokio::time::timeout_at(deadline, wait) => match response {
                Ok(Ok(IdleResponse::NewData(data))) => {
                    // Only `* N EXISTS` means new mail. NOTE: Dovecot follows it with
                    // `* N RECENT` and echoes our own `\Seen` stores as `* N FETCH`; waking
                    // on those ran three passes per message.
                    if matches!(data.parsed(), Response::MailboxData(MailboxDatum::Exists(_))) {
                        new_mail.notify_one();
                    }
                }
                Ok(Ok(_)) | Err(_) => break IdleEnd::Renew,
                Ok(Err(e)) => return Err(idle_error(e)),
            },
            _ = stop.cancelled() => break IdleEnd::Stopped,
        }
    };
    if let Ok(Ok(mut session)) = tokio::time::timeout(timeout, idle.done()).await {
        let _ = tokio::time::timeout(timeout, session.logout()).await;
    }
    Ok(end)
}
