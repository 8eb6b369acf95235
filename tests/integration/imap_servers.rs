//! IMAP collectors on servers unlike Dovecot's defaults, played by a Dovecot configured to
//! behave like them: Courier's `INBOX.` namespace (where `CREATE "Processed"` is refused), a
//! `/` delimiter, no MOVE, no UIDPLUS, no IDLE, a CREATE refused outright.

use serde_json::Value;

use crate::imap::{ImapCollector, PASSWORD, USER, flags_of, sandbox_for};
use crate::kit::dovecot::{Dovecot, DovecotOptions};
use crate::kit::mail::order_message;
use crate::kit::sandbox::{Sandbox, counts, sample};

/// Courier IMAP 5.0's capabilities as far as a collector cares: UIDPLUS and IDLE, no MOVE.
const COURIER_CAPABILITY: &str = "IMAP4rev1 UIDPLUS CHILDREN NAMESPACE IDLE ACL LITERAL+";

fn server(options: DovecotOptions) -> Dovecot {
    let server = Dovecot::start(options);
    server.add_user(USER, PASSWORD);
    server
}

/// Folders under `INBOX.` and no MOVE, as on Courier.
fn courier_like() -> Dovecot {
    server(DovecotOptions {
        namespace: Some(("INBOX.", '.')),
        capability: Some(COURIER_CAPABILITY),
        ..DovecotOptions::default()
    })
}

fn uids(server: &Dovecot, mailbox: &str) -> Vec<u32> {
    server
        .messages(USER, mailbox)
        .iter()
        .map(|m| m.uid)
        .collect()
}

/// Another client's message in INBOX, marked `\Deleted` but not expunged: only a bare
/// EXPUNGE would remove it. Returns its UID.
fn append_marked_deleted(server: &Dovecot) -> u32 {
    let reply = sample("21-reply-question.eml");
    server.append_with(USER, PASSWORD, "INBOX", &["\\Deleted"], None, &reply)
}

/// The one row of `collectors status --json`.
fn status(sandbox: &Sandbox) -> Value {
    sandbox.json(&["collectors", "status", "--json"])[0].clone()
}

#[test]
fn on_a_courier_namespace_processed_means_inbox_processed_moved_by_copy_and_uid_expunge() {
    let server = courier_like();
    let order = sample("01-seed-order.eml");
    let lead = sample("02-lead-octet-stream.eml");
    server.append(USER, PASSWORD, "INBOX", &order);
    server.append(USER, PASSWORD, "INBOX", &lead);
    server.append(USER, PASSWORD, "INBOX", &sample("26-truncated-json.eml"));
    let theirs = append_marked_deleted(&server);
    let mut collector = ImapCollector::new("shop", server.port());
    collector.after =
        "action = \"move\"\nmove-to = \"Processed\"\nquarantine-move-to = \"Quarantine\"";
    let sandbox = sandbox_for(&[collector]);

    // The probe says where things go before anything is created.
    let probe = sandbox.json(&["collectors", "probe", "shop", "--json"]);
    assert_eq!(
        probe["namespace"],
        r#"* NAMESPACE (("INBOX." ".")) NIL NIL"#
    );
    assert_eq!(
        (&probe["personal_prefix"], &probe["delimiter"]),
        (&"INBOX.".into(), &".".into())
    );
    assert_eq!(probe["features"]["move"], false);
    let folders: Vec<(&str, &str, &str)> = probe["folders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["role"].as_str().unwrap(),
                f["server_name"].as_str().unwrap(),
                f["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        folders,
        [
            ("mailbox", "INBOX", "exists"),
            ("move-to", "INBOX.Processed", "will be created"),
            ("quarantine-move-to", "INBOX.Quarantine", "will be created"),
        ]
    );
    assert_eq!(
        probe["acknowledge"],
        "UID COPY, then \\Deleted and UID EXPUNGE of exactly those UIDs"
    );
    assert_eq!(
        (&probe["mode"], &probe["usable"]),
        (&"poll".into(), &true.into())
    );
    assert!(
        server.messages(USER, "INBOX.Processed").is_empty(),
        "the probe created nothing"
    );

    assert_eq!(counts(&sandbox.collect()), [4, 2, 1, 1, 0]);
    assert_eq!(
        uids(&server, "INBOX"),
        [theirs],
        "exactly our UIDs were expunged"
    );
    assert!(flags_of(&server, "INBOX", theirs).contains(&"\\Deleted".to_string()));
    assert_eq!(server.messages(USER, "INBOX.Processed").len(), 2);
    assert_eq!(server.messages(USER, "INBOX.Quarantine").len(), 1);
    assert_eq!(sandbox.records().len(), 2);
    let row = status(&sandbox);
    assert_eq!(
        (&row["mode"], &row["fallbacks"]),
        (&"poll".into(), &Value::Array(vec![]))
    );
}

#[test]
fn a_slash_delimiter_and_a_cyrillic_folder_name_resolve_and_go_in_modified_utf7() {
    let server = server(DovecotOptions {
        namespace: Some(("", '/')),
        ..DovecotOptions::default()
    });
    server.append(USER, PASSWORD, "INBOX", &order_message(1, "7709745454", 1));
    server.append(USER, PASSWORD, "INBOX", &order_message(2, "7709745454", 2));
    let mut collector = ImapCollector::new("shop", server.port());
    collector.after = "action = \"move\"\nmove-to = \"Архив/Обработано\"";
    let sandbox = sandbox_for(&[collector]);

    let probe = sandbox.run(&["collectors", "probe", "shop"]);
    let text = String::from_utf8_lossy(&probe.stdout);
    assert!(
        probe.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    assert!(
        text.contains(
            "move-to:        Архив/Обработано -> \"Архив/Обработано\", sent as \"&BBAEQARFBDgEMg-/&BB4EMQRABDAEMQQ+BEIEMAQ9BD4-\": will be created"
        ),
        "{text}"
    );
    assert!(text.contains("prefix \"\", delimiter \"/\""), "{text}");
    assert!(text.contains("stored mail:    UID MOVE"), "{text}");

    assert_eq!(counts(&sandbox.collect()), [2, 2, 0, 0, 0]);
    assert!(server.messages(USER, "INBOX").is_empty());
    // doveadm names folders in UTF-8: this is the folder a mail client shows.
    assert_eq!(server.messages(USER, "Архив/Обработано").len(), 2);
    let listed = server.doveadm(&["mailbox", "list", "-u", USER]);
    assert!(listed.lines().any(|l| l == "Архив/Обработано"), "{listed}");
}

#[test]
fn without_uidplus_nothing_is_expunged_processed_mail_is_flagged_and_status_says_so() {
    let server = server(DovecotOptions {
        capability: Some("IMAP4rev1 LITERAL+ NAMESPACE IDLE"),
        ..DovecotOptions::default()
    });
    let order = server.append(USER, PASSWORD, "INBOX", &order_message(1, "7709745454", 1));
    let broken = server.append(USER, PASSWORD, "INBOX", &sample("26-truncated-json.eml"));
    let theirs = append_marked_deleted(&server);
    let mut collector = ImapCollector::new("shop", server.port());
    collector.after = "action = \"delete\"\nquarantine-move-to = \"Quarantine\"";
    let sandbox = sandbox_for(&[collector]);

    let out = sandbox.run(&["collect", "--json"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let fallback = "no UIDPLUS on server: action = \"delete\", quarantine-move-to (COPY) mark messages \\Seen and $MailintakeProcessed instead of expunging them";
    assert_eq!(
        log.matches(fallback).count(),
        1,
        "said once in the log: {log}"
    );

    assert_eq!(
        uids(&server, "INBOX"),
        [order, broken, theirs],
        "nothing expunged"
    );
    for uid in [order, broken] {
        let flags = flags_of(&server, "INBOX", uid);
        assert!(
            flags.contains(&"\\Seen".to_string())
                && flags.contains(&"$MailintakeProcessed".to_string())
                && !flags.contains(&"\\Deleted".to_string()),
            "{flags:?}"
        );
    }
    assert_eq!(flags_of(&server, "INBOX", theirs), ["\\Deleted"]);
    assert_eq!(server.messages(USER, "Quarantine").len(), 1, "copied there");

    let row = status(&sandbox);
    let fallbacks = row["fallbacks"].as_array().unwrap();
    assert_eq!(fallbacks.len(), 1, "{row}");
    assert!(
        fallbacks[0].as_str().unwrap().starts_with(fallback),
        "{row}"
    );
    let table = sandbox.run(&["collectors", "status"]);
    assert!(
        String::from_utf8_lossy(&table.stdout).contains(&format!("shop: {fallback}")),
        "{}",
        String::from_utf8_lossy(&table.stdout)
    );

    // A second pass finds nothing new and flags nothing again.
    assert_eq!(counts(&sandbox.collect()), [0, 0, 0, 0, 0]);
    assert_eq!(uids(&server, "INBOX"), [order, broken, theirs]);
}

#[test]
fn without_idle_mode_idle_falls_back_to_the_schedule_and_status_shows_the_mode_in_use() {
    let server = server(DovecotOptions {
        capability: Some("IMAP4rev1 LITERAL+ NAMESPACE UIDPLUS MOVE"),
        ..DovecotOptions::default()
    });
    server.append(USER, PASSWORD, "INBOX", &order_message(1, "7709745454", 1));
    let mut collector = ImapCollector::new("shop", server.port());
    collector.keys = "mode = \"idle\"";
    let sandbox = sandbox_for(&[collector]);
    assert_eq!(
        status(&sandbox)["mode"],
        "idle",
        "as configured until a pass looks"
    );

    let probe = sandbox.json(&["collectors", "probe", "shop", "--json"]);
    assert_eq!(probe["mode"], "schedule (no IDLE on server)");

    let daemon = sandbox.spawn_daemon();
    sandbox.wait_for_records(1, std::time::Duration::from_secs(20));
    crate::kit::process::wait_until(
        std::time::Duration::from_secs(10),
        std::time::Duration::from_millis(50),
        || {
            let log = std::fs::read_to_string(sandbox.path("daemon.log")).unwrap();
            match status(&sandbox)["mode"].as_str() {
                Some("schedule (no IDLE on server)") if log.contains("does not offer IDLE") => {
                    Ok(())
                }
                mode => Err(format!("mode {mode:?}, log: {log}")),
            }
        },
    );
    daemon.terminate();
    let table = sandbox.run(&["collectors", "status"]);
    assert!(
        String::from_utf8_lossy(&table.stdout).contains("shop: mode schedule (no IDLE on server)"),
        "{}",
        String::from_utf8_lossy(&table.stdout)
    );
}

#[test]
fn a_refused_create_fails_the_pass_with_the_servers_words_and_collect_json_keeps_the_counts() {
    let server = courier_like();
    for n in 1..=3 {
        server.append(USER, PASSWORD, "INBOX", &order_message(n, "7709745454", 1));
    }
    let mut collector = ImapCollector::new("shop", server.port());
    // Dovecot refuses a name that begins with `~` (resolved: `INBOX.~Archive`).
    collector.after = "action = \"move\"\nmove-to = \"~Archive\"";
    let sandbox = sandbox_for(&[collector]);
    let words = "NO [CANNOT] Invalid mailbox name: Begins with '~'";

    let out = sandbox.run(&["collect", "--json"]);
    assert_eq!(out.status.code(), Some(1), "the exit status says it failed");
    let reports: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reports.as_array().unwrap().len(), 1, "{reports}");
    assert_eq!(
        counts(&reports[0]),
        [3, 3, 0, 0, 0],
        "the committed batch is reported"
    );
    let error = reports[0]["error"].as_str().unwrap();
    assert!(
        error.contains("INBOX.~Archive") && error.contains(words),
        "{error}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains(words));
    assert_eq!(sandbox.records().len(), 3, "stored, exactly once");
    let inbox = server.messages(USER, "INBOX");
    assert_eq!(inbox.len(), 3, "left in place");
    assert!(inbox.iter().all(|m| !m.has_flag("\\Seen")));

    let row = status(&sandbox);
    assert!(row["last_error"].as_str().unwrap().contains(words), "{row}");
    assert_eq!(counts(&row["last_error_counts"]), [3, 3, 0, 0, 0], "{row}");
    assert_eq!(row["counts"], Value::Null, "no run succeeded yet");

    // The next pass knows them all: duplicates, and the same refusal.
    let out = sandbox.run(&["collect", "--json"]);
    let reports: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(counts(&reports[0]), [3, 0, 0, 0, 3]);
    assert!(reports[0]["error"].as_str().unwrap().contains(words));
    assert_eq!(sandbox.records().len(), 3);
}
