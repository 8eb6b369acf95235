//! `mailintake quarantine`: messages that could not be decoded, kept whole with their reason.

use std::io::{IsTerminal, Write};

use anyhow::{Result, bail};
use clap::Subcommand;
use serde::Serialize;

use super::table::{or_dash, print_table};
use super::terminal::{indented, one_line};
use super::{actor_or_os_user, print_json_or, print_json_sorted_keys};
use crate::config::Config;
use crate::ingest::{Retried, TOO_LARGE, retry_quarantined};
use crate::notify::dispatch::send_pending;
use crate::store::{QuarantineEntry, Store};

#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// List open quarantine entries
    List {
        /// Include released entries
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Show one entry
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
        /// Write the message's raw bytes to stdout, exactly as received (not to a terminal)
        #[arg(long, conflicts_with = "json")]
        raw: bool,
    },
    /// Decode the entry again with the current config; store the record if it now passes
    Retry {
        id: i64,
        /// Actor recorded in the record's history [default: the OS user]
        #[arg(long)]
        actor: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

/// `quarantine retry --json`: the new verdict, and the record it created if accepted.
#[derive(Serialize)]
struct RetryOutcome<'a> {
    status: &'a str,
    reason: Option<String>,
    record_id: Option<i64>,
}

/// Runs a `quarantine` subcommand.
pub(super) fn run(config: &Config, store: &mut Store, command: &QuarantineCommand) -> Result<()> {
    match command {
        QuarantineCommand::List { all, json } => {
            let entries = store.quarantine_entries(*all)?;
            print_json_or(*json, &entries[..], print_quarantine_table)
        }
        QuarantineCommand::Show { id, json, raw } => {
            let entry = store.quarantine_entry(*id)?;
            if *raw {
                let mut out = std::io::stdout().lock();
                // NOTE: the raw bytes are the sender's, escape sequences included; they are
                // for a file or a pipe. On a terminal they would be obeyed, not shown, and
                // whoever means it can still pipe them through `cat`.
                if out.is_terminal() {
                    bail!(
                        "quarantine show --raw writes the message byte for byte and stdout is a terminal; redirect it (> entry.eml) or pipe it (| less)"
                    );
                }
                out.write_all(&entry.raw)?;
                out.flush()?;
                Ok(())
            } else {
                print_json_or(*json, &entry, print_quarantine_entry)
            }
        }
        QuarantineCommand::Retry { id, actor, json } => {
            let actor = actor_or_os_user(actor.as_deref());
            let (status, reason, record_id) = match retry_quarantined(config, store, *id, &actor)? {
                Retried::Accepted { record_id } => {
                    // Its `created` notifications were queued with it: sent before exit, as
                    // `collect` does.
                    send_pending(store, config.smtp.as_ref());
                    ("accepted", None, Some(record_id))
                }
                Retried::Quarantined { reason } => ("quarantined", Some(reason), None),
                Retried::Skipped { reason } => ("skipped", Some(reason), None),
            };
            if *json {
                print_json_sorted_keys(&RetryOutcome {
                    status,
                    reason,
                    record_id,
                })
            } else {
                match record_id {
                    Some(record_id) => {
                        println!("quarantine entry {id}: accepted as record {record_id}")
                    }
                    None => println!(
                        "quarantine entry {id}: still {status}: {}",
                        indented(&reason.unwrap_or_default(), 2)
                    ),
                }
                Ok(())
            }
        }
    }
}

fn print_quarantine_table(entries: &[QuarantineEntry]) {
    let rows = entries
        .iter()
        .map(|e| {
            vec![
                e.id.to_string(),
                e.collector.clone(),
                e.status.clone(),
                e.created_at.format("%Y-%m-%d %H:%M").to_string(),
                or_dash(e.subject.as_deref()),
                e.reason.clone(),
            ]
        })
        .collect();
    print_table(
        &[
            "ID",
            "COLLECTOR",
            "STATUS",
            "QUARANTINED",
            "SUBJECT",
            "REASON",
        ],
        rows,
        60,
    );
    println!(
        "{} entr{}",
        entries.len(),
        if entries.len() == 1 { "y" } else { "ies" }
    );
}

fn print_quarantine_entry(entry: &QuarantineEntry) {
    println!(
        "quarantine entry {} ({})",
        entry.id,
        one_line(&entry.status)
    );
    println!("   collector: {}", one_line(&entry.collector));
    println!("      source: {}", one_line(&entry.source_key));
    println!(
        "  message-id: {}",
        entry
            .message_id
            .as_deref()
            .map_or("-".to_string(), one_line)
    );
    println!(
        "     subject: {}",
        entry.subject.as_deref().map_or("-".to_string(), one_line)
    );
    println!("      reason: {}", indented(&entry.reason, 14));
    // NOTE: a too-large message was never read; the quarantine has its headers only.
    let kept = if entry.reason.starts_with(TOO_LARGE) {
        " of headers only, the message is still in the mailbox"
    } else {
        ""
    };
    println!(
        "        size: {} bytes{kept} (quarantine show {} --raw prints them)",
        entry.raw.len(),
        entry.id
    );
    if let Some(record_id) = entry.record_id {
        println!("    released: as record {record_id}");
    }
}
