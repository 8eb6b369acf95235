//! A real PostgreSQL server for integration tests: one per test process, started on first
//! use ([`Postgres::shared`]), with a fresh database per test ([`Postgres::fresh_database`]).
//! [`Postgres::start`] gives a test (or a bench) a server of its own, stopped on drop.
//!
//! Needs Debian's `postgresql` (the server binaries and its `postgres` system user);
//! `tests/run` installs it. Blocking std code only.
//!
//! NOTE: facts about PostgreSQL 15 (Debian 12) that this harness relies on:
//! - Debian keeps `initdb`, `pg_ctl` and `postgres` in `/usr/lib/postgresql/VERSION/bin`, off
//!   `PATH`; the package's own cluster (`pg_ctlcluster`) is not used: each harness has its
//!   own data folder, so tests never depend on, or disturb, a system cluster.
//! - `initdb` and `postgres` refuse to run as root. Tests run as root, so both run as the
//!   `postgres` user the package creates (`runuser -u postgres`); the data folder is owned by
//!   it and 0700, and the harness's temp folder must be traversable (0755).
//! - Connections: TCP on 127.0.0.1 and a free port, with a password (scram-sha-256), so the
//!   product's URL and password handling are exercised as in production; and a Unix socket in
//!   the temp folder, trusted, for the harness's own administration. No other address.
//! - `pg_ctl start` detaches the server into its own session (setsid): Ctrl-C on the test run
//!   does not reach it, and nothing stops it when the test process dies. Statics are never
//!   dropped either, so each server has a watcher: a small shell process, in a session of its
//!   own too, that polls the test process and, once it is gone (finished, panicked or
//!   SIGKILLed), stops the server with SIGQUIT (immediate shutdown) and removes the folder.
//! - The shared server runs with `fsync = off`: tests lose nothing by it (a crashed test
//!   server is thrown away), and they run much faster. A benchmark that compares durability
//!   with SQLite's `synchronous = FULL` starts its own with `durable: true`.
//! - `CREATE DATABASE` copies `template1`; it fails when another session is connected to
//!   `template1`, so the harness connects to `postgres`, never to `template1`. Databases are
//!   not dropped after a test (`DROP DATABASE` fails while a daemon still holds a
//!   connection): they go with the server at the end of the process.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::dovecot::make_certificates;
use super::imap_server::{check_traversable, free_ports, random_hex, run_ok};

/// The superuser every harness creates (its name is also its TCP login).
pub const USER: &str = "mailintake";
/// How many times start-up is retried when a picked port was taken meanwhile.
const START_ATTEMPTS: usize = 5;
/// The system user the server runs as when the tests run as root.
const SERVER_USER: &str = "postgres";

#[derive(Debug, Clone, Copy, Default)]
pub struct PostgresOptions {
    /// false (tests): `fsync = off`. true (benchmarks): PostgreSQL's defaults, so commits
    /// reach the disk as they would in production.
    pub durable: bool,
    /// true: the server speaks TLS with a certificate for `127.0.0.1` signed by a private CA
    /// ([`Postgres::ca_file`]), and logs each connection (with its TLS version).
    pub tls: bool,
}

/// A running PostgreSQL server. One made by [`Postgres::start`] is stopped on drop; the
/// shared one when the test process ends. Either way, its watcher stops it if the process
/// is killed.
pub struct Postgres {
    port: u16,
    password: String,
    socket_dir: PathBuf,
    log_file: PathBuf,
    /// The postmaster's pid, which the watcher and `drop` signal.
    pid: u32,
    ca_file: Option<PathBuf>,
    // Last field: removed after `drop` has stopped the server.
    dir: tempfile::TempDir,
}

/// A database of its own for one test, on a [`Postgres`] server.
#[derive(Debug, Clone)]
pub struct TestDatabase {
    /// `postgres://mailintake@127.0.0.1:PORT/NAME`, without the password (which the
    /// product must take from `password-env` / `password-file`).
    pub url: String,
    /// The same with the password inline, for the tests' own diesel connections.
    pub url_with_password: String,
    /// The superuser's password, for `[storage] password-env` / `password-file`.
    pub password: String,
}

impl Postgres {
    /// The test process's server, started on the first call (later calls wait for it).
    pub fn shared() -> &'static Postgres {
        static SHARED: OnceLock<Postgres> = OnceLock::new();
        SHARED.get_or_init(|| Postgres::start(PostgresOptions::default()))
    }

    /// Starts a server of its own and waits until it accepts connections. Panics with the
    /// server's log on failure.
    pub fn start(options: PostgresOptions) -> Postgres {
        let bin = preflight();
        let dir = tempfile::Builder::new()
            .prefix("postgres-harness-")
            .tempdir()
            .expect("create temp dir for postgres");
        let base = dir.path().to_path_buf();
        // NOTE: the server user must traverse the base folder to reach its own folders.
        fs::set_permissions(&base, fs::Permissions::from_mode(0o755)).unwrap();
        check_traversable(&base);
        let (data, socket_dir, log_dir) = (base.join("data"), base.join("run"), base.join("log"));
        for sub in [&data, &socket_dir, &log_dir] {
            fs::create_dir_all(sub).unwrap();
            give_to_server_user(sub);
        }
        let password = random_hex();
        let password_file = base.join("run").join("pwfile");
        fs::write(&password_file, format!("{password}\n")).unwrap();
        give_to_server_user(&password_file);
        run_ok(
            as_server_user(&bin.join("initdb"))
                .arg("--pgdata")
                .arg(&data)
                .args([
                    "--username",
                    USER,
                    "--encoding",
                    "UTF8",
                    "--locale",
                    "C.UTF-8",
                ])
                .args(["--auth-local", "trust", "--auth-host", "scram-sha-256"])
                .arg(format!("--pwfile={}", password_file.display()))
                .arg("--no-sync"),
        );
        fs::remove_file(&password_file).unwrap();

        let tls = options.tls.then(|| {
            let folder = base.join("tls");
            fs::create_dir_all(&folder).unwrap();
            let ca = make_certificates(&folder);
            let key = folder.join("server.key");
            fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
            give_to_server_user(&key);
            (ca, folder)
        });
        let log_file = log_dir.join("postgres.log");
        let mut failures = String::new();
        for attempt in 1..=START_ATTEMPTS {
            let [port] = free_ports::<1>();
            let mut settings = server_settings(port, &socket_dir, options);
            if let Some((_, folder)) = &tls {
                settings += &format!(
                    " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={} -c log_connections=on",
                    folder.join("server.pem").display(),
                    folder.join("server.key").display()
                );
            }
            let started = as_server_user(&bin.join("pg_ctl"))
                .arg("start")
                .args(["--wait", "--timeout", "60", "--silent"])
                .arg("--pgdata")
                .arg(&data)
                .arg("--log")
                .arg(&log_file)
                .args(["-o", &settings])
                .stdin(Stdio::null())
                .output()
                .expect("run pg_ctl");
            if started.status.success() {
                let pid = postmaster_pid(&data);
                spawn_watcher(pid, &base);
                return Postgres {
                    port,
                    password,
                    socket_dir,
                    log_file,
                    pid,
                    ca_file: tls.map(|(ca, _)| ca),
                    dir,
                };
            }
            // NOTE: a port taken between `free_ports` and the bind shows as "could not bind":
            // try another; anything else is a real failure, reported with the log.
            let log = fs::read_to_string(&log_file).unwrap_or_default();
            failures += &format!(
                "attempt {attempt} on port {port}: {}{log}\n",
                String::from_utf8_lossy(&started.stderr)
            );
            if !log.contains("could not bind") {
                break;
            }
        }
        panic!("PostgreSQL did not start:\n{failures}");
    }

    /// A fresh, empty database on this server, owned by [`USER`].
    pub fn fresh_database(&self) -> TestDatabase {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "test_{}_{}",
            COUNT.fetch_add(1, Ordering::Relaxed),
            &random_hex()[..8]
        );
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        let url = format!("postgres://{USER}@127.0.0.1:{}/{name}", self.port);
        let url_with_password = format!(
            "postgres://{USER}:{}@127.0.0.1:{}/{name}",
            self.password, self.port
        );
        TestDatabase {
            url,
            url_with_password,
            password: self.password.clone(),
        }
    }

    /// Runs SQL as the superuser over the trusted Unix socket and returns what `psql`
    /// printed (unaligned, tuples only). Panics with psql's error.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let out = Command::new(self.bin().join("psql"))
            .arg("--no-psqlrc")
            .args(["--quiet", "--tuples-only", "--no-align"])
            .args(["--set", "ON_ERROR_STOP=1"])
            .arg("--host")
            .arg(&self.socket_dir)
            .args(["--port", &self.port.to_string(), "--username", USER])
            .args(["--dbname", database, "--command", sql])
            .stdin(Stdio::null())
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql `{sql}` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The loopback TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Restarts the server (fast shutdown: every client's connection is cut), on the same
    /// port with the same settings, and waits until it accepts connections again.
    pub fn restart(&self) {
        run_ok(
            as_server_user(&self.bin().join("pg_ctl"))
                .arg("restart")
                .args(["--wait", "--timeout", "60", "--silent", "--mode", "fast"])
                .arg("--pgdata")
                .arg(self.dir.path().join("data"))
                .arg("--log")
                .arg(&self.log_file)
                .stdin(Stdio::null()),
        );
    }

    /// The private CA that signed a TLS server's certificate.
    pub fn ca_file(&self) -> &Path {
        self.ca_file.as_deref().expect("started with tls: true")
    }

    /// The temp folder holding the server's data, socket and log.
    pub fn folder(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log so far, for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    fn bin(&self) -> PathBuf {
        server_bin().expect("checked at start")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Immediate shutdown: the folder is removed next, so nothing needs to be flushed.
        let _ = Command::new("kill")
            .args(["-QUIT", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Path::new(&format!("/proc/{}", self.pid)).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The `postgres` options: loopback TCP on `port`, the socket in `socket_dir`, and enough
/// connections for several daemons with pools.
fn server_settings(port: u16, socket_dir: &Path, options: PostgresOptions) -> String {
    let mut settings = format!(
        "-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={} \
         -c max_connections=200 -c log_min_messages=warning",
        socket_dir.display()
    );
    if !options.durable {
        settings += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off";
    }
    settings
}

/// The watcher (see the module doc): a shell process in its own session that stops the
/// server and removes `dir` once the test process is gone.
fn spawn_watcher(postmaster: u32, dir: &Path) {
    let script = r#"
        while kill -0 "$1" 2>/dev/null; do sleep 0.5; done
        kill -QUIT "$2" 2>/dev/null
        i=0
        while kill -0 "$2" 2>/dev/null && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i+1)); done
        rm -rf "$3"
    "#;
    // NOTE: `setsid --fork` returns at once, so the watcher is nobody's child to wait for.
    let started = Command::new("setsid")
        .args(["--fork", "sh", "-c", script, "postgres-harness-watcher"])
        .arg(std::process::id().to_string())
        .arg(postmaster.to_string())
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("start the postgres watcher");
    assert!(started.success(), "setsid failed: {started}");
}

/// The postmaster's pid: the first line of `postmaster.pid`, which `pg_ctl start --wait`
/// has seen before returning.
fn postmaster_pid(data: &Path) -> u32 {
    let text = fs::read_to_string(data.join("postmaster.pid")).expect("read postmaster.pid");
    text.lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("postmaster.pid starts with the pid")
}

/// Checks what the harness needs and returns the folder of the server binaries.
fn preflight() -> PathBuf {
    let bin = server_bin().unwrap_or_else(|| {
        panic!("PostgreSQL server binaries not found: install Debian's postgresql (tests/run does)")
    });
    if running_as_root() {
        let known = Command::new("id")
            .arg(SERVER_USER)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            known,
            "no `{SERVER_USER}` user to run PostgreSQL as (Debian's postgresql creates it)"
        );
    }
    bin
}

/// The newest `/usr/lib/postgresql/N/bin` with an `initdb`, else the folder of an `initdb`
/// on `PATH`.
fn server_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .find(|dir| dir.join("initdb").exists() && dir.join("pg_ctl").exists())
    })
}

fn running_as_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A command for `program` that runs as the server user: through `runuser` as root (the
/// server refuses root), directly otherwise.
fn as_server_user(program: &Path) -> Command {
    if running_as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", SERVER_USER, "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn give_to_server_user(path: &Path) {
    if running_as_root() {
        run_ok(Command::new("chown").arg(SERVER_USER).arg(path));
    }
}
