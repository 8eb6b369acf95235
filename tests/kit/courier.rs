//! A real Courier IMAP server for integration tests: one per [`Courier::start`], in its own
//! temp folder, on its own loopback port, with its own throw-away system user; stopped and
//! the user removed on drop (also when the test panics).
//!
//! Needs root, the Debian packages `courier-base` and `courier-authdaemon`, and Courier's
//! `imapd` unpacked (not installed) into `target/courier-imap/`; `tests/run` does all three.
//!
//! NOTE: facts about Courier-IMAP 5.0 (Debian 12: courier-imap 5.0.13, courier-authlib 0.71)
//! that this harness relies on:
//! - Debian's `courier-imap`, `cyrus-imapd` and `dovecot-imapd` conflict on `imap-server`:
//!   installing one removes the other. `courier-base` and `courier-authdaemon` don't conflict,
//!   so those are installed and `courier-imap` is only unpacked (`apt-get download` +
//!   `dpkg-deb -x`); its `imaplogin` and `imapd` run from there, with the settings of its
//!   `etc/courier/imapd` (sourced into the environment, as its init script does).
//! - No master process: `couriertcpd PORT imaplogin imapd Maildir` accepts connections and
//!   runs `imaplogin`, which asks `authdaemond` and then execs `imapd` as the user.
//! - `authdaemond` listens on a socket whose path is compiled in
//!   (`/run/courier/authdaemon/socket`), so each instance runs in a private mount namespace
//!   (`unshare --mount`) with that folder bind-mounted from its temp folder: parallel
//!   instances don't share (or fight over) one authdaemond, and nothing system-wide runs.
//! - authdaemond's only module here is `authpam`: logins are system users checked by PAM
//!   (service `imap`, which falls back to `/etc/pam.d/other` as the service file is not
//!   installed). So each instance creates a system user (`useradd`, password via `chpasswd`)
//!   whose home is in the temp folder, with a Maildir made by `maildirmake` in `~/Maildir`.
//! - CAPABILITY: `IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT THREAD=REFERENCES
//!   SORT QUOTA IDLE ACL ACL2=UNION ENABLE UTF8=ACCEPT`: no MOVE (COPY + `\Deleted` +
//!   `UID EXPUNGE` instead), no LITERAL+.
//! - NAMESPACE `(("INBOX." ".")) NIL (("#shared." ".")("shared." "."))`: every personal folder
//!   lives under `INBOX.`; `CREATE "Processed"` answers `NO Invalid mailbox name.`, while
//!   `CREATE "INBOX.Processed"` works. Non-ASCII names travel in modified UTF-7.
//! - APPEND answers `[APPENDUID <uidvalidity> <uid>]`; keywords (`$MailintakeQuarantined`)
//!   are kept (`IMAP_KEYWORDS=1`).
//! - IDLE: with `IMAP_ENHANCEDIDLE=1` (and FAM: this build links libfam, served by gamin's
//!   `gam_server`) IDLE answers `+ entering ENHANCED idle mode` and reports new mail within
//!   about a second. With `IMAP_ENHANCEDIDLE=0` (the package default) IDLE only re-checks
//!   the folder every `IMAP_IDLE_TIMEOUT` (60) seconds.
//! - `gam_server` is started by imapd as the user and detaches: it outlives imapd, so on stop
//!   every process of the throw-away user is ended before `userdel`.
//! - A login takes ~0.2 s (PAM); start-up well under a second.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::imap_server::{
    ImapServer, MailboxMessage, TIMEOUT, check_traversable, descendants_of, free_ports, proc_stat,
    random_hex, run_ok, signal, try_greeting,
};

/// Where `tests/run` unpacks Debian's courier-imap package (override: `COURIER_IMAP_DIR`).
pub fn unpacked_imapd() -> PathBuf {
    std::env::var_os("COURIER_IMAP_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/courier-imap"),
        PathBuf::from,
    )
}

/// authdaemond's socket folder, compiled into courier-authlib.
const AUTHDAEMON_DIR: &str = "/run/courier/authdaemon";
const AUTHDAEMOND: &str = "/usr/lib/courier/courier-authlib/authdaemond";
const COURIERTCPD: &str = "/usr/sbin/couriertcpd";
/// How many times start-up is retried when a picked port was taken meanwhile.
const START_ATTEMPTS: usize = 5;
/// The throw-away user's password.
const PASSWORD: &str = "courier-test-pass";

#[derive(Debug, Clone, Copy)]
pub struct CourierOptions {
    /// `IMAP_ENHANCEDIDLE=1`: IDLE reports new mail at once (FAM). false: Courier's default,
    /// an IDLE that re-checks every 60 s.
    pub enhanced_idle: bool,
}

impl Default for CourierOptions {
    fn default() -> Self {
        CourierOptions {
            enhanced_idle: true,
        }
    }
}

/// A running Courier. Stopped, its user removed and its temp folder deleted on drop.
pub struct Courier {
    child: Option<Child>,
    port: u16,
    log_file: PathBuf,
    // Dropped after `drop` has stopped the server: the user, then the folder its home is in.
    user: SystemUser,
    dir: tempfile::TempDir,
}

impl Courier {
    /// Starts a fresh server with a fresh user and waits until it greets. Panics with the log
    /// on failure.
    pub fn start(options: CourierOptions) -> Courier {
        let imapd = preflight();
        let dir = tempfile::Builder::new()
            .prefix("courier-harness-")
            .tempdir()
            .expect("create temp dir for courier");
        let base = dir.path().to_path_buf();
        // NOTE: imapd runs as the user, who must reach its home inside the temp folder.
        fs::set_permissions(&base, fs::Permissions::from_mode(0o755)).unwrap();
        check_traversable(&base);
        for sub in ["log", "authdaemon", "home"] {
            fs::create_dir_all(base.join(sub)).unwrap();
        }
        let user = SystemUser::create(&base.join("home"));
        fs::create_dir_all(AUTHDAEMON_DIR).expect("create the mount point for authdaemond");

        let log_file = base.join("log").join("courier.log");
        let mut failures = String::new();
        for attempt in 1..=START_ATTEMPTS {
            let [port] = free_ports();
            let _ = fs::remove_file(&log_file);
            let _ = fs::remove_file(base.join("authdaemon").join("socket"));
            match launch(&base, &imapd, port, options) {
                Ok(child) => {
                    return Courier {
                        child: Some(child),
                        port,
                        log_file,
                        user,
                        dir,
                    };
                }
                Err(why) => {
                    let log = fs::read_to_string(&log_file).unwrap_or_default();
                    failures.push_str(&format!("attempt {attempt}: {why}\n--- log ---\n{log}\n"));
                    if !log.contains("Address already in use") {
                        break;
                    }
                }
            }
        }
        panic!("courier did not start:\n{failures}");
    }

    /// The throw-away system user's login name.
    pub fn user(&self) -> &str {
        &self.user.name
    }

    /// The throw-away user's password.
    pub fn password(&self) -> &str {
        PASSWORD
    }

    fn login(&self) -> (&str, &str) {
        (self.user(), PASSWORD)
    }

    /// The temp folder (logs, the user's home with its Maildir).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// APPENDs `message` to `mailbox` (created if missing) as the user; returns its UID.
    pub fn append(&self, mailbox: &str, message: &[u8]) -> u32 {
        self.append_as(self.login(), mailbox, &[], None, message)
    }

    /// Like [`Courier::append`], with flags and an optional internal date such as
    /// `"01-Jan-2020 10:00:00 +0000"`.
    pub fn append_with(
        &self,
        mailbox: &str,
        flags: &[&str],
        internal_date: Option<&str>,
        message: &[u8],
    ) -> u32 {
        self.append_as(self.login(), mailbox, flags, internal_date, message)
    }

    /// UIDs and flags of the messages in `mailbox` (full name, e.g. `INBOX.Processed`).
    pub fn messages(&self, mailbox: &str) -> Vec<MailboxMessage> {
        self.messages_as(self.login(), mailbox)
    }

    /// Every folder of the user (full names, decoded: `INBOX`, `INBOX.Обработано`), sorted.
    pub fn folders(&self) -> Vec<String> {
        self.folders_as(self.login())
    }

    /// Stops the server and waits until all its processes are gone. Idempotent; also done
    /// on drop.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            shutdown(&mut child);
        }
        self.user.end_processes();
    }
}

impl ImapServer for Courier {
    fn port(&self) -> u16 {
        self.port
    }

    fn server_log(&self) -> String {
        fs::read_to_string(&self.log_file).unwrap_or_else(|e| format!("(no log: {e})"))
    }
}

impl Drop for Courier {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Checks what the harness needs; returns the folder courier-imap is unpacked in.
fn preflight() -> PathBuf {
    let euid = proc_stat_uid();
    assert_eq!(
        euid, 0,
        "the Courier harness needs root (it adds a system user and a mount namespace)"
    );
    for program in [COURIERTCPD, AUTHDAEMOND] {
        assert!(
            Path::new(program).exists(),
            "{program} not found: install courier-base and courier-authdaemon (tests/run does)"
        );
    }
    let imapd = unpacked_imapd();
    assert!(
        imapd.join("usr/bin/imapd").exists(),
        "courier-imap is not unpacked in {}: `bash tests/run` downloads and unpacks it",
        imapd.display()
    );
    imapd
}

fn proc_stat_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0)
}

/// The shell that runs inside the private mount namespace: authdaemond on the bind-mounted
/// socket folder, and couriertcpd in the environment of courier-imap's settings file. It
/// waits for couriertcpd and takes authdaemond down with it, so a failed start leaves
/// nothing behind. Its own variables are `HARNESS_*`: the settings file sets `PORT`,
/// `ADDRESS` and many more.
const START_SCRIPT: &str = r#"set -e
mount --bind "$HARNESS_BASE/authdaemon" /run/courier/authdaemon
/usr/lib/courier/courier-authlib/authdaemond &
auth=$!
set -a
. "$HARNESS_IMAPD/etc/courier/imapd"
IMAP_STARTTLS=NO
IMAP_ENHANCEDIDLE=$HARNESS_ENHANCED_IDLE
set +a
set +e
/usr/sbin/couriertcpd -address=127.0.0.1 -maxprocs=40 -maxperip=40 -nodnslookup \
  -noidentlookup "$HARNESS_PORT" "$HARNESS_IMAPD/usr/lib/courier/courier/imaplogin" "$HARNESS_IMAPD/usr/bin/imapd" \
  Maildir &
tcpd=$!
wait $tcpd
status=$?
kill $auth 2>/dev/null
wait
exit $status
"#;

/// Starts the server on `port` and waits until the port greets, or returns why not (then
/// every process it started is gone).
fn launch(base: &Path, imapd: &Path, port: u16, options: CourierOptions) -> Result<Child, String> {
    let log = fs::File::create(base.join("log").join("courier.log")).unwrap();
    let mut child = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(START_SCRIPT)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HARNESS_BASE", base)
        .env("HARNESS_IMAPD", imapd)
        .env("HARNESS_PORT", port.to_string())
        .env(
            "HARNESS_ENHANCED_IDLE",
            if options.enhanced_idle { "1" } else { "0" },
        )
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        // NOTE: authdaemond ends its workers with a signal to its whole process group: in
        // the test's group, that would kill the test runner too. So a group of its own.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run unshare: {e}"))?;
    let deadline = Instant::now() + TIMEOUT;
    let socket = base.join("authdaemon").join("socket");
    // NOTE: the port may greet before authdaemond listens; a login then fails with
    // "authdaemon: s_connect() failed". So wait for the socket, then for the greeting.
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Err(format!("courier exited during start-up: {status}"));
        }
        if socket.exists() && try_greeting(port) {
            return Ok(child);
        }
        if Instant::now() > deadline {
            shutdown(&mut child);
            return Err("no authdaemond socket and greeting within 10s".to_owned());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Ends the start script's processes (couriertcpd, authdaemond, imaplogin/imapd sessions)
/// and waits until they are gone.
fn shutdown(child: &mut Child) {
    if child.try_wait().ok().flatten().is_some() {
        return;
    }
    let descendants = descendants_of(child.id());
    // NOTE: the shell waits for couriertcpd; on SIGTERM couriertcpd exits, the shell ends
    // authdaemond and exits. imapd sessions are separate children: they get SIGTERM too.
    signal("TERM", descendants.iter().map(|p| p.pid));
    let deadline = Instant::now() + TIMEOUT;
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // NOTE: authdaemond takes over a second to exit after SIGTERM (it waits for its workers).
    let deadline = Instant::now() + TIMEOUT;
    for p in &descendants {
        while p.alive() {
            if Instant::now() > deadline {
                signal("KILL", [p.pid]);
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// A system user made for one server; its processes are ended and the user deleted on drop.
struct SystemUser {
    name: String,
    /// `None` if it could not be read (then no process is ended by uid).
    uid: Option<u32>,
}

impl SystemUser {
    /// A user `mitNNNN…` with home `parent/NAME` holding an empty `Maildir`.
    fn create(parent: &Path) -> SystemUser {
        let name = format!("mit{}", &random_hex()[..12]);
        let home = parent.join(&name);
        run_ok(
            Command::new("useradd")
                .args([
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    "--home-dir",
                ])
                .arg(&home)
                .arg(&name),
        );
        let id = Command::new("id").args(["-u", &name]).output().unwrap();
        let uid = String::from_utf8_lossy(&id.stdout).trim().parse().ok();
        let user = SystemUser { name, uid };
        // From here on, a panic removes the user again.
        assert!(
            uid.is_some_and(|uid| uid != 0),
            "no uid for the new user {}: {id:?}",
            user.name
        );
        let mut chpasswd = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .spawn()
            .expect("run chpasswd");
        std::io::Write::write_all(
            &mut chpasswd.stdin.take().unwrap(),
            format!("{}:{PASSWORD}\n", user.name).as_bytes(),
        )
        .unwrap();
        assert!(chpasswd.wait().unwrap().success(), "chpasswd failed");
        fs::create_dir_all(&home).unwrap();
        run_ok(Command::new("maildirmake").arg(home.join("Maildir")));
        run_ok(
            Command::new("chown")
                .arg("-R")
                .arg(format!("{0}:{0}", user.name))
                .arg(&home),
        );
        user
    }

    /// SIGKILLs every process running as this user (imapd sessions, the detached gam_server),
    /// by pid, and waits until they are gone.
    fn end_processes(&self) {
        // Never root's processes, whatever went wrong.
        let Some(uid) = self.uid.filter(|&uid| uid != 0) else {
            return;
        };
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let pids = pids_of_uid(uid);
            if pids.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "processes of {} survive SIGKILL: {pids:?}",
                self.name
            );
            signal("KILL", pids);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for SystemUser {
    fn drop(&mut self) {
        self.end_processes();
        // NOTE: --remove would also delete the home, but the temp folder does that.
        let status = Command::new("userdel")
            .arg(&self.name)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !status.is_ok_and(|s| s.success()) && !std::thread::panicking() {
            panic!("userdel {} failed", self.name);
        }
    }
}

/// Live (not zombie) processes whose real uid is `uid`.
fn pids_of_uid(uid: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let real_uid = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next()?.parse::<u32>().ok());
            real_uid == Some(uid) && !matches!(proc_stat(pid), Some(('Z' | 'X', _, _)) | None)
        })
        .collect()
}
