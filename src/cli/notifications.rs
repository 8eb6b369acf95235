//! `mailintake notifications`: the log of what the `[[notify]]` rules queued, sent or failed
//! (seed 004's Email_Sent / Sms_Sent, by date range), re-queueing a failed one, and sending
//! what is queued now.

use anyhow::{Context, Result};
use clap::{Subcommand, ValueEnum};

use super::print_json_or;
use super::records::{ActorArg, parse_since};
use super::table::{or_dash, print_table};
use crate::config::Config;
use crate::notify::dispatch::{note_no_smtp, run_once, send_pending};
use crate::notify::outbox::{FAILED, Notification, NotificationFilter, QUEUED, SENT};
use crate::notify::rules::Channel;
use crate::store::{Due, Store};

#[derive(Debug, Subcommand)]
pub enum NotificationsCommand {
    /// The notification log, oldest first
    List {
        /// Created at or after this local date (YYYY-MM-DD) or date-time
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
        /// Created before this local date or date-time
        #[arg(long, value_name = "DATE")]
        until: Option<String>,
        #[arg(long, value_enum)]
        channel: Option<ChannelArg>,
        /// Only this record's
        #[arg(long, value_name = "ID")]
        record: Option<i64>,
        #[arg(long, value_enum)]
        status: Option<StatusArg>,
        #[arg(long)]
        json: bool,
    },
    /// Queue a failed notification again (attempts start over) and try to send it now
    Retry {
        id: i64,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// Try every queued notification once now, ignoring backoff (for timer setups)
    Send {
        #[arg(long)]
        json: bool,
    },
}

/// `--channel`: email or sms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ChannelArg {
    Email,
    Sms,
}

/// `--status`: queued, sent or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusArg {
    Queued,
    Sent,
    Failed,
}

/// Runs a `notifications` subcommand.
pub(super) fn run(
    config: &Config,
    store: &mut Store,
    command: &NotificationsCommand,
) -> Result<()> {
    match command {
        NotificationsCommand::List {
            since,
            until,
            channel,
            record,
            status,
            json,
        } => {
            let filter = NotificationFilter {
                since: since.as_deref().map(parse_since).transpose()?,
                until: until.as_deref().map(parse_since).transpose()?,
                channel: channel.map(|c| match c {
                    ChannelArg::Email => Channel::Email,
                    ChannelArg::Sms => Channel::Sms,
                }),
                record_id: *record,
                status: status.map(|s| {
                    match s {
                        StatusArg::Queued => QUEUED,
                        StatusArg::Sent => SENT,
                        StatusArg::Failed => FAILED,
                    }
                    .to_string()
                }),
            };
            let log = store.notifications(&filter)?;
            print_json_or(*json, &log[..], print_log)
        }
        NotificationsCommand::Retry { id, actor } => {
            store.retry_notification(*id, &actor.name())?;
            println!("notification {id}: queued");
            // Like every command that queues, it tries to send before it exits.
            send_pending(store, config.smtp.as_ref());
            Ok(())
        }
        NotificationsCommand::Send { json } => {
            let Some(settings) = &config.smtp else {
                note_no_smtp();
                anyhow::bail!(
                    "{}: no [smtp] section: nothing can be sent",
                    config.path.display()
                );
            };
            // NOTE: no deadline: a timer setup wants every queued row tried; each SMTP
            // command is bounded, so the run is too.
            let report = run_once(store, settings, Due::IgnoringBackoff, None)
                .with_context(|| format!("config {}", config.path.display()))?;
            print_json_or(*json, &report, |r| {
                println!(
                    "sent {}, retrying later {}, failed {}",
                    r.sent, r.retrying, r.failed
                );
            })
        }
    }
}

fn print_log(log: &[Notification]) {
    let rows = log
        .iter()
        .map(|n| {
            vec![
                n.id.to_string(),
                n.record_id.to_string(),
                n.rule.clone(),
                n.channel.clone(),
                n.to.join(", "),
                n.status.clone(),
                n.attempts.to_string(),
                n.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                n.subject.clone(),
                or_dash(n.last_error.as_deref()),
            ]
        })
        .collect();
    print_table(
        &[
            "ID",
            "RECORD",
            "RULE",
            "CHANNEL",
            "TO",
            "STATUS",
            "ATTEMPTS",
            "CREATED",
            "SUBJECT",
            "LAST ERROR",
        ],
        rows,
        40,
    );
}
