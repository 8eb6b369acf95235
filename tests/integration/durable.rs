//! A database that goes away, comes back or breaks under a running daemon: a message is
//! acknowledged only once its commit is durable, in the configured file, and that file is
//! sound. Real daemon processes, real Maildirs, real SQLite files (damaged with real bytes).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel::sqlite::SqliteConnection;

use crate::kit::mail::order_message;
use crate::kit::process::wait_until;
use crate::kit::sandbox::Sandbox;

const INN: &str = "7709745454";
const DATABASE: &str = "data/mailintake.db";
const PATIENCE: Duration = Duration::from_secs(30);

/// A sandbox whose collectors (`(name, maildir)`) run every second.
fn sandbox(collectors: &[(&str, &str)]) -> Sandbox {
    let sandbox = Sandbox::new();
    for (_, maildir) in collectors {
        sandbox.maildir(maildir);
    }
    sandbox.write_config(collectors, "");
    let path = sandbox.path("collectors.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("schedule = \"0 */5 * * * *\"", "schedule = \"* * * * * *\"");
    std::fs::write(&path, text).unwrap();
    sandbox
}

/// How many lines of the daemon's log contain every one of `words`.
fn log_lines(sandbox: &Sandbox, words: &[&str]) -> usize {
    let log = std::fs::read_to_string(sandbox.path("daemon.log")).unwrap_or_default();
    without_colours(&log)
        .lines()
        .filter(|line| words.iter().all(|w| line.contains(w)))
        .count()
}

/// The log's text without the ANSI colour codes the log writer adds.
fn without_colours(log: &str) -> String {
    let mut text = String::with_capacity(log.len());
    let mut rest = log;
    while let Some(start) = rest.find('\x1b') {
        text.push_str(&rest[..start]);
        rest = &rest[start..];
        rest = rest.find('m').map_or("", |end| &rest[end + 1..]);
    }
    text.push_str(rest);
    text
}

fn wait_for_log(sandbox: &Sandbox, words: &[&str], at_least: usize) {
    wait_until(PATIENCE, Duration::from_millis(50), || {
        let seen = log_lines(sandbox, words);
        if seen >= at_least {
            Ok(())
        } else {
            Err(format!("{seen} of {at_least} log lines with {words:?}"))
        }
    });
}

/// Messages of the Maildir `maildir` in its subfolder `sub`.
fn in_folder(sandbox: &Sandbox, maildir: &str, sub: &str) -> usize {
    std::fs::read_dir(sandbox.path(maildir).join(sub))
        .unwrap()
        .count()
}

fn wait_until_acknowledged(sandbox: &Sandbox, maildir: &str) {
    wait_until(PATIENCE, Duration::from_millis(50), || {
        match in_folder(sandbox, maildir, "new") {
            0 => Ok(()),
            left => Err(format!("{left} message(s) still in {maildir}/new")),
        }
    });
}

#[test]
fn database_deleted_under_a_running_daemon_gets_no_acknowledgement_into_the_void() {
    let sandbox = sandbox(&[("shop", "a")]);
    sandbox.deliver("a", "1.M1.mx", &order_message(1, INN, 1));
    let daemon = sandbox.spawn_daemon();
    wait_until_acknowledged(&sandbox, "a");

    // The daemon's connection now writes into a file with no name; no CLI touches the
    // path until the daemon has recovered, so the file it then uses is its own.
    std::fs::remove_file(sandbox.path(DATABASE)).unwrap();
    for n in 2..=6 {
        sandbox.deliver("a", &format!("{n}.M{n}.mx"), &order_message(n, INN, 1));
    }
    wait_for_log(
        &sandbox,
        &["collector pass failed", "deleted or replaced while open"],
        1,
    );
    wait_until_acknowledged(&sandbox, "a");
    assert!(daemon.terminate().success());

    // Every message delivered after the deletion is in the configured file, once.
    let records = sandbox.assert_one_record_per_order(5);
    let mut refs: Vec<&str> = records
        .iter()
        .map(|r| r["source"]["order_ref"].as_str().unwrap())
        .collect();
    refs.sort_unstable();
    assert_eq!(refs, ["2", "3", "4", "5", "6"]);
    assert_eq!(in_folder(&sandbox, "a", "cur"), 6);
}

/// Makes a file read-only for the daemon until dropped. Root writes through permissions, so
/// as root the file is made immutable (`chattr +i`) instead.
struct ReadOnly(PathBuf);

fn is_root() -> bool {
    let id = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&id.stdout).trim() == "0"
}

impl ReadOnly {
    fn set(path: &Path) -> ReadOnly {
        if is_root() {
            assert!(
                Command::new("chattr")
                    .arg("+i")
                    .arg(path)
                    .status()
                    .unwrap()
                    .success()
            );
        } else {
            let mut permissions = std::fs::metadata(path).unwrap().permissions();
            permissions.set_readonly(true);
            std::fs::set_permissions(path, permissions).unwrap();
        }
        ReadOnly(path.to_path_buf())
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        if is_root() {
            let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
        } else {
            let mut permissions = std::fs::metadata(&self.0).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            permissions.set_readonly(false);
            let _ = std::fs::set_permissions(&self.0, permissions);
        }
    }
}

#[test]
fn database_read_only_at_start_is_used_once_it_is_writable() {
    let sandbox = sandbox(&[("shop", "a")]);
    assert!(sandbox.collect_all().len() == 1, "creates the database");
    let read_only = ReadOnly::set(&sandbox.path(DATABASE));
    for n in 1..=3 {
        sandbox.deliver("a", &format!("{n}.M{n}.mx"), &order_message(n, INN, 1));
    }
    let daemon = sandbox.spawn_daemon();
    // NOTE: a collector runs only while its lease is held, and a read-only database cannot
    // record one (nor the daemon's announcement that comes first): the daemon says so, naming
    // the collector, on every attempt, and collects nothing meanwhile.
    wait_for_log(
        &sandbox,
        &["waits for the database", "shop", "readonly database"],
        2,
    );
    assert_eq!(in_folder(&sandbox, "a", "new"), 3, "nothing acknowledged");

    drop(read_only);
    wait_until_acknowledged(&sandbox, "a");
    assert!(daemon.terminate().success());
    sandbox.assert_one_record_per_order(3);
}

#[derive(QueryableByName)]
struct Number {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn number(conn: &mut SqliteConnection, sql: &str) -> i64 {
    diesel::sql_query(sql).get_result::<Number>(conn).unwrap().n
}

/// Moves every committed page into the database file (so both the daemon's connections
/// read the file afresh: the reset WAL drops their caches), then fills the root page of
/// `table` with garbage.
fn damage_table(database: &Path, table: &str) {
    let mut conn = SqliteConnection::establish(&database.to_string_lossy()).unwrap();
    let wal = PathBuf::from(format!("{}-wal", database.display()));
    wait_until(PATIENCE, Duration::from_millis(50), || {
        conn.batch_execute("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
        match std::fs::metadata(&wal).map(|m| m.len()) {
            Ok(0) => Ok(()),
            other => Err(format!("WAL not truncated: {other:?}")),
        }
    });
    let page_size = number(&mut conn, "SELECT page_size AS n FROM pragma_page_size");
    let root = number(
        &mut conn,
        &format!(
            "SELECT rootpage AS n FROM sqlite_master WHERE type = 'table' AND name = '{table}'"
        ),
    );
    drop(conn);
    let mut bytes = std::fs::read(database).unwrap();
    let start = usize::try_from((root - 1) * page_size).unwrap();
    let end = start + usize::try_from(page_size).unwrap();
    bytes[start..end].fill(0x5a);
    // NOTE: written in place (same inode), as a disk or a stray process would.
    use std::io::{Seek, SeekFrom, Write};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(database)
        .unwrap();
    file.seek(SeekFrom::Start(start as u64)).unwrap();
    file.write_all(&bytes[start..end]).unwrap();
}

/// Runs the binary with `args` and expects it to fail saying every one of `words`.
fn assert_refused(sandbox: &Sandbox, args: &[&str], words: &[&str]) {
    let out = sandbox.run(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(
        words.iter().all(|w| stderr.contains(w)),
        "{args:?}: {stderr}"
    );
}

#[test]
fn a_damaged_database_stops_every_collectors_acknowledgements_and_status_says_why() {
    let sandbox = sandbox(&[("shop", "a"), ("forms", "b")]);
    sandbox.deliver("a", "1.M1.mx", &order_message(1, INN, 1));
    sandbox.deliver("b", "2.M2.mx", &order_message(2, INN, 1));
    let daemon = sandbox.spawn_daemon();
    wait_until_acknowledged(&sandbox, "a");
    wait_until_acknowledged(&sandbox, "b");

    // A new record needs its first history event: `shop` hits the damage. A copy of an
    // order `forms` already stored is only a ledger row: `forms` could acknowledge it, and
    // must not.
    damage_table(&sandbox.path(DATABASE), "record_events");
    sandbox.deliver("a", "3.M3.mx", &order_message(3, INN, 1));
    wait_for_log(&sandbox, &["the database is damaged"], 1);
    sandbox.deliver("b", "4.M4.mx", &order_message(2, INN, 1));
    wait_for_log(
        &sandbox,
        &["collector pass failed", "collector=forms", "is damaged"],
        2,
    );
    assert_eq!(in_folder(&sandbox, "a", "new"), 1);
    assert_eq!(
        in_folder(&sandbox, "b", "new"),
        1,
        "the copy is not acknowledged"
    );

    let status = sandbox.json(&["collectors", "status", "--json"]);
    for row in status.as_array().unwrap() {
        let error = row["last_error"].as_str().unwrap_or_default();
        assert!(
            error.contains("the database is damaged") && error.contains("malformed"),
            "{row}"
        );
    }
    assert!(daemon.terminate().success());

    // At start-up, `quick_check` refuses the file.
    assert_refused(
        &sandbox,
        &["collect"],
        &["refusing to collect", "is damaged"],
    );
    assert_refused(&sandbox, &["run"], &["refusing to start", "is damaged"]);
    assert_eq!(in_folder(&sandbox, "a", "new"), 1);
}

#[test]
fn a_file_that_is_not_a_database_is_refused_at_start() {
    let sandbox = sandbox(&[("shop", "a")]);
    sandbox.deliver("a", "1.M1.mx", &order_message(1, INN, 1));
    std::fs::create_dir_all(sandbox.path("data")).unwrap();
    std::fs::write(sandbox.path(DATABASE), vec![0x5a; 8192]).unwrap();
    for args in [&["run"][..], &["collect"]] {
        assert_refused(&sandbox, args, &["file is not a database"]);
    }
    let status = sandbox.json(&["collectors", "status", "--json"]);
    assert!(
        status[0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("the database is damaged")),
        "{status}"
    );
    assert_eq!(in_folder(&sandbox, "a", "new"), 1);
}

/// The order of the durability-relevant system calls of one `collect` (strace `-y` names the
/// file of each descriptor): `S` for an fsync of the WAL, `R` for a rename into `cur/`.
fn syncs_and_renames(trace: &str) -> String {
    trace
        .lines()
        .filter_map(|line| {
            if line.contains("sync(") && line.contains("mailintake.db-wal>") {
                Some('S')
            } else if line.contains("rename") && line.contains("/cur/") && line.contains("= 0") {
                Some('R')
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn the_wal_is_fsynced_before_any_message_is_acknowledged() {
    let sandbox = sandbox(&[("shop", "a")]);
    // Batches of two, so the order is seen between batches too.
    let config = sandbox.path("collectors.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[collector.maildir]", "batch-size = 2\n[collector.maildir]");
    std::fs::write(&config, text).unwrap();
    assert!(sandbox.collect_all().len() == 1, "creates the database");
    for n in 1..=4 {
        sandbox.deliver("a", &format!("{n}.M{n}.mx"), &order_message(n, INN, 1));
    }
    let trace = sandbox.path("strace.txt");
    let mut command = Command::new("strace");
    command
        .args([
            "-f",
            "-y",
            "-qq",
            "-e",
            "trace=fsync,fdatasync,rename,renameat,renameat2",
            "-o",
        ])
        .arg(&trace)
        .arg(env!("CARGO_BIN_EXE_mailintake"))
        .arg("--config")
        .arg(&config)
        .args(["collect", "--json"])
        .env("MAILINTAKE_LOG", "warn");
    let out = command.output().expect("strace is installed (tests/run)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let order = syncs_and_renames(&std::fs::read_to_string(&trace).unwrap());
    // Each batch's two renames come after a WAL fsync of its own commit, none before one.
    // NOTE: the pass commits a batch while it acknowledges the one before, so the second
    // batch's fsync may come before the first batch's renames (`SSSRRRR`), never after its
    // own renames: before each pair of renames, one fsync more than before the pair before.
    assert!(order.starts_with('S'), "{order}");
    let (mut syncs, mut renames) = (0, 0);
    let mut syncs_before_pairs = Vec::new();
    for c in order.chars() {
        if c == 'S' {
            syncs += 1;
        } else {
            if renames % 2 == 0 {
                syncs_before_pairs.push(syncs);
            }
            renames += 1;
        }
    }
    assert_eq!(syncs_before_pairs.len(), 2, "{order}");
    assert!(
        syncs_before_pairs[1] > syncs_before_pairs[0],
        "the second batch was acknowledged before its commit's fsync: {order}"
    );
    sandbox.assert_one_record_per_order(4);
}
