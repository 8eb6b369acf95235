//! `mailintake bench`: throughput and memory on a generated corpus.
//!
//! The issue asks whether one core decodes at least 20,000 order e-mails a second and
//! decodes+stores at least 10,000. To answer without real mail (which is private), the bench
//! generates a deterministic corpus shaped like the website's messages (multipart, cp1251
//! JSON attachment, 3–5 KB each) and runs three phases in one process, in order:
//!
//! 1. decode alone: [`prepare`] over the corpus, nothing kept;
//! 2. decode+store: batches through [`commit_messages`], the collectors' own commit step
//!    (decode, build `Incoming` items, `Store::commit_batch`), into a fresh SQLite file;
//! 3. a real [`collect_blocking`] pass over the corpus written into a Maildir (file reads,
//!    ledger look-ups and acknowledgements included) into another fresh SQLite file.
//!
//! Each phase reports messages per second (wall clock, what the targets are about), the CPU
//! time it got and the time it waited for a CPU (so a busy machine shows as such rather than
//! as a slow decoder), and peak RSS (`VmHWM`, reset before the phase) next to the RSS it
//! started from, since the corpus itself stays resident throughout. Figures go to stdout (a
//! table, or one JSON object with `--json`); progress to stderr.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use mail_builder::MessageBuilder;
use mail_builder::headers::content_type::ContentType;
use mail_builder::mime::MimePart;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::config::{
    AfterPolicy, CollectMode, Collector, DEFAULT_BATCH_SIZE, SourceConfig, StorageUrl,
};
use crate::decode::DecodeRules;
use crate::ingest::{CollectReport, Fetched, Mapped, collect_blocking, commit_messages, prepare};
use crate::map::PayloadFormat;
use crate::store::{RecordFilter, Store};

/// Options of the benchmark.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Number of generated messages
    #[arg(long, default_value_t = 5000)]
    pub messages: usize,
    /// Messages committed per transaction (as a collector's batch-size)
    #[arg(long, default_value_t = DEFAULT_BATCH_SIZE)]
    pub batch_size: usize,
    /// Print one JSON object with all figures instead of a table
    #[arg(long)]
    pub json: bool,
}

/// Decode throughput the issue asks for (messages per second, one core).
const DECODE_TARGET: f64 = 20_000.0;
/// Decode+store throughput the issue asks for (messages per second).
const STORE_TARGET: f64 = 10_000.0;

/// Every generated message is this size or more (bytes)...
const MIN_MESSAGE_BYTES: usize = 3 * 1024;
/// ...and this size or less, like the website's real order mails.
const MAX_MESSAGE_BYTES: usize = 5 * 1024;

/// Collector and queue name used by the store and Maildir phases.
const BENCH_COLLECTOR: &str = "bench";

/// Runs the benchmark.
pub fn run(args: &BenchArgs) -> Result<()> {
    ensure!(args.messages > 0, "--messages must be at least 1");
    ensure!(
        (1..=10_000).contains(&args.batch_size),
        "--batch-size must be between 1 and 10000 (as in collectors.toml)"
    );
    let scratch = Scratch::create()?;

    eprintln!("generating {} order e-mails...", args.messages);
    let started = Instant::now();
    let corpus = Corpus::generate(args.messages)?;
    let facts = corpus.facts(started.elapsed().as_secs_f64());

    let maildir = scratch.path().join("Maildir");
    let store_db = scratch.path().join("store.db");
    let collect_db = scratch.path().join("collect.db");
    let collector = bench_collector(&maildir, args.batch_size);
    let decode = bench_decode(&corpus, &collector.rules)?;
    let store = bench_store(&corpus, &collector, &store_db)?;
    let collect = bench_collect(&corpus, &collector, &maildir, &collect_db)?;
    verify_records(&store_db, corpus.len())?;
    verify_records(&collect_db, corpus.len())?;
    drop(scratch);

    let phases = [
        ("decode", "decode", decode),
        ("store", "decode+store", store),
        ("collect", "maildir collect", collect),
    ];
    if args.json {
        println!("{}", json_report(&facts, args.batch_size, &phases));
    } else {
        print!("{}", table_report(&facts, args.batch_size, &phases));
    }
    Ok(())
}

/// The collector the store and Maildir phases run as: the built-in format and default rules,
/// so the figures are those of an unconfigured installation.
fn bench_collector(maildir: &Path, batch_size: usize) -> Collector {
    Collector {
        name: BENCH_COLLECTOR.into(),
        queue: BENCH_COLLECTOR.into(),
        format: PayloadFormat::OrderJson,
        schedule: None,
        rules: DecodeRules::default(),
        batch_size,
        source: SourceConfig::Maildir {
            path: maildir.to_path_buf(),
        },
        after: AfterPolicy::default(),
        mode: CollectMode::Poll,
    }
}

/// The bench's scratch folder in the system temp dir, removed when dropped (also on error),
/// so a failed run leaves no databases behind.
struct Scratch(PathBuf);

impl Scratch {
    fn create() -> Result<Scratch> {
        let path = std::env::temp_dir().join(format!("mailintake-bench-{}", std::process::id()));
        if path.exists() {
            // A leftover of an earlier run that had the same pid.
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("cannot clear {}", path.display()))?;
        }
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Scratch(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            eprintln!("warning: cannot remove {}: {e}", self.0.display());
        }
    }
}

// ---------------------------------------------------------------------------------------
// Corpus
// ---------------------------------------------------------------------------------------

/// xorshift64*: deterministic and dependency-free; its statistical quality is irrelevant
/// here, only that every run (and every machine) gets the same corpus.
struct Rng(u64);

impl Rng {
    /// Fixed seed: the corpus must not change between runs, or figures are not comparable.
    const SEED: u64 = 0x6d61_696c_696e_7461;

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.next() as usize % items.len()]
    }
}

/// The generated messages and what went into them.
struct Corpus {
    messages: Vec<Vec<u8>>,
    /// Goods lines (Товары) of each message's order.
    lines: Vec<usize>,
    /// Orders that lost extra works to fit the size range.
    trimmed: usize,
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

impl Corpus {
    fn generate(count: usize) -> Result<Corpus> {
        let mut rng = Rng(Rng::SEED);
        let inns = inn_pool(&mut rng);
        let mut messages = Vec::with_capacity(count);
        let mut lines = Vec::with_capacity(count);
        let mut trimmed = 0;
        for i in 0..count {
            let mut order = Order::generate(i, &mut rng, &inns);
            let (raw, was_trimmed) = order.message(&mut rng)?;
            messages.push(raw);
            lines.push(order.goods.len());
            trimmed += usize::from(was_trimmed);
        }
        Ok(Corpus {
            messages,
            lines,
            trimmed,
        })
    }

    fn len(&self) -> usize {
        self.messages.len()
    }

    fn total_lines(&self) -> usize {
        self.lines.iter().sum()
    }

    fn facts(&self, generate_seconds: f64) -> CorpusFacts {
        let sizes = self.messages.iter().map(Vec::len);
        let mut lines_per_order = BTreeMap::new();
        for &n in &self.lines {
            *lines_per_order.entry(n).or_insert(0) += 1;
        }
        CorpusFacts {
            count: self.len(),
            total_bytes: sizes.clone().sum(),
            min_bytes: sizes.clone().min().unwrap_or(0),
            max_bytes: sizes.max().unwrap_or(0),
            lines_per_order,
            trimmed_orders: self.trimmed,
            generate_seconds,
        }
    }
}

/// Organisation INNs (10 digits): the seed's own plus a few generated with a valid check
/// digit, so counterparties are found again across orders, as with real repeat customers.
fn inn_pool(rng: &mut Rng) -> Vec<String> {
    let mut pool = vec!["7709745454".to_string(), "7707083893".to_string()];
    pool.extend((0..6).map(|_| valid_inn(rng)));
    debug_assert!(pool.iter().all(|inn| crate::map::Inn::parse(inn).is_some()));
    pool
}

/// A random 10-digit INN with its check digit: weights 2,4,10,3,5,9,4,6,8, sum % 11 % 10.
fn valid_inn(rng: &mut Rng) -> String {
    const WEIGHTS: [u64; 9] = [2, 4, 10, 3, 5, 9, 4, 6, 8];
    let digits: Vec<u64> = (0..9).map(|k| rng.range(u64::from(k == 0), 9)).collect();
    let check = digits.iter().zip(WEIGHTS).map(|(d, w)| d * w).sum::<u64>() % 11 % 10;
    digits.iter().chain([&check]).map(u64::to_string).collect()
}

const GOODS: [&str; 7] = [
    "Баннер 3x6 м",
    "Ролап 85x200",
    "Плакат А1",
    "Наклейки на витрину",
    "Пленка с печатью",
    "Холст на подрамнике",
    "Световой короб",
];
const MATERIALS: [(&str, &str); 5] = [
    ("Баннеры - Эконом (340 гр./м2) - 360 dpi", "00-00000021"),
    ("Баннеры - Премиум (510 гр./м2) - 720 dpi", "00-00000022"),
    ("Пленка самоклеящаяся Oracal 641", "00-00000107"),
    ("Бумага постерная 150 г/м2", "00-00000045"),
    ("Холст синтетический", "00-00000063"),
];
/// Key of a goods line's extra works (absent when there are none).
const EXTRA_WORK_KEY: &str = "ДополнительныеРаботы";
const RESOLUTIONS: [&str; 3] = ["360 dpi", "720 dpi", "1440 dpi"];
const SERVICES: [&str; 4] = ["Доставка", "Монтаж", "Дизайн макета", "Срочность"];
const EXTRA_WORKS: [(&str, &str); 4] = [
    ("Люверсы", "шаг 30см"),
    ("Проклейка края", "по периметру"),
    ("Ламинация", "матовая"),
    ("Карманы", "под трубу 40 мм"),
];
const SURNAMES: [&str; 8] = [
    "Прилепский",
    "Иванов",
    "Смирнов",
    "Кузнецов",
    "Попов",
    "Соколов",
    "Лебедев",
    "Новиков",
];
const FIRST_NAMES: [(&str, &str); 5] = [
    ("Алексей", "Анатольевич"),
    ("Сергей", "Петрович"),
    ("Дмитрий", "Иванович"),
    ("Андрей", "Викторович"),
    ("Михаил", "Олегович"),
];
/// Cycled to pad Описание until a message reaches its drawn size.
const FILLER: &str =
    "Просьба напечатать к сроку, макет согласован с менеджером, счет оплатим сразу. ";

/// One goods line, as the table in the HTML body shows it.
struct GoodsLine {
    name: String,
    quantity: u64,
    amount: f64,
}

/// One generated order: the payload (without padding) and the figures the bodies repeat.
struct Order {
    index: usize,
    timestamp: i64,
    payload: Map<String, Value>,
    goods: Vec<GoodsLine>,
    contact: String,
}

impl Order {
    fn generate(index: usize, rng: &mut Rng, inns: &[String]) -> Order {
        // Some time in 2024 (UTC), the website's local time written as is.
        let timestamp = 1_704_067_200 + rng.range(0, 366 * 86_400 - 1) as i64;
        let date = chrono::DateTime::from_timestamp(timestamp, 0)
            .unwrap_or_default()
            .format("%d.%m.%Y %H:%M:%S")
            .to_string();
        // A customer out of 1,000: repeat customers reuse their contact (same phone digits).
        let customer = rng.range(0, 999);
        let (first, patronymic) =
            FIRST_NAMES[customer as usize / SURNAMES.len() % FIRST_NAMES.len()];
        let contact = format!(
            "{} {first} {patronymic}",
            SURNAMES[customer as usize % SURNAMES.len()]
        );
        let mut goods = Vec::new();
        let mut goods_json = Vec::new();
        for position in 0..rng.range(1, 6) {
            // The first line is always goods, so every message is an order with a tech card.
            let (line, json) = if position > 0 && rng.chance(25) {
                service_line(rng)
            } else {
                goods_line(rng)
            };
            goods.push(line);
            goods_json.push(json);
        }
        let mut payload = Map::new();
        payload.insert(
            "Тема".into(),
            format!("Заказ №{index} от {}", &date[..10]).into(),
        );
        payload.insert("Дата".into(), date.into());
        payload.insert("Описание".into(), String::new().into());
        if rng.chance(80) {
            payload.insert("ИНН".into(), rng.pick(inns).clone().into());
        }
        payload.insert(
            "Телефон".into(),
            format!(
                "+7 925 {customer:03} {:02}-{:02}",
                customer % 97,
                customer % 89
            )
            .into(),
        );
        payload.insert(
            "АдресЭлектроннойПочты".into(),
            format!("client{customer}@example.ru").into(),
        );
        payload.insert("КонтактноеЛицо".into(), contact.clone().into());
        let files: Vec<Value> = (0..rng.range(1, 2))
            .map(|k| json!({"Файл": format!("https://shop.example/cabinet/print/2024/{index}_{k}.jpg")}))
            .collect();
        payload.insert("ФайлыМакета".into(), files.into());
        payload.insert("Товары".into(), goods_json.into());
        Order {
            index,
            timestamp,
            payload,
            goods,
            contact,
        }
    }

    /// The message at a size drawn in the allowed range: Описание is padded, the message
    /// rebuilt and measured, until it lands close (base64 makes the growth non-linear).
    /// Also says whether extra works had to be dropped to stay under the maximum.
    fn message(&mut self, rng: &mut Rng) -> Result<(Vec<u8>, bool)> {
        let target = rng.range(
            MIN_MESSAGE_BYTES as u64 + 200,
            MAX_MESSAGE_BYTES as u64 - 200,
        );
        let target = usize::try_from(target)?;
        let mut raw = self.build(0)?;
        let mut trimmed = false;
        // The biggest orders only fit the size range without some of their extra works.
        while raw.len() > MAX_MESSAGE_BYTES && self.drop_extra_work() {
            raw = self.build(0)?;
            trimmed = true;
        }
        let mut padding = 0usize;
        for _ in 0..6 {
            let missing = target as i64 - raw.len() as i64;
            if missing.abs() < 64 || (padding == 0 && missing < 0) {
                break;
            }
            // A cp1251 character is one byte, which base64 turns into ~1.37 bytes with
            // line breaks: so ~0.73 characters per missing byte.
            padding = (padding as i64 + missing * 73 / 100).max(0) as usize;
            raw = self.build(padding)?;
        }
        ensure!(
            (MIN_MESSAGE_BYTES..=MAX_MESSAGE_BYTES).contains(&raw.len()),
            "generated message {} is {} bytes, outside {MIN_MESSAGE_BYTES}..={MAX_MESSAGE_BYTES}",
            self.index,
            raw.len()
        );
        Ok((raw, trimmed))
    }

    /// Removes the extra works of the last goods line that has some; false when none has.
    fn drop_extra_work(&mut self) -> bool {
        let Some(Value::Array(lines)) = self.payload.get_mut("Товары") else {
            return false;
        };
        lines.iter_mut().rev().any(|line| {
            line.as_object_mut()
                .and_then(|fields| fields.remove(EXTRA_WORK_KEY))
                .is_some()
        })
    }

    /// multipart/mixed [ multipart/alternative [text/plain, text/html], order_{i}.txt ].
    fn build(&mut self, padding: usize) -> Result<Vec<u8>> {
        let i = self.index;
        let mut description = "Заказ с сайта, оплата по счету. ".to_string();
        description.extend(FILLER.chars().cycle().take(padding));
        self.payload.insert("Описание".into(), description.into());
        // Tab-indented like the seed's sample file.
        let mut json = Vec::new();
        let indent = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        self.payload
            .serialize(&mut serde_json::Serializer::with_formatter(
                &mut json, indent,
            ))?;
        let json = String::from_utf8(json)?;
        let (attachment, _, unmappable) = encoding_rs::WINDOWS_1251.encode(&json);
        ensure!(
            !unmappable,
            "order {i} has characters windows-1251 cannot encode"
        );
        let attachment = attachment.into_owned();

        let total: f64 = self.goods.iter().map(|g| g.amount).sum();
        let text = format!(
            "Заказ №{i} с сайта shop.example.\nПозиций: {}, сумма: {total:.2} руб.\nКонтакт: {}\n",
            self.goods.len(),
            self.contact
        );
        let mut html =
            format!("<p>Заказ №{i}</p><table><tr><th>Товар</th><th>Кол.</th><th>Сумма</th></tr>");
        for g in &self.goods {
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{:.2}</td></tr>",
                g.name, g.quantity, g.amount
            );
        }
        let _ = write!(html, "</table><p>Итого: {total:.2} руб.</p>");

        // Fixed boundaries: mail-builder's default ones depend on the clock, and the
        // corpus must be the same bytes on every run.
        let alternative = MimePart::new(
            ContentType::new("multipart/alternative").attribute("boundary", format!("alt-{i:08}")),
            vec![
                MimePart::new("text/plain", text),
                MimePart::new("text/html", html),
            ],
        );
        let file = MimePart::new(
            ContentType::new("text/plain").attribute("charset", "windows-1251"),
            attachment,
        )
        .attachment(format!("order_{i}.txt"));
        // Every third subject carries Cyrillic, so RFC 2047 decoding is part of the work.
        let subject = if i.is_multiple_of(3) {
            format!("ORDER: {i} Заказ с сайта")
        } else {
            format!("ORDER: {i}")
        };
        MessageBuilder::new()
            .from(("Сайт shop.example", "site@shop.example"))
            .to("orders@shop.example")
            .subject(subject)
            .message_id(format!("bench-{i}@shop.example"))
            .date(self.timestamp)
            .body(MimePart::new(
                ContentType::new("multipart/mixed").attribute("boundary", format!("mix-{i:08}")),
                vec![alternative, file],
            ))
            .write_to_vec()
            .context("cannot build a corpus message")
    }
}

/// A printed goods line (gets a tech card when stored), with an extra work 40% of the time.
fn goods_line(rng: &mut Rng) -> (GoodsLine, Value) {
    let name = rng.pick(&GOODS).to_string();
    let (material, material_code) = *rng.pick(&MATERIALS);
    let width = rng.range(5, 60) as f64 / 10.0;
    let height = rng.range(5, 30) as f64 / 10.0;
    let quantity = rng.range(1, 10);
    let price = rng.range(20, 150) * 10;
    let amount = (width * height * quantity as f64 * price as f64 * 100.0).round() / 100.0;
    let mut json = json!({
        "Номенклатура": name,
        "СтанокКод": rng.range(1, 5),
        "Разрешение": rng.pick(&RESOLUTIONS),
        "Материал": material,
        "МатериалКод": material_code,
        "Ширина": width,
        "Высота": height,
        "Количество": quantity,
        "Цена": price,
        "Сумма": amount,
        "Услуга": false,
    });
    if rng.chance(40) {
        let (kind, description) = *rng.pick(&EXTRA_WORKS);
        json[EXTRA_WORK_KEY] = json!([
            {"ВидРаботы": kind, "Количество": rng.range(1, 40), "Описание": description}
        ]);
    }
    (
        GoodsLine {
            name,
            quantity,
            amount,
        },
        json,
    )
}

/// A service line (delivery, mounting...): no machine, no tech card.
fn service_line(rng: &mut Rng) -> (GoodsLine, Value) {
    let name = rng.pick(&SERVICES).to_string();
    let quantity = rng.range(1, 3);
    let price = rng.range(5, 50) * 100;
    let amount = (quantity * price) as f64;
    let json = json!({
        "Номенклатура": name,
        "Услуга": true,
        "Количество": quantity,
        "Цена": price,
        "Сумма": amount,
    });
    (
        GoodsLine {
            name,
            quantity,
            amount,
        },
        json,
    )
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
}

impl PhaseFigures {
    fn msgs_per_sec(&self) -> f64 {
        self.messages as f64 / self.seconds
    }

    /// Throughput per second of CPU actually received: what an idle core would give, about.
    fn msgs_per_cpu_sec(&self) -> Option<f64> {
        Some(self.messages as f64 / self.sched?.cpu_seconds)
    }

    /// What the phase itself added at its peak.
    fn peak_growth_kb(&self) -> Option<u64> {
        Some(self.peak_rss_kb?.saturating_sub(self.start_rss_kb?))
    }
}

/// A `kB` field (`VmRSS`, `VmHWM`) of /proc/self/status; `None` off Linux.
fn proc_status_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        value.trim().strip_suffix("kB")?.trim().parse().ok()
    })
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
    let start_rss_kb = proc_status_kb("VmRSS");
    eprintln!("{label}: {messages} messages...");
    let start_sched = SchedTimes::now();
    let started = Instant::now();
    let out = work().with_context(|| format!("phase `{label}` failed"))?;
    let seconds = started.elapsed().as_secs_f64();
    let figures = PhaseFigures {
        messages,
        seconds,
        start_rss_kb,
        peak_rss_kb: proc_status_kb("VmHWM"),
        peak_reset,
        sched: SchedTimes::now()
            .zip(start_sched)
            .map(|(end, start)| end.since(start)),
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
fn bench_decode(corpus: &Corpus, rules: &DecodeRules) -> Result<PhaseFigures> {
    let (figures, lines) = measure("decode", corpus.len(), || {
        let mut lines = 0;
        for (i, raw) in corpus.messages.iter().enumerate() {
            match prepare(std::hint::black_box(raw), rules, &PayloadFormat::OrderJson).mapped {
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
/// commit step ([`commit_messages`], which builds the `Incoming` items and calls
/// `Store::commit_batch`), minus the mailbox: no file reads, ledger look-ups or
/// acknowledgements. Every message must create a record.
fn bench_store(corpus: &Corpus, collector: &Collector, db: &Path) -> Result<PhaseFigures> {
    let mut store = Store::open(&StorageUrl::Sqlite(db.to_path_buf()))?;
    let (figures, report) = measure("decode+store", corpus.len(), || {
        let mut report = CollectReport::default();
        let keyed: Vec<(usize, &Vec<u8>)> = corpus.messages.iter().enumerate().collect();
        for batch in keyed.chunks(collector.batch_size) {
            // NOTE: a source hands over owned bytes too (read from a file or a socket).
            let messages = batch
                .iter()
                .map(|(i, raw)| Fetched {
                    key: message_key(*i),
                    raw: raw.to_vec(),
                })
                .collect();
            commit_messages(collector, &mut store, messages, &mut report)?;
        }
        Ok(report)
    })?;
    check_report(&report, corpus.len())?;
    Ok(figures)
}

/// Fails unless the database at `db` holds exactly `expected` records. Run after all phases:
/// loading every record grows the heap, which would inflate a later phase's starting RSS.
fn verify_records(db: &Path, expected: usize) -> Result<()> {
    let mut store = Store::open(&StorageUrl::Sqlite(db.to_path_buf()))?;
    let stored = store
        .list_records(&RecordFilter {
            limit: Some(i64::try_from(expected)? + 1),
            ..RecordFilter::default()
        })?
        .len();
    ensure!(
        stored == expected,
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
fn bench_collect(
    corpus: &Corpus,
    collector: &Collector,
    maildir: &Path,
    db: &Path,
) -> Result<PhaseFigures> {
    eprintln!(
        "writing {} messages into {}...",
        corpus.len(),
        maildir.display()
    );
    write_maildir(corpus, maildir)?;
    let mut store = Store::open(&StorageUrl::Sqlite(db.to_path_buf()))?;
    let (figures, report) = measure("maildir collect", corpus.len(), || {
        Ok(collect_blocking(collector, &mut store)?)
    })?;
    check_report(&report, corpus.len())?;
    Ok(figures)
}

/// Delivers the corpus into `new/` of a fresh Maildir at `root`.
fn write_maildir(corpus: &Corpus, root: &Path) -> Result<()> {
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(root.join(sub))
            .with_context(|| format!("cannot create {}", root.join(sub).display()))?;
    }
    for (i, raw) in corpus.messages.iter().enumerate() {
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
        "{:<16} {:>10} {:>9} {:>9} {:>11} {:>11}",
        "phase", "msgs/s", "wall s", "cpu s", "runq wait s", "msgs/cpu-s"
    );
    for (_, label, f) in phases {
        let _ = writeln!(
            out,
            "{label:<16} {:>10.0} {:>9.3} {:>9} {:>11} {:>11}",
            f.msgs_per_sec(),
            f.seconds,
            secs(f.sched.map(|t| t.cpu_seconds)),
            secs(f.sched.map(|t| t.wait_seconds)),
            f.msgs_per_cpu_sec()
                .map_or_else(|| "n/a".to_string(), |v| format!("{v:.0}")),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_inns_are_valid() {
        let mut rng = Rng(Rng::SEED);
        for inn in inn_pool(&mut rng) {
            assert!(crate::map::Inn::parse(&inn).is_some(), "{inn}");
        }
    }

    #[test]
    fn corpus_is_deterministic_sized_and_accepted() {
        let corpus = Corpus::generate(60).unwrap();
        assert_eq!(corpus.messages, Corpus::generate(60).unwrap().messages);
        let rules = DecodeRules::default();
        for (raw, lines) in corpus.messages.iter().zip(&corpus.lines) {
            assert!((MIN_MESSAGE_BYTES..=MAX_MESSAGE_BYTES).contains(&raw.len()));
            match prepare(raw, &rules, &PayloadFormat::OrderJson).mapped {
                Mapped::Accept(record) => {
                    assert_eq!(record.lines.len(), *lines);
                    assert!(record.date.is_some() && record.warnings.is_empty());
                }
                other => panic!("not accepted: {other:?}"),
            }
        }
    }
}
