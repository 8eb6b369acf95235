//! `mailintake collect`: run collectors once and exit (what a systemd timer runs).

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::Serialize;

use super::{open_store, print_json};
use crate::config::{Collector, Config};
use crate::daemon::{holding, leases_ignored, this_process};
use crate::ingest::{CollectReport, FailedPass, Shutdown, collect, record_run, runtime};
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

/// Runs `collect`: one pass of the chosen collectors; fails if any of them failed (one
/// skipped because another process holds its lease did not fail).
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
    let mut leases = Leases::open(config)?;
    let chosen: Vec<&Collector> = config
        .collectors
        .iter()
        .filter(|c| names.is_empty() || names.contains(&c.name))
        .collect();
    for &collector in &chosen {
        // NOTE: a collector another process runs now is not a failure: its mail is being
        // collected (two `collect` runs started at once both succeed).
        let Some(leases) = leases.take(collector, json)? else {
            continue;
        };
        // One broken collector does not stop the others; the exit status reports it.
        let result = runtime.block_on(leases.run(collector, &mut store, &shutdown));
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

/// The collectors' leases as `collect` takes them: each collector's for the length of its
/// pass, so a daemon sharing the database does not run it at the same time. A collector a
/// daemon holds is skipped (said on stdout, or stderr with `--json`).
struct Leases {
    /// A connection of its own, renewing while the pass writes on the other; `None` when
    /// leases are ignored (`MAILINTAKE_IGNORE_LEASES=1`).
    store: Option<crate::store::Store>,
    me: crate::store::LeaseHolder,
    length: std::time::Duration,
}

/// A lease taken for one pass; given back by [`Leases::run`].
struct Taken<'a>(&'a mut Leases);

impl Leases {
    fn open(config: &Config) -> Result<Leases> {
        let store = if leases_ignored() {
            None
        } else {
            Some(open_store(config)?)
        };
        Ok(Leases {
            store,
            me: this_process(),
            length: config.storage_lease,
        })
    }

    /// Takes `collector`'s lease, or says who holds it and gives `None`.
    fn take(&mut self, collector: &Collector, json: bool) -> Result<Option<Taken<'_>>> {
        let Some(store) = &mut self.store else {
            return Ok(Some(Taken(self)));
        };
        match store.acquire_lease(&collector.name, &self.me, self.length)? {
            crate::store::Acquisition::Acquired => Ok(Some(Taken(self))),
            // NOTE: a holder on this host whose process is gone (a killed `collect`) can
            // hold nothing: its lease is taken at once rather than after it expires.
            crate::store::Acquisition::Held(lease)
                if lease.host == self.me.host
                    && !std::path::Path::new(&format!("/proc/{}", lease.pid)).exists()
                    && store.take_over_lease(&lease, &self.me, self.length)? =>
            {
                Ok(Some(Taken(self)))
            }
            crate::store::Acquisition::Held(lease) => {
                let line = format!(
                    "{}: held by {}:{} until {}, skipped",
                    collector.name,
                    lease.host,
                    lease.pid,
                    lease.expires_at.and_utc().format("%Y-%m-%dT%H:%M:%SZ")
                );
                if json {
                    eprintln!("{line}");
                } else {
                    println!("{line}");
                }
                Ok(None)
            }
        }
    }
}

impl Taken<'_> {
    /// One pass of `collector` under its lease, renewed meanwhile; the lease is given back
    /// at the end.
    async fn run(
        self,
        collector: &Collector,
        store: &mut crate::store::Store,
        shutdown: &Shutdown,
    ) -> Result<CollectReport, FailedPass> {
        let Leases {
            store: lease_store,
            me,
            length,
        } = self.0;
        let Some(lease_store) = lease_store else {
            return collect(collector, store, shutdown).await;
        };
        let lost = shutdown.child_token();
        let pass = collect(collector, store, &lost);
        let result = holding(lease_store, me, &collector.name, *length, &lost, pass).await;
        if let Err(e) = lease_store.release_leases(std::slice::from_ref(&collector.name), me) {
            tracing::warn!(collector = %collector.name, error = %e, "cannot release the lease; it expires by itself");
        }
        result
    }
}
