//! IMAP collectors against a real Courier-IMAP started by the tests (tests/kit/courier.rs):
//! a server whose personal folders all live under `INBOX.`, with no MOVE, and an IDLE that is
//! realtime only when enabled: folder names resolve into `INBOX.`, refusals carry Courier's
//! words, and an IDLE that only polls makes a `mode = "idle"` collector use its schedule.

use std::time::Duration;

use crate::kit::courier::{Courier, CourierOptions};
use crate::kit::imap_server::ImapServer;
use crate::kit::mail::order_message;
use serde_json::Value;

use crate::kit::sandbox::{Sandbox, counts, sample};

/// The mode `collectors status` shows when Courier's IDLE only polls.
const POLLING_MODE: &str = "schedule (IDLE on server only polls)";

fn courier() -> Courier {
    Courier::start(CourierOptions::default())
}

/// A sandbox with one IMAP collector `site` on the server's INBOX; `keys` go into the
/// collector, `after` into its `[collector.after]` table.
fn sandbox_on(server: &Courier, keys: &str, after: &str) -> Sandbox {
    let sandbox = Sandbox::new();
    std::fs::write(
        sandbox.path("imap-password"),
        format!("{}\n", server.password()),
    )
    .unwrap();
    let config = format!(
        "[storage]\nurl = \"sqlite://data/mailintake.db\"\n\n\
         [[queue]]\nname = \"site\"\n\n\
         [[collector]]\nname = \"site\"\nqueue = \"site\"\nschedule = \"0 0 0 1 1 *\"\n{keys}\n\
         [collector.imap]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\n\
         username = \"{user}\"\npassword-file = \"imap-password\"\nmailbox = \"INBOX\"\n\
         timeout-secs = 10\n\n\
         [collector.after]\n{after}\n",
        port = server.port(),
        user = server.user(),
    );
    std::fs::write(sandbox.path("collectors.toml"), config).unwrap();
    sandbox
}

/// Appends orders `0..total` to INBOX over one connection.
fn append_orders(server: &Courier, total: usize) {
    let mut imap = server.connect_as(server.user(), server.password());
    for n in 0..total {
        imap.append(
            "INBOX",
            &[],
            None,
            &order_message(n, "7709745454", 1 + n % 3),
        );
    }
    imap.logout();
}

fn uids(server: &Courier, mailbox: &str) -> usize {
    server.messages(mailbox).len()
}

/// The `collectors status` table as text.
fn status_text(sandbox: &Sandbox) -> String {
    let out = sandbox.run(&["collectors", "status"]);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn draining_orders_marks_each_seen_and_stores_it_once_on_courier() {
    let server = courier();
    let total = 30;
    append_orders(&server, total);
    let sandbox = sandbox_on(&server, "batch-size = 8", "action = \"seen\"");

    assert_eq!(counts(&sandbox.collect()), [30, 30, 0, 0, 0]);
    sandbox.assert_one_record_per_order(total);
    let inbox = server.messages("INBOX");
    assert_eq!(inbox.len(), total);
    assert!(
        inbox.iter().all(|m| m.flags == ["\\Seen"]),
        "{inbox:?}\n{}",
        server.server_log()
    );
    assert_eq!(counts(&sandbox.collect()), [0, 0, 0, 0, 0]);
}

#[test]
fn a_bad_order_gets_the_quarantine_keyword_and_stays_unseen_on_courier() {
    let server = courier();
    let good = server.append("INBOX", &order_message(1, "7709745454", 1));
    let broken = server.append("INBOX", &sample("26-truncated-json.eml"));
    let sandbox = sandbox_on(&server, "", "");

    assert_eq!(counts(&sandbox.collect()), [2, 1, 0, 1, 0]);
    let inbox = server.messages("INBOX");
    assert_eq!(
        inbox
            .iter()
            .map(|m| (m.uid, m.flags.clone()))
            .collect::<Vec<_>>(),
        [
            (good, vec!["\\Seen".to_owned()]),
            (broken, vec!["$MailintakeQuarantined".to_owned()])
        ]
    );
    assert_eq!(sandbox.quarantined(), 1);
    // Set aside by its keyword: the next pass does not take it again.
    assert_eq!(counts(&sandbox.collect()), [0, 0, 0, 0, 0]);
}

#[test]
fn mail_without_the_order_keyword_is_left_untouched_on_courier() {
    let server = courier();
    let question = server.append("INBOX", &sample("21-reply-question.eml"));
    let reorder = server.append("INBOX", &sample("22-reorder.eml"));
    let sandbox = sandbox_on(
        &server,
        "",
        "action = \"move\"\nmove-to = \"INBOX.Processed\"",
    );

    assert_eq!(counts(&sandbox.collect()), [2, 0, 2, 0, 0]);
    let inbox = server.messages("INBOX");
    assert_eq!(
        inbox
            .iter()
            .map(|m| (m.uid, m.flags.len()))
            .collect::<Vec<_>>(),
        [(question, 0), (reorder, 0)]
    );
    assert!(sandbox.records().is_empty());
}

#[test]
fn move_to_with_the_full_inbox_prefix_moves_every_order_on_courier() {
    let server = courier();
    let total = 25;
    append_orders(&server, total);
    let sandbox = sandbox_on(
        &server,
        "batch-size = 10",
        "action = \"move\"\nmove-to = \"INBOX.Processed\"",
    );

    assert_eq!(counts(&sandbox.collect()), [25, 25, 0, 0, 0]);
    sandbox.assert_one_record_per_order(total);
    assert_eq!(
        (uids(&server, "INBOX"), uids(&server, "INBOX.Processed")),
        (0, total),
        "{}",
        server.server_log()
    );
    assert_eq!(server.folders(), ["INBOX", "INBOX.Processed"]);
}

#[test]
fn delete_after_days_expunges_only_old_processed_orders_on_courier() {
    let server = courier();
    let old = Some("01-Jan-2020 10:00:00 +0000");
    server.append_with("INBOX", &[], old, &order_message(1, "7709745454", 1));
    let old_other = server.append_with("INBOX", &[], old, &sample("21-reply-question.eml"));
    let new_order = server.append("INBOX", &order_message(2, "7709745454", 1));
    let sandbox = sandbox_on(&server, "", "delete-after-days = 30");

    assert_eq!(counts(&sandbox.collect()), [3, 2, 1, 0, 0]);
    let left: Vec<u32> = server.messages("INBOX").iter().map(|m| m.uid).collect();
    assert_eq!(left, [old_other, new_order]);
    assert_eq!(sandbox.records().len(), 2);
}

#[test]
fn daemon_with_realtime_idle_picks_up_an_appended_order_on_courier() {
    let server = courier();
    server.append("INBOX", &order_message(1, "7709745454", 1));
    // The schedule is yearly: only the start-up pass and IDLE can bring mail in.
    let sandbox = sandbox_on(&server, "mode = \"idle\"", "");
    let daemon = sandbox.spawn_daemon();
    sandbox.wait_for_records(1, Duration::from_secs(15));
    // Realtime IDLE answers within a second or two; Courier's polling IDLE would take 60 s.
    std::thread::sleep(Duration::from_millis(500));
    server.append("INBOX", &order_message(2, "7709745454", 1));
    sandbox.wait_for_records(2, Duration::from_secs(15));
    assert!(daemon.terminate().success());
    assert!(
        server
            .messages("INBOX")
            .iter()
            .all(|m| m.has_flag("\\Seen"))
    );
    let status = sandbox.json(&["collectors", "status", "--json"]);
    assert_eq!(status[0]["mode"], "idle", "{status}");
}

#[test]
fn move_to_processed_resolves_into_the_inbox_namespace_on_courier() {
    let server = courier();
    append_orders(&server, 5);
    let sandbox = sandbox_on(&server, "", "action = \"move\"\nmove-to = \"Processed\"");

    assert_eq!(counts(&sandbox.collect()), [5, 5, 0, 0, 0]);
    assert_eq!(server.folders(), ["INBOX", "INBOX.Processed"]);
    assert_eq!(
        (uids(&server, "INBOX"), uids(&server, "INBOX.Processed")),
        (0, 5)
    );
    let status = sandbox.json(&["collectors", "status", "--json"]);
    assert!(status[0]["last_error"].is_null(), "{status}");
}

#[test]
fn quarantine_move_to_resolves_into_the_inbox_namespace_on_courier() {
    let server = courier();
    server.append("INBOX", &order_message(1, "7709745454", 1));
    server.append("INBOX", &sample("26-truncated-json.eml"));
    let sandbox = sandbox_on(
        &server,
        "",
        "action = \"move\"\nmove-to = \"Processed\"\nquarantine-move-to = \"Quarantine\"",
    );

    assert_eq!(counts(&sandbox.collect()), [2, 1, 0, 1, 0]);
    assert_eq!(
        server.folders(),
        ["INBOX", "INBOX.Processed", "INBOX.Quarantine"]
    );
    assert_eq!(
        (
            uids(&server, "INBOX"),
            uids(&server, "INBOX.Processed"),
            uids(&server, "INBOX.Quarantine")
        ),
        (0, 1, 1)
    );
    assert_eq!(sandbox.quarantined(), 1);
}

/// `delete-after-days` expunges from the collector's mailbox what the ledger says it stored:
/// with `action = "move"` that is mail stored before the move was configured (or while the
/// target was refused), as a new order moves out at once, whatever its date.
#[test]
fn delete_after_days_with_move_to_processed_expunges_old_stored_orders_on_courier() {
    let server = courier();
    let old = Some("01-Jan-2020 10:00:00 +0000");
    server.append_with("INBOX", &[], old, &order_message(1, "7709745454", 1));
    let old_other = server.append_with("INBOX", &[], old, &sample("21-reply-question.eml"));
    let sandbox = sandbox_on(&server, "", "action = \"seen\"");
    assert_eq!(counts(&sandbox.collect()), [2, 1, 1, 0, 0]);

    server.append_with("INBOX", &[], old, &order_message(2, "7709745454", 1));
    server.append("INBOX", &order_message(3, "7709745454", 1));
    let config = std::fs::read_to_string(sandbox.path("collectors.toml"))
        .unwrap()
        .replace(
            "action = \"seen\"",
            "action = \"move\"\nmove-to = \"Processed\"\ndelete-after-days = 30",
        );
    std::fs::write(sandbox.path("collectors.toml"), config).unwrap();

    assert_eq!(counts(&sandbox.collect()), [2, 2, 0, 0, 0]);
    // The order stored (and seen) in the first pass is expunged; the two new ones, old and
    // new, are moved; mail that is not ours stays, old as it is.
    let left: Vec<u32> = server.messages("INBOX").iter().map(|m| m.uid).collect();
    assert_eq!(left, [old_other], "{}", server.server_log());
    assert_eq!(uids(&server, "INBOX.Processed"), 2);
    assert_eq!(sandbox.records().len(), 3);
}

#[test]
fn a_cyrillic_move_to_folder_is_created_under_inbox_in_modified_utf7_on_courier() {
    let server = courier();
    append_orders(&server, 3);
    let sandbox = sandbox_on(&server, "", "action = \"move\"\nmove-to = \"Обработано\"");

    assert_eq!(counts(&sandbox.collect()), [3, 3, 0, 0, 0]);
    // LIST answers in modified UTF-7; the harness decodes it.
    let mut imap = server.connect_as(server.user(), server.password());
    let listed = imap.ok("LIST \"\" \"*\"").untagged.join("\n");
    imap.logout();
    assert!(
        listed.contains("\"INBOX.&BB4EMQRABDAEMQQ+BEIEMAQ9BD4-\""),
        "{listed}"
    );
    assert_eq!(server.folders(), ["INBOX", "INBOX.Обработано"]);
    assert_eq!(uids(&server, "INBOX.Обработано"), 3);
}

/// A refused CREATE fails the pass after its first batch was stored: `collect --json` keeps
/// the counts of what was stored (that batch, and the one read ahead of the refusal if it
/// committed) with the server's words, `collectors status` shows them, nothing is
/// acknowledged or stored twice, and once the folder is fixed every order moves, once.
#[test]
fn a_refused_create_shows_the_servers_words_in_collectors_status_on_courier() {
    let server = courier();
    append_orders(&server, 4);
    // An empty level (a doubled delimiter): `NO Invalid mailbox name.`
    let sandbox = sandbox_on(
        &server,
        "batch-size = 2",
        "action = \"move\"\nmove-to = \"Orders..2026\"",
    );
    let words = "NO Invalid mailbox name.";

    let out = sandbox.run(&["collect", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let reports: Value = serde_json::from_slice(&out.stdout).unwrap();
    // NOTE: the pass reads the next batch while the first commits; whether it committed
    // before the refusal stopped the pass is a race, so the counts follow the records.
    let stored = sandbox.records().len() as u64;
    assert!(stored == 2 || stored == 4, "{reports}");
    assert_eq!(counts(&reports[0]), [stored, stored, 0, 0, 0], "{reports}");
    let error = reports[0]["error"].as_str().unwrap();
    assert!(
        error.contains("\"INBOX.Orders..2026\"") && error.contains(words),
        "{error}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains(words));

    let status = status_text(&sandbox);
    assert!(status.contains(words), "{status}");
    assert!(
        status.contains(&format!(
            "site: before its last error, the run committed: fetched {stored}, accepted {stored}"
        )),
        "{status}"
    );
    let json = sandbox.json(&["collectors", "status", "--json"]);
    assert!(
        json[0]["last_error"].as_str().unwrap().contains(words),
        "{json}"
    );
    assert_eq!(
        counts(&json[0]["last_error_counts"]),
        [stored, stored, 0, 0, 0]
    );
    // Stored once, not acknowledged: the orders stay unseen in INBOX, and the next pass
    // stores nothing twice and stops at the same refusal.
    let inbox = server.messages("INBOX");
    assert_eq!(inbox.len(), 4);
    assert!(inbox.iter().all(|m| !m.has_flag("\\Seen")), "{inbox:?}");
    let out = sandbox.run(&["collect", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let reports: Value = serde_json::from_slice(&out.stdout).unwrap();
    let counted = counts(&reports[0]);
    let stored_again = sandbox.records().len() as u64;
    // The known orders come first: duplicates, none stored twice; any new ones are stored.
    assert!(counted[4] >= 2, "{reports}");
    assert_eq!(
        counted[..4],
        [counted[4] + counted[1], stored_again - stored, 0, 0]
    );

    let config = std::fs::read_to_string(sandbox.path("collectors.toml"))
        .unwrap()
        .replace("Orders..2026", "Orders.2026");
    std::fs::write(sandbox.path("collectors.toml"), config).unwrap();
    assert_eq!(
        counts(&sandbox.collect()),
        [4, 4 - stored_again, 0, 0, stored_again]
    );
    sandbox.assert_one_record_per_order(4);
    assert_eq!(
        (uids(&server, "INBOX"), uids(&server, "INBOX.Orders.2026")),
        (0, 4)
    );
    let json = sandbox.json(&["collectors", "status", "--json"]);
    assert!(json[0]["last_error"].is_null(), "{json}");
}

#[test]
fn idle_that_only_polls_falls_back_to_the_schedule_on_courier() {
    let server = Courier::start(CourierOptions {
        enhanced_idle: false,
    });
    server.append("INBOX", &order_message(1, "7709745454", 1));
    let sandbox = sandbox_on(&server, "mode = \"idle\"", "");
    // Every 2 s: the schedule brings mail in long before Courier's 60 s IDLE poll would.
    let config = std::fs::read_to_string(sandbox.path("collectors.toml"))
        .unwrap()
        .replace("schedule = \"0 0 0 1 1 *\"", "schedule = \"*/2 * * * * *\"");
    std::fs::write(sandbox.path("collectors.toml"), config).unwrap();
    let daemon = sandbox.spawn_daemon();
    sandbox.wait_for_records(1, Duration::from_secs(15));
    server.append("INBOX", &order_message(2, "7709745454", 1));
    sandbox.wait_for_records(2, Duration::from_secs(15));

    let status = sandbox.json(&["collectors", "status", "--json"]);
    assert_eq!(status[0]["mode"], POLLING_MODE, "{status}");
    assert!(
        status_text(&sandbox).contains(&format!("site: mode {POLLING_MODE}")),
        "{}",
        status_text(&sandbox)
    );
    assert!(daemon.terminate().success());
    let log = std::fs::read_to_string(sandbox.path("daemon.log")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("IDLE only polls") && l.contains("schedule")),
        "{log}"
    );
    let probe = sandbox.json(&["collectors", "probe", "site", "--json"]);
    assert_eq!(
        (&probe["mode"], &probe["features"]["idle_polls"]),
        (&Value::from(POLLING_MODE), &Value::Bool(true)),
        "{probe}"
    );
}

#[test]
fn probe_names_the_inbox_namespace_and_copy_with_uid_expunge_on_courier() {
    let server = courier();
    server.append("INBOX", &order_message(1, "7709745454", 1));
    let sandbox = sandbox_on(
        &server,
        "mode = \"idle\"",
        "action = \"move\"\nmove-to = \"Processed\"\nquarantine-move-to = \"Обработано/Плохие\"\n\
         delete-after-days = 30",
    );

    let probe = sandbox.json(&["collectors", "probe", "site", "--json"]);
    assert!(
        probe["namespace"]
            .as_str()
            .unwrap()
            .starts_with(r#"* NAMESPACE (("INBOX." "."))"#),
        "{probe}"
    );
    assert_eq!(
        (
            &probe["personal_prefix"],
            &probe["delimiter"],
            &probe["list_delimiter"]
        ),
        (&Value::from("INBOX."), &Value::from("."), &Value::from(".")),
    );
    let capabilities: Vec<&str> = probe["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        capabilities.contains(&"UIDPLUS") && !capabilities.contains(&"MOVE"),
        "{capabilities:?}"
    );
    let folders: Vec<[&str; 4]> = probe["folders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| ["role", "resolved", "server_name", "state"].map(|k| f[k].as_str().unwrap()))
        .collect();
    assert_eq!(
        folders,
        [
            ["mailbox", "INBOX", "INBOX", "exists"],
            [
                "move-to",
                "INBOX.Processed",
                "INBOX.Processed",
                "will be created"
            ],
            [
                "quarantine-move-to",
                "INBOX.Обработано.Плохие",
                "INBOX.&BB4EMQRABDAEMQQ+BEIEMAQ9BD4-.&BB8EOwQ+BEUEOAQ1-",
                "will be created"
            ],
        ]
    );
    let copy = "UID COPY, then \\Deleted and UID EXPUNGE of exactly those UIDs";
    assert_eq!(
        (&probe["acknowledge"], &probe["set_aside"]),
        (&Value::from(copy), &Value::from(copy))
    );
    assert_eq!(
        probe["delete_after_days"],
        "after 30 days: \\Deleted and UID EXPUNGE of exactly those UIDs"
    );
    assert_eq!(
        (&probe["mode"], &probe["fallbacks"], &probe["usable"]),
        (
            &Value::from("idle"),
            &serde_json::json!([]),
            &Value::Bool(true)
        ),
        "realtime IDLE pushes"
    );

    let out = sandbox.run(&["collectors", "probe", "site"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "folder names:   prefix \"INBOX.\", delimiter \".\"",
        "move-to:        Processed -> \"INBOX.Processed\": will be created",
        "stored mail:    UID COPY, then \\Deleted and UID EXPUNGE of exactly those UIDs",
        "mode:           idle",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
    // It changed nothing: no folder, no flag.
    assert_eq!(server.folders(), ["INBOX"]);
    assert!(server.messages("INBOX")[0].flags.is_empty());
}
