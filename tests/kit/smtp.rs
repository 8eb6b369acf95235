//! A real SMTP server for the notification tests: Debian's aiosmtpd, one per
//! [`SmtpServer::start`], on its own loopback port, writing what it receives into a Maildir
//! in its own temp folder; stopped on drop.
//!
//! Needs the Debian package `python3-aiosmtpd` (`tests/run` installs it) and, for STARTTLS,
//! `openssl` (the private CA and the `localhost` certificate are made as for Dovecot).
//!
//! NOTE: facts about aiosmtpd 1.4 (Debian 12) this harness relies on:
//! - It runs under `/usr/bin/python3`: a `python3` earlier on PATH (pyenv) lacks the module.
//! - `-n`: as root it would otherwise setuid to `nobody`, who cannot write the temp folder.
//! - `-c aiosmtpd.handlers.Mailbox DIR` writes one file per message into `DIR/new/`, adding
//!   `X-Peer`, `X-MailFrom` and `X-RcptTo` (the envelope recipients, comma-separated).
//! - `--tlscert/--tlskey` make it offer STARTTLS and require it before MAIL.
//! - It listens once it prints nothing more: readiness is its `220` greeting on the port.
//! - A stopped server (SIGKILL) frees the port at once (asyncio listens with SO_REUSEADDR),
//!   so [`SmtpServer::start_again`] can come back on the same port, as a real outage does.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mail_parser::MessageParser;

use super::dovecot::make_certificates;
use super::process::wait_until;

/// How long start-up may take.
const START: Duration = Duration::from_secs(10);

/// A running aiosmtpd.
pub struct SmtpServer {
    dir: tempfile::TempDir,
    port: u16,
    /// `Some`: STARTTLS with the certificate signed by this CA.
    ca_file: Option<PathBuf>,
    child: Option<Child>,
}

/// One message as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The envelope recipients (`X-RcptTo`).
    pub rcpt_to: Vec<String>,
    /// The decoded subject.
    pub subject: Option<String>,
    /// The decoded text body, line ends as `\n` (SMTP sends CRLF; a base64 body keeps it).
    pub body: String,
    /// Every header as `(name, raw value)`, in order.
    pub headers: Vec<(String, String)>,
}

impl Received {
    /// The raw values of every header called `name` (case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .collect()
    }
}

impl SmtpServer {
    /// Plain SMTP on a free loopback port.
    pub fn start() -> SmtpServer {
        SmtpServer::launch(false)
    }

    /// SMTP offering (and requiring) STARTTLS with a certificate for `localhost` and
    /// `127.0.0.1` signed by a private CA ([`SmtpServer::ca_file`]).
    pub fn start_tls() -> SmtpServer {
        SmtpServer::launch(true)
    }

    fn launch(tls: bool) -> SmtpServer {
        let dir = tempfile::tempdir().unwrap();
        let ca_file = tls.then(|| make_certificates(dir.path()));
        let mut server = SmtpServer {
            dir,
            port: 0,
            ca_file,
            child: None,
        };
        // NOTE: the picked port is free when picked; another process may take it before
        // aiosmtpd binds, so a start that does not come up tries another one.
        for _ in 0..5 {
            server.port = free_port();
            if server.try_start() {
                return server;
            }
        }
        panic!("aiosmtpd did not start: {}", server.log());
    }

    /// Starts it again on the same port after [`SmtpServer::stop`].
    pub fn start_again(&mut self) {
        assert!(self.try_start(), "aiosmtpd did not restart: {}", self.log());
    }

    fn try_start(&mut self) -> bool {
        let mut command = Command::new("/usr/bin/python3");
        command
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{}", self.port));
        if self.ca_file.is_some() {
            command
                .arg("--tlscert")
                .arg(self.dir.path().join("server.pem"))
                .arg("--tlskey")
                .arg(self.dir.path().join("server.key"));
        }
        let child = command
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(self.maildir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.path().join("aiosmtpd.log")).unwrap())
            .spawn()
            .expect("run /usr/bin/python3 -m aiosmtpd (Debian package python3-aiosmtpd)");
        self.child = Some(child);
        let port = self.port;
        let up = std::panic::catch_unwind(|| {
            wait_until(START, Duration::from_millis(20), || {
                greets(port).then_some(()).ok_or("no 220 greeting yet")
            })
        });
        if up.is_err() {
            self.stop();
        }
        up.is_ok()
    }

    /// Kills the server (an outage): connections are refused until it starts again.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The private CA that signed the STARTTLS certificate.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    fn maildir(&self) -> PathBuf {
        self.dir.path().join("maildir")
    }

    /// What the server wrote on stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("aiosmtpd.log")).unwrap_or_default()
    }

    /// Every message received so far, oldest first.
    pub fn received(&self) -> Vec<Received> {
        let new = self.maildir().join("new");
        let Ok(entries) = std::fs::read_dir(&new) else {
            return Vec::new();
        };
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
            .map(|e| {
                let e = e.unwrap();
                (e.metadata().unwrap().modified().unwrap(), e.path())
            })
            .collect();
        files.sort();
        files.iter().map(|(_, path)| parse(path)).collect()
    }

    /// Waits until `count` messages or more were received; returns them all.
    pub fn wait_for(&self, count: usize) -> Vec<Received> {
        wait_until(Duration::from_secs(30), Duration::from_millis(50), || {
            let received = self.received();
            if received.len() >= count {
                Ok(received)
            } else {
                Err(format!("{} of {count} messages received", received.len()))
            }
        })
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .unwrap()
        .port()
}

/// Whether an SMTP server answers on `port` with its greeting.
fn greets(port: u16) -> bool {
    let Ok(stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("220")
}

fn parse(path: &Path) -> Received {
    let raw = std::fs::read(path).unwrap();
    let message = MessageParser::default()
        .parse(&raw)
        .unwrap_or_else(|| panic!("{} does not parse", path.display()));
    let headers: Vec<(String, String)> = message
        .headers_raw()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let rcpt_to = message
        .header_raw("X-RcptTo")
        .map(|v| v.split(',').map(|a| a.trim().to_string()).collect())
        .unwrap_or_default();
    Received {
        rcpt_to,
        subject: message.subject().map(str::to_string),
        body: message
            .body_text(0)
            .map(|b| b.replace("\r\n", "\n"))
            .unwrap_or_default(),
        headers,
    }
}
