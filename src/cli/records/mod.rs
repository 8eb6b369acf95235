//! `mailintake records`: list, show, triage and move stored records through the workflow.

mod view;

use anyhow::{Result, anyhow};
use chrono::{Local, NaiveDate, NaiveDateTime, TimeZone};
use clap::{Args, Subcommand, ValueEnum};

use super::{actor_or_os_user, phone_digits_arg, print_json_or, print_json_sorted_keys};
use crate::config::Config;
use crate::domain::{StatusChange, StatusNames, Triage};
use crate::mapping::RecordKind;
use crate::mapping::declarative::Target;
use crate::notify::dispatch::send_pending;
use crate::store::{RecordFilter, Store, TriageFilter, TriageState};

pub(super) use view::{print_record_details, print_record_table};

#[derive(Debug, Subcommand)]
pub enum RecordsCommand {
    /// List records, oldest first
    List(ListArgs),
    /// Show one record with its lines, tech cards and history
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Pending service requests awaiting triage (服务指派)
    TriageList {
        /// unprocessed (pending), processed (already classified) or all
        #[arg(long, value_enum, default_value_t = TriageListStatus::Unprocessed)]
        status: TriageListStatus,
        /// Stored at or after this local date/time
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
        /// Stored before this local date/time
        #[arg(long, value_name = "DATE")]
        until: Option<String>,
        #[arg(long, value_name = "DIGITS")]
        phone: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Classify a pending service request as fault, consult or complaint
    Triage {
        id: i64,
        #[arg(long = "as", value_name = "TYPE", value_enum)]
        outcome: TriageAs,
        /// Complete a field, e.g. --set elevator-no=3 (repeatable)
        #[arg(long = "set", value_name = "FIELD=VALUE")]
        sets: Vec<String>,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// Start work on a record (status: in progress)
    Start {
        id: i64,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// Record the solution (status: resolved)
    Resolve {
        id: i64,
        #[arg(long)]
        result: String,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// The customer accepts the solution
    Accept {
        id: i64,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// The customer rejects the solution
    Reject {
        id: i64,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// Send a manual [[notify]] rule for a record now (e.g. the new-lift GM e-mail)
    Notify {
        id: i64,
        /// The rule's name (its on = "manual")
        #[arg(long)]
        rule: String,
        #[command(flatten)]
        actor: ActorArg,
    },
}

// NOTE: the value enums below carry no `///` on their variants on purpose: clap turns variant
// docs into per-value help, which switches `--help` to its long layout and changes the text
// the README documents.

/// `records list --kind`: the record kinds, as the CLI spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    Lead,
    Order,
    ServiceRequest,
}

impl From<KindArg> for RecordKind {
    fn from(kind: KindArg) -> RecordKind {
        match kind {
            KindArg::Lead => RecordKind::Lead,
            KindArg::Order => RecordKind::Order,
            KindArg::ServiceRequest => RecordKind::ServiceRequest,
        }
    }
}

/// `records triage-list --status`: which requests the list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TriageListStatus {
    Unprocessed,
    Processed,
    All,
}

impl From<TriageListStatus> for TriageState {
    fn from(status: TriageListStatus) -> TriageState {
        match status {
            TriageListStatus::Unprocessed => TriageState::Unprocessed,
            TriageListStatus::Processed => TriageState::Processed,
            TriageListStatus::All => TriageState::All,
        }
    }
}

/// `records triage --as`: what a pending request turns out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TriageAs {
    Fault,
    Consult,
    Complaint,
}

impl From<TriageAs> for Triage {
    fn from(outcome: TriageAs) -> Triage {
        match outcome {
            TriageAs::Fault => Triage::Fault,
            TriageAs::Consult => Triage::Consult,
            TriageAs::Complaint => Triage::Complaint,
        }
    }
}

/// Who makes a change, for the record's history.
#[derive(Debug, Args)]
pub struct ActorArg {
    /// Recorded in the history [default: the OS user]
    #[arg(long)]
    actor: Option<String>,
}

impl ActorArg {
    pub(in crate::cli) fn name(&self) -> String {
        actor_or_os_user(self.actor.as_deref())
    }
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long)]
    queue: Option<String>,
    /// lead, order or service-request
    #[arg(long, value_enum)]
    kind: Option<KindArg>,
    // Free text, not a value enum: `[workflow]` in the config names the statuses.
    #[arg(long)]
    status: Option<String>,
    /// Phone digits; matches numbers ending with them
    #[arg(long, value_name = "DIGITS")]
    phone: Option<String>,
    /// Stored at or after this local date (YYYY-MM-DD) or date-time (YYYY-MM-DDTHH:MM[:SS])
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
    /// At most this many records
    #[arg(long)]
    limit: Option<i64>,
    #[arg(long)]
    json: bool,
}

/// Reads `--since` as local time and converts it to the stored UTC.
pub(crate) fn parse_since(text: &str) -> Result<NaiveDateTime> {
    let text = text.trim();
    let local = [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
    .or_else(|| {
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    })
    .ok_or_else(|| anyhow!("--since `{text}`: expected YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]"))?;
    let utc = Local
        .from_local_datetime(&local)
        .earliest()
        .ok_or_else(|| anyhow!("--since `{text}` does not exist in the local time zone"))?;
    Ok(utc.naive_utc())
}

/// `--phone DIGITS` of the list commands.
fn phone_flag(phone: Option<&str>) -> Result<Option<String>> {
    phone.map(|p| phone_digits_arg("--phone ", p)).transpose()
}

fn list_records(store: &mut Store, args: &ListArgs) -> Result<()> {
    let filter = RecordFilter {
        queue: args.queue.clone(),
        kind: args.kind.map(RecordKind::from),
        status: args.status.clone(),
        phone_digits: phone_flag(args.phone.as_deref())?,
        since: args.since.as_deref().map(parse_since).transpose()?,
        limit: args.limit,
        ..RecordFilter::default()
    };
    let records = store.list_records(&filter)?;
    print_json_or(args.json, &records[..], view::print_record_table)
}

fn show_record(store: &mut Store, id: i64, json: bool) -> Result<()> {
    let shown = store
        .record_with_history(id)?
        .ok_or_else(|| anyhow!("no record {id}"))?;
    if json {
        return print_json_sorted_keys(&shown);
    }
    view::print_stored_record(&shown.record, &shown.history);
    Ok(())
}

/// Applies a workflow status change to record `id` (refused unless its current status
/// allows it) and says which status it now has.
fn change_status(
    store: &mut Store,
    names: &StatusNames,
    id: i64,
    change: StatusChange<'_>,
    actor: &ActorArg,
) -> Result<()> {
    let status = store.change_status(id, names, change, &actor.name())?;
    println!("record {id}: {status}");
    Ok(())
}

impl RecordsCommand {
    /// Whether the command may queue notifications (a change rules can fire on), which it
    /// then tries to send before it exits.
    fn queues_notifications(&self) -> bool {
        matches!(
            self,
            RecordsCommand::Triage { .. }
                | RecordsCommand::Start { .. }
                | RecordsCommand::Resolve { .. }
                | RecordsCommand::Accept { .. }
                | RecordsCommand::Reject { .. }
                | RecordsCommand::Notify { .. }
        )
    }
}

/// Runs a `records` subcommand; one that changed a record then sends what is queued.
pub(super) fn run(config: &Config, store: &mut Store, command: &RecordsCommand) -> Result<()> {
    run_command(config, store, command)?;
    if command.queues_notifications() {
        send_pending(store, config.smtp.as_ref());
    }
    Ok(())
}

fn run_command(config: &Config, store: &mut Store, command: &RecordsCommand) -> Result<()> {
    let names = config.workflow.status_names();
    match command {
        RecordsCommand::List(args) => list_records(store, args),
        RecordsCommand::Show { id, json } => show_record(store, *id, *json),
        RecordsCommand::TriageList {
            status,
            since,
            until,
            phone,
            json,
        } => {
            let filter = TriageFilter {
                state: TriageState::from(*status),
                since: since.as_deref().map(parse_since).transpose()?,
                until: until.as_deref().map(parse_since).transpose()?,
                phone_digits: phone_flag(phone.as_deref())?,
            };
            let ids = store.triage_ids(&filter)?;
            let records = store.records_by_ids(&ids)?;
            print_json_or(*json, &records[..], view::print_triage_table)
        }
        RecordsCommand::Triage {
            id,
            outcome,
            sets,
            actor,
        } => {
            let outcome = Triage::from(*outcome);
            let sets = sets
                .iter()
                .map(|s| {
                    let (field, value) = s
                        .split_once('=')
                        .ok_or_else(|| anyhow!("--set `{s}`: expected FIELD=VALUE"))?;
                    let target = Target::parse(field.trim())
                        .ok_or_else(|| anyhow!("--set: unknown field `{field}`"))?;
                    Ok((target, value.to_string()))
                })
                .collect::<Result<Vec<_>>>()?;
            store.triage(*id, outcome, &sets, &actor.name())?;
            println!("record {id}: triaged as {}", outcome.as_str());
            Ok(())
        }
        RecordsCommand::Start { id, actor } => {
            change_status(store, &names, *id, StatusChange::Start, actor)
        }
        RecordsCommand::Resolve { id, result, actor } => {
            change_status(store, &names, *id, StatusChange::Resolve { result }, actor)
        }
        RecordsCommand::Accept { id, actor } => {
            change_status(store, &names, *id, StatusChange::Accept, actor)
        }
        RecordsCommand::Reject { id, reason, actor } => {
            change_status(store, &names, *id, StatusChange::Reject { reason }, actor)
        }
        RecordsCommand::Notify { id, rule, actor } => {
            let out = store.notify_manual(&config.notify, *id, rule, &actor.name())?;
            match out.failure() {
                // NOTE: written and visible in the log and history, but the admin asked for
                // it now: say it failed with a non-zero exit.
                Some(reason) => Err(anyhow!("record {id}: rule {rule} failed: {reason}")),
                None => {
                    println!("record {id}: {rule} queued -> {}", out.to.join(", "));
                    Ok(())
                }
            }
        }
    }
}
