//! The IMAP drain on PostgreSQL beside SQLite: `cargo bench --bench postgres`.
//!
//! One Dovecot mailbox of N order e-mails (the tests' generator) is drained by
//! `mailintake collect` into a fresh SQLite file and into a fresh PostgreSQL database, in
//! turns, [`RUNS`] times each; the median wall time of each backend gives its messages per
//! second. The PostgreSQL server is the tests' harness started with its durable settings
//! (`fsync` on, as in production), so both backends pay for making each commit durable
//! (SQLite: `synchronous = FULL` in WAL mode). Both servers run on this machine, over
//! loopback.
//!
//! Then work sharing: the same messages spread over four mailboxes, four IMAP collectors on
//! one PostgreSQL database, drained by one `mailintake run` daemon and by two started at
//! once (leases of 3 s; the collectors are shared two and two after at most a few ticks),
//! timed from their start to the last record.
//!
//! Wrong results panic: every run must report N accepted, leave N records in its database
//! and every message `\Seen`, so a fast but broken run cannot pass for a good one.
//!
//! Needs root, Debian's dovecot-imapd and postgresql (`bash tests/run` installs them), and
//! the release binary, which `cargo bench` builds. Figures go to stdout (a table, then one
//! JSON line), progress to stderr. `MAILINTAKE_BENCH_MESSAGES` sets N (default 5000).

// NOTE: shared with the tests (tests/kit/); this bench uses a part of each. (The PostgreSQL
// harness reaches its helpers as `super::imap_server`.)
#[allow(dead_code)]
#[path = "../tests/kit/dovecot.rs"]
mod dovecot;
#[allow(dead_code)]
#[path = "../tests/kit/imap_server.rs"]
mod imap_server;
#[allow(dead_code)]
#[path = "../tests/kit/mail.rs"]
mod mail;
#[allow(dead_code)]
#[path = "../tests/kit/postgres.rs"]
mod postgres;
// NOTE: its memory reading is for the other benches.
#[allow(dead_code)]
mod support;

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use dovecot::{Dovecot, DovecotOptions};
use imap_server::MailboxMessage;
use mail::Corpus;
use postgres::{Postgres, PostgresOptions};
use serde_json::{Value, json};
use support::{open_read_only, record_count};

/// Every login's password.
const PASSWORD: &str = "bench-pass";
/// Drains per backend; the median is reported.
const RUNS: usize = 3;

fn main() {
    // NOTE: `cargo test --benches` runs this without `--bench`; the real thing needs root,
    // two servers and minutes, so it only runs under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        println!("postgres bench: skipped (run it with `cargo bench --bench postgres`)");
        return;
    }
    let n = std::env::var("MAILINTAKE_BENCH_MESSAGES")
        .ok()
        .map(|v| v.parse().expect("MAILINTAKE_BENCH_MESSAGES: a number"))
        .unwrap_or(5000);
    progress(&format!("generating {n} order e-mails"));
    let corpus = Corpus::generate(n).messages;
    let imap = Dovecot::start(DovecotOptions::default());
    let user = "drain@example.test";
    imap.add_user(user, PASSWORD);
    progress("appending");
    let mut client = imap.connect_as(user, PASSWORD);
    for message in &corpus {
        client.append("INBOX", &[], None, message);
    }
    client.logout();
    progress("starting PostgreSQL (durable)");
    let pg = Postgres::start(PostgresOptions {
        durable: true,
        ..PostgresOptions::default()
    });

    let mut sqlite = Vec::new();
    let mut postgres = Vec::new();
    for run in 1..=RUNS {
        for backend in [Backend::Sqlite, Backend::Postgres] {
            progress(&format!("run {run}: {backend:?}"));
            let install = Install::new(&imap, user, backend, &pg);
            let seconds = install.drain(&imap, &pg, user, n);
            match backend {
                Backend::Sqlite => sqlite.push(seconds),
                Backend::Postgres => postgres.push(seconds),
            }
        }
    }
    let (sqlite, postgres) = (median(&sqlite), median(&postgres));
    let rate = |seconds: f64| n as f64 / seconds;
    println!("IMAP drain of {n} order e-mails, `mailintake collect`, median of {RUNS}:");
    println!("  SQLite      {sqlite:7.2} s  {:8.0} msgs/s", rate(sqlite));
    println!(
        "  PostgreSQL  {postgres:7.2} s  {:8.0} msgs/s  ({:.2}× SQLite's time)",
        rate(postgres),
        postgres / sqlite
    );
    println!(
        "{}",
        json!({
            "messages": n,
            "runs": RUNS,
            "sqlite": {"seconds": sqlite, "msgs_per_sec": rate(sqlite)},
            "postgres": {"seconds": postgres, "msgs_per_sec": rate(postgres)},
        })
    );
    shared_drain(&corpus, &imap, &pg);
}

/// The four mailboxes of the work-sharing figure.
const SHARED_USERS: [&str; 4] = [
    "north@example.test",
    "south@example.test",
    "east@example.test",
    "west@example.test",
];

/// The corpus spread over four mailboxes, drained into PostgreSQL by `mailintake run`
/// daemons (one, then two) sharing the four collectors by their leases: wall time from the
/// daemons' start to the last record, median of [`RUNS`].
fn shared_drain(corpus: &[Vec<u8>], imap: &Dovecot, pg: &Postgres) {
    let n = corpus.len();
    progress("appending to four mailboxes");
    for (i, user) in SHARED_USERS.iter().enumerate() {
        imap.add_user(user, PASSWORD);
        let mut client = imap.connect_as(user, PASSWORD);
        for message in corpus.iter().skip(i).step_by(SHARED_USERS.len()) {
            client.append("INBOX", &[], None, message);
        }
        client.logout();
    }
    let mut figures = Vec::new();
    for daemons in [1, 2] {
        let mut runs = Vec::new();
        for run in 1..=RUNS {
            progress(&format!("run {run}: {daemons} daemon(s) on four mailboxes"));
            runs.push(SharedInstall::new(imap, pg).drain(imap, pg, daemons, n));
        }
        figures.push((daemons, median(&runs)));
    }
    println!(
        "IMAP drain of {n} order e-mails over four mailboxes into PostgreSQL, `mailintake run`, median of {RUNS}:"
    );
    for (daemons, seconds) in &figures {
        println!(
            "  {daemons} daemon(s)  {seconds:7.2} s  {:8.0} msgs/s",
            n as f64 / seconds
        );
    }
    let json_figures: Vec<Value> = figures
        .iter()
        .map(|(daemons, seconds)| json!({"daemons": daemons, "seconds": seconds, "msgs_per_sec": n as f64 / seconds}))
        .collect();
    println!(
        "{}",
        json!({"shared_drain": {"messages": n, "mailboxes": 4, "runs": json_figures}})
    );
}

/// Daemon processes, killed if the bench panics while they run.
struct Daemons(Vec<std::process::Child>);

impl Drop for Daemons {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An installation with four IMAP collectors, one per [`SHARED_USERS`] mailbox, on a fresh
/// PostgreSQL database; short leases, no review page.
struct SharedInstall {
    dir: tempfile::TempDir,
    database: String,
}

impl SharedInstall {
    fn new(imap: &Dovecot, pg: &Postgres) -> SharedInstall {
        let dir = tempfile::tempdir().expect("create a temp dir");
        fs::write(dir.path().join("imap-password"), format!("{PASSWORD}\n")).unwrap();
        let db = pg.fresh_database();
        fs::write(dir.path().join("db-password"), format!("{}\n", db.password)).unwrap();
        let mut config = format!(
            "[storage]\nurl = \"{}\"\npassword-file = \"db-password\"\nsslmode = \"disable\"\nlease-secs = 3\n\n[http]\nenabled = false\n\n[[queue]]\nname = \"bench\"\n",
            db.url
        );
        for user in SHARED_USERS {
            let name = user.split('@').next().unwrap();
            config += &format!(
                "\n[[collector]]\nname = \"{name}\"\nqueue = \"bench\"\nschedule = \"0 0 0 1 1 *\"\n\
                 [collector.imap]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
                 username = \"{user}\"\npassword-file = \"imap-password\"\nmailbox = \"INBOX\"\n",
                imap.port()
            );
        }
        fs::write(dir.path().join("collectors.toml"), config).unwrap();
        SharedInstall {
            dir,
            database: db.url.rsplit('/').next().unwrap().to_string(),
        }
    }

    /// Takes `\Seen` off every message (untimed), starts `daemons` daemons at once and
    /// times them until the database holds `n` records; stops them and checks every
    /// message was acknowledged.
    fn drain(&self, imap: &Dovecot, pg: &Postgres, daemons: usize, n: usize) -> f64 {
        for user in SHARED_USERS {
            let mut client = imap.connect_as(user, PASSWORD);
            client.select("INBOX");
            client.ok("UID STORE 1:* -FLAGS.SILENT (\\Seen)");
            client.logout();
        }
        let mailintake = |command: &str| {
            let mut mailintake = Command::new(binary());
            mailintake
                .arg("--config")
                .arg(self.dir.path().join("collectors.toml"))
                .arg(command)
                .env("MAILINTAKE_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null());
            mailintake
        };
        // The schema first, untimed: the figure is the drain's.
        assert!(
            mailintake("migrate")
                .status()
                .expect("run mailintake")
                .success()
        );
        let started = Instant::now();
        let mut children = Daemons(
            (0..daemons)
                .map(|_| mailintake("run").spawn().expect("run mailintake"))
                .collect(),
        );
        let count = || -> usize {
            pg.psql(&self.database, "SELECT count(*) FROM records")
                .parse()
                .expect("a count")
        };
        while count() < n {
            assert!(
                started.elapsed().as_secs() < 600,
                "the daemons did not drain {n} messages in 10 minutes"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let seconds = started.elapsed().as_secs_f64();
        for child in &mut children.0 {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            assert!(child.wait().expect("the daemon exits").success());
        }
        assert_eq!(count(), n, "one record per message");
        for user in SHARED_USERS {
            let unseen = MailboxMessage::unseen(&imap.messages(user, "INBOX"));
            assert_eq!(unseen, 0, "{user}: every message acknowledged");
        }
        seconds
    }
}

fn progress(what: &str) {
    eprintln!("postgres bench: {what}...");
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A mailintake installation in a temp folder: one IMAP collector on the user's INBOX,
/// storing into a fresh SQLite file or a fresh PostgreSQL database.
struct Install {
    dir: tempfile::TempDir,
    /// The PostgreSQL database's name.
    postgres: Option<String>,
}

impl Install {
    fn new(imap: &Dovecot, user: &str, backend: Backend, pg: &Postgres) -> Install {
        let dir = tempfile::tempdir().expect("create a temp dir");
        fs::write(dir.path().join("imap-password"), format!("{PASSWORD}\n")).unwrap();
        let (storage, postgres) = match backend {
            Backend::Sqlite => ("url = \"sqlite://bench.db\"\n".to_string(), None),
            Backend::Postgres => {
                let db = pg.fresh_database();
                fs::write(dir.path().join("db-password"), format!("{}\n", db.password)).unwrap();
                let name = db.url.rsplit('/').next().unwrap().to_string();
                let storage = format!(
                    "url = \"{}\"\npassword-file = \"db-password\"\nsslmode = \"disable\"\n",
                    db.url
                );
                (storage, Some(name))
            }
        };
        let config = format!(
            "[storage]\n{storage}\n[[queue]]\nname = \"bench\"\n\n\
             [[collector]]\nname = \"bench\"\nqueue = \"bench\"\nschedule = \"0 0 0 1 1 *\"\n\
             [collector.imap]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
             username = \"{user}\"\npassword-file = \"imap-password\"\nmailbox = \"INBOX\"\n",
            imap.port()
        );
        fs::write(dir.path().join("collectors.toml"), config).unwrap();
        Install { dir, postgres }
    }

    /// Takes `\Seen` off every message (untimed), then times `mailintake collect` and
    /// checks what it did; returns its wall seconds.
    fn drain(&self, imap: &Dovecot, pg: &Postgres, user: &str, n: usize) -> f64 {
        let mut client = imap.connect_as(user, PASSWORD);
        client.select("INBOX");
        client.ok("UID STORE 1:* -FLAGS.SILENT (\\Seen)");
        client.logout();
        let started = Instant::now();
        let out = Command::new(binary())
            .arg("--config")
            .arg(self.dir.path().join("collectors.toml"))
            .args(["collect", "--json"])
            .env("MAILINTAKE_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .expect("run mailintake");
        let seconds = started.elapsed().as_secs_f64();
        assert!(
            out.status.success(),
            "collect failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let reports: Value = serde_json::from_slice(&out.stdout).expect("collect --json");
        assert_eq!(reports[0]["accepted"], json!(n), "{reports}");
        assert_eq!(self.records(pg), n as i64, "records in the database");
        let messages = imap.messages(user, "INBOX");
        let unseen = MailboxMessage::unseen(&messages);
        assert_eq!(
            (messages.len(), unseen),
            (n, 0),
            "every message acknowledged"
        );
        seconds
    }

    fn records(&self, pg: &Postgres) -> i64 {
        match &self.postgres {
            Some(name) => pg
                .psql(name, "SELECT count(*) FROM records")
                .parse()
                .expect("a count"),
            None => {
                let mut conn =
                    open_read_only(&self.dir.path().join("bench.db")).expect("the database");
                record_count(&mut conn).expect("count records")
            }
        }
    }
}

fn binary() -> PathBuf {
    let path = PathBuf::from(option_env!("CARGO_BIN_EXE_mailintake").unwrap_or(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/release/mailintake"
    )));
    assert!(path.exists(), "{} is missing", path.display());
    path
}
