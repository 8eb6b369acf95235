//! A real Dovecot IMAP server for integration tests: one per [`Dovecot::start`], in its own
//! temp folder, on its own loopback ports, stopped on drop.
//!
//! Needs root and the Debian package `dovecot-imapd` (plus `openssl` for TLS); `tests/run`
//! installs both. Blocking std code only.
//!
//! NOTE: facts about Dovecot 2.3 (Debian 12) that this harness relies on:
//! - The package starts no daemon here (no systemd); we run `dovecot -F -c CONF` as our own
//!   child, so we see it die during start-up and can wait for it on stop.
//! - imap-login refuses to run as root, and mail must be accessed as a non-root uid:
//!   `default_login_user = dovenull`, `default_internal_user = dovecot`,
//!   `mail_uid/mail_gid = dovecot`, `first_valid_uid/gid = 100`; the mail folder is chowned to
//!   dovecot and the temp folder must be world-traversable (0755).
//! - `chroot =` (empty) is needed for imap-login and anvil when base_dir is a temp folder.
//! - The passwd-file is re-read when it changes, but checked at most once per second, so
//!   `add_user` waits until the auth server knows the new user.
//! - Failed logins are slow by default: auth_failure_delay (2s), then a per-IP "auth penalty"
//!   (4s, growing) on every later login from 127.0.0.1. Both are switched off in the config.
//! - With `ssl = yes` the plain port also offers STARTTLS; `disable_plaintext_auth = no` keeps
//!   plain LOGIN working there, which `append` uses.
//! - rustls rejects CN-only certificates and a CA used directly as the server certificate, so
//!   we make a small CA plus a leaf for `localhost` / `127.0.0.1` (subjectAltName) signed by it.
//! - The namespace has an empty prefix and the Maildir++ separator `.`: `INBOX`, `Orders` and
//!   `INBOX.Sub` are what LIST shows.
//! - `doveadm fetch` reports `\Recent` among the flags (dropped here) and, for a mailbox that
//!   does not exist, prints `[]` and exits 0.
//! - Stopping takes ~1s (the master waits for its log process). An imap process with a
//!   connected client would outlive the master, so it gets SIGTERM too.
//! - `pgrep dovecot` only shows masters: the services are named `imap`, `auth`, `log`, ...

use std::fmt::Write as _;
use std::fs;
use std::io::Write;
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use super::imap_server::{Imap, MailboxMessage};
use super::imap_server::{
    ImapServer, TIMEOUT, addr, check_traversable, descendants_of, free_ports, random_hex, run_ok,
    signal, try_greeting,
};
/// How many times start-up is retried when a picked port was taken meanwhile.
const START_ATTEMPTS: usize = 5;

#[derive(Debug, Clone, Copy, Default)]
pub struct DovecotOptions {
    /// false: plain IMAP only (`ssl = no`). true: `ssl = yes`, so the plain port offers
    /// STARTTLS, plus an implicit-TLS (imaps) port; the certificate is for `localhost` and
    /// `127.0.0.1`, signed by the CA in [`Dovecot::ca_file`].
    pub tls: bool,
    /// The personal namespace's `(prefix, separator)`, to behave like other servers:
    /// `("INBOX.", '.')` is Courier's and Cyrus's, `("", '/')` a `/`-separated server.
    /// Default: Dovecot's own, `("", '.')`.
    pub namespace: Option<(&'static str, char)>,
    /// The CAPABILITY list offered after login (`imap_capability`), to take extensions
    /// away (MOVE, UIDPLUS, IDLE). Dovecot keeps executing the commands; only what it
    /// offers changes. Default: all Dovecot has.
    pub capability: Option<&'static str>,
}

/// A running Dovecot. Stopped (and its temp folder removed) on drop.
pub struct Dovecot {
    child: Option<Child>,
    port: u16,
    tls_port: Option<u16>,
    ca_file: Option<PathBuf>,
    conf: PathBuf,
    users: PathBuf,
    log_file: PathBuf,
    // Last field: removed after `drop` has stopped the server.
    dir: tempfile::TempDir,
}

impl Dovecot {
    /// Starts a fresh server and waits until its port(s) greet. Panics with the log on failure.
    pub fn start(options: DovecotOptions) -> Dovecot {
        preflight();
        let dir = tempfile::Builder::new()
            .prefix("dovecot-harness-")
            .tempdir()
            .expect("create temp dir for dovecot");
        let base = dir.path().to_path_buf();
        // NOTE: dovecot's unprivileged processes must traverse the base folder (0755).
        fs::set_permissions(&base, fs::Permissions::from_mode(0o755)).unwrap();
        check_traversable(&base);

        for sub in ["log", "mail", "tls"] {
            fs::create_dir_all(base.join(sub)).unwrap();
        }
        // NOTE: mail is accessed as the dovecot user (mail_uid), so it must own the mail folder.
        run_ok(
            Command::new("chown")
                .args(["dovecot:dovecot"])
                .arg(base.join("mail")),
        );
        let users = base.join("users");
        fs::write(&users, "").unwrap();
        fs::set_permissions(&users, fs::Permissions::from_mode(0o644)).unwrap();

        let ca_file = options.tls.then(|| make_certificates(&base.join("tls")));

        let conf = base.join("dovecot.conf");
        let log_file = base.join("log").join("dovecot.log");
        let mut failures = String::new();
        for attempt in 1..=START_ATTEMPTS {
            let (port, tls_port) = pick_ports(options.tls);
            fs::write(&conf, config(&base, port, tls_port, &options)).unwrap();
            let _ = fs::remove_file(&log_file);
            match launch(&base, &conf, port, tls_port) {
                Ok(child) => {
                    return Dovecot {
                        child: Some(child),
                        port,
                        tls_port,
                        ca_file,
                        conf,
                        users,
                        log_file,
                        dir,
                    };
                }
                Err(why) => {
                    let log = fs::read_to_string(&log_file).unwrap_or_default();
                    let _ = writeln!(failures, "attempt {attempt}: {why}\n--- log ---\n{log}");
                    // NOTE: a picked port can be taken by someone else between our probe and
                    // dovecot's bind; then the master exits (status 89) with "listen(127.0.0.1,
                    // PORT) failed: Address already in use" on stderr and in the log.
                    if !log.contains("Address already in use")
                        && !why.contains("Address already in use")
                    {
                        break;
                    }
                }
            }
        }
        panic!(
            "dovecot did not start (config {}):\n{failures}",
            conf.display()
        );
    }

    /// The plain IMAP port (offers STARTTLS when started with `tls: true`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The implicit-TLS (imaps) port, when started with `tls: true`.
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_port
    }

    /// PEM file of the CA that signed the server certificate, when started with `tls: true`.
    pub fn ca_file(&self) -> Option<PathBuf> {
        self.ca_file.clone()
    }

    /// The temp folder holding config, log, mail and certificates.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Adds a login (any name, e.g. `user@example.test`); returns once Dovecot accepts it.
    pub fn add_user(&self, user: &str, password: &str) {
        assert!(
            !user.contains([':', '\n', '\r', '\t']) && !password.contains([':', '\n', '\r']),
            "user/password not representable in a passwd-file (no ':' or line breaks): {user:?}"
        );
        let existing = fs::read_to_string(&self.users).unwrap();
        assert!(
            !existing.lines().any(|l| l.split(':').next() == Some(user)),
            "user {user:?} already added (passwords can't be changed: Dovecot might not notice)"
        );
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(&self.users)
            .unwrap();
        // NOTE: passwd-file line: `user:{PLAIN}password` (more fields would follow after ':').
        writeln!(file, "{user}:{{PLAIN}}{password}").unwrap();
        drop(file);
        // NOTE: Dovecot re-reads a changed passwd-file, but looks at it at most once per
        // second: a user added in the same second as the previous login is not seen yet. Wait
        // until the auth server knows the user (`doveadm auth lookup` does no IMAP login).
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let out = self.doveadm_output(&["auth", "lookup", user]);
            if out.status.success() {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "user {user:?} still cannot log in 10s after add_user: {}{}\n--- log ---\n{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// APPENDs `message` to `mailbox` (created if missing) over plain IMAP; returns its UID.
    pub fn append(&self, user: &str, password: &str, mailbox: &str, message: &[u8]) -> u32 {
        self.append_with(user, password, mailbox, &[], None, message)
    }

    /// Like [`Dovecot::append`], with flags (e.g. `\Seen`, `$Custom`) and an optional internal
    /// date such as `"01-Jan-2020 10:00:00 +0000"`.
    pub fn append_with(
        &self,
        user: &str,
        password: &str,
        mailbox: &str,
        flags: &[&str],
        internal_date: Option<&str>,
        message: &[u8],
    ) -> u32 {
        self.append_as((user, password), mailbox, flags, internal_date, message)
    }

    /// UIDs and flags of the messages in `mailbox`, sorted by UID; empty if it does not exist.
    pub fn messages(&self, user: &str, mailbox: &str) -> Vec<MailboxMessage> {
        let out = self.doveadm_output(&[
            "-f",
            "json",
            "fetch",
            "-u",
            user,
            "uid flags",
            "mailbox",
            mailbox,
        ]);
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            // NOTE: doveadm fetch on a missing mailbox fails with "Mailbox doesn't exist".
            if stderr.contains("doesn't exist") {
                return Vec::new();
            }
            panic!(
                "doveadm fetch failed ({}): {stderr}\n--- log ---\n{}",
                out.status,
                self.log()
            );
        }
        let text = String::from_utf8_lossy(&out.stdout);
        if text.trim().is_empty() {
            return Vec::new();
        }
        let rows: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("doveadm fetch printed no JSON ({e}): {text}"));
        let mut messages: Vec<MailboxMessage> = rows
            .as_array()
            .unwrap_or_else(|| panic!("doveadm fetch: not a JSON array: {text}"))
            .iter()
            .map(|row| {
                // NOTE: doveadm's JSON prints every field as a string ("uid":"1"), and flags
                // space-separated.
                let uid = match &row["uid"] {
                    serde_json::Value::String(s) => s.parse().unwrap(),
                    serde_json::Value::Number(n) => n.as_u64().unwrap() as u32,
                    other => panic!("doveadm fetch: bad uid {other}"),
                };
                let flags = row["flags"]
                    .as_str()
                    .unwrap_or("")
                    .split_whitespace()
                    .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
                    .map(str::to_owned)
                    .collect();
                MailboxMessage { uid, flags }
            })
            .collect();
        messages.sort_by_key(|m| m.uid);
        messages
    }

    /// The mailbox's UIDVALIDITY as doveadm reports it.
    pub fn uidvalidity(&self, user: &str, mailbox: &str) -> u32 {
        let out = self.doveadm(&[
            "-f",
            "flow",
            "mailbox",
            "status",
            "-u",
            user,
            "uidvalidity",
            mailbox,
        ]);
        // NOTE: flow output is `MAILBOX uidvalidity=N`.
        out.split_whitespace()
            .find_map(|f| f.strip_prefix("uidvalidity="))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("doveadm mailbox status: unexpected output {out:?}"))
    }

    /// Changes the mailbox's UIDVALIDITY (as if the server had rebuilt it); the next SELECT
    /// reports the new value.
    pub fn set_uidvalidity(&self, user: &str, mailbox: &str, uidvalidity: u32) {
        self.doveadm(&[
            "mailbox",
            "update",
            "-u",
            user,
            "--uid-validity",
            &uidvalidity.to_string(),
            mailbox,
        ]);
    }

    /// Runs `doveadm -c CONF ARGS`, panics (with the log) unless it succeeds; returns stdout.
    pub fn doveadm(&self, args: &[&str]) -> String {
        let out = self.doveadm_output(args);
        if !out.status.success() {
            panic!(
                "doveadm {args:?} failed ({}): {}{}\n--- log ---\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.log()
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn doveadm_output(&self, args: &[&str]) -> Output {
        Command::new("doveadm")
            .arg("-c")
            .arg(&self.conf)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run doveadm")
    }

    /// A raw IMAP connection to the plain port, greeting already read.
    pub fn connect(&self) -> Imap {
        ImapServer::connect(self)
    }

    /// A raw IMAP connection to the plain port, logged in.
    pub fn connect_as(&self, user: &str, password: &str) -> Imap {
        ImapServer::connect_as(self, user, password)
    }

    /// The Dovecot log so far, for assertion messages.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_file).unwrap_or_else(|e| format!("(no log: {e})"))
    }

    /// Stops the server and waits until the master and all its processes are gone.
    /// Idempotent; also done on drop.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            shutdown(&mut child);
        }
    }
}

impl ImapServer for Dovecot {
    fn port(&self) -> u16 {
        self.port
    }

    fn server_log(&self) -> String {
        self.log()
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}

fn preflight() {
    let euid = fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0);
    assert_eq!(
        euid, 0,
        "the Dovecot harness needs root (dovecot switches to the dovecot/dovenull users)"
    );
    let found = Command::new("dovecot")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "`dovecot` not found: install the Debian package dovecot-imapd (tests/run does)"
    );
}

/// Free loopback ports for the plain and (with `tls`) the imaps listener.
fn pick_ports(tls: bool) -> (u16, Option<u16>) {
    let [plain, secure] = free_ports();
    (plain, tls.then_some(secure))
}

fn config(base: &Path, port: u16, tls_port: Option<u16>, options: &DovecotOptions) -> String {
    let b = base.display();
    let ssl = match tls_port {
        // NOTE: `ssl = yes` (not `required`): STARTTLS offered, plain LOGIN still allowed.
        Some(_) => {
            format!("ssl = yes\nssl_cert = <{b}/tls/server.pem\nssl_key = <{b}/tls/server.key\n")
        }
        None => "ssl = no\n".to_owned(),
    };
    let tls_port = tls_port.unwrap_or(0); // port 0 disables the imaps listener
    let mut extra = String::new();
    if let Some((prefix, separator)) = options.namespace {
        // NOTE: `inbox = yes` keeps INBOX itself where it is; with prefix `INBOX.` every
        // other folder lives under it, as on Courier, and CREATE of a name outside every
        // namespace is refused. Maildir++ stores `.`-separated on disk whatever the
        // separator clients see.
        let _ = write!(
            extra,
            "namespace inbox {{\n  inbox = yes\n  prefix = {prefix}\n  separator = {separator}\n}}\n"
        );
    }
    if let Some(capability) = options.capability {
        let _ = writeln!(extra, "imap_capability = {capability}");
    }
    format!(
        r#"# Written by tests/kit/dovecot.rs
base_dir = {b}/run
state_dir = {b}/run/state
log_path = {b}/log/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl}disable_plaintext_auth = no
auth_mechanisms = plain login
auth_verbose = yes
# NOTE: failed logins are answered after auth_failure_delay (default 2s); 0 makes it <= 0.5s.
auth_failure_delay = 0
mail_location = maildir:{b}/mail/%u
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
mail_uid = dovecot
mail_gid = dovecot
first_valid_uid = 100
first_valid_gid = 100
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {b}/users
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={b}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = {tls_port}
  }}
  chroot =
}}
service anvil {{
  chroot =
  # NOTE: no auth penalty: by default every failed login from an IP makes every later login
  # from it wait 4s and more (anvil "auth penalty"); auth can't reach a mode-0 listener, so
  # the penalty is off.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
{extra}"#
    )
}

/// Starts `dovecot -F -c CONF` and waits until it is ready, or returns why not (the master is
/// gone by then).
fn launch(base: &Path, conf: &Path, port: u16, tls_port: Option<u16>) -> Result<Child, String> {
    let stderr = fs::File::create(base.join("log").join("master.stderr")).unwrap();
    let mut child = Command::new("dovecot")
        .arg("-F")
        .arg("-c")
        .arg(conf)
        .stdin(Stdio::null())
        .stdout(stderr.try_clone().unwrap())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("cannot run dovecot: {e}"))?;
    let pid_file = base.join("run").join("master.pid");
    let deadline = Instant::now() + TIMEOUT;
    let fail = |child: &mut Child, why: String| {
        shutdown(child);
        let stderr = fs::read_to_string(base.join("log").join("master.stderr")).unwrap_or_default();
        Err(format!("{why}\n--- dovecot stderr ---\n{stderr}"))
    };
    // NOTE: the master binds all listeners before it writes master.pid, so once the pid file
    // names our child the ports are ours; probing earlier could greet us from another server
    // that holds the port we picked.
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return fail(
                &mut child,
                format!("dovecot exited during start-up: {status}"),
            );
        }
        let ours = fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            == Some(child.id());
        if ours {
            break;
        }
        if Instant::now() > deadline {
            return fail(&mut child, "no master.pid within 10s".to_owned());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for p in std::iter::once(port).chain(tls_port) {
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return fail(
                    &mut child,
                    format!("dovecot exited during start-up: {status}"),
                );
            }
            // The plain port must greet; the imaps port only has to accept (TLS comes first).
            let ready = if p == port {
                try_greeting(p)
            } else {
                TcpStream::connect_timeout(&addr(p), Duration::from_millis(500)).is_ok()
            };
            if ready {
                break;
            }
            if Instant::now() > deadline {
                return fail(&mut child, format!("port {p} not ready within 10s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(child)
}

/// Stops a master and every process it had started, and waits until they are gone.
fn shutdown(child: &mut Child) {
    if child.try_wait().ok().flatten().is_some() {
        // Already exited (and reaped: its pid may belong to someone else by now). Its services
        // notice the dead master and exit by themselves.
        return;
    }
    let descendants = descendants_of(child.id());
    // NOTE: an imap process serving a connected client outlives the master (until the client
    // disconnects), although shutdown_clients defaults to yes. So SIGTERM the imap processes
    // along with the master (the client reads `* BYE Server shutting down`); the master reaps
    // them. Don't SIGTERM the other services (log, anvil, auth, ...): the master restarts them
    // and then waits up to 6s. With SIGTERM, the master itself takes ~1s to exit.
    let imaps: Vec<u32> = descendants
        .iter()
        .filter(|p| p.name().as_deref() == Some("imap"))
        .map(|p| p.pid)
        .collect();
    signal("TERM", imaps.into_iter().chain([child.id()]));
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // Whatever is still left (should be nothing): SIGTERM, and SIGKILL after 2s.
    signal(
        "TERM",
        descendants.iter().filter(|p| p.alive()).map(|p| p.pid),
    );
    let deadline = Instant::now() + Duration::from_secs(2);
    for p in &descendants {
        while p.alive() {
            if Instant::now() > deadline {
                signal("KILL", [p.pid]);
                std::thread::sleep(Duration::from_millis(50));
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// A private CA and a certificate for `localhost` / `127.0.0.1` signed by it, in `dir`
/// (`server.pem`, `server.key`); returns the CA file. The SMTP harness uses it too.
pub fn make_certificates(dir: &Path) -> PathBuf {
    let ca_key = dir.join("ca.key");
    let ca = dir.join("ca.pem");
    let key = dir.join("server.key");
    let csr = dir.join("server.csr");
    let cert = dir.join("server.pem");
    let ext = dir.join("server.ext");
    // P-256 keys: as good as RSA for rustls/openssl and much faster to make.
    let newkey = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run_ok(
        Command::new("openssl")
            .args(["req", "-x509"])
            .args(newkey)
            .args(["-days", "3650", "-subj", "/CN=mailintake test CA"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            .arg("-keyout")
            .arg(&ca_key)
            .arg("-out")
            .arg(&ca),
    );
    run_ok(
        Command::new("openssl")
            .arg("req")
            .args(newkey)
            .args(["-subj", "/CN=localhost"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr),
    );
    fs::write(
        &ext,
        "basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth\n\
         subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    let serial = format!("0x{}", random_hex());
    run_ok(
        Command::new("openssl")
            .args(["x509", "-req", "-days", "3650", "-set_serial", &serial])
            .arg("-in")
            .arg(&csr)
            .arg("-CA")
            .arg(&ca)
            .arg("-CAkey")
            .arg(&ca_key)
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(&cert),
    );
    ca
}
