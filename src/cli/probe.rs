//! `mailintake collectors probe NAME`: logs in to an IMAP collector's server and says what
//! the collector will find and do there (capabilities, namespace, delimiter, its folders,
//! MOVE or COPY + UID EXPUNGE or the fallback, IDLE or the schedule), changing nothing.

use anyhow::{Context, Result, bail};
use serde::Serialize;

use super::print_json_or;
use super::terminal::one_line;
use crate::config::{CollectMode, Config, SourceConfig};
use crate::ingest::runtime;
use crate::source::imap::{Probe, probe};

/// `collectors probe --json`: the collector's name with what the probe found.
#[derive(Serialize)]
struct Probed<'a> {
    collector: &'a str,
    host: &'a str,
    port: u16,
    username: &'a str,
    #[serde(flatten)]
    probe: Probe,
    /// Whether the collector can run here (its mailbox exists, its targets can be made).
    usable: bool,
}

/// Runs the probe; fails when the server cannot be reached or the collector could not run
/// there (its mailbox is missing, a target cannot hold messages).
pub(super) fn run(config: &Config, name: &str, json: bool) -> Result<()> {
    let Some(collector) = config.collector(name) else {
        bail!("no collector `{name}` in {}", config.path.display());
    };
    let SourceConfig::Imap(imap) = &collector.source else {
        bail!("collector `{name}` reads a Maildir; only IMAP collectors can be probed");
    };
    let idle = collector.mode == CollectMode::Idle;
    let found = runtime()?
        .block_on(probe(imap, &collector.after, idle))
        .with_context(|| format!("collector `{name}`: probing {}:{}", imap.host, imap.port))?;
    let probed = Probed {
        collector: name,
        host: &imap.host,
        port: imap.port,
        username: &imap.username,
        usable: found.usable(),
        probe: found,
    };
    print_json_or(json, &probed, print_probe)?;
    if !probed.usable {
        bail!("collector `{name}` cannot run on this server as configured (see its folders)");
    }
    Ok(())
}

fn print_probe(p: &Probed) {
    let probe = &p.probe;
    let shown =
        |v: Option<&str>| v.map_or_else(|| "none".to_string(), |v| format!("\"{}\"", one_line(v)));
    println!(
        "collector:      {} ({}@{}:{})",
        p.collector,
        one_line(p.username),
        p.host,
        p.port
    );
    println!(
        "capabilities:   {}",
        one_line(&probe.capabilities.join(" "))
    );
    match &probe.namespace {
        Some(line) => println!("namespace:      {}", one_line(line)),
        None => println!("namespace:      not offered (names are used without a prefix)"),
    }
    println!(
        "folder names:   prefix {}, delimiter {} (LIST \"\" \"\" says {})",
        shown(Some(&probe.personal_prefix)),
        shown(probe.delimiter.as_deref()),
        shown(probe.list_delimiter.as_deref()),
    );
    for f in &probe.folders {
        let sent = if f.server_name == f.resolved {
            String::new()
        } else {
            format!(", sent as \"{}\"", one_line(&f.server_name))
        };
        println!(
            "{:<16}{} -> \"{}\"{sent}: {}",
            format!("{}:", f.role),
            one_line(&f.written),
            one_line(&f.resolved),
            f.state
        );
    }
    println!("stored mail:    {}", probe.acknowledge);
    println!("quarantined:    {}", probe.set_aside);
    if let Some(expunge) = &probe.delete_after_days {
        println!("old mail:       {expunge}");
    }
    println!("mode:           {}", probe.mode);
    for fallback in &probe.fallbacks {
        println!("fallback:       {fallback}");
    }
}
