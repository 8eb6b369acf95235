//! `mailintake collectors status`: each configured collector's last run, last success, last
//! error, counts and next run, the daemon holding it (its lease), the mode in use and the server's fallbacks. `collectors probe`
//! lives in `probe.rs`.

use anyhow::Result;
use chrono::{DateTime, SecondsFormat, Utc};
use clap::Subcommand;
use serde::Serialize;

use super::table::{or_dash, print_table};
use super::{open_store, print_json_sorted_keys};
use crate::config::{CollectMode, Collector, Config};
use crate::store::{CollectorState, Lease, damage_note};

#[derive(Debug, Subcommand)]
pub enum CollectorsCommand {
    /// The state of every configured collector
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Log in to an IMAP collector's server and say what the collector will find and do there
    /// (capabilities, namespace, folders, MOVE/COPY/fallback, IDLE), changing nothing
    Probe {
        /// The collector
        name: String,
        #[arg(long)]
        json: bool,
    },
}

/// One collector in `collectors status --json` (and on the review page's `/collectors`); a
/// collector that never ran has nulls.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct StatusRow<'a> {
    pub(crate) collector: &'a str,
    pub(crate) queue: &'a str,
    pub(crate) last_run: Option<DateTime<Utc>>,
    pub(crate) last_success: Option<DateTime<Utc>>,
    pub(crate) last_error: Option<&'a str>,
    pub(crate) next_run: Option<DateTime<Utc>>,
    /// The last successful run's counts as that run recorded them. Passed through as stored
    /// JSON, not re-typed, so a report written by another version shows all it holds.
    pub(crate) counts: Option<serde_json::Value>,
    pub(crate) uidvalidity: Option<i64>,
    pub(crate) last_uid: Option<i64>,
    /// The mode in use: as configured (`poll`, `idle`), or `schedule (no IDLE on server)` /
    /// `schedule (IDLE on server only polls)` once a pass found the server cannot push.
    pub(crate) mode: String,
    /// How the server made the collector fall back (e.g. no UIDPLUS), one sentence each.
    pub(crate) fallbacks: Vec<String>,
    /// When the last run failed: what it had committed before the error.
    pub(crate) last_error_counts: Option<serde_json::Value>,
    /// The daemon running the collector now (its lease); `null` when none does (never
    /// leased, released, or expired).
    pub(crate) holder: Option<Holder<'a>>,
}

/// Which daemon holds a collector's lease, in `collectors status --json`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Holder<'a> {
    pub(crate) host: &'a str,
    pub(crate) pid: i64,
}

impl<'a> StatusRow<'a> {
    fn new(
        config: &'a Collector,
        state: Option<&'a CollectorState>,
        lease: Option<&'a Lease>,
    ) -> Self {
        let (collector, queue) = (config.name.as_str(), config.queue.as_str());
        let utc = |at: Option<chrono::NaiveDateTime>| at.map(|t| t.and_utc());
        let configured_mode = match config.mode {
            CollectMode::Idle => "idle",
            CollectMode::Poll => "poll",
        };
        StatusRow {
            collector,
            queue,
            last_run: state.and_then(|s| utc(s.last_run_at)),
            last_success: state.and_then(|s| utc(s.last_success_at)),
            last_error: state.and_then(|s| s.last_error.as_deref()),
            next_run: state.and_then(|s| utc(s.next_run_at)),
            counts: state.and_then(|s| stored_counts(collector, s.last_report.as_deref()?)),
            uidvalidity: state.and_then(|s| s.uidvalidity),
            last_uid: state.and_then(|s| s.last_uid),
            mode: state
                .and_then(|s| s.mode.clone())
                .unwrap_or_else(|| configured_mode.to_string()),
            fallbacks: state
                .and_then(|s| serde_json::from_str(s.fallbacks.as_deref()?).ok())
                .unwrap_or_default(),
            last_error_counts: state
                .filter(|s| s.last_error.is_some())
                .and_then(|s| stored_counts(collector, s.failed_report.as_deref()?)),
            holder: lease.map(|l| Holder {
                host: &l.host,
                pid: l.pid,
            }),
        }
    }
}

/// The stored report of the last run. Unreadable JSON shows as no counts, as before, but
/// is logged: a status command should still show the other collectors.
fn stored_counts(collector: &str, report: &str) -> Option<serde_json::Value> {
    serde_json::from_str(report)
        .inspect_err(|e| tracing::warn!(collector, error = %e, "stored last report is not JSON"))
        .ok()
        .filter(|counts: &serde_json::Value| !counts.is_null())
}

/// What the database says about the collectors: their state, their running leases, and the
/// damage note of a database found damaged.
pub(crate) struct Observed {
    pub(crate) states: Vec<CollectorState>,
    pub(crate) leases: Vec<Lease>,
    pub(crate) damage: Option<String>,
}

/// Every collector's state and lease. When a process found the database damaged, its note is
/// each collector's last error (every one has stopped acknowledging), and a database that can
/// no longer be read shows the collectors without their state rather than failing.
pub(crate) fn states_and_damage(config: &Config) -> Result<Observed> {
    let damage = damage_note(&config.storage);
    let read = open_store(config)
        .and_then(|mut store| Ok((store.collector_states()?, store.running_leases()?)));
    match (read, damage) {
        (Ok((states, leases)), damage) => Ok(Observed {
            states,
            leases,
            damage,
        }),
        (Err(e), Some(damage)) => {
            tracing::warn!(error = %format!("{e:#}"), "cannot read the collectors' state");
            Ok(Observed {
                states: Vec::new(),
                leases: Vec::new(),
                damage: Some(damage),
            })
        }
        (Err(e), None) => Err(e),
    }
}

/// Runs a `collectors` subcommand.
pub(super) fn run(config: &Config, command: &CollectorsCommand) -> Result<()> {
    let json = match command {
        CollectorsCommand::Status { json } => json,
        CollectorsCommand::Probe { name, json } => return super::probe::run(config, name, *json),
    };
    let observed = states_and_damage(config)?;
    let rows = status_rows(config, &observed);
    if *json {
        return print_json_sorted_keys(&rows);
    }
    print_status_table(&rows);
    print_server_notes(&rows);
    Ok(())
}

/// A row per configured collector, in file order; a damage note stands as every one's last
/// error.
pub(crate) fn status_rows<'a>(config: &'a Config, observed: &'a Observed) -> Vec<StatusRow<'a>> {
    config
        .collectors
        .iter()
        .map(|c| {
            let state = observed.states.iter().find(|s| s.collector == c.name);
            let lease = observed.leases.iter().find(|l| l.collector == c.name);
            let mut row = StatusRow::new(c, state, lease);
            if let Some(damage) = observed.damage.as_deref() {
                row.last_error = Some(damage);
            }
            row
        })
        .collect()
}

/// Below the table, what the servers made collectors do differently, one line each.
fn print_server_notes(rows: &[StatusRow]) {
    for row in rows {
        if row.mode.contains('(') {
            println!("{}: mode {}", row.collector, row.mode);
        }
        for fallback in &row.fallbacks {
            println!("{}: {fallback}", row.collector);
        }
        if let Some(counts) = &row.last_error_counts {
            println!(
                "{}: before its last error, the run committed: {}",
                row.collector,
                counts_text(Some(counts))
            );
        }
    }
}

/// A stored report's counts in words, or `-`.
fn counts_text(v: Option<&serde_json::Value>) -> String {
    let Some(v) = v else {
        return "-".to_string();
    };
    [
        "fetched",
        "accepted",
        "skipped",
        "quarantined",
        "duplicates",
    ]
    .iter()
    .map(|k| format!("{k} {}", v[*k]))
    .collect::<Vec<_>>()
    .join(", ")
}

fn print_status_table(rows: &[StatusRow]) {
    // NOTE: the same text as the JSON timestamps (chrono's serde form), so both views agree.
    let time = |at: Option<DateTime<Utc>>| {
        at.map_or_else(
            || "-".to_string(),
            |t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        )
    };
    let table = rows
        .iter()
        .map(|r| {
            vec![
                r.collector.to_string(),
                time(r.last_run),
                time(r.last_success),
                time(r.next_run),
                counts_text(r.counts.as_ref()),
                r.holder
                    .as_ref()
                    .map_or_else(|| "-".to_string(), |h| format!("{}:{}", h.host, h.pid)),
                or_dash(r.last_error),
            ]
        })
        .collect();
    print_table(
        &[
            "COLLECTOR",
            "LAST RUN",
            "LAST SUCCESS",
            "NEXT RUN",
            "LAST COUNTS",
            "HOLDER",
            "LAST ERROR",
        ],
        table,
        80,
    );
}
