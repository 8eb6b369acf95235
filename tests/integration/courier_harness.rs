//! Proves the real-Courier test harness (tests/kit/courier.rs): start-up, the throw-away
//! user, APPEND, flags, folders, the facts its doc states (capabilities, namespace, CREATE
//! refusal), realtime IDLE on and off, and clean removal.

use std::path::PathBuf;

use crate::kit::courier::{Courier, CourierOptions};
use crate::kit::imap_server::ImapServer;

fn message(subject: &str) -> Vec<u8> {
    format!(
        "From: shop@example.test\r\nTo: orders@example.test\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@example.test>\r\n\r\nHello.\r\n"
    )
    .into_bytes()
}

#[test]
fn appended_messages_keep_their_flags_and_folders_are_listed_decoded() {
    let server = Courier::start(CourierOptions::default());
    assert_eq!(server.append("INBOX", &message("one")), 1);
    let flagged = server.append_with(
        "INBOX",
        &["\\Seen", "$MailintakeQuarantined"],
        Some("01-Jan-2020 10:00:00 +0000"),
        &message("two"),
    );
    assert_eq!(flagged, 2);
    server.append("INBOX.Обработано", &message("three"));

    let inbox = server.messages("INBOX");
    assert_eq!(inbox.iter().map(|m| m.uid).collect::<Vec<_>>(), [1, 2]);
    assert!(inbox[0].flags.is_empty(), "{inbox:?}");
    assert!(
        inbox[1].has_flag("\\Seen") && inbox[1].has_flag("$MailintakeQuarantined"),
        "{inbox:?}"
    );
    assert_eq!(server.messages("INBOX.Обработано").len(), 1);
    assert!(server.messages("INBOX.Nope").is_empty());
    assert_eq!(server.folders(), ["INBOX", "INBOX.Обработано"]);
}

#[test]
fn courier_has_an_inbox_namespace_no_move_and_refuses_top_level_create() {
    let server = Courier::start(CourierOptions::default());
    let mut imap = server.connect_as(server.user(), server.password());
    let capability = imap.ok("CAPABILITY").untagged.join("\n");
    assert!(
        capability.contains("IMAP4rev1")
            && capability.contains(" UIDPLUS")
            && capability.contains(" IDLE")
            && capability.contains(" NAMESPACE")
            && !capability.contains("MOVE"),
        "{capability}"
    );
    let namespace = imap.ok("NAMESPACE").untagged.join("\n");
    assert!(
        namespace.starts_with("* NAMESPACE ((\"INBOX.\" \".\"))"),
        "{namespace}"
    );
    let refused = imap.command("CREATE \"Processed\"");
    assert_eq!(
        (
            refused.status.as_str(),
            refused.line.split_once(' ').unwrap().1
        ),
        ("NO", "NO Invalid mailbox name.")
    );
    imap.ok("CREATE \"INBOX.Processed\"");
    imap.logout();
    assert_eq!(server.folders(), ["INBOX", "INBOX.Processed"]);
}

/// `+ entering ENHANCED idle mode` is what a client can tell realtime IDLE by.
fn idle_continuation(options: CourierOptions) -> String {
    let server = Courier::start(options);
    let mut imap = server.connect_as(server.user(), server.password());
    imap.ok("SELECT INBOX");
    imap.write_line("a9 IDLE");
    let continuation = imap.read_line().expect("IDLE continuation");
    imap.write_line("DONE");
    assert_eq!(imap.read_line().as_deref(), Some("a9 OK IDLE completed"));
    imap.logout();
    continuation
}

#[test]
fn enhanced_idle_is_an_option() {
    assert_eq!(
        idle_continuation(CourierOptions {
            enhanced_idle: true
        }),
        "+ entering ENHANCED idle mode"
    );
    assert_eq!(
        idle_continuation(CourierOptions {
            enhanced_idle: false
        }),
        "+ entering idle mode"
    );
}

#[test]
fn enhanced_idle_reports_mail_appended_by_another_client() {
    let server = Courier::start(CourierOptions::default());
    let mut imap = server.connect_as(server.user(), server.password());
    imap.ok("SELECT INBOX");
    imap.write_line("a9 IDLE");
    assert!(imap.read_line().unwrap().starts_with('+'));
    server.append("INBOX", &message("pushed"));
    // The harness's client reads with a 10 s timeout: Courier's polling IDLE (60 s) would
    // end this read with `None`.
    assert_eq!(imap.read_line().as_deref(), Some("* 1 EXISTS"));
    imap.write_line("DONE");
}

#[test]
fn stopping_removes_the_user_its_processes_and_the_folder() {
    let mut server = Courier::start(CourierOptions::default());
    let user = server.user().to_owned();
    let dir: PathBuf = server.dir().to_owned();
    // A session with realtime IDLE leaves gam_server running as the user.
    let mut imap = server.connect_as(&user, server.password());
    imap.ok("SELECT INBOX");
    imap.write_line("a9 IDLE");
    assert!(imap.read_line().unwrap().starts_with('+'));
    server.stop();
    let port = server.port();
    drop(server);
    let id = std::process::Command::new("id")
        .arg(&user)
        .output()
        .unwrap();
    assert!(!id.status.success(), "user {user} still exists");
    assert!(!dir.exists(), "{} still exists", dir.display());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still accepts connections"
    );
}
