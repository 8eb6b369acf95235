//! `cargo bench --bench pipeline [-- --messages 5000 --batch-size 200 --json]`: throughput
//! and memory of the pipeline on a generated corpus.
//!
//! The question is whether one core decodes at least 20,000 order e-mails a second and
//! the machine decodes+stores at least 20,000 (issue 14). To answer without real mail (which is private), the bench
//! generates a deterministic corpus shaped like the website's messages (multipart, cp1251
//! JSON attachment, 3–5 KB each; `tests/kit/mail.rs`, the tests' generator too) and runs
//! three phases in one process, in order:
//!
//! 1. decode alone: [`prepare`] over the corpus, nothing kept;
//! 2. decode+store: batches through [`commit_messages`], the collectors' own commit step,
//!    into a fresh SQLite file;
//! 3. a real [`collect_blocking`] pass over the corpus written into a Maildir (file reads,
//!    ledger look-ups and acknowledgements included) into another fresh SQLite file;
//! 4. and 5. "8 × 64 MB messages in the inbox": a collect over 8 orders of 64 MB among 5
//!    normal ones, with the default `max-message-size` (the big ones are quarantined by
//!    their size, never read) and with the limit raised to 100 MB (each is read and decoded
//!    in a batch of its own). Their peak RSS is the figure; msgs/s means little there.
//!
//! Each phase reports messages per second (wall clock, what the targets are about), the CPU
//! time the bench thread got and the time it waited for a CPU (so a busy machine shows as
//! such rather than as a slow decoder), the whole process's CPU time per 1,000 messages (the
//! decode pool's threads included: the cost, steady whatever else runs), and peak RSS (`VmHWM`, reset before the phase) next to the RSS it
//! started from, since the corpus itself stays resident throughout. Figures go to stdout (a
//! table, or one JSON object with `--json`); progress to stderr. The collector is read from
//! a `collectors.toml` like an unconfigured installation's (built-in format, default rules).

#[allow(dead_code)] // NOTE: shared with the tests; `order_message` is theirs.
#[path = "../tests/kit/mail.rs"]
mod mail;
mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use mailintake::config::{Collector, Config};
use mailintake::ingest::{
    CollectReport, Fetched, Mapped, collect_blocking, commit_messages, prepare,
};
use mailintake::store::Store;
use serde_json::{Map, Value, json};

use mail::Corpus;
use support::{open_read_only, proc_status_kb, record_count};

// The product's allocator, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Options of the benchmark (after `--`).
#[derive(Debug, Parser)]
#[command(
    name = "pipeline",
    about = "Decode, decode+store and Maildir collect throughput"
)]
struct Args {
    /// Number of generated messages
    #[arg(long, default_value_t = 5000)]
    messages: usize,
    /// Messages committed per transaction (as a collector's batch-size; default: its default)
    #[arg(long)]
    batch_size: Option<usize>,
    /// Print one JSON object with all figures instead of a table
    #[arg(long)]
    json: bool,
    /// Run only these phases (comma-separated: decode, store, collect, big), e.g. to profile
    /// one; default: all
    #[arg(long, value_delimiter = ',', value_enum)]
    only: Vec<PhaseName>,
    /// Store and collect with one `[[notify]]` rule firing on every record (each record
    /// then also queues a notification and its history event, as a real installation's do)
    #[arg(long)]
    notify: bool,
    /// Set by `cargo bench`; without it (`cargo test --benches`) nothing is measured
    #[arg(long, hide = true)]
    bench: bool,
}

/// The phases `--only` picks from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PhaseName {
    Decode,
    Store,
    Collect,
    Big,
}

/// Decode throughput the issue asks for (messages per second, one core).
const DECODE_TARGET: f64 = 20_000.0;
/// Decode+store throughput the issue asks for (messages per second).
const STORE_TARGET: f64 = 20_000.0;

fn main() -> Result<()> {
    let args = Args::parse();
    if !args.bench {
        println!("pipeline bench: skipped (run it with `cargo bench --bench pipeline`)");
        return Ok(());
    }
    ensure!(args.messages > 0, "--messages must be at least 1");
    let scratch = tempfile::Builder::new()
        .prefix("mailintake-bench-")
        .tempdir()
        .context("cannot create a scratch folder")?;

    eprintln!("generating {} order e-mails...", args.messages);
    let started = Instant::now();
    let corpus = Corpus::generate(args.messages);
    let facts = CorpusFacts::of(&corpus, started.elapsed().as_secs_f64());

    let runs = |phase| args.only.is_empty() || args.only.contains(&phase);
    let rules = if args.notify { NOTIFY_EVERY_RECORD } else { "" };
    let store_install = Install::new(scratch.path(), "store", args.batch_size, "", rules)?;
    let collect_install = Install::new(scratch.path(), "collect", args.batch_size, "", rules)?;
    let collector = collect_install.collector();
    let mut phases = Vec::new();
    if runs(PhaseName::Decode) {
        phases.push(("decode", "decode", bench_decode(&corpus, collector)?));
    }
    if runs(PhaseName::Store) {
        phases.push((
            "store",
            "decode+store",
            bench_store(&corpus, &store_install)?,
        ));
    }
    if runs(PhaseName::Collect) {
        let collect = bench_collect(&corpus, &collect_install)?;
        phases.push(("collect", "maildir collect", collect));
    }
    if runs(PhaseName::Store) {
        verify_records(&store_install.db, corpus.len())?;
    }
    if runs(PhaseName::Collect) {
        verify_records(&collect_install.db, corpus.len())?;
    }
    if runs(PhaseName::Big) {
        let big = bench_big_messages(&corpus, scratch.path(), args.batch_size)?;
        phases.push(("big_quarantined", "8x64MB lim 25MB", big[0]));
        phases.push(("big_processed", "8x64MB lim100MB", big[1]));
    }
    if args.json {
        println!("{}", json_report(&facts, collector.batch_size, &phases));
    } else {
        print!("{}", table_report(&facts, collector.batch_size, &phases));
    }
    Ok(())
}

/// `--notify`: an e-mail to the call center for every record created (queued in the
/// record's transaction; nothing is sent, no SMTP server is needed for that).
const NOTIFY_EVERY_RECORD: &str = "[smtp]\nhost = \"127.0.0.1\"\nport = 2525\ntls = \"none\"\n\
    from = \"mailintake@example.test\"\n\n\
    [[notify]]\nname = \"every-record\"\non = \"created\"\nchannel = \"email\"\n\
    to = [\"callcenter@example.test\"]\nsubject = \"New record {{id}}: {{title}}\"\n\
    body = \"{{contact-name}}, {{phone}}, {{email}}\\n{{description}}\"\n\n";

/// One phase's installation in the scratch folder: a config of one collector `bench` on the
/// Maildir `NAME/` with the database `NAME.db`, loaded as mailintake loads it (so a bad
/// `--batch-size` gets the config's own error).
struct Install {
    db: PathBuf,
    maildir: PathBuf,
    config: Config,
}

impl Install {
    /// `keys` are extra collector keys, one per line; `sections` extra top-level sections
    /// (`[smtp]`, `[[notify]]`).
    fn new(
        dir: &Path,
        name: &str,
        batch_size: Option<usize>,
        keys: &str,
        sections: &str,
    ) -> Result<Install> {
        let batch = batch_size.map_or_else(String::new, |n| format!("batch-size = {n}\n"));
        let text = format!(
            "[storage]\nurl = \"sqlite://{name}.db\"\n\n[[queue]]\nname = \"bench\"\n\n{sections}\
             [[collector]]\nname = \"bench\"\nqueue = \"bench\"\n{batch}{keys}\
             [collector.maildir]\npath = \"{name}\"\n"
        );
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        let config = Config::load(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Install {
            db: dir.join(format!("{name}.db")),
            maildir: dir.join(name),
            config,
        })
    }

    fn collector(&self) -> &Collector {
        &self.config.collectors[0]
    }
}

/// Corpus figures printed with the results.
struct CorpusFacts {
    count: usize,
    total_bytes: usize,
    min_bytes: usize,
    max_bytes: usize,
    /// Number of orders per goods-line count.
    lines_per_order: BTreeMap<usize, usize>,
    /// Orders that lost extra works to fit the size range.
    trimmed_orders: usize,
    generate_seconds: f64,
}

impl CorpusFacts {
    fn of(corpus: &Corpus, generate_seconds: f64) -> CorpusFacts {
        let sizes = corpus.messages.iter().map(Vec::len);
        let mut lines_per_order = BTreeMap::new();
        for &n in &corpus.lines {
            *lines_per_order.entry(n).or_insert(0) += 1;
        }
        CorpusFacts {
            count: corpus.len(),
            total_bytes: sizes.clone().sum(),
            min_bytes: sizes.clone().min().unwrap_or(0),
            max_bytes: sizes.max().unwrap_or(0),
            lines_per_order,
            trimmed_orders: corpus.trimmed,
            generate_seconds,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Measuring
// ---------------------------------------------------------------------------------------

/// What one phase measured.
#[derive(Debug, Clone, Copy)]
struct PhaseFigures {
    messages: usize,
    seconds: f64,
    /// RSS when the phase started (the corpus and earlier phases' leftovers included).
    start_rss_kb: Option<u64>,
    /// Highest RSS during the phase (since start if the reset worked, else process-wide).
    peak_rss_kb: Option<u64>,
    /// Whether the high-water mark could be reset before the phase.
    peak_reset: bool,
    /// Time the bench thread spent on a CPU, and runnable but waiting for one (another
    /// process had it); both unknown off Linux. Wall time minus both is time blocked (I/O).
    sched: Option<SchedTimes>,
    /// CPU time of the whole process (every thread: the decode pool's too), in seconds.
    process_cpu_seconds: Option<f64>,
}

impl PhaseFigures {
    fn msgs_per_sec(&self) -> f64 {
        self.messages as f64 / self.seconds
    }

    /// Throughput per second of CPU actually received: what an idle core would give, about.
    fn msgs_per_cpu_sec(&self) -> Option<f64> {
        Some(self.messages as f64 / self.sched?.cpu_seconds)
    }

    /// CPU seconds the whole process spent per 1,000 messages: the cost, whatever the load.
    fn cpu_seconds_per_1k(&self) -> Option<f64> {
        Some(self.process_cpu_seconds? * 1000.0 / self.messages as f64)
    }

    /// What the phase itself added at its peak.
    fn peak_growth_kb(&self) -> Option<u64> {
        Some(self.peak_rss_kb?.saturating_sub(self.start_rss_kb?))
    }
}

/// Scheduler times of the calling thread, in seconds.
#[derive(Debug, Clone, Copy)]
struct SchedTimes {
    cpu_seconds: f64,
    wait_seconds: f64,
}

impl SchedTimes {
    /// From /proc/thread-self/schedstat (`on-cpu-ns runqueue-wait-ns timeslices`). Every
    /// phase runs on the calling thread (`collect_blocking` runs the pass in `block_on`).
    fn now() -> Option<SchedTimes> {
        let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
        let mut fields = stat.split_whitespace().map(|f| f.parse::<u64>().ok());
        let (cpu, wait) = (fields.next()??, fields.next()??);
        Some(SchedTimes {
            cpu_seconds: cpu as f64 / 1e9,
            wait_seconds: wait as f64 / 1e9,
        })
    }

    fn since(self, start: SchedTimes) -> SchedTimes {
        SchedTimes {
            cpu_seconds: self.cpu_seconds - start.cpu_seconds,
            wait_seconds: self.wait_seconds - start.wait_seconds,
        }
    }
}

/// User plus system CPU time of the whole process so far, dead threads included, from
/// /proc/self/stat (in clock ticks of 1/100 s: Linux's USER_HZ).
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // NOTE: the command name (field 2) may hold spaces; the fields after it are plain.
    let mut fields = stat.get(stat.rfind(')')? + 2..)?.split_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// Resets the peak-RSS mark to the current RSS ("5" to clear_refs, Linux 4.0 and later), so
/// each phase's peak is its own and not the corpus generation's.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Runs `work` as the phase `label` over `messages` messages, timing it and tracking RSS.
/// Set-up that is not the phase's work (opening a database, writing files) happens before.
fn measure<T>(
    label: &str,
    messages: usize,
    work: impl FnOnce() -> Result<T>,
) -> Result<(PhaseFigures, T)> {
    let peak_reset = reset_peak_rss();
    if !peak_reset {
        eprintln!(
            "note: cannot reset the peak RSS (/proc/self/clear_refs); {label}'s peak is the process peak so far"
        );
    }
    let start_rss_kb = proc_status_kb("self", "VmRSS");
    eprintln!("{label}: {messages} messages...");
    let start_sched = SchedTimes::now();
    let start_cpu = process_cpu_seconds();
    let started = Instant::now();
    let out = work().with_context(|| format!("phase `{label}` failed"))?;
    let seconds = started.elapsed().as_secs_f64();
    let figures = PhaseFigures {
        messages,
        seconds,
        start_rss_kb,
        peak_rss_kb: proc_status_kb("self", "VmHWM"),
        peak_reset,
        sched: SchedTimes::now()
            .zip(start_sched)
            .map(|(end, start)| end.since(start)),
        process_cpu_seconds: process_cpu_seconds()
            .zip(start_cpu)
            .map(|(end, start)| end - start),
    };
    eprintln!(
        "{label}: {:.0} msgs/s ({seconds:.3} s)",
        figures.msgs_per_sec()
    );
    Ok((figures, out))
}

/// The Maildir unique name of corpus message `i`; also its ledger key in the store phase.
fn message_key(i: usize) -> String {
    format!("{i:08}.M{i}P1.bench")
}

// ---------------------------------------------------------------------------------------
// Phases
// ---------------------------------------------------------------------------------------

/// Phase 1: decode and map every message, keeping nothing but a line count (which is also
/// checked, so a corpus the decoder rejects fails the bench instead of looking fast).
fn bench_decode(corpus: &Corpus, collector: &Collector) -> Result<PhaseFigures> {
    let (figures, lines) = measure("decode", corpus.len(), || {
        let mut lines = 0;
        for (i, raw) in corpus.messages.iter().enumerate() {
            let raw = std::hint::black_box(raw);
            match prepare(raw, &collector.rules, &collector.format).mapped {
                Mapped::Accept(record) => lines += record.lines.len(),
                other => bail!("message {i} was not accepted: {other:?}"),
            }
        }
        Ok(std::hint::black_box(lines))
    })?;
    ensure!(
        lines == corpus.total_lines(),
        "decoded {lines} goods lines, the corpus has {}",
        corpus.total_lines()
    );
    Ok(figures)
}

/// Phase 2: decode and commit in batches into a fresh database through the collectors' own
/// commit step ([`commit_messages`]), minus the mailbox: no file reads, ledger look-ups or
/// acknowledgements. Every message must create a record.
fn bench_store(corpus: &Corpus, install: &Install) -> Result<PhaseFigures> {
    let collector = install.collector();
    let mut store = Store::open(&install.config.storage)?;
    store.set_notify_rules(install.config.notify.clone());
    let (figures, report) = measure("decode+store", corpus.len(), || {
        let mut report = CollectReport::default();
        let keyed: Vec<(usize, &Vec<u8>)> = corpus.messages.iter().enumerate().collect();
        for batch in keyed.chunks(collector.batch_size) {
            // NOTE: a source hands over owned bytes too (read from a file or a socket).
            let messages = batch
                .iter()
                .map(|(i, raw)| Fetched::whole(message_key(*i), raw.to_vec()))
                .collect();
            commit_messages(collector, &mut store, messages, &mut report)?;
        }
        Ok(report)
    })?;
    check_report(&report, corpus.len())?;
    Ok(figures)
}

/// Fails unless the database at `db` holds exactly `expected` records. Run after all phases,
/// so no phase starts with another's connection open.
fn verify_records(db: &Path, expected: usize) -> Result<()> {
    let mut conn = open_read_only(db).with_context(|| format!("cannot open {}", db.display()))?;
    let stored = record_count(&mut conn)?;
    ensure!(
        stored == i64::try_from(expected)?,
        "{} holds {stored} records, expected {expected}",
        db.display()
    );
    Ok(())
}

/// Fails unless every corpus message was read and created a record.
fn check_report(report: &CollectReport, messages: usize) -> Result<()> {
    ensure!(
        report.fetched == messages && report.accepted == messages,
        "{} of {messages} messages read, {} accepted ({} skipped, {} quarantined, {} duplicates)",
        report.fetched,
        report.accepted,
        report.skipped,
        report.quarantined,
        report.duplicates
    );
    Ok(())
}

/// Phase 3: a real collector pass over the corpus delivered into the collector's Maildir
/// (written before the clock starts, so the files are in the page cache as freshly
/// delivered mail is).
fn bench_collect(corpus: &Corpus, install: &Install) -> Result<PhaseFigures> {
    let collector = install.collector();
    eprintln!(
        "writing {} messages into {}...",
        corpus.len(),
        install.maildir.display()
    );
    write_maildir(corpus, &install.maildir)?;
    let mut store = Store::open(&install.config.storage)?;
    store.set_notify_rules(install.config.notify.clone());
    let (figures, report) = measure("maildir collect", corpus.len(), || {
        Ok(collect_blocking(collector, &mut store)?)
    })?;
    check_report(&report, corpus.len())?;
    Ok(figures)
}

/// Big messages in the inbox: how many, and how large each.
const BIG_MESSAGES: usize = 8;
const BIG_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
/// Normal orders delivered among them.
const ORDERS_AMONG_BIG: usize = 5;

/// Phases 4 and 5: a collect over a Maildir holding 8 orders of 64 MB each (a large
/// epilogue) among a few normal ones, first with the default `max-message-size` (the big
/// ones are quarantined unread), then with the limit above them (each is read and decoded in
/// a batch of its own). Peak RSS minus start is what a hostile backlog costs.
fn bench_big_messages(
    corpus: &Corpus,
    dir: &Path,
    batch_size: Option<usize>,
) -> Result<[PhaseFigures; 2]> {
    let limited = Install::new(dir, "big-limited", batch_size, "", "")?;
    let unlimited = Install::new(dir, "big", batch_size, "max-message-size = \"100MB\"\n", "")?;
    eprintln!(
        "writing {BIG_MESSAGES} messages of {} MB into two Maildirs...",
        BIG_MESSAGE_BYTES >> 20
    );
    for install in [&limited, &unlimited] {
        let normal = &corpus.messages[..ORDERS_AMONG_BIG.min(corpus.len())];
        write_messages(normal.iter().map(Vec::as_slice), &install.maildir)?;
        for i in 0..BIG_MESSAGES {
            let path = install
                .maildir
                .join("new")
                .join(format!("big{i:02}.M{i}.bench"));
            write_big_order(100_000 + i, &path)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    let messages = BIG_MESSAGES + ORDERS_AMONG_BIG.min(corpus.len());
    let mut figures = Vec::new();
    for (install, label, quarantined) in [
        (&limited, "8x64MB, limit 25MB", BIG_MESSAGES),
        (&unlimited, "8x64MB, limit 100MB", 0),
    ] {
        let mut store = Store::open(&install.config.storage)?;
        let (phase, report) = measure(label, messages, || {
            Ok(collect_blocking(install.collector(), &mut store)?)
        })?;
        ensure!(
            report.fetched == messages
                && report.quarantined == quarantined
                && report.accepted == messages - quarantined,
            "{label}: unexpected counts {report:?}"
        );
        figures.push(phase);
    }
    Ok([figures[0], figures[1]])
}

/// Writes order `n` grown to [`BIG_MESSAGE_BYTES`] by an epilogue of `x` lines, the bytes
/// `mail::padded` makes, streamed out so the bench holds no big buffer (mimalloc would keep
/// its pages resident and hide what the collect itself costs).
fn write_big_order(n: usize, path: &Path) -> std::io::Result<()> {
    use std::io::Write as _;
    let order = mail::order_message(n, "7709745454", 1);
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    file.write_all(&order)?;
    let line = [&[b'x'; 78][..], b"\r\n"].concat();
    let mut written = order.len();
    while written + line.len() <= BIG_MESSAGE_BYTES - 2 {
        file.write_all(&line)?;
        written += line.len();
    }
    file.write_all(&vec![b'x'; BIG_MESSAGE_BYTES - 2 - written])?;
    file.write_all(b"\r\n")?;
    file.flush()
}

/// Delivers the corpus into `new/` of a fresh Maildir at `root`.
fn write_maildir(corpus: &Corpus, root: &Path) -> Result<()> {
    write_messages(corpus.messages.iter().map(Vec::as_slice), root)
}

/// Delivers `messages` into `new/` of a fresh Maildir at `root`, as corpus messages 0, 1...
fn write_messages<'a>(messages: impl Iterator<Item = &'a [u8]>, root: &Path) -> Result<()> {
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(root.join(sub))
            .with_context(|| format!("cannot create {}", root.join(sub).display()))?;
    }
    for (i, raw) in messages.enumerate() {
        let path = root.join("new").join(message_key(i));
        std::fs::write(&path, raw).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------

/// A phase's figures with its JSON key prefix and its table label.
type Phase<'a> = (&'a str, &'a str, PhaseFigures);

/// Whether a phase's throughput reaches the target, if it has one.
fn target_of(key: &str) -> Option<f64> {
    match key {
        "decode" => Some(DECODE_TARGET),
        "store" => Some(STORE_TARGET),
        _ => None,
    }
}

fn json_report(facts: &CorpusFacts, batch_size: usize, phases: &[Phase<'_>]) -> Value {
    let lines: Map<String, Value> = facts
        .lines_per_order
        .iter()
        .map(|(lines, orders)| (lines.to_string(), (*orders).into()))
        .collect();
    let mut report = json!({
        "messages": facts.count,
        "batch_size": batch_size,
        "corpus_total_bytes": facts.total_bytes,
        "corpus_avg_bytes": facts.total_bytes as f64 / facts.count as f64,
        "corpus_min_bytes": facts.min_bytes,
        "corpus_max_bytes": facts.max_bytes,
        "corpus_lines_per_order": lines,
        "corpus_orders_with_extra_works_dropped": facts.trimmed_orders,
        "corpus_generate_seconds": facts.generate_seconds,
    });
    let object = report.as_object_mut().expect("a JSON object");
    for (key, _, f) in phases {
        let fields = [
            ("msgs_per_sec", json!(f.msgs_per_sec())),
            ("seconds", json!(f.seconds)),
            ("cpu_seconds", json!(f.sched.map(|t| t.cpu_seconds))),
            (
                "runqueue_wait_seconds",
                json!(f.sched.map(|t| t.wait_seconds)),
            ),
            ("msgs_per_cpu_sec", json!(f.msgs_per_cpu_sec())),
            ("process_cpu_seconds", json!(f.process_cpu_seconds)),
            ("cpu_seconds_per_1k", json!(f.cpu_seconds_per_1k())),
            ("start_rss_kb", json!(f.start_rss_kb)),
            ("peak_rss_kb", json!(f.peak_rss_kb)),
            ("peak_growth_kb", json!(f.peak_growth_kb())),
            ("peak_reset", json!(f.peak_reset)),
        ];
        for (field, value) in fields {
            object.insert(format!("{key}_{field}"), value);
        }
        if let Some(target) = target_of(key) {
            object.insert(format!("{key}_target_msgs_per_sec"), json!(target));
            object.insert(
                format!("{key}_target_met"),
                json!(f.msgs_per_sec() >= target),
            );
        }
    }
    report
}

fn table_report(facts: &CorpusFacts, batch_size: usize, phases: &[Phase<'_>]) -> String {
    let kb = |v: Option<u64>| v.map_or_else(|| "n/a".to_string(), |v| format!("{v} kB"));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "corpus: {} messages, {:.1} MB, avg {:.0} B (min {} B, max {} B), generated in {:.2} s",
        facts.count,
        facts.total_bytes as f64 / 1_048_576.0,
        facts.total_bytes as f64 / facts.count as f64,
        facts.min_bytes,
        facts.max_bytes,
        facts.generate_seconds
    );
    let distribution: Vec<String> = facts
        .lines_per_order
        .iter()
        .map(|(lines, orders)| format!("{lines}: {orders}"))
        .collect();
    let _ = writeln!(
        out,
        "goods lines per order (lines: orders): {}; {} orders had extra works dropped to fit 5 KB",
        distribution.join(", "),
        facts.trimmed_orders
    );
    let _ = writeln!(out, "batch size: {batch_size}\n");
    let secs = |v: Option<f64>| v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.3}"));
    let _ = writeln!(
        out,
        "{:<16} {:>10} {:>9} {:>9} {:>11} {:>11} {:>11} {:>12}",
        "phase",
        "msgs/s",
        "wall s",
        "cpu s",
        "runq wait s",
        "msgs/cpu-s",
        "proc cpu s",
        "cpu-s/1k msg"
    );
    for (_, label, f) in phases {
        let _ = writeln!(
            out,
            "{label:<16} {:>10.0} {:>9.3} {:>9} {:>11} {:>11} {:>11} {:>12}",
            f.msgs_per_sec(),
            f.seconds,
            secs(f.sched.map(|t| t.cpu_seconds)),
            secs(f.sched.map(|t| t.wait_seconds)),
            f.msgs_per_cpu_sec()
                .map_or_else(|| "n/a".to_string(), |v| format!("{v:.0}")),
            secs(f.process_cpu_seconds),
            secs(f.cpu_seconds_per_1k()),
        );
    }
    let _ = writeln!(
        out,
        "\n{:<16} {:>13} {:>13} {:>13}",
        "phase", "RSS at start", "peak RSS", "peak - start"
    );
    for (_, label, f) in phases {
        let _ = writeln!(
            out,
            "{label:<16} {:>13} {:>13} {:>13}{}",
            kb(f.start_rss_kb),
            kb(f.peak_rss_kb),
            kb(f.peak_growth_kb()),
            if f.peak_reset {
                ""
            } else {
                "  (peak not reset: process peak)"
            }
        );
    }
    out.push('\n');
    for (key, label, f) in phases {
        if let Some(target) = target_of(key) {
            let verdict = if f.msgs_per_sec() >= target {
                "met"
            } else {
                "NOT met"
            };
            let _ = writeln!(
                out,
                "target {label} >= {target:.0} msgs/s (wall clock): {verdict} ({:.0} msgs/s)",
                f.msgs_per_sec()
            );
        }
    }
    out
}
