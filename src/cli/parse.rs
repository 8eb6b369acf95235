//! `mailintake parse`: decode one message file without touching the database (a dry run).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use clap::Args;
use serde::Serialize;

use super::records::print_record_details;
use super::terminal::indented;
use super::{Cli, print_json_sorted_keys};
use crate::ingest::{Mapped, prepare};
use crate::mapping::Record;

#[derive(Debug, Args)]
pub struct ParseArgs {
    /// Print one JSON object: {"status", "reason", "record"}
    #[arg(long)]
    json: bool,
    /// Use this collector's settings (keyword, default charset) from the config
    #[arg(long, value_name = "NAME")]
    collector: Option<String>,
    /// The message (.eml) file
    file: PathBuf,
}

/// `parse --json`: the verdict, with the reason and the message's identity when the message
/// was not accepted, or the record when it was.
#[derive(Serialize)]
struct ParseOutcome<'a> {
    status: &'a str,
    #[serde(flatten)]
    not_accepted: Option<NotAccepted<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<&'a Record>,
}

/// Why a message was skipped or quarantined, and which message it was.
#[derive(Serialize)]
struct NotAccepted<'a> {
    reason: &'a str,
    message_id: Option<&'a str>,
    subject: Option<&'a str>,
}

/// Runs `parse`.
pub(super) fn run(cli: &Cli, args: &ParseArgs) -> Result<()> {
    parse(cli, args.json, args.collector.as_deref(), &args.file)
}

fn parse(cli: &Cli, json: bool, collector: Option<&str>, file: &Path) -> Result<()> {
    let raw = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    // NOTE: without --config (or MAILINTAKE_CONFIG) and --collector, parse needs no config
    // file at all: it applies the built-in order format and default rules.
    let (rules, format) = if cli.config.is_some() || collector.is_some() {
        let config = cli.load_config()?;
        match collector {
            Some(name) => {
                let collector = config
                    .collector(name)
                    .ok_or_else(|| anyhow!("no collector `{name}` in {}", config.path.display()))?;
                (collector.rules.clone(), collector.format.clone())
            }
            None => Default::default(),
        }
    } else {
        Default::default()
    };
    let prepared = prepare(&raw, &rules, &format);
    let (status, reason, record) = match &prepared.mapped {
        Mapped::Accept(record) => ("accepted", None, Some(record)),
        Mapped::Skip(reason) => ("skipped", Some(reason.as_str()), None),
        Mapped::Quarantine(reason) => ("quarantined", Some(reason.as_str()), None),
    };
    if json {
        return print_json_sorted_keys(&ParseOutcome {
            status,
            not_accepted: reason.map(|reason| NotAccepted {
                reason,
                message_id: prepared.envelope.message_id.as_deref(),
                subject: prepared.envelope.subject.as_deref(),
            }),
            record: record.map(|r| &**r),
        });
    }
    match record {
        Some(record) => print_record_details(record),
        None => println!("{status}: {}", indented(reason.unwrap_or_default(), 2)),
    }
    Ok(())
}
