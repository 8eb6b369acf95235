//! Proves the real-Dovecot test harness (tests/kit/dovecot.rs): start-up, users, APPEND,
//! flags, UIDVALIDITY changes, TLS and parallel instances.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::kit::dovecot::{Dovecot, DovecotOptions};

const USER: &str = "orders@example.test";
const PASSWORD: &str = "s3cret \"quoted\" \\ pass";

fn message(subject: &str) -> Vec<u8> {
    format!(
        "From: shop@example.test\r\nTo: {USER}\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@example.test>\r\n\r\nHello.\r\n"
    )
    .into_bytes()
}

fn plain_server_with_user() -> Dovecot {
    let server = Dovecot::start(DovecotOptions::default());
    server.add_user(USER, PASSWORD);
    server
}

#[test]
fn appended_messages_get_consecutive_uids_and_stay_unseen() {
    let server = plain_server_with_user();
    assert_eq!(server.append(USER, PASSWORD, "INBOX", &message("one")), 1);
    assert_eq!(server.append(USER, PASSWORD, "INBOX", &message("two")), 2);

    let messages = server.messages(USER, "INBOX");
    assert_eq!(
        messages.iter().map(|m| m.uid).collect::<Vec<_>>(),
        [1, 2],
        "{messages:?}\n{}",
        server.log()
    );
    assert!(
        messages.iter().all(|m| !m.has_flag("\\Seen")),
        "{messages:?}"
    );
}

#[test]
fn append_creates_a_missing_mailbox_and_reuses_an_existing_one() {
    let server = plain_server_with_user();
    assert!(server.messages(USER, "Orders").is_empty());
    assert_eq!(server.append(USER, PASSWORD, "Orders", &message("a")), 1);
    assert_eq!(server.append(USER, PASSWORD, "Orders", &message("b")), 2);
    assert_eq!(server.messages(USER, "Orders").len(), 2);
    assert!(server.messages(USER, "INBOX").is_empty());
}

#[test]
fn non_ascii_mailbox_names_round_trip() {
    let server = plain_server_with_user();
    assert_eq!(
        server.append(USER, PASSWORD, "Bestellungen-Größe & Co", &message("x")),
        1
    );
    assert_eq!(server.messages(USER, "Bestellungen-Größe & Co").len(), 1);
}

#[test]
fn append_with_flags_and_internal_date_keeps_them() {
    let server = plain_server_with_user();
    let uid = server.append_with(
        USER,
        PASSWORD,
        "INBOX",
        &["\\Seen", "$MailintakeQuarantined"],
        Some("01-Jan-2020 10:00:00 +0000"),
        &message("flagged"),
    );
    let messages = server.messages(USER, "INBOX");
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].uid, uid);
    assert!(messages[0].has_flag("\\Seen"), "{messages:?}");
    assert!(
        messages[0].has_flag("$MailintakeQuarantined"),
        "{messages:?}"
    );

    let date = server.doveadm(&["fetch", "-u", USER, "date.received", "mailbox", "INBOX"]);
    assert!(date.contains("2020-01-01 10:00:00"), "{date}");
}

#[test]
fn messages_of_a_missing_mailbox_is_empty() {
    let server = plain_server_with_user();
    assert!(server.messages(USER, "Nope").is_empty());
}

#[test]
fn failed_logins_are_refused_at_once_without_slowing_later_logins() {
    let server = plain_server_with_user();
    let started = Instant::now();
    for (user, password) in [
        (USER, "wrong"),
        ("nobody@example.test", "x"),
        (USER, "again"),
    ] {
        let mut imap = server.connect();
        let reply = imap.command(&format!("LOGIN \"{user}\" \"{password}\""));
        assert_eq!(reply.status, "NO", "{}", reply.line);
        assert!(
            reply.line.contains("[AUTHENTICATIONFAILED]"),
            "{}",
            reply.line
        );
    }
    server.connect_as(USER, PASSWORD).logout();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "failed logins were delayed/penalised: {:?}\n{}",
        started.elapsed(),
        server.log()
    );
}

#[test]
fn users_added_while_running_can_log_in_at_once() {
    let server = plain_server_with_user();
    server.append(USER, PASSWORD, "INBOX", &message("first"));
    for i in 0..3 {
        let user = format!("late{i}@example.test");
        server.add_user(&user, "pw");
        assert_eq!(server.append(&user, "pw", "INBOX", &message("late")), 1);
    }
}

#[test]
fn set_uidvalidity_changes_what_select_reports() {
    let server = plain_server_with_user();
    server.append(USER, PASSWORD, "Orders", &message("one"));
    let before = server
        .connect_as(USER, PASSWORD)
        .select_uidvalidity("Orders");
    assert_eq!(server.uidvalidity(USER, "Orders"), before);

    let changed = before.wrapping_add(12345);
    server.set_uidvalidity(USER, "Orders", changed);
    assert_eq!(
        server
            .connect_as(USER, PASSWORD)
            .select_uidvalidity("Orders"),
        changed,
        "{}",
        server.log()
    );
    // Lowering it works too.
    server.set_uidvalidity(USER, "Orders", 7);
    assert_eq!(
        server
            .connect_as(USER, PASSWORD)
            .select_uidvalidity("Orders"),
        7
    );
    // The messages survive, and the next APPEND reports the new UIDVALIDITY.
    assert_eq!(server.messages(USER, "Orders").len(), 1);
    let mut imap = server.connect_as(USER, PASSWORD);
    let (validity, _) = imap.append("Orders", &[], None, &message("two"));
    assert_eq!(validity, 7);
}

#[test]
fn plain_server_offers_no_starttls() {
    let server = plain_server_with_user();
    assert_eq!(server.tls_port(), None);
    assert_eq!(server.ca_file(), None);
    let caps = server.connect().ok("CAPABILITY").untagged.join(" ");
    assert!(
        caps.contains("IMAP4rev1") && caps.contains("IDLE"),
        "{caps}"
    );
    assert!(!caps.contains("STARTTLS"), "{caps}");
}

#[test]
fn tls_server_verifies_against_its_ca_and_offers_starttls() {
    let server = Dovecot::start(DovecotOptions {
        tls: true,
        ..DovecotOptions::default()
    });
    server.add_user(USER, PASSWORD);
    let tls_port = server.tls_port().expect("imaps port");
    let ca = server.ca_file().expect("CA file");
    assert_ne!(tls_port, server.port());

    let out = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{tls_port}")])
        .arg("-CAfile")
        .arg(&ca)
        .args([
            "-verify_return_error",
            "-verify_hostname",
            "localhost",
            "-brief",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run openssl s_client");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}\n{}", server.log());
    assert!(text.contains("Verification: OK"), "{text}");
    // NOTE: s_client with a closed stdin may quit before the greeting arrives, so the
    // greeting over TLS is left to tests/imap.rs, which logs in over TLS for real.

    // The certificate also verifies for the IP address.
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{tls_port}")])
        .arg("-CAfile")
        .arg(&ca)
        .args(["-verify_return_error", "-verify_ip", "127.0.0.1", "-brief"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let caps = server.connect().ok("CAPABILITY").untagged.join(" ");
    assert!(caps.contains("STARTTLS"), "{caps}");
    // Plain LOGIN still works on the plain port, so the harness can APPEND.
    assert_eq!(server.append(USER, PASSWORD, "INBOX", &message("tls")), 1);
}

#[test]
fn two_servers_run_side_by_side_without_sharing_anything() {
    let mut a = plain_server_with_user();
    let b = Dovecot::start(DovecotOptions {
        tls: true,
        ..DovecotOptions::default()
    });
    b.add_user(USER, PASSWORD);
    assert_ne!(a.port(), b.port());

    a.append(USER, PASSWORD, "INBOX", &message("a1"));
    a.append(USER, PASSWORD, "INBOX", &message("a2"));
    b.append(USER, PASSWORD, "INBOX", &message("b1"));
    assert_eq!(a.messages(USER, "INBOX").len(), 2);
    assert_eq!(b.messages(USER, "INBOX").len(), 1);

    a.stop();
    a.stop(); // idempotent
    assert!(std::net::TcpStream::connect(("127.0.0.1", a.port())).is_err());
    assert_eq!(b.append(USER, PASSWORD, "INBOX", &message("b2")), 2);
}

#[test]
fn stop_disconnects_connected_clients_promptly_and_frees_the_port() {
    let mut server = plain_server_with_user();
    let port = server.port();
    let pid: u32 = std::fs::read_to_string(server.dir().join("run").join("master.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut client = server.connect_as(USER, PASSWORD);
    client.select("INBOX");

    let started = Instant::now();
    server.stop();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stop took {:?}",
        started.elapsed()
    );
    let last = std::iter::from_fn(|| client.read_line()).last();
    assert!(
        last.as_deref().is_none_or(|l| l.starts_with("* BYE")),
        "{last:?}"
    );
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn many_servers_start_in_parallel() {
    let handles: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                let server = Dovecot::start(DovecotOptions {
                    tls: i % 2 == 0,
                    ..DovecotOptions::default()
                });
                server.add_user(USER, PASSWORD);
                server.append(USER, PASSWORD, "INBOX", &message("p"))
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 1);
    }
}

/// What the IMAP bench's push floor relies on: a bare client in IDLE hears an APPEND from
/// another connection as `* N EXISTS`, and DONE ends the IDLE.
#[test]
fn idle_client_hears_an_append_as_exists() {
    let server = plain_server_with_user();
    let mut watcher = server.connect_as(USER, PASSWORD);
    watcher.select("INBOX");
    watcher.write_line("i1 IDLE");
    let continuation = watcher.read_line();
    assert!(
        continuation.as_deref().is_some_and(|l| l.starts_with('+')),
        "{continuation:?}"
    );
    server.append(USER, PASSWORD, "INBOX", &message("idle"));
    let exists = std::iter::from_fn(|| watcher.read_line()).find(|l| l.ends_with(" EXISTS"));
    assert_eq!(exists.as_deref(), Some("* 1 EXISTS"));
    watcher.write_line("DONE");
    assert!(std::iter::from_fn(|| watcher.read_line()).any(|l| l.starts_with("i1 OK")));
    watcher.logout();
}
