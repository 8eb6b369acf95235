//! `mailintake notifications`: the outbox seen from the command line.

use anyhow::{Context, Result};
use clap::Subcommand;

use super::print_json_or;
use crate::config::Config;
use crate::notify::dispatch::{note_no_smtp, run_once};
use crate::store::{Due, Store};

#[derive(Debug, Subcommand)]
pub enum NotificationsCommand {
    /// Try every queued notification once now, ignoring backoff (for timer setups)
    Send {
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `notifications` subcommand.
pub(super) fn run(
    config: &Config,
    store: &mut Store,
    command: &NotificationsCommand,
) -> Result<()> {
    match command {
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
