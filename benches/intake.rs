//! `cargo bench --bench intake [-- --requests 4000 --clients 16 --json]`: HTTP intake
//! requests per second against the real server.
//!
//! The question is how many form posts a second one `mailintake` takes when a website (or
//! several) posts at once. The bench serves the real router (`mailintake::web::serve`) on
//! loopback port 0 over a fresh SQLite file (WAL, `synchronous = FULL`: every accepted
//! request is an fsynced commit, as in production), makes an intake token in that database,
//! and has `--clients` threads, each with its own keep-alive HTTP connection, post
//! `--requests` order bodies in all (UTF-8, about 1 KB, one goods line, each with its own
//! Idempotency-Key), then as many again with the same keys (the duplicate path: a look-up,
//! no insert). It reports, per phase, requests per second (wall clock), the median and 99th
//! percentile latency, and checks the answers (201 for each new key, 200 for each repeat)
//! and the record count, so a fast wrong server does not pass. Figures go to stdout (a
//! table, or one JSON object with `--json`); the server logs nothing below warnings.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use clap::Parser;
use mailintake::config::Config;
use mailintake::domain::TokenScope;
use mailintake::ingest::Shutdown;
use mailintake::store::Store;
use mailintake::web::{self, ApiSecret, AppState};
use serde_json::json;

// The product's allocator, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Options of the benchmark (after `--`).
#[derive(Debug, Parser)]
#[command(name = "intake", about = "HTTP intake requests per second")]
struct Args {
    /// Requests with new keys (as many again repeat them)
    #[arg(long, default_value_t = 4000)]
    requests: usize,
    /// Concurrent clients, each on its own connection
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// One JSON object instead of a table
    #[arg(long)]
    json: bool,
    /// Ignored: `cargo bench` passes it to every bench
    #[arg(long, hide = true)]
    bench: bool,
}

/// What one phase measured.
struct Phase {
    name: &'static str,
    requests: usize,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
}

impl Phase {
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

const CONFIG: &str = r#"[storage]
url = "sqlite://intake.db"

[[queue]]
name = "shop"

[[collector]]
name = "shop"
queue = "shop"
[collector.http]
"#;

fn order(i: usize) -> String {
    json!({
        "Тема": format!("Заказ №{i} с сайта"),
        "Дата": "29.05.2019 15:15:00",
        "Описание": "Ролап с люверсами, доставка по Москве",
        "ИНН": "7709745454",
        "Телефон": format!("+7 925 {:03} {:02}-{:02}", i % 1000, i % 100, (i / 100) % 100),
        "АдресЭлектроннойПочты": "client@example.ru",
        "КонтактноеЛицо": "Прилепский Алексей Анатольевич",
        "Товары": [{
            "Номенклатура": "Ролап 85x200", "Материал": "Баннер 340 г/м2", "Ширина": 0.85,
            "Высота": 2, "Количество": 1, "Цена": 4500, "Сумма": 4500,
            "ДополнительныеРаботы": [{"ВидРаботы": "Люверсы", "Количество": 8, "Описание": "шаг 30 см"}]
        }]
    })
    .to_string()
}

/// Posts `bodies` (index, key) from `clients` threads; returns the phase and every status.
fn run_phase(
    name: &'static str,
    addr: SocketAddr,
    token: &str,
    clients: usize,
    requests: usize,
) -> Result<(Phase, Vec<u16>)> {
    let url = format!("http://{addr}/api/v1/intake/shop");
    let bearer = format!("Bearer {token}");
    let started = Instant::now();
    let results: Vec<Result<Vec<(u16, Duration)>>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..clients)
            .map(|client| {
                let (url, bearer) = (&url, &bearer);
                scope.spawn(move || {
                    let agent: ureq::Agent = ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .build()
                        .into();
                    (client..requests)
                        .step_by(clients)
                        .map(|i| {
                            let sent = Instant::now();
                            let response = agent
                                .post(url)
                                .header("Authorization", bearer)
                                .header("Content-Type", "application/json")
                                .header("Idempotency-Key", &format!("order-{i}"))
                                .send(order(i).as_bytes())?;
                            let status = response.status().as_u16();
                            response.into_body().read_to_vec()?;
                            Ok((status, sent.elapsed()))
                        })
                        .collect()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a client thread"))
            .collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    let mut answers = Vec::with_capacity(requests);
    for result in results {
        answers.extend(result?);
    }
    let mut latencies: Vec<Duration> = answers.iter().map(|a| a.1).collect();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    let phase = Phase {
        name,
        requests,
        seconds,
        p50_ms: at(0.5),
        p99_ms: at(0.99),
    };
    Ok((phase, answers.into_iter().map(|a| a.0).collect()))
}

fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(args.clients > 0 && args.requests > 0, "nothing to do");
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("collectors.toml");
    std::fs::write(&path, CONFIG)?;
    let config = Config::load(&path)?;
    let secret = ApiSecret::draw();
    let scope = TokenScope::Intake {
        collector: "shop".into(),
    };
    Store::open(&config.storage)?.add_token("bench", &scope, &secret.hash())?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let state = AppState::new(config)?;
    let shutdown = Shutdown::new();
    runtime.spawn(web::serve(listener, state, shutdown.clone()));

    let (new, statuses) = run_phase("new", addr, secret.expose(), args.clients, args.requests)?;
    ensure!(
        statuses.iter().all(|s| *s == 201),
        "a new key was not answered 201: {:?}",
        statuses.iter().find(|s| **s != 201)
    );
    let (repeat, statuses) = run_phase(
        "duplicate",
        addr,
        secret.expose(),
        args.clients,
        args.requests,
    )?;
    ensure!(
        statuses.iter().all(|s| *s == 200),
        "a repeated key was not answered 200"
    );
    shutdown.cancel();
    runtime.shutdown_timeout(Duration::from_secs(5));
    let stored = count_records(&dir.path().join("intake.db"))?;
    ensure!(
        stored == args.requests,
        "{stored} records for {} keys",
        args.requests
    );

    report(&args, &[new, repeat]);
    Ok(())
}

fn count_records(db: &Path) -> Result<usize> {
    let mut store = Store::open(&mailintake::config::StorageUrl::Sqlite(db.to_path_buf()))
        .context("reopen the bench database")?;
    Ok(store.list_records(&Default::default())?.len())
}

fn report(args: &Args, phases: &[Phase]) {
    if args.json {
        let phases: Vec<_> = phases
            .iter()
            .map(|p| {
                json!({"phase": p.name, "requests": p.requests, "seconds": p.seconds,
                       "requests_per_second": p.per_second(), "p50_ms": p.p50_ms, "p99_ms": p.p99_ms})
            })
            .collect();
        println!("{}", json!({"clients": args.clients, "phases": phases}));
        return;
    }
    println!(
        "HTTP intake, {} concurrent clients, SQLite (WAL, synchronous = FULL)",
        args.clients
    );
    println!(
        "{:<10} {:>9} {:>9} {:>10} {:>9} {:>9}",
        "phase", "requests", "seconds", "req/s", "p50 ms", "p99 ms"
    );
    for p in phases {
        println!(
            "{:<10} {:>9} {:>9.2} {:>10.0} {:>9.2} {:>9.2}",
            p.name,
            p.requests,
            p.seconds,
            p.per_second(),
            p.p50_ms,
            p.p99_ms
        );
    }
}
