//! The `mailintake` command line: the contract other tools call (see README).

mod output;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use chrono::{Local, NaiveDate, NaiveDateTime, TimeZone};
use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::config::{Config, DEFAULT_CONFIG_PATH};
use crate::ingest::{CollectReport, Mapped, Shutdown, collect, prepare, record_run, runtime};
use crate::map::declarative::Target;
use crate::map::{RecordKind, phone_digits};
use crate::store::{RecordFilter, Store, Triage, TriageFilter, TriageState};

/// Website form e-mails become leads and orders, exactly once.
#[derive(Debug, Parser)]
#[command(name = "mailintake", version, about)]
pub struct Cli {
    /// Config file [default: ./collectors.toml]
    #[arg(long, global = true, env = "MAILINTAKE_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decode one message file without touching the database (a dry run)
    Parse {
        /// Print one JSON object: {"status", "reason", "record"}
        #[arg(long)]
        json: bool,
        /// Use this collector's settings (keyword, default charset) from the config
        #[arg(long, value_name = "NAME")]
        collector: Option<String>,
        /// The message (.eml) file
        file: PathBuf,
    },
    /// Run collectors once and exit
    Collect {
        /// Only these collectors (repeatable) [default: all]
        #[arg(long, value_name = "NAME")]
        collector: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Review stored records
    Records {
        #[command(subcommand)]
        command: RecordsCommand,
    },
    /// Messages that could not be decoded, kept whole with their reason
    Quarantine {
        #[command(subcommand)]
        command: QuarantineCommand,
    },
    /// Run every collector on its schedule until stopped (the daemon)
    Run,
    /// Contacts, found by phone number
    Contacts {
        #[command(subcommand)]
        command: ContactsCommand,
    },
    /// Collector state: last run, last success, last error, counts, next run
    Collectors {
        #[command(subcommand)]
        command: CollectorsCommand,
    },
    /// Validate the config file
    Check,
    /// Measure decode and decode+store throughput on a generated corpus
    Bench(crate::bench::BenchArgs),
}

#[derive(Debug, Subcommand)]
pub enum CollectorsCommand {
    /// The state of every configured collector
    Status {
        #[arg(long)]
        json: bool,
    },
}

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
        #[arg(long, default_value = "unprocessed")]
        status: String,
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
        #[arg(long = "as", value_name = "TYPE")]
        outcome: String,
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
}

/// Who makes a change, for the record's history.
#[derive(Debug, Args)]
pub struct ActorArg {
    /// Recorded in the history [default: the OS user]
    #[arg(long)]
    actor: Option<String>,
}

impl ActorArg {
    fn name(&self) -> String {
        self.actor.clone().unwrap_or_else(os_user)
    }
}

#[derive(Debug, Subcommand)]
pub enum ContactsCommand {
    /// A contact's records, found by phone number
    Show {
        phone: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long)]
    queue: Option<String>,
    /// lead, order or service-request
    #[arg(long)]
    kind: Option<String>,
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
        /// Write the message's raw bytes to stdout, exactly as received
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

impl Cli {
    fn config_path(&self) -> PathBuf {
        self.config
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
    }

    fn load_config(&self) -> Result<Config> {
        Ok(Config::load(&self.config_path())?)
    }
}

fn open_store(config: &Config) -> Result<Store> {
    let mut store = Store::open(&config.storage)
        .with_context(|| format!("config {}", config.path.display()))?;
    store.set_unknown_customer(config.unknown_customer.clone());
    Ok(store)
}

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::Parse {
            json,
            collector,
            file,
        } => parse(&cli, *json, collector.as_deref(), file),
        Command::Collect { collector, json } => collect_once(&cli.load_config()?, collector, *json),
        Command::Records { command } => {
            let config = cli.load_config()?;
            let mut store = open_store(&config)?;
            records_command(&config, &mut store, command)
        }
        Command::Contacts {
            command: ContactsCommand::Show { phone, json },
        } => {
            let config = cli.load_config()?;
            let mut store = open_store(&config)?;
            let digits =
                phone_digits(phone).ok_or_else(|| anyhow!("`{phone}`: give at least 5 digits"))?;
            let ids = store.contact_record_ids(&digits)?;
            let records = store.records_by_ids(&ids)?;
            if *json {
                print_json(&records)
            } else {
                output::print_record_table(&records);
                Ok(())
            }
        }
        Command::Quarantine { command } => {
            let config = cli.load_config()?;
            let mut store = open_store(&config)?;
            quarantine(&config, &mut store, command)
        }
        Command::Run => {
            let config = cli.load_config()?;
            runtime()?.block_on(async {
                let signals = crate::daemon::Signals::from_os()?;
                crate::daemon::run(cli.config_path(), config, signals).await
            })
        }
        Command::Collectors {
            command: CollectorsCommand::Status { json },
        } => {
            let config = cli.load_config()?;
            let mut store = open_store(&config)?;
            collectors_status(&config, &mut store, *json)
        }
        Command::Check => {
            let config = cli.load_config()?;
            println!(
                "{}: OK ({} queues, {} collectors, storage {})",
                config.path.display(),
                config.queues.len(),
                config.collectors.len(),
                config.storage
            );
            Ok(())
        }
        Command::Bench(args) => crate::bench::run(args),
    }
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
        Mapped::Skip(reason) => ("skipped", Some(reason), None),
        Mapped::Quarantine(reason) => ("quarantined", Some(reason), None),
    };
    if json {
        let mut out = json!({ "status": status });
        if let Some(reason) = reason {
            out["reason"] = json!(reason);
            out["message_id"] = json!(prepared.envelope.message_id);
            out["subject"] = json!(prepared.envelope.subject);
        }
        if let Some(record) = record {
            out["record"] = serde_json::to_value(record)?;
        }
        return print_json(&out);
    }
    match record {
        Some(record) => output::print_record_details(record),
        None => println!("{status}: {}", reason.map_or("", |r| r.as_str())),
    }
    Ok(())
}

fn collect_once(config: &Config, names: &[String], json: bool) -> Result<()> {
    for name in names {
        if config.collector(name).is_none() {
            bail!("no collector `{name}` in {}", config.path.display());
        }
    }
    let mut store = open_store(config)?;
    let runtime = runtime()?;
    let shutdown = Shutdown::new();
    let mut reports: Vec<CollectReport> = Vec::new();
    let mut failures = Vec::new();
    for collector in config
        .collectors
        .iter()
        .filter(|c| names.is_empty() || names.contains(&c.name))
    {
        // One broken collector does not stop the others; the exit status reports it.
        let result = runtime.block_on(collect(collector, &mut store, &shutdown));
        // Recorded so `collectors status` also works for the systemd-timer style.
        record_run(&mut store, &collector.name, &result, None);
        match result {
            Ok(report) => reports.push(report),
            Err(e) => {
                tracing::error!(collector = %collector.name, error = %e, "collector pass failed");
                failures.push(format!("{}: {e}", collector.name));
            }
        }
    }
    if json {
        print_json(&reports)?;
    } else {
        for r in &reports {
            println!(
                "{}: fetched {}, accepted {}, skipped {}, quarantined {}, duplicates {}",
                r.collector, r.fetched, r.accepted, r.skipped, r.quarantined, r.duplicates
            );
        }
    }
    if !failures.is_empty() {
        bail!(
            "{} collector(s) failed: {}",
            failures.len(),
            failures.join("; ")
        );
    }
    Ok(())
}

/// Reads `--since` as local time and converts it to the stored UTC.
fn parse_since(text: &str) -> Result<NaiveDateTime> {
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

fn list_records(store: &mut Store, args: &ListArgs) -> Result<()> {
    let filter = RecordFilter {
        queue: args.queue.clone(),
        kind: args
            .kind
            .as_deref()
            .map(|k| {
                RecordKind::parse(k).ok_or_else(|| anyhow!("--kind `{k}`: expected lead or order"))
            })
            .transpose()?,
        status: args.status.clone(),
        phone_digits: args
            .phone
            .as_deref()
            .map(|p| {
                phone_digits(p).ok_or_else(|| anyhow!("--phone `{p}`: give at least 5 digits"))
            })
            .transpose()?,
        since: args.since.as_deref().map(parse_since).transpose()?,
        limit: args.limit,
    };
    let records = store.list_records(&filter)?;
    if args.json {
        print_json(&records)
    } else {
        output::print_record_table(&records);
        Ok(())
    }
}

fn show_record(store: &mut Store, id: i64, json: bool) -> Result<()> {
    let record = store.record(id)?.ok_or_else(|| anyhow!("no record {id}"))?;
    let history = store.record_events(id)?;
    if json {
        let mut value = serde_json::to_value(&record)?;
        value["history"] = serde_json::to_value(&history)?;
        return print_json(&value);
    }
    output::print_stored_record(&record, &history);
    Ok(())
}

fn os_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

fn quarantine(config: &Config, store: &mut Store, command: &QuarantineCommand) -> Result<()> {
    match command {
        QuarantineCommand::List { all, json } => {
            let entries = store.quarantine_entries(*all)?;
            if *json {
                print_json(&entries)
            } else {
                output::print_quarantine_table(&entries);
                Ok(())
            }
        }
        QuarantineCommand::Show { id, json, raw } => {
            let entry = store.quarantine_entry(*id)?;
            if *raw {
                let mut out = std::io::stdout().lock();
                out.write_all(&entry.raw)?;
                out.flush()?;
                Ok(())
            } else if *json {
                print_json(&entry)
            } else {
                output::print_quarantine_entry(&entry);
                Ok(())
            }
        }
        QuarantineCommand::Retry { id, actor, json } => {
            let entry = store.quarantine_entry(*id)?;
            if let Some(record_id) = entry.record_id {
                bail!("quarantine entry {id} was already released as record {record_id}");
            }
            let collector = config.collector(&entry.collector).ok_or_else(|| {
                anyhow!(
                    "quarantine entry {id} came from collector `{}`, which is no longer in {}",
                    entry.collector,
                    config.path.display()
                )
            })?;
            let prepared = prepare(&entry.raw, &collector.rules, &collector.format);
            let (status, reason, record_id) = match prepared.mapped {
                Mapped::Accept(record) => {
                    let actor = actor.clone().unwrap_or_else(os_user);
                    let record_id =
                        store.release_quarantine(*id, &collector.queue, &record, &actor)?;
                    ("accepted", None, Some(record_id))
                }
                Mapped::Quarantine(reason) => {
                    store.update_quarantine_reason(*id, &reason)?;
                    ("quarantined", Some(reason), None)
                }
                Mapped::Skip(reason) => ("skipped", Some(reason), None),
            };
            if *json {
                print_json(&json!({ "status": status, "reason": reason, "record_id": record_id }))
            } else {
                match record_id {
                    Some(record_id) => {
                        println!("quarantine entry {id}: accepted as record {record_id}")
                    }
                    None => println!(
                        "quarantine entry {id}: still {status}: {}",
                        reason.unwrap_or_default()
                    ),
                }
                Ok(())
            }
        }
    }
}

fn collectors_status(config: &Config, store: &mut Store, json: bool) -> Result<()> {
    let states = store.collector_states()?;
    let rows: Vec<serde_json::Value> = config
        .collectors
        .iter()
        .map(|c| {
            let state = states.iter().find(|s| s.collector == c.name);
            let mut row = json!({
                "collector": c.name,
                "queue": c.queue,
                "last_run": null, "last_success": null, "last_error": null, "next_run": null,
                "counts": null, "uidvalidity": null, "last_uid": null,
            });
            if let Some(state) = state {
                let value = serde_json::to_value(state).unwrap_or_default();
                row["last_run"] = value["last_run_at"].clone();
                row["last_success"] = value["last_success_at"].clone();
                row["last_error"] = value["last_error"].clone();
                row["next_run"] = value["next_run_at"].clone();
                row["uidvalidity"] = value["uidvalidity"].clone();
                row["last_uid"] = value["last_uid"].clone();
                row["counts"] = state
                    .last_report
                    .as_deref()
                    .and_then(|r| serde_json::from_str(r).ok())
                    .unwrap_or(serde_json::Value::Null);
            }
            row
        })
        .collect();
    if json {
        return print_json(&rows);
    }
    output::print_collector_table(&rows);
    Ok(())
}

fn records_command(config: &Config, store: &mut Store, command: &RecordsCommand) -> Result<()> {
    let workflow = &config.workflow;
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
                state: match status.as_str() {
                    "unprocessed" => TriageState::Unprocessed,
                    "processed" => TriageState::Processed,
                    "all" => TriageState::All,
                    other => bail!("--status `{other}`: expected unprocessed, processed or all"),
                },
                since: since.as_deref().map(parse_since).transpose()?,
                until: until.as_deref().map(parse_since).transpose()?,
                phone_digits: phone
                    .as_deref()
                    .map(|p| {
                        phone_digits(p)
                            .ok_or_else(|| anyhow!("--phone `{p}`: give at least 5 digits"))
                    })
                    .transpose()?,
            };
            let ids = store.triage_ids(&filter)?;
            let records = store.records_by_ids(&ids)?;
            if *json {
                print_json(&records)
            } else {
                output::print_triage_table(&records);
                Ok(())
            }
        }
        RecordsCommand::Triage {
            id,
            outcome,
            sets,
            actor,
        } => {
            let outcome = Triage::parse(outcome)
                .ok_or_else(|| anyhow!("--as `{outcome}`: expected fault, consult or complaint"))?;
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
            store.change_status(
                *id,
                &workflow.in_progress,
                None,
                "status changed",
                None,
                &actor.name(),
            )?;
            println!("record {id}: {}", workflow.in_progress);
            Ok(())
        }
        RecordsCommand::Resolve { id, result, actor } => {
            store.change_status(
                *id,
                &workflow.resolved,
                Some(result),
                "resolved",
                Some(result),
                &actor.name(),
            )?;
            println!("record {id}: {}", workflow.resolved);
            Ok(())
        }
        RecordsCommand::Accept { id, actor } => {
            store.change_status(
                *id,
                &workflow.accepted,
                None,
                "accepted",
                None,
                &actor.name(),
            )?;
            println!("record {id}: {}", workflow.accepted);
            Ok(())
        }
        RecordsCommand::Reject { id, reason, actor } => {
            store.change_status(
                *id,
                &workflow.rejected,
                None,
                "rejected",
                Some(reason),
                &actor.name(),
            )?;
            println!("record {id}: {}", workflow.rejected);
            Ok(())
        }
    }
}
