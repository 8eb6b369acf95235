//! mailintake's IMAP path against a real Dovecot: `cargo bench --bench imap`.
//!
//! Every figure is set against a floor that no IMAP client can beat on this machine, because
//! Dovecot's own speed is not ours to judge:
//!
//! - **drain**: `mailintake collect` empties a backlog of N order e-mails (the median of
//!   [`DRAIN_RUNS`], each into a fresh database). Two floors from the same run: the raw floor,
//!   one bare `UID FETCH 1:* (BODY.PEEK[])` of the same mailbox, and the floor with
//!   acknowledgement, that FETCH followed by `UID STORE 1:* +FLAGS.SILENT (\Seen)` (what any
//!   collector must at least do). Targets: at most 2× the floor with acknowledgement, peak
//!   RSS at most 64 MiB, and flat as the backlog grows (N/5, N and 2N are drained).
//!   To tell Dovecot's share from mailintake's, the bare client also replays mailintake's
//!   own commands (per batch a FETCH of its items and a STORE of `\Seen`), and the decode
//!   and store steps run in this process without IMAP.
//! - **push**: `mailintake run` with an IDLE collector; latency is from an APPEND's OK to the
//!   record being visible in SQLite. The floor is a bare IDLE client seeing `* N EXISTS`.
//!   Target: median within 5 ms of the floor.
//!
//! Needs root and Debian's dovecot-imapd (see tests/kit/dovecot.rs), and the release
//! binary, which `cargo bench` builds. Figures go to stdout (a table, then one JSON line),
//! progress to stderr. Wrong results (record counts, unacknowledged messages, a daemon that
//! does not stop cleanly) panic, so a fast but broken run cannot pass for a good one.
//!
//! Environment: `MAILINTAKE_BENCH_MESSAGES` (N, default 5000), `MAILINTAKE_BENCH_IDLE_SAMPLES`
//! (default 200), `MAILINTAKE_BENCH_IDLE_SETTLE_MS` (pause after each push sample, default
//! 750; see [`Settings::idle_settle`]).

// NOTE: shared with the tests (tests/kit/); this bench uses a part of each.
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
#[path = "../tests/kit/process.rs"]
mod process;
mod support;

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use diesel::SqliteConnection;
use dovecot::{Dovecot, DovecotOptions, Imap};
use imap_server::MailboxMessage;
use mail::Corpus;
use mailintake::config::{Collector, Config};
use mailintake::ingest::{CollectReport, Fetched, Mapped, commit_messages, prepare};
use mailintake::store::Store;
use process::{Daemon, wait_until};
use serde_json::{Value, json};
use support::{open_read_only, proc_status_kb, record_count};

/// Every test login shares this password.
const PASSWORD: &str = "bench-pass";
/// Drain at most this many times slower than the bare fetch with acknowledgement.
const RATIO_TARGET: f64 = 2.0;
/// Drains per backlog, each into a fresh database; the median is reported.
const DRAIN_RUNS: usize = 3;
/// Peak RSS of a drain, whatever the backlog.
const RSS_TARGET_KIB: u64 = 64 * 1024;
/// How much later than a bare IDLE client the daemon may have the record (median).
const PUSH_GAP_TARGET: Duration = Duration::from_millis(5);
/// Longest wait for anything that should happen (a record, an EXISTS, the daemon's exit).
const PATIENCE: Duration = Duration::from_secs(20);
/// GNU time: exact peak RSS and CPU time of a child (from wait4).
const GNU_TIME: &str = "/usr/bin/time";
const MIB: f64 = 1024.0 * 1024.0;

fn main() {
    // NOTE: `cargo test --benches` runs this without `--bench`; the real thing needs root,
    // Dovecot and minutes, so it only runs under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        println!("imap bench: skipped (run it with `cargo bench --bench imap`)");
        return;
    }
    let settings = Settings::from_env();
    let backlogs = settings.backlogs();
    let corpus_len = backlogs[backlogs.len() - 1].max(settings.idle_samples);
    progress(&format!("generating {corpus_len} order e-mails"));
    let corpus = Corpus::generate(corpus_len).messages;

    let server = Dovecot::start(DovecotOptions::default());
    let drains: Vec<Drain> = backlogs
        .iter()
        .map(|&n| drain_backlog(&server, &corpus[..n]))
        .collect();
    let empty = drain_empty(&server);
    let pipeline = in_process(&corpus[..settings.messages]);
    let push_messages = &corpus[..settings.idle_samples];
    let push_floor = idle_floor(&server, push_messages, settings.idle_settle);
    let push = idle_daemon(&server, push_messages, settings.idle_settle);

    let report = Report {
        settings,
        dovecot: dovecot_version(),
        drains,
        empty,
        pipeline,
        push_floor,
        push,
    };
    print!("{}", report.table());
    println!("{}", report.summary());
}

fn progress(what: &str) {
    eprintln!("imap bench: {what}...");
}

// ---------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------

struct Settings {
    /// N: the backlog the targets are judged at.
    messages: usize,
    /// Push latency samples, for the floor and for the daemon each.
    idle_samples: usize,
    /// Pause after each push sample. NOTE: the daemon's `\Seen` on a stored message is itself
    /// announced on its IDLE connection (`* N FETCH (FLAGS (\Seen))`, ~0.5 s later) and starts
    /// another, empty pass; the pause lets that pass end, so each sample times an APPEND on a
    /// quiet daemon (as sporadic orders find it), not its race with the previous one's echo.
    idle_settle: Duration,
}

impl Settings {
    fn from_env() -> Settings {
        let settings = Settings {
            messages: env_number("MAILINTAKE_BENCH_MESSAGES", 5000),
            idle_samples: env_number("MAILINTAKE_BENCH_IDLE_SAMPLES", 200),
            idle_settle: Duration::from_millis(
                env_number("MAILINTAKE_BENCH_IDLE_SETTLE_MS", 750) as u64
            ),
        };
        assert!(
            settings.messages >= 5 && settings.idle_samples >= 1,
            "MAILINTAKE_BENCH_MESSAGES must be at least 5 and MAILINTAKE_BENCH_IDLE_SAMPLES at least 1"
        );
        settings
    }

    /// N/5, N and 2N: the same peak RSS for all three shows memory does not follow the
    /// backlog (the collector holds one batch, not the mailbox).
    fn backlogs(&self) -> [usize; 3] {
        [self.messages / 5, self.messages, 2 * self.messages]
    }
}

fn env_number(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a number")),
        Err(_) => default,
    }
}

// ---------------------------------------------------------------------------------------
// Corpus
// ---------------------------------------------------------------------------------------

// The corpus is the pipeline bench's (tests/kit/mail.rs): 3–5 KB order mails, deterministic.

fn total_bytes(messages: &[Vec<u8>]) -> usize {
    messages.iter().map(Vec::len).sum()
}

// ---------------------------------------------------------------------------------------
// Dovecot side: appending and the bare fetch
// ---------------------------------------------------------------------------------------

/// A fresh login (so a fresh, empty INBOX) for one part of the bench.
fn fresh_user(server: &Dovecot, name: &str) -> String {
    let user = format!("{name}@example.test");
    server.add_user(&user, PASSWORD);
    user
}

/// APPENDs `messages` to the user's INBOX, in order, over one connection; returns seconds.
fn append_all(server: &Dovecot, user: &str, messages: &[Vec<u8>]) -> f64 {
    let mut imap = server.connect_as(user, PASSWORD);
    let started = Instant::now();
    for (i, message) in messages.iter().enumerate() {
        let (_, uid) = imap.append("INBOX", &[], None, message);
        assert_eq!(uid as usize, i + 1, "UIDs of a fresh INBOX count from 1");
    }
    let seconds = started.elapsed().as_secs_f64();
    imap.logout();
    seconds
}

/// A bare IMAP connection for the fetch floor: it only splits lines and skips `{N}`
/// literals, so no client can read the same response faster. (The harness's client inlines
/// literals into Strings, which would put its own cost into the floor.)
struct BareImap {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    line: Vec<u8>,
    literal: Vec<u8>,
}

/// What one bare command read.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    /// Untagged FETCH responses.
    fetches: usize,
    /// Bytes inside literals (message bodies).
    literal_bytes: usize,
}

impl Tally {
    /// What fetching every message of `messages` must read.
    fn of(messages: &[Vec<u8>]) -> Tally {
        Tally {
            fetches: messages.len(),
            literal_bytes: total_bytes(messages),
        }
    }

    fn add(&mut self, other: Tally) {
        self.fetches += other.fetches;
        self.literal_bytes += other.literal_bytes;
    }
}

impl BareImap {
    /// Connects, logs in and selects INBOX.
    fn open(port: u16, user: &str) -> BareImap {
        let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect to dovecot");
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut imap = BareImap {
            reader: BufReader::with_capacity(1 << 16, stream.try_clone().unwrap()),
            writer: stream,
            line: Vec::new(),
            literal: Vec::new(),
        };
        imap.next_line(); // the greeting
        imap.run("l", &format!("LOGIN \"{user}\" \"{PASSWORD}\""));
        imap.run("s", "SELECT INBOX");
        imap
    }

    /// Sends `tag command` and reads up to its tagged reply, which must be OK.
    fn run(&mut self, tag: &str, command: &str) -> Tally {
        self.writer
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .expect("send to dovecot");
        let tagged = format!("{tag} ");
        let mut tally = Tally::default();
        loop {
            self.next_line();
            if let Some(rest) = self.line.strip_prefix(tagged.as_bytes()) {
                assert!(
                    rest.starts_with(b"OK"),
                    "bare IMAP {command:?} failed: {}",
                    String::from_utf8_lossy(&self.line)
                );
                return tally;
            }
            if self.line.starts_with(b"* ") && self.line.windows(7).any(|w| w == b" FETCH ") {
                tally.fetches += 1;
            }
            // A literal is followed by the rest of its response line (which may hold another).
            while let Some(len) = literal_length(&self.line) {
                self.literal.resize(len, 0);
                self.reader
                    .read_exact(&mut self.literal)
                    .expect("read a literal");
                tally.literal_bytes += len;
                self.next_line();
            }
        }
    }

    fn next_line(&mut self) {
        self.line.clear();
        let n = self
            .reader
            .read_until(b'\n', &mut self.line)
            .expect("read from dovecot");
        assert!(n > 0, "dovecot closed the connection");
    }
}

/// N of a line ending in `{N}` or `{N+}`.
fn literal_length(line: &[u8]) -> Option<usize> {
    let line = line.strip_suffix(b"\r\n")?.strip_suffix(b"}")?;
    let open = line.iter().rposition(|&b| b == b'{')?;
    let digits = &line[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Runs of the bare fetch; the best one is the floor (a floor is what is achievable).
const FLOOR_RUNS: usize = 3;

/// Seconds of the fastest bare `UID FETCH 1:* (BODY.PEEK[])` of the user's INBOX, checking
/// that every run returns exactly `messages`.
fn fetch_floor(port: u16, user: &str, messages: &[Vec<u8>]) -> f64 {
    let mut imap = BareImap::open(port, user);
    let expected = Tally::of(messages);
    (0..FLOOR_RUNS)
        .map(|run| {
            let started = Instant::now();
            let tally = imap.run(&format!("f{run}"), "UID FETCH 1:* (BODY.PEEK[])");
            let seconds = started.elapsed().as_secs_f64();
            assert_eq!(tally, expected, "the bare fetch did not return the corpus");
            seconds
        })
        .fold(f64::INFINITY, f64::min)
}

/// Seconds of the fastest bare `UID FETCH 1:* (BODY.PEEK[])` followed by
/// `UID STORE 1:* +FLAGS.SILENT (\Seen)` on one connection: the least any collector does
/// (read everything, acknowledge everything). `\Seen` is taken off again after each run,
/// untimed.
fn acknowledged_floor(port: u16, user: &str, messages: &[Vec<u8>]) -> f64 {
    let mut imap = BareImap::open(port, user);
    let expected = Tally::of(messages);
    let best = (0..FLOOR_RUNS)
        .map(|run| {
            let started = Instant::now();
            let tally = imap.run(&format!("f{run}"), "UID FETCH 1:* (BODY.PEEK[])");
            imap.run(&format!("a{run}"), "UID STORE 1:* +FLAGS.SILENT (\\Seen)");
            let seconds = started.elapsed().as_secs_f64();
            assert_eq!(tally, expected, "the bare fetch did not return the corpus");
            imap.run(&format!("u{run}"), "UID STORE 1:* -FLAGS.SILENT (\\Seen)");
            seconds
        })
        .fold(f64::INFINITY, f64::min);
    imap.run("o", "LOGOUT");
    best
}

/// Takes `\Seen` off every message of the user's INBOX (between drains, untimed).
fn unsee_all(port: u16, user: &str) {
    let mut imap = BareImap::open(port, user);
    imap.run("u", "UID STORE 1:* -FLAGS.SILENT (\\Seen)");
    imap.run("o", "LOGOUT");
}

/// The items mailintake's IMAP source fetches (src/source/imap.rs).
const MAILINTAKE_FETCH_ITEMS: &str = "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])";

/// Seconds for the bare client to send what a drain of an unknown mailbox sends: log in,
/// SELECT, `UID SEARCH`, then per batch of `batch_size` a FETCH of mailintake's items and a
/// STORE of `\Seen`, LOGOUT. That is Dovecot's share of a drain; the rest is mailintake's.
/// NOTE: run after the drain, with `\Seen` taken off first (untimed), so Dovecot's cache is
/// warm: a lower bound, as a floor should be.
fn replay_floor(port: u16, user: &str, messages: &[Vec<u8>], batch_size: usize) -> f64 {
    BareImap::open(port, user).run("r", "UID STORE 1:* -FLAGS.SILENT (\\Seen)");
    let started = Instant::now();
    let mut imap = BareImap::open(port, user);
    imap.run("s", "UID SEARCH UID 1:*");
    let mut tally = Tally::default();
    for (b, first) in (1..=messages.len()).step_by(batch_size).enumerate() {
        let set = format!("{first}:{}", (first + batch_size - 1).min(messages.len()));
        tally.add(imap.run(
            &format!("f{b}"),
            &format!("UID FETCH {set} {MAILINTAKE_FETCH_ITEMS}"),
        ));
        imap.run(
            &format!("a{b}"),
            &format!("UID STORE {set} +FLAGS.SILENT (\\Seen)"),
        );
    }
    imap.run("o", "LOGOUT");
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(
        tally,
        Tally::of(messages),
        "the replay did not fetch the corpus"
    );
    seconds
}

// ---------------------------------------------------------------------------------------
// mailintake side: an installation and measured runs
// ---------------------------------------------------------------------------------------

/// The binary `cargo bench` built (Cargo sets CARGO_BIN_EXE_* for benches too).
fn binary() -> PathBuf {
    let path = PathBuf::from(option_env!("CARGO_BIN_EXE_mailintake").unwrap_or(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/release/mailintake"
    )));
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --release` first",
        path.display()
    );
    path
}

/// A mailintake installation in a temp folder: config, password file, database, logs.
struct Install {
    dir: tempfile::TempDir,
}

impl Install {
    /// One IMAP collector on the user's INBOX with a yearly schedule (so in the daemon only
    /// the start-up pass and IDLE bring mail in); `keys` are extra collector keys.
    fn new(port: u16, user: &str, keys: &str) -> Install {
        let dir = tempfile::tempdir().expect("create a temp dir");
        fs::write(dir.path().join("imap-password"), format!("{PASSWORD}\n")).unwrap();
        let config = format!(
            "[storage]\nurl = \"sqlite://bench.db\"\n\n[[queue]]\nname = \"bench\"\n\n\
             [[collector]]\nname = \"bench\"\nqueue = \"bench\"\nschedule = \"0 0 0 1 1 *\"\n{keys}\n\
             [collector.imap]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\n\
             username = \"{user}\"\npassword-file = \"imap-password\"\nmailbox = \"INBOX\"\n"
        );
        fs::write(dir.path().join("collectors.toml"), config).unwrap();
        Install { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The config as mailintake reads it.
    fn config(&self) -> Config {
        Config::load(&self.path("collectors.toml")).expect("load the bench config")
    }

    /// The collector as mailintake reads it from the config (rules, batch size).
    fn collector(&self) -> Collector {
        self.config().collectors[0].clone()
    }

    /// `[WRAPPER…] mailintake --config … ARGS` (the wrapper being e.g. GNU time and its
    /// options), with stdout and stderr into files of the installation (files, not pipes:
    /// nobody reads a pipe while the child runs).
    fn command(&self, wrapper: &[&str], args: &[&str], log_level: &str) -> Command {
        let binary = binary();
        let mut command = match wrapper.split_first() {
            Some((program, options)) => {
                let mut command = Command::new(program);
                command.args(options).arg(&binary);
                command
            }
            None => Command::new(&binary),
        };
        command
            .arg("--config")
            .arg(self.path("collectors.toml"))
            .args(args)
            .env("MAILINTAKE_LOG", log_level)
            .stdin(Stdio::null())
            .stdout(fs::File::create(self.path("stdout")).unwrap())
            .stderr(fs::File::create(self.path("stderr")).unwrap());
        command
    }

    fn stdout(&self) -> String {
        fs::read_to_string(self.path("stdout")).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        fs::read_to_string(self.path("stderr")).unwrap_or_default()
    }

    /// Records in the database (which must exist).
    fn record_count(&self) -> i64 {
        let mut conn = open_read_only(&self.path("bench.db")).expect("open the database");
        record_count(&mut conn).expect("count records")
    }
}

/// How a finished child ran.
struct Measured {
    status: ExitStatus,
    seconds: f64,
    peak_rss_kib: u64,
    /// User + system CPU seconds (known with GNU time only).
    cpu_seconds: Option<f64>,
}

/// Runs `mailintake ARGS` to its end, timing it and taking its peak RSS: exactly from GNU
/// time when installed, else by polling VmHWM (which can miss a late peak).
fn run_measured(install: &Install, args: &[&str]) -> Measured {
    if Path::new(GNU_TIME).exists() {
        run_under_gnu_time(install, args)
    } else {
        run_polling_rss(install, args)
    }
}

fn run_under_gnu_time(install: &Install, args: &[&str]) -> Measured {
    let figures = install.path("time");
    let figures = figures.to_str().expect("a UTF-8 temp path");
    let started = Instant::now();
    let status = install
        .command(&[GNU_TIME, "-o", figures, "-f", "%M %U %S"], args, "warn")
        .status()
        .expect("run mailintake under GNU time");
    let seconds = started.elapsed().as_secs_f64();
    // NOTE: GNU time writes "Command exited with non-zero status N" first on failure.
    let text = fs::read_to_string(figures).expect("GNU time's figures");
    let fields: Vec<f64> = text
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .map(|f| f.parse().expect("a number from GNU time"))
        .collect();
    let [rss, user, system] = fields[..] else {
        panic!("unexpected GNU time output: {text:?}");
    };
    Measured {
        status,
        seconds,
        peak_rss_kib: rss as u64,
        cpu_seconds: Some(user + system),
    }
}

fn run_polling_rss(install: &Install, args: &[&str]) -> Measured {
    let started = Instant::now();
    let mut child = install
        .command(&[], args, "warn")
        .spawn()
        .expect("run mailintake");
    let mut peak_rss_kib = 0;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for mailintake") {
            break status;
        }
        peak_rss_kib =
            peak_rss_kib.max(proc_status_kb(&child.id().to_string(), "VmHWM").unwrap_or(0));
        std::thread::sleep(Duration::from_millis(2));
    };
    Measured {
        status,
        seconds: started.elapsed().as_secs_f64(),
        peak_rss_kib,
        cpu_seconds: None,
    }
}

/// Fails unless every message of the user's INBOX carries `\Seen` (was acknowledged).
fn assert_all_seen(server: &Dovecot, user: &str, expected: usize) {
    let messages = server.messages(user, "INBOX");
    let unseen = MailboxMessage::unseen(&messages);
    assert!(
        messages.len() == expected && unseen == 0,
        "{user}: {} messages, {unseen} not acknowledged; expected {expected}, all \\Seen",
        messages.len()
    );
}

// ---------------------------------------------------------------------------------------
// Drain
// ---------------------------------------------------------------------------------------

/// One backlog, appended, fetched bare and drained by `mailintake collect`.
struct Drain {
    backlog: usize,
    bytes: usize,
    append_seconds: f64,
    floor_seconds: f64,
    /// The floor with acknowledgement: bare FETCH plus STORE of `\Seen`.
    acked_floor_seconds: f64,
    replay_seconds: f64,
    /// The median run (by wall time) of [`DRAIN_RUNS`].
    run: Measured,
    /// Wall time of every run, in order.
    run_seconds: Vec<f64>,
}

impl Drain {
    /// Drain time over the raw floor.
    fn raw_ratio(&self) -> f64 {
        self.run.seconds / self.floor_seconds
    }

    /// Drain time over the floor with acknowledgement (the target's ratio).
    fn ratio(&self) -> f64 {
        self.run.seconds / self.acked_floor_seconds
    }
}

fn drain_backlog(server: &Dovecot, messages: &[Vec<u8>]) -> Drain {
    let n = messages.len();
    let user = fresh_user(server, &format!("drain-{n}"));
    progress(&format!("backlog {n}: appending"));
    let append_seconds = append_all(server, &user, messages);
    progress(&format!("backlog {n}: bare fetch"));
    let floor_seconds = fetch_floor(server.port(), &user, messages);
    progress(&format!("backlog {n}: bare fetch and acknowledgement"));
    let acked_floor_seconds = acknowledged_floor(server.port(), &user, messages);
    let mut runs: Vec<Measured> = (0..DRAIN_RUNS)
        .map(|run| {
            progress(&format!("backlog {n}: mailintake collect, run {}", run + 1));
            if run > 0 {
                unsee_all(server.port(), &user);
            }
            let install = Install::new(server.port(), &user, "");
            let measured = run_measured(&install, &["collect", "--json"]);
            check_drain(server, &user, &install, &measured, n);
            measured
        })
        .collect();
    let run_seconds: Vec<f64> = runs.iter().map(|r| r.seconds).collect();
    runs.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    let run = runs.swap_remove(DRAIN_RUNS / 2);
    let install = Install::new(server.port(), &user, "");
    progress(&format!("backlog {n}: replay of mailintake's commands"));
    let replay_seconds = replay_floor(
        server.port(),
        &user,
        messages,
        install.collector().batch_size,
    );
    Drain {
        backlog: n,
        bytes: total_bytes(messages),
        append_seconds,
        floor_seconds,
        acked_floor_seconds,
        replay_seconds,
        run,
        run_seconds,
    }
}

/// `mailintake collect` on an empty mailbox: process start, migrating a fresh database,
/// login, SELECT, SEARCH and LOGOUT, which every drain pays whatever its backlog.
fn drain_empty(server: &Dovecot) -> Measured {
    progress("empty mailbox: mailintake collect");
    let user = fresh_user(server, "drain-empty");
    let install = Install::new(server.port(), &user, "");
    let run = run_measured(&install, &["collect", "--json"]);
    check_drain(server, &user, &install, &run, 0);
    run
}

/// Fails unless the run succeeded, reported N accepted, stored N records and acknowledged
/// every message.
fn check_drain(server: &Dovecot, user: &str, install: &Install, run: &Measured, n: usize) {
    assert!(
        run.status.success(),
        "mailintake collect failed ({}): {}",
        run.status,
        install.stderr()
    );
    let reports: Value = serde_json::from_str(&install.stdout()).expect("collect --json output");
    let report = &reports[0];
    let counted = |key: &str| report[key].as_u64().unwrap_or(u64::MAX) as usize;
    assert!(
        counted("fetched") == n && counted("accepted") == n,
        "collect reported {report}, expected {n} fetched and accepted"
    );
    assert_eq!(install.record_count(), n as i64, "records in the database");
    assert_all_seen(server, user, n);
}

/// mailintake's own work on N messages without IMAP, in this process: decoding alone, then
/// decode+store in batches through the collectors' commit step into a fresh database.
/// NOTE: this process runs on the system allocator, whatever the binary's global allocator
/// is, so these figures can be a little slower than the same steps inside a drain.
struct Pipeline {
    decode_seconds: f64,
    store_seconds: f64,
    /// The collector's batch size (messages per transaction), the drain's too.
    batch_size: usize,
}

fn in_process(messages: &[Vec<u8>]) -> Pipeline {
    progress(&format!(
        "{} messages: in-process decode+store",
        messages.len()
    ));
    // The drain's own configuration, so rules and batch size are the same (the IMAP
    // settings are never used here).
    let install = Install::new(1, "nobody", "");
    let collector = &install.collector();

    let started = Instant::now();
    for (i, raw) in messages.iter().enumerate() {
        let decision = prepare(
            std::hint::black_box(raw),
            &collector.rules,
            &collector.format,
        )
        .mapped;
        assert!(
            matches!(decision, Mapped::Accept(_)),
            "message {i}: {decision:?}"
        );
    }
    let decode_seconds = started.elapsed().as_secs_f64();

    // The install's own database, which nothing else uses here.
    let mut store = Store::open(&install.config().storage).expect("open a fresh database");
    let mut report = CollectReport::default();
    let started = Instant::now();
    for (b, batch) in messages.chunks(collector.batch_size).enumerate() {
        let fetched = batch
            .iter()
            .enumerate()
            .map(|(j, raw)| {
                Fetched::whole(
                    format!("1:{}", b * collector.batch_size + j + 1),
                    raw.clone(),
                )
            })
            .collect();
        commit_messages(collector, &mut store, fetched, &mut report).expect("commit a batch");
    }
    let store_seconds = started.elapsed().as_secs_f64();
    assert_eq!(report.accepted, messages.len(), "in-process: {report:?}");
    Pipeline {
        decode_seconds,
        store_seconds,
        batch_size: collector.batch_size,
    }
}

// ---------------------------------------------------------------------------------------
// Push (IDLE)
// ---------------------------------------------------------------------------------------

/// Push latencies, sorted.
struct Latencies(Vec<Duration>);

impl Latencies {
    fn new(mut samples: Vec<Duration>) -> Latencies {
        samples.sort_unstable();
        Latencies(samples)
    }

    /// Nearest-rank percentile.
    fn percentile(&self, p: f64) -> Duration {
        let rank = (p / 100.0 * self.0.len() as f64).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1]
    }

    fn median(&self) -> Duration {
        self.percentile(50.0)
    }

    fn p99(&self) -> Duration {
        self.percentile(99.0)
    }
}

/// Times `messages.len()` pushes: APPENDs each message over one connection and returns how
/// long after the APPEND's OK `arrived` said it was seen; `settle` is waited between samples.
fn time_pushes(
    server: &Dovecot,
    user: &str,
    messages: &[Vec<u8>],
    settle: Duration,
    mut arrived: impl FnMut(usize),
) -> Latencies {
    let mut appender = server.connect_as(user, PASSWORD);
    let samples = messages
        .iter()
        .enumerate()
        .map(|(i, message)| {
            appender.append("INBOX", &[], None, message);
            let appended = Instant::now();
            arrived(i + 1);
            let latency = appended.elapsed();
            std::thread::sleep(settle);
            latency
        })
        .collect();
    appender.logout();
    Latencies::new(samples)
}

/// The floor: a bare client in IDLE on the INBOX, timing `* N EXISTS` after each APPEND.
fn idle_floor(server: &Dovecot, messages: &[Vec<u8>], settle: Duration) -> Latencies {
    progress(&format!("push floor: {} bare IDLE samples", messages.len()));
    let user = fresh_user(server, "push-floor");
    let mut watcher = server.connect_as(&user, PASSWORD);
    watcher.select("INBOX");
    watcher.write_line("i1 IDLE");
    wait_for_line(&mut watcher, |line| line.starts_with('+'));
    let latencies = time_pushes(server, &user, messages, settle, |count| {
        wait_for_line(&mut watcher, |line| exists_count(line) >= Some(count));
    });
    watcher.write_line("DONE");
    wait_for_line(&mut watcher, |line| line.starts_with("i1 OK"));
    watcher.logout();
    latencies
}

/// Reads lines until one satisfies `wanted`; panics if the server goes quiet or away.
fn wait_for_line(imap: &mut Imap, wanted: impl Fn(&str) -> bool) {
    loop {
        match imap.read_line() {
            Some(line) if wanted(&line) => return,
            Some(_) => {}
            None => panic!("IDLE: the connection closed or stayed silent (harness timeout)"),
        }
    }
}

/// N of `* N EXISTS`.
fn exists_count(line: &str) -> Option<usize> {
    line.strip_prefix("* ")?
        .strip_suffix(" EXISTS")?
        .parse()
        .ok()
}

/// `mailintake run` as our child (the kit's wrapper kills it on drop when a panic skips the
/// SIGTERM); info level, so the log has one "collector pass done" line per pass.
fn start_daemon(install: &Install) -> Daemon {
    Daemon::spawn(&mut install.command(&[], &["run"], "info"))
}

/// Panics (with the daemon's log) if it has exited.
fn assert_running(daemon: &mut Daemon, install: &Install) {
    if let Some(status) = daemon.exited() {
        panic!(
            "mailintake run exited early ({status}): {}",
            install.stderr()
        );
    }
}

/// The daemon's figures.
struct Push {
    latencies: Latencies,
    /// Collector passes the daemon logged, the start-up pass included.
    passes: usize,
}

/// How often the database is polled for the new record.
const POLL: Duration = Duration::from_millis(1);

/// The daemon with an IDLE collector on a fresh mailbox and database: APPEND, then poll the
/// database until the record is there. Stops it with SIGTERM, which must exit 0.
fn idle_daemon(server: &Dovecot, messages: &[Vec<u8>], settle: Duration) -> Push {
    progress(&format!("push: {} mailintake IDLE samples", messages.len()));
    let user = fresh_user(server, "push-daemon");
    let install = Install::new(server.port(), &user, "mode = \"idle\"");
    let mut daemon = start_daemon(&install);
    let mut conn = wait_for_database(&mut daemon, &install);
    // The start-up pass found nothing; give the IDLE connection time to be established.
    std::thread::sleep(Duration::from_secs(1));
    let latencies = time_pushes(server, &user, messages, settle, |count| {
        wait_until(PATIENCE, POLL, || {
            if record_count(&mut conn).unwrap_or(0) >= count as i64 {
                return Ok(());
            }
            assert_running(&mut daemon, &install);
            Err(format!("record {count} not stored"))
        });
    });
    let status = daemon.terminate();
    assert!(
        status.success(),
        "mailintake run exited with {status} after SIGTERM: {}",
        install.stderr()
    );
    assert_eq!(install.record_count(), messages.len() as i64, "records");
    assert_all_seen(server, &user, messages.len());
    Push {
        latencies,
        passes: install.stderr().matches("collector pass done").count(),
    }
}

/// A read-only connection once the daemon has created and migrated its database.
fn wait_for_database(daemon: &mut Daemon, install: &Install) -> SqliteConnection {
    wait_until(PATIENCE, Duration::from_millis(20), || {
        if let Some(mut conn) = open_read_only(&install.path("bench.db"))
            && record_count(&mut conn).is_ok()
        {
            return Ok(conn);
        }
        assert_running(daemon, install);
        Err("the daemon created no database")
    })
}

// ---------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------

struct Report {
    settings: Settings,
    dovecot: String,
    drains: Vec<Drain>,
    /// `mailintake collect` on an empty mailbox: the fixed cost of any drain.
    empty: Measured,
    pipeline: Pipeline,
    push_floor: Latencies,
    push: Push,
}

/// One target and whether it is met.
struct Target {
    name: &'static str,
    value: String,
    met: bool,
}

fn dovecot_version() -> String {
    Command::new("dovecot")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

impl Report {
    /// The drain at N, which the targets are judged at.
    fn at_n(&self) -> &Drain {
        self.drains
            .iter()
            .find(|d| d.backlog == self.settings.messages)
            .expect("N is among the backlogs")
    }

    /// How much later than the floor the daemon has the record (median; may be negative).
    fn push_gap_ms(&self) -> f64 {
        ms(self.push.latencies.median()) - ms(self.push_floor.median())
    }

    /// Peak RSS growth from the smallest to the largest backlog.
    fn rss_growth_kib(&self) -> i64 {
        let rss = |d: &Drain| d.run.peak_rss_kib as i64;
        rss(&self.drains[self.drains.len() - 1]) - rss(&self.drains[0])
    }

    fn targets(&self) -> Vec<Target> {
        let worst_rss = self
            .drains
            .iter()
            .map(|d| d.run.peak_rss_kib)
            .max()
            .unwrap_or(0);
        vec![
            Target {
                name: "drain <= 2x fetch+ack floor (at N)",
                value: format!("{:.2}x", self.at_n().ratio()),
                met: self.at_n().ratio() <= RATIO_TARGET,
            },
            Target {
                name: "drain peak RSS <= 64 MiB (every backlog)",
                value: format!("{:.1} MiB", mib(worst_rss)),
                met: worst_rss <= RSS_TARGET_KIB,
            },
            Target {
                name: "IDLE median <= floor + 5 ms",
                value: format!("{:+.1} ms", self.push_gap_ms()),
                met: self.push_gap_ms() <= ms(PUSH_GAP_TARGET),
            },
        ]
    }

    fn table(&self) -> String {
        let mut out = String::new();
        let at_n = self.at_n();
        let _ = writeln!(
            out,
            "\nmailintake IMAP bench: Dovecot {}, plain IMAP on 127.0.0.1, N = {}, corpus avg {:.0} B",
            self.dovecot,
            self.settings.messages,
            at_n.bytes as f64 / at_n.backlog as f64
        );
        let _ = writeln!(
            out,
            "\nappend ({} messages, one connection): {:.2} s, {:.0} msgs/s, {:.2} MiB/s",
            at_n.backlog,
            at_n.append_seconds,
            at_n.backlog as f64 / at_n.append_seconds,
            at_n.bytes as f64 / MIB / at_n.append_seconds
        );
        let _ = writeln!(
            out,
            "\n{:>8} {:>9} {:>10} {:>11} {:>9} {:>9} | {:>8} {:>10} {:>6} {:>6} {:>9} {:>6}",
            "backlog",
            "fetch s",
            "fetch m/s",
            "fetch MiB/s",
            "+ack s",
            "replay s",
            "drain s",
            "drain m/s",
            "/fetch",
            "/+ack",
            "peak RSS",
            "CPU s"
        );
        for d in &self.drains {
            let cpu = d
                .run
                .cpu_seconds
                .map_or_else(|| "n/a".to_owned(), |c| format!("{c:.2}"));
            let _ = writeln!(
                out,
                "{:>8} {:>9.3} {:>10.0} {:>11.1} {:>9.3} {:>9.3} | {:>8.3} {:>10.0} {:>5.1}x {:>5.1}x {:>5.1} MiB {:>6}",
                d.backlog,
                d.floor_seconds,
                d.backlog as f64 / d.floor_seconds,
                d.bytes as f64 / MIB / d.floor_seconds,
                d.acked_floor_seconds,
                d.replay_seconds,
                d.run.seconds,
                d.backlog as f64 / d.run.seconds,
                d.raw_ratio(),
                d.ratio(),
                mib(d.run.peak_rss_kib),
                cpu
            );
        }
        let _ = writeln!(
            out,
            "fetch: best of {FLOOR_RUNS} bare UID FETCH 1:* BODY.PEEK[] (the raw floor; /fetch = drain / fetch)\n\
             +ack: best of {FLOOR_RUNS} of that FETCH and UID STORE 1:* +FLAGS.SILENT (\\Seen) (the floor; /+ack = drain / +ack)\n\
             replay: a bare client sending mailintake's commands (login to logout, batches of {})\n\
             drain: median wall time of {DRAIN_RUNS} `mailintake collect --json` (fresh database each), process start to exit; CPU = user + sys",
            self.pipeline.batch_size
        );
        let _ = writeln!(
            out,
            "peak RSS from backlog {} to {}: {:+.1} MiB",
            self.drains[0].backlog,
            self.drains[self.drains.len() - 1].backlog,
            self.rss_growth_kib() as f64 / 1024.0
        );
        let _ = writeln!(
            out,
            "fixed cost, `mailintake collect` on an empty mailbox: {:.3} s, peak RSS {:.1} MiB",
            self.empty.seconds,
            mib(self.empty.peak_rss_kib)
        );
        let _ = writeln!(
            out,
            "mailintake without IMAP, in-process, N messages: decode {:.3} s, decode+store {:.3} s ({:.0}% of the drain)",
            self.pipeline.decode_seconds,
            self.pipeline.store_seconds,
            100.0 * self.pipeline.store_seconds / at_n.run.seconds
        );
        let _ = writeln!(
            out,
            "\npush latency, {} samples, {} ms settle:    median        p99",
            self.settings.idle_samples,
            self.settings.idle_settle.as_millis()
        );
        let rows = [
            ("bare IDLE: APPEND OK -> * N EXISTS", &self.push_floor),
            ("mailintake: APPEND OK -> record", &self.push.latencies),
        ];
        for (label, l) in rows {
            let _ = writeln!(
                out,
                "  {label:<38} {:>8.1} ms {:>8.1} ms",
                ms(l.median()),
                ms(l.p99())
            );
        }
        let _ = writeln!(
            out,
            "  {:<38} {:>+8.1} ms {:>+8.1} ms",
            "gap",
            self.push_gap_ms(),
            ms(self.push.latencies.p99()) - ms(self.push_floor.p99())
        );
        let _ = writeln!(
            out,
            "  daemon passes: {} for {} messages (start-up pass included)",
            self.push.passes, self.settings.idle_samples
        );
        let _ = writeln!(out, "\ntargets:");
        for t in self.targets() {
            let verdict = if t.met { "met" } else { "NOT met" };
            let _ = writeln!(out, "  {:<42} {:>10}  {verdict}", t.name, t.value);
        }
        out
    }

    /// All figures as one JSON line.
    fn summary(&self) -> Value {
        let drains: Vec<Value> = self
            .drains
            .iter()
            .map(|d| {
                json!({
                    "backlog": d.backlog,
                    "bytes": d.bytes,
                    "append_seconds": d.append_seconds,
                    "fetch_floor_seconds": d.floor_seconds,
                    "fetch_ack_floor_seconds": d.acked_floor_seconds,
                    "drain_runs_seconds": d.run_seconds,
                    "ratio_to_raw_floor": d.raw_ratio(),
                    "replay_seconds": d.replay_seconds,
                    "drain_seconds": d.run.seconds,
                    "drain_msgs_per_sec": d.backlog as f64 / d.run.seconds,
                    "ratio": d.ratio(),
                    "peak_rss_kib": d.run.peak_rss_kib,
                    "cpu_seconds": d.run.cpu_seconds,
                })
            })
            .collect();
        let latencies = |l: &Latencies| json!({"median_ms": ms(l.median()), "p99_ms": ms(l.p99())});
        let targets: serde_json::Map<String, Value> = self
            .targets()
            .into_iter()
            .map(|t| (t.name.to_owned(), json!({"value": t.value, "met": t.met})))
            .collect();
        json!({
            "bench": "imap",
            "dovecot": self.dovecot,
            "messages": self.settings.messages,
            "append_msgs_per_sec": self.at_n().backlog as f64 / self.at_n().append_seconds,
            "drains": drains,
            "in_process_decode_seconds": self.pipeline.decode_seconds,
            "in_process_store_seconds": self.pipeline.store_seconds,
            "batch_size": self.pipeline.batch_size,
            "empty_drain_seconds": self.empty.seconds,
            "empty_drain_peak_rss_kib": self.empty.peak_rss_kib,
            "idle_samples": self.settings.idle_samples,
            "idle_settle_ms": self.settings.idle_settle.as_millis() as u64,
            "idle_floor": latencies(&self.push_floor),
            "idle_mailintake": latencies(&self.push.latencies),
            "idle_gap_median_ms": self.push_gap_ms(),
            "idle_daemon_passes": self.push.passes,
            "targets": targets,
        })
    }
}
