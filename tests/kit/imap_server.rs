//! What the tests' real IMAP servers (Dovecot in [`super::dovecot`], Courier in
//! [`super::courier`]) have in common, written once: the [`ImapServer`] trait, a minimal
//! blocking IMAP client ([`Imap`]) that appends messages and lists messages with flags and
//! folders over the wire, and the process-tree helpers that stop a server with all its
//! children.
//!
//! Blocking std code only; shared with `benches/imap.rs` through `#[path]`.

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// How long one read from a server may take, and how long start-up and stop may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// An IMAP server a test started: where it listens and what it logged. The default methods
/// go over IMAP, so they see what any client (mailintake included) sees.
pub trait ImapServer {
    /// The plain-IMAP loopback port.
    fn port(&self) -> u16;

    /// The server's log so far, for assertion messages.
    fn server_log(&self) -> String;

    /// A raw connection to the plain port, greeting already read.
    fn connect(&self) -> Imap {
        Imap::connect(self.port())
    }

    /// A raw connection to the plain port, logged in.
    fn connect_as(&self, user: &str, password: &str) -> Imap {
        let mut imap = self.connect();
        imap.login(user, password);
        imap
    }

    /// APPENDs `message` to `mailbox` (created if missing) with `flags` and an optional
    /// internal date such as `"01-Jan-2020 10:00:00 +0000"`; returns its UID.
    fn append_as(
        &self,
        (user, password): (&str, &str),
        mailbox: &str,
        flags: &[&str],
        internal_date: Option<&str>,
        message: &[u8],
    ) -> u32 {
        let mut imap = self.connect_as(user, password);
        imap.create_if_missing(mailbox);
        let uid = imap.append(mailbox, flags, internal_date, message).1;
        imap.logout();
        uid
    }

    /// UIDs and flags of the messages in `mailbox`, sorted by UID, as LIST/EXAMINE/FETCH
    /// show them; empty if the mailbox does not exist.
    fn messages_as(&self, (user, password): (&str, &str), mailbox: &str) -> Vec<MailboxMessage> {
        let mut imap = self.connect_as(user, password);
        let messages = imap.messages(mailbox);
        imap.logout();
        messages
    }

    /// Every folder LIST shows (`LIST "" "*"`), decoded from modified UTF-7, sorted.
    fn folders_as(&self, (user, password): (&str, &str)) -> Vec<String> {
        let mut imap = self.connect_as(user, password);
        let folders = imap.folders();
        imap.logout();
        folders
    }
}

/// Free loopback ports: all bound at once (so they differ), then released for the server.
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: [TcpListener; N] = std::array::from_fn(|_| {
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0")
    });
    listeners.map(|l| l.local_addr().unwrap().port())
}

/// One message as the server reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxMessage {
    pub uid: u32,
    /// System flags and keywords as the server prints them, e.g. `\Seen`,
    /// `$MailintakeQuarantined` (the session-bound `\Recent` is left out).
    pub flags: Vec<String>,
}

impl MailboxMessage {
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f.eq_ignore_ascii_case(flag))
    }

    /// How many of `messages` lack `\Seen` (were not acknowledged).
    pub fn unseen(messages: &[MailboxMessage]) -> usize {
        messages.iter().filter(|m| !m.has_flag("\\Seen")).count()
    }
}

pub fn check_traversable(dir: &Path) {
    for ancestor in dir.ancestors() {
        let mode = fs::metadata(ancestor).unwrap().mode();
        assert!(
            mode & 0o001 != 0,
            "{} is not world-traversable; the server's users cannot reach the temp folder (set TMPDIR)",
            ancestor.display()
        );
    }
}

pub fn addr(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

pub fn try_greeting(port: u16) -> bool {
    let Ok(stream) = TcpStream::connect_timeout(&addr(port), Duration::from_millis(500)) else {
        return false;
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut line = String::new();
    let ok = BufReader::new(&stream).read_line(&mut line).is_ok() && line.starts_with("* OK");
    let _ = (&stream).write_all(b"x LOGOUT\r\n");
    ok
}

pub fn signal(name: &str, pids: impl IntoIterator<Item = u32>) {
    let pids: Vec<String> = pids.into_iter().map(|p| p.to_string()).collect();
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .args(&pids)
        .stderr(Stdio::null())
        .status();
}

/// A process, identified by pid and start time (so a reused pid is not mistaken for it).
pub struct Proc {
    pub pid: u32,
    start: u64,
}

/// (state, ppid, start time) from /proc/PID/stat.
pub fn proc_stat(pid: u32) -> Option<(char, u32, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ppid ..." — comm may contain spaces, so split after the last ')'.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let ppid = fields.get(1)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?; // field 22 of stat
    Some((state, ppid, start))
}

impl Proc {
    /// Running (not a zombie) and still the same process.
    pub fn alive(&self) -> bool {
        matches!(proc_stat(self.pid), Some((state, _, start))
            if start == self.start && state != 'Z' && state != 'X')
    }

    pub fn name(&self) -> Option<String> {
        fs::read_to_string(format!("/proc/{}/comm", self.pid))
            .ok()
            .map(|s| s.trim().to_owned())
    }
}

pub fn descendants_of(root: u32) -> Vec<Proc> {
    let mut all = Vec::new();
    if let Ok(entries) = fs::read_dir("/proc") {
        for entry in entries.flatten() {
            if let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
                && let Some((_, ppid, start)) = proc_stat(pid)
            {
                all.push((Proc { pid, start }, ppid));
            }
        }
    }
    let mut parents = vec![root];
    let mut found = Vec::new();
    while let Some(parent) = parents.pop() {
        let (children, rest): (Vec<_>, Vec<_>) = all.into_iter().partition(|(_, pp)| *pp == parent);
        all = rest;
        for (child, _) in children {
            parents.push(child.pid);
            found.push(child);
        }
    }
    found
}

/// 16 random bytes as hex (certificate serials, user names).
pub fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("read /dev/urandom");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn run_ok(cmd: &mut Command) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The tagged end of an IMAP command.
#[derive(Debug, Clone)]
pub struct ImapReply {
    /// Untagged (`* ...`) lines, CRLF stripped; literals are inlined (lossy UTF-8).
    pub untagged: Vec<String>,
    /// `OK`, `NO` or `BAD`.
    pub status: String,
    /// The whole tagged line, CRLF stripped.
    pub line: String,
}

impl ImapReply {
    pub fn is_ok(&self) -> bool {
        self.status == "OK"
    }
}

/// A minimal blocking IMAP client over plain TCP, for setting up and inspecting mailboxes.
pub struct Imap {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    next_tag: u32,
    /// The server's greeting line.
    pub greeting: String,
}

impl Imap {
    pub fn connect(port: u16) -> Imap {
        let stream = TcpStream::connect(addr(port))
            .unwrap_or_else(|e| panic!("connect to the IMAP server on 127.0.0.1:{port}: {e}"));
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        let writer = stream.try_clone().unwrap();
        let mut imap = Imap {
            reader: BufReader::new(stream),
            writer,
            next_tag: 1,
            greeting: String::new(),
        };
        imap.greeting = imap.read_response();
        assert!(
            imap.greeting.starts_with("* OK"),
            "unexpected greeting: {:?}",
            imap.greeting
        );
        imap
    }

    /// Sends `TAG command` and reads up to its tagged reply.
    pub fn command(&mut self, command: &str) -> ImapReply {
        let tag = self.send(command);
        self.finish(&tag)
    }

    /// Like [`Imap::command`], panicking unless the reply is OK.
    pub fn ok(&mut self, command: &str) -> ImapReply {
        let reply = self.command(command);
        assert!(reply.is_ok(), "IMAP {command:?} failed: {}", reply.line);
        reply
    }

    pub fn login(&mut self, user: &str, password: &str) {
        let reply = self.command(&format!("LOGIN {} {}", quote(user), quote(password)));
        assert!(
            reply.is_ok(),
            "IMAP LOGIN as {user:?} failed: {}",
            reply.line
        );
    }

    /// CREATE, ignoring `NO [ALREADYEXISTS]` (and INBOX, which always exists).
    pub fn create_if_missing(&mut self, mailbox: &str) {
        if mailbox.eq_ignore_ascii_case("INBOX") {
            return;
        }
        let reply = self.command(&format!("CREATE {}", mailbox_name(mailbox)));
        assert!(
            reply.is_ok() || reply.line.contains("[ALREADYEXISTS]"),
            "IMAP CREATE {mailbox:?} failed: {}",
            reply.line
        );
    }

    /// SELECT; returns the untagged lines (EXISTS, UIDVALIDITY, ...).
    pub fn select(&mut self, mailbox: &str) -> ImapReply {
        self.ok(&format!("SELECT {}", mailbox_name(mailbox)))
    }

    /// UIDVALIDITY reported by SELECT.
    pub fn select_uidvalidity(&mut self, mailbox: &str) -> u32 {
        let reply = self.select(mailbox);
        reply
            .untagged
            .iter()
            .find_map(|l| {
                let rest = l.split("[UIDVALIDITY ").nth(1)?;
                rest.split(']').next()?.trim().parse().ok()
            })
            .unwrap_or_else(|| panic!("SELECT reported no UIDVALIDITY: {:?}", reply.untagged))
    }

    /// APPEND with a synchronizing literal; returns (UIDVALIDITY, UID) from `[APPENDUID]`.
    pub fn append(
        &mut self,
        mailbox: &str,
        flags: &[&str],
        internal_date: Option<&str>,
        message: &[u8],
    ) -> (u32, u32) {
        let mut command = format!("APPEND {}", mailbox_name(mailbox));
        if !flags.is_empty() {
            let _ = write!(command, " ({})", flags.join(" "));
        }
        if let Some(date) = internal_date {
            let _ = write!(command, " {}", quote(date));
        }
        let _ = write!(command, " {{{}}}", message.len());
        let tag = self.send(&command);
        let line = self.read_response();
        if !line.starts_with('+') {
            panic!("IMAP APPEND to {mailbox:?} refused: {line}");
        }
        self.writer.write_all(message).unwrap();
        self.writer.write_all(b"\r\n").unwrap();
        let reply = self.finish(&tag);
        assert!(
            reply.is_ok(),
            "IMAP APPEND to {mailbox:?} failed: {}",
            reply.line
        );
        let code = reply
            .line
            .split("[APPENDUID ")
            .nth(1)
            .and_then(|r| r.split(']').next())
            .unwrap_or_else(|| panic!("APPEND reply without APPENDUID: {}", reply.line));
        let mut numbers = code.split_whitespace().map(|n| n.parse::<u32>().unwrap());
        (numbers.next().unwrap(), numbers.next().unwrap())
    }

    /// Sends one raw line (CRLF added), e.g. `DONE` to end an IDLE.
    pub fn write_line(&mut self, line: &str) {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
    }

    /// The next response line (literals inlined); `None` once the server has closed the
    /// connection (or on a read error / the 10s timeout).
    pub fn read_line(&mut self) -> Option<String> {
        let mut raw = Vec::new();
        match self.reader.read_until(b'\n', &mut raw) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(
                String::from_utf8_lossy(&raw)
                    .trim_end_matches(['\r', '\n'])
                    .to_owned(),
            ),
        }
    }

    /// UIDs and flags of the messages in `mailbox` (EXAMINE, so nothing changes), sorted by
    /// UID; empty if the mailbox does not exist.
    pub fn messages(&mut self, mailbox: &str) -> Vec<MailboxMessage> {
        let examine = self.command(&format!("EXAMINE {}", mailbox_name(mailbox)));
        if !examine.is_ok() {
            // NOTE: servers word a missing mailbox differently (Dovecot `NO [NONEXISTENT]`,
            // Courier `NO Mailbox does not exist, or must be subscribed to.`): check LIST.
            let listed = self.folders().iter().any(|f| f == mailbox);
            assert!(!listed, "EXAMINE {mailbox:?} failed: {}", examine.line);
            return Vec::new();
        }
        let exists = examine.untagged.iter().any(|l| {
            l.strip_prefix("* ")
                .and_then(|r| r.strip_suffix(" EXISTS"))
                .is_some_and(|n| n != "0")
        });
        let mut messages = Vec::new();
        if exists {
            let reply = self.ok("UID FETCH 1:* (UID FLAGS)");
            messages = reply.untagged.iter().filter_map(|l| fetched(l)).collect();
        }
        self.ok("CLOSE");
        messages.sort_by_key(|m| m.uid);
        messages
    }

    /// Every folder `LIST "" "*"` shows, decoded from modified UTF-7, sorted; `INBOX` included.
    pub fn folders(&mut self) -> Vec<String> {
        let reply = self.ok("LIST \"\" \"*\"");
        let mut folders: Vec<String> = reply
            .untagged
            .iter()
            .filter_map(|l| l.strip_prefix("* LIST "))
            .map(|l| {
                // `(\Flags) "delim" name`: the name follows the delimiter (quoted or NIL).
                let after_flags = &l[l.find(')').expect("LIST flags") + 1..];
                let name = after_flags
                    .trim_start()
                    .split_once(' ')
                    .expect("LIST delimiter")
                    .1;
                from_modified_utf7(&unquote(name))
            })
            .collect();
        folders.sort();
        folders
    }

    pub fn logout(&mut self) {
        let _ = self.command("LOGOUT");
    }

    fn send(&mut self, command: &str) -> String {
        let tag = format!("a{}", self.next_tag);
        self.next_tag += 1;
        self.writer
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .unwrap();
        tag
    }

    fn finish(&mut self, tag: &str) -> ImapReply {
        let mut untagged = Vec::new();
        loop {
            let line = self.read_response();
            if let Some(rest) = line.strip_prefix(tag).and_then(|r| r.strip_prefix(' ')) {
                let status = rest.split(' ').next().unwrap_or("").to_ascii_uppercase();
                return ImapReply {
                    untagged,
                    status,
                    line,
                };
            }
            untagged.push(line);
        }
    }

    /// One response line, with any `{N}` literals read and inlined.
    fn read_response(&mut self) -> String {
        let mut out = String::new();
        loop {
            let mut raw = Vec::new();
            let n = self.reader.read_until(b'\n', &mut raw).unwrap();
            assert!(
                n > 0,
                "the IMAP server closed the connection (after {out:?})"
            );
            let line = String::from_utf8_lossy(&raw);
            let line = line.trim_end_matches(['\r', '\n']);
            out.push_str(line);
            let literal = line
                .strip_suffix('}')
                .and_then(|l| l.rsplit_once('{'))
                .and_then(|(_, n)| n.trim_end_matches('+').parse::<usize>().ok());
            match literal {
                Some(len) => {
                    let mut bytes = vec![0; len];
                    self.reader.read_exact(&mut bytes).unwrap();
                    out.push_str("\r\n");
                    out.push_str(&String::from_utf8_lossy(&bytes));
                }
                None => return out,
            }
        }
    }
}

/// An IMAP quoted string.
pub fn quote(s: &str) -> String {
    assert!(!s.contains(['\r', '\n']), "cannot quote {s:?} for IMAP");
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A mailbox name as IMAP wants it: modified UTF-7 (RFC 3501 5.1.3), quoted.
pub fn mailbox_name(name: &str) -> String {
    quote(&to_modified_utf7(name))
}

pub fn to_modified_utf7(name: &str) -> String {
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";
    let mut out = String::new();
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            let chars = chunk.len() + 1;
            for i in 0..chars {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out.push('-');
        pending.clear();
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// `* N FETCH (UID u FLAGS (...))` (either order) as a message; `\Recent` left out.
fn fetched(line: &str) -> Option<MailboxMessage> {
    let body = line.split_once(" FETCH (")?.1;
    let uid = body
        .split_once("UID ")?
        .1
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    let flags = body.split_once("FLAGS (")?.1.split_once(')')?.0;
    let flags = flags
        .split_whitespace()
        .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
        .map(str::to_owned)
        .collect();
    Some(MailboxMessage { uid, flags })
}

/// A quoted string's content, or an atom as it is.
fn unquote(s: &str) -> String {
    match s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
        None => s.to_owned(),
    }
}

/// A mailbox name from the wire: modified UTF-7 (RFC 3501 5.1.3) decoded to UTF-8.
pub fn from_modified_utf7(name: &str) -> String {
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";
    let mut out = String::new();
    let mut rest = name;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let (encoded, after) = rest[at + 1..]
            .split_once('-')
            .unwrap_or_else(|| panic!("unterminated &-sequence in {name:?}"));
        if encoded.is_empty() {
            out.push('&');
        } else {
            let mut bits = 0u32;
            let mut nbits = 0;
            let mut bytes = Vec::new();
            for c in encoded.bytes() {
                let v = B64
                    .iter()
                    .position(|&b| b == c)
                    .unwrap_or_else(|| panic!("bad modified UTF-7 in {name:?}"));
                bits = (bits << 6) | v as u32;
                nbits += 6;
                if nbits >= 8 {
                    nbits -= 8;
                    bytes.push((bits >> nbits) as u8);
                    bits &= (1 << nbits) - 1;
                }
            }
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|p| u16::from_be_bytes([p[0], p[1]]))
                .collect();
            out.push_str(&String::from_utf16(&units).expect("UTF-16 in modified UTF-7"));
        }
        rest = after;
    }
    out.push_str(rest);
    out
}
