//! One notification as one e-mail, handed to the SMTP server by lettre (async, tokio, rustls).
//!
//! What every message carries, and why:
//! - `From` is the configured sender; `To` is the row's recipients, each parsed as a mailbox
//!   (one that does not parse fails that notification, it is never dropped silently);
//! - `Auto-Submitted: auto-generated`, so well-behaved auto-responders do not answer, and
//!   our own intake can tell our mail from a person's;
//! - a `Message-ID` made from the notification id and the sender's domain: a resend after a
//!   crash between "sent" and "marked" carries the same id, so it is recognisable;
//! - a UTF-8 `text/plain` body. The subject is RFC 2047-encoded by lettre when it is not
//!   plain ASCII. The rules made subject and body safe when they rendered them; the same
//!   [`header_text`] and [`body_text`] run again here, so a row written by anything else is
//!   safe too (see `notify/text.rs`).
//!
//! The password is read when a transport is built, which the dispatcher does for each round
//! of sending, so a rotated credential is picked up; it is never logged (lettre's wire
//! tracing is not compiled in).

use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, Mailboxes, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::settings::{SmtpSettings, TlsMode};
use super::text::{body_text, header_text};
use crate::store::Claimed;

/// Limit for one SMTP command (connect, greeting, each command's reply).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a notification was not handed over.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SmtpError {
    /// Settings that cannot work (sender unparsable, CA file unreadable, password missing):
    /// nothing is sent until the admin fixes them; the rows stay queued.
    #[error("smtp settings: {0}")]
    Settings(String),
    /// This notification cannot be made into a message (a recipient that is no address).
    #[error("{0}")]
    Message(String),
    /// The server or the network refused or failed.
    #[error("smtp {host}: {message}")]
    Transport {
        host: String,
        message: String,
        /// A 550–553 reply (mailbox unavailable, not local, over quota, name not allowed):
        /// trying again will not help, so the notification fails at once.
        permanent: bool,
        /// The server gave no reply at all (refused or timed-out connection, network or TLS
        /// failure): every other notification would fail the same way now.
        unreachable: bool,
    },
}

impl SmtpError {
    /// Whether another attempt cannot succeed.
    pub fn is_permanent(&self) -> bool {
        match self {
            SmtpError::Settings(_) => false,
            SmtpError::Message(_) => true,
            SmtpError::Transport { permanent, .. } => *permanent,
        }
    }

    /// Whether the server could not be reached, so the rest of a round need not try.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            SmtpError::Transport {
                unreachable: true,
                ..
            }
        )
    }
}

/// A transport to the configured server, ready to send.
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    host: String,
}

impl SmtpSender {
    /// Builds the transport (reading the password and the CA file now); connects lazily.
    pub fn new(settings: &SmtpSettings) -> Result<SmtpSender, SmtpError> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| SmtpError::Settings(format!("from `{}`: {e}", settings.from)))?;
        let tls = match settings.tls {
            TlsMode::Implicit => Tls::Wrapper(tls_parameters(settings)?),
            TlsMode::Starttls => Tls::Required(tls_parameters(settings)?),
            TlsMode::None => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            .port(settings.port)
            .tls(tls)
            .timeout(Some(COMMAND_TIMEOUT));
        if let Some(auth) = &settings.auth {
            let username = &auth.username;
            let password = Some(&auth.password)
                .as_ref()
                .ok_or_else(|| SmtpError::Settings("username without a password".into()))?
                .read()
                .map_err(SmtpError::Settings)?;
            builder = builder.credentials(Credentials::new(username.clone(), password));
        }
        Ok(SmtpSender {
            transport: builder.build(),
            from,
            host: settings.host.clone(),
        })
    }

    /// Sends one notification; returns the server's reply (`250 ...`).
    pub async fn send(&self, notification: &Claimed) -> Result<String, SmtpError> {
        let message = self.message(notification)?;
        match self.transport.send(message).await {
            Ok(response) => {
                let text: Vec<&str> = response.message().collect();
                Ok(format!("{} {}", response.code(), text.join(" ")))
            }
            Err(e) => Err(SmtpError::Transport {
                host: self.host.clone(),
                message: error_text(&e),
                permanent: e
                    .status()
                    .is_some_and(|code| (550..=553).contains(&u16::from(code))),
                // NOTE: lettre's error kinds for this (connection, network, TLS) are
                // private; "no reply code and not the message's own fault" is the test.
                unreachable: e.status().is_none() && !e.is_client(),
            }),
        }
    }

    /// The e-mail for `notification`.
    pub fn message(&self, notification: &Claimed) -> Result<Message, SmtpError> {
        let mut to = Mailboxes::new();
        for recipient in &notification.recipients {
            let mailbox: Mailbox = recipient.parse().map_err(|e| {
                SmtpError::Message(format!(
                    "recipient `{}` is not an e-mail address: {e}",
                    header_text(recipient)
                ))
            })?;
            to.push(mailbox);
        }
        if to.iter().next().is_none() {
            return Err(SmtpError::Message("no recipients".into()));
        }
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(header_text(&notification.subject))
            .message_id(Some(message_id(notification.id, &self.from)))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".into(),
            ));
        for mailbox in to {
            builder = builder.to(mailbox);
        }
        builder
            .singlepart(SinglePart::plain(body_text(&notification.body)))
            .map_err(|e| SmtpError::Message(format!("cannot build the message: {e}")))
    }
}

/// TLS settings: the system's roots (rustls-native-certs) plus the configured CA file.
/// lettre takes the process's rustls provider, or ring (the only one compiled in).
fn tls_parameters(settings: &SmtpSettings) -> Result<TlsParameters, SmtpError> {
    let mut builder = TlsParameters::builder(settings.host.clone());
    if let Some(path) = &settings.ca_file {
        let pem = std::fs::read(path).map_err(|e| {
            SmtpError::Settings(format!("cannot read ca-file {}: {e}", path.display()))
        })?;
        let certificate = Certificate::from_pem(&pem)
            .map_err(|e| SmtpError::Settings(format!("ca-file {}: {e}", path.display())))?;
        builder = builder.add_root_certificate(certificate);
    }
    builder
        .build_rustls()
        .map_err(|e| SmtpError::Settings(format!("TLS: {}", error_text(&e))))
}

/// A lettre error with its causes (the top one alone often says only "Connection error").
fn error_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    header_text(&text)
}

/// The stable `Message-ID` of notification `id`: `<notification-ID@DOMAIN>`, DOMAIN being
/// the sender's.
pub fn message_id(id: i64, from: &Mailbox) -> String {
    format!("<notification-{id}@{}>", from.email.domain())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_up_to_the_cap() {
        let delays = crate::notify::settings::RetryDelays::default();
        let seconds: Vec<u64> = (1..=10).map(|n| delays.after(n).as_secs()).collect();
        assert_eq!(seconds, [5, 10, 20, 40, 80, 160, 320, 600, 600, 600]);
        assert_eq!(delays.after(u32::MAX), delays.max);
        // Ten attempts span more than a ten-minute outage.
        let waited: u64 = seconds[..9].iter().sum();
        assert!(waited > 600, "{waited}");
    }

    #[test]
    fn message_id_is_derived_from_the_id_and_the_sender_domain() {
        let from: Mailbox = "EMES <emes@example.test>".parse().unwrap();
        assert_eq!(message_id(42, &from), "<notification-42@example.test>");
    }
}
