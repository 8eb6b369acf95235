//! `mailintake collect`: run collectors once and exit (what a systemd timer runs).

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::Serialize;

use super::{open_store, print_json};
use crate::config::Config;
use crate::ingest::{CollectReport, Shutdown, collect, record_run, runtime};
use crate::notify::dispatch::send_pending;

/// One collector's line in `collect --json`: its counts, plus `error` when its pass failed
/// (the counts then say what it committed before the error).
#[derive(Debug, Serialize)]
struct Outcome {
    #[serde(flatten)]
    report: CollectReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Args)]
pub struct CollectArgs {
    /// Only these collectors (repeatable) [default: all]
    #[arg(long, value_name = "NAME")]
    collector: Vec<String>,
    #[arg(long)]
    json: bool,
}

/// Runs `collect`: one pass of the chosen collectors; fails if any of them failed.
pub(super) fn run(config: &Config, args: &CollectArgs) -> Result<()> {
    collect_once(config, &args.collector, args.json)
}

fn collect_once(config: &Config, names: &[String], json: bool) -> Result<()> {
    for name in names {
        if config.collector(name).is_none() {
            bail!("no collector `{name}` in {}", config.path.display());
        }
    }
    // NOTE: `quick_check` first: a pass acknowledges, and must never do so into a damaged file.
    let mut store = open_store(config)?;
    store
        .quick_check()
        .with_context(|| format!("config {}: refusing to collect", config.path.display()))?;
    let runtime = runtime()?;
    let shutdown = Shutdown::new();
    let mut outcomes: Vec<Outcome> = Vec::new();
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
        let outcome = match result {
            Ok(report) => Outcome {
                report,
                error: None,
            },
            Err(failed) => {
                let e = failed.error;
                tracing::error!(collector = %collector.name, error = %e, "collector pass failed");
                failures.push(format!("{}: {e}", collector.name));
                Outcome {
                    report: failed.report,
                    error: Some(e.to_string()),
                }
            }
        };
        outcomes.push(outcome);
    }
    // The passes' records are committed with their notifications: send them now, so a
    // timer setup without the daemon delivers too.
    send_pending(&mut store, config.smtp.as_ref());
    if json {
        print_json(&outcomes)?;
    } else {
        for Outcome { report: r, error } in &outcomes {
            println!(
                "{}: fetched {}, accepted {}, skipped {}, quarantined {}, duplicates {}{}",
                r.collector,
                r.fetched,
                r.accepted,
                r.skipped,
                r.quarantined,
                r.duplicates,
                if error.is_some() { "; then failed" } else { "" }
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
