//! A sandbox per test: the real `mailintake` binary run against a temp folder with its own
//! config, real SQLite files and real Maildirs. Samples are only ever read from the working
//! tree or copied into the sandbox, never changed in place.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::process::{Daemon, wait_until};

/// Repo root (for samples/).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `[http]` table of [`Sandbox::write_config`]'s configs: a daemon a test starts with
/// `run` serves the review page on a port of its own (tests run side by side, and 8080 may
/// be a developer's demo). A test that wants other `[http]` keys edits this table rather
/// than adding a second one.
pub const HTTP_SECTION: &str = "[http]\nlisten = \"127.0.0.1:0\"\n";

/// A temp folder with a config, a database and Maildirs.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes `collectors.toml`: one queue and one Maildir collector per `(name, maildir)`,
    /// and the review page on a port of its own ([`HTTP_SECTION`]).
    pub fn write_config(&self, collectors: &[(&str, &str)], extra: &str) {
        let mut text = String::from("[storage]\nurl = \"sqlite://data/mailintake.db\"\n\n");
        for (name, maildir) in collectors {
            text.push_str(&format!(
                "[[queue]]\nname = \"{name}\"\n\n[[collector]]\nname = \"{name}\"\nqueue = \"{name}\"\nschedule = \"0 */5 * * * *\"\n{extra}\n[collector.maildir]\npath = \"{maildir}\"\n\n"
            ));
        }
        // Last, so the lines of the tables above stay where config-error tests expect them.
        text.push_str(HTTP_SECTION);
        std::fs::write(self.path("collectors.toml"), text).unwrap();
    }

    /// An empty Maildir at `rel`.
    pub fn maildir(&self, rel: &str) -> PathBuf {
        let root = self.path(rel);
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        root
    }

    /// Delivers `bytes` into `new/` of the Maildir at `rel` under the unique name `name`.
    pub fn deliver(&self, rel: &str, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.maildir(rel).join("new").join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// The file names in `sub` (`new`, `cur`) of the Maildir at `rel`, sorted.
    pub fn files_in(&self, rel: &str, sub: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.path(rel).join(sub))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// The binary with this sandbox's config and `args`, logging warnings and errors; for
    /// children a test spawns, signals or kills itself.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mailintake"));
        command
            .arg("--config")
            .arg(self.path("collectors.toml"))
            .args(args)
            .env("MAILINTAKE_LOG", "warn");
        command
    }

    /// `mailintake run` on the sandbox's config, logging at `info` into `daemon.log`.
    pub fn spawn_daemon(&self) -> Daemon {
        Daemon::spawn(
            self.command(&["run"])
                .env("MAILINTAKE_LOG", "info")
                .stdout(std::process::Stdio::null())
                .stderr(std::fs::File::create(self.path("daemon.log")).unwrap()),
        )
    }

    /// Runs the binary with this sandbox's config to its end.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs the binary, expects success, and parses stdout as JSON.
    pub fn json(&self, args: &[&str]) -> Value {
        success_json(self.run(args))
    }

    /// Number of open quarantine entries.
    pub fn quarantined(&self) -> usize {
        self.json(&["quarantine", "list", "--json"])
            .as_array()
            .unwrap()
            .len()
    }

    pub fn records(&self) -> Vec<Value> {
        self.json(&["records", "list", "--json"])
            .as_array()
            .unwrap()
            .clone()
    }

    /// The single collect report of a `collect --json` run.
    pub fn collect(&self) -> Value {
        let reports = self.json(&["collect", "--json"]);
        assert_eq!(reports.as_array().unwrap().len(), 1, "{reports}");
        reports[0].clone()
    }

    /// Runs `collect --json` for all collectors, expecting success.
    pub fn collect_all(&self) -> Vec<Value> {
        self.json(&["collect", "--json"])
            .as_array()
            .unwrap()
            .clone()
    }

    /// The notification log (`notifications list --json` with `filters`).
    pub fn notifications(&self, filters: &[&str]) -> Vec<Value> {
        let mut args = vec!["notifications", "list", "--json"];
        args.extend_from_slice(filters);
        self.json(&args).as_array().unwrap().clone()
    }

    /// Record `id`'s history as `(event, detail)`, oldest first.
    pub fn history(&self, id: u64) -> Vec<(String, String)> {
        let record = self.json(&["records", "show", &id.to_string(), "--json"]);
        record["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let detail = e["detail"].as_str().unwrap_or_default().to_string();
                (e["event"].as_str().unwrap().to_string(), detail)
            })
            .collect()
    }

    /// Asserts that the database holds exactly `total` records with `total` different order
    /// numbers: every message stored once, none lost; returns the records.
    pub fn assert_one_record_per_order(&self, total: usize) -> Vec<Value> {
        let records = self.records();
        let refs: HashSet<&str> = records
            .iter()
            .map(|r| r["source"]["order_ref"].as_str().unwrap())
            .collect();
        assert_eq!((records.len(), refs.len()), (total, total));
        records
    }

    /// Waits until the database holds `want` records or more (a daemon stores them);
    /// returns how long that took.
    pub fn wait_for_records(&self, want: usize, within: Duration) -> Duration {
        let start = Instant::now();
        wait_until(within, Duration::from_millis(50), || {
            let have = self.records().len();
            if have >= want {
                Ok(start.elapsed())
            } else {
                Err(format!("{have} of {want} records"))
            }
        })
    }
}

pub fn success_json(output: Output) -> Value {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// The error text of a run that failed with exit status 1 (asserting it did, and printed
/// nothing on stdout), e.g. a `check` that found a config error.
pub fn failure_text(output: Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        output.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    stderr
}

/// The README's demo in a sandbox: a copy of `samples/` (without a running demo's
/// `samples/demo-state/`), seeded by `bash samples/demo --seed-only`, beside the shipped
/// `collectors.toml` as `config` rewrites it.
pub fn shipped_demo(config: impl FnOnce(String) -> String) -> Sandbox {
    let sandbox = Sandbox::new();
    copy_tree(&repo().join("samples"), &sandbox.path("samples"));
    for state in ["samples/demo-state", "samples/demo-state.partial"] {
        let _ = std::fs::remove_dir_all(sandbox.path(state));
    }
    // The review page on a port of its own: tests run side by side, and 8080 may be a
    // running demo's.
    let shipped = std::fs::read_to_string(repo().join("collectors.toml"))
        .unwrap()
        .replace("listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:0\"");
    std::fs::write(sandbox.path("collectors.toml"), config(shipped)).unwrap();
    let seeded = Command::new("bash")
        .arg(sandbox.path("samples/demo"))
        .arg("--seed-only")
        .output()
        .unwrap();
    assert!(seeded.status.success(), "{seeded:?}");
    sandbox
}

/// Runs the binary without a config.
pub fn run_bare(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mailintake"))
        .args(args)
        .env_remove("MAILINTAKE_CONFIG")
        .env("MAILINTAKE_LOG", "warn")
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap()
}

/// Copies a folder tree.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Asserts that `expected` is a subset of `actual`: object keys given must match, arrays
/// match element-wise in full length, numbers compare as numbers.
pub fn assert_subset(expected: &Value, actual: &Value, path: &str) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (key, value) in e {
                let got = a
                    .get(key)
                    .unwrap_or_else(|| panic!("{path}.{key}: missing in {actual}"));
                assert_subset(value, got, &format!("{path}.{key}"));
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            assert_eq!(
                e.len(),
                a.len(),
                "{path}: length differs: expected {expected}, got {actual}"
            );
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                assert_subset(ev, av, &format!("{path}[{i}]"));
            }
        }
        (Value::Number(e), Value::Number(a)) => {
            assert_eq!(e.as_f64(), a.as_f64(), "{path}: expected {e}, got {a}");
        }
        _ => assert_eq!(expected, actual, "{path}"),
    }
}

/// Reads a sample e-mail.
pub fn sample(name: &str) -> Vec<u8> {
    std::fs::read(repo().join("samples/eml").join(name)).unwrap()
}

/// The `collector` of each report of a `collect --json` run, in order.
pub fn collector_names(reports: &Value) -> Vec<&str> {
    reports
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["collector"].as_str().unwrap())
        .collect()
}

/// The five counts of a collect report, in contract order:
/// fetched, accepted, skipped, quarantined, duplicates.
pub fn counts(report: &Value) -> [u64; 5] {
    [
        "fetched",
        "accepted",
        "skipped",
        "quarantined",
        "duplicates",
    ]
    .map(|k| report[k].as_u64().unwrap())
}
