//! `mailintake collect` over real Maildirs into real SQLite files: exactly once, nothing
//! lost, quarantine retrievable, counterparties and tech cards.

use std::fs;

use serde_json::Value;

use crate::kit::mail::order_message;
use crate::kit::process::Daemon;
use crate::kit::sandbox::{
    Sandbox, collector_names, copy_tree, counts, failure_text, repo, sample, shipped_demo,
};

const INBOX: &str = "inbox";

fn sandbox_with_inbox() -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.maildir(INBOX);
    sandbox.write_config(&[("site-orders", INBOX)], "");
    sandbox
}

fn files_in(sandbox: &Sandbox, sub: &str) -> Vec<String> {
    sandbox.files_in(INBOX, sub)
}

#[test]
fn sample_inbox_gives_the_expected_records_once() {
    let sandbox = Sandbox::new();
    copy_tree(&repo().join("samples/maildir"), &sandbox.path(INBOX));
    sandbox.write_config(&[("site-orders", INBOX)], "");
    let expected: Value =
        serde_json::from_slice(&fs::read(repo().join("samples/maildir.expected.json")).unwrap())
            .unwrap();

    let report = sandbox.collect();
    let want = [
        "fetched",
        "accepted",
        "skipped",
        "quarantined",
        "duplicates",
    ]
    .map(|k| expected[k].as_u64().unwrap());
    assert_eq!(counts(&report), want, "{report}");

    let records = sandbox.records();
    let got: Vec<(String, String, usize)> = records
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_string(),
                r["source"]["order_ref"].as_str().unwrap().to_string(),
                r["lines"].as_array().unwrap().len(),
            )
        })
        .collect();
    let want: Vec<(String, String, usize)> = expected["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_string(),
                r["order_ref"].as_str().unwrap().to_string(),
                r["lines"].as_u64().unwrap() as usize,
            )
        })
        .collect();
    assert_eq!(got, want);
    for r in &records {
        assert_eq!(
            (r["queue"].as_str(), r["status"].as_str()),
            (Some("site-orders"), Some("new"))
        );
        assert!(r["id"].as_i64().is_some() && r["created_at"].as_str().is_some());
    }

    // Second pass: nothing is read again, not even the skipped message (remembered as not
    // ours, issue 14); nothing new is stored.
    let report = sandbox.collect();
    assert_eq!(counts(&report), [0, 0, 0, 0, 0], "{report}");
    assert_eq!(sandbox.records().len(), want.len());
}

#[test]
fn redelivered_copy_creates_no_second_record() {
    let sandbox = sandbox_with_inbox();
    let raw = sample("01-seed-order.eml");
    sandbox.deliver(INBOX, "1000.M1.mx", &raw);
    assert_eq!(counts(&sandbox.collect()), [1, 1, 0, 0, 0]);

    // The same message relayed once more: a new file with an extra Received header.
    let mut relayed =
        b"Received: from relay.example by mx.example; Mon, 3 Jun 2019 10:00:00 +0300\n".to_vec();
    relayed.extend_from_slice(&raw);
    sandbox.deliver(INBOX, "2000.M2.mx", &relayed);
    sandbox.deliver(INBOX, "2001.M3.mx", &raw);
    assert_eq!(counts(&sandbox.collect()), [2, 0, 0, 0, 2]);
    assert_eq!(sandbox.records().len(), 1);
    assert_eq!(
        files_in(&sandbox, "new"),
        Vec::<String>::new(),
        "duplicates are acknowledged"
    );
}

#[test]
fn committed_but_unacknowledged_message_is_acknowledged_not_stored_again() {
    let sandbox = sandbox_with_inbox();
    sandbox.deliver(INBOX, "1000.M1.mx", &sample("03-rfc2047-subject-qp.eml"));
    sandbox.collect();
    assert_eq!(files_in(&sandbox, "cur"), ["1000.M1.mx:2,S"]);

    // As if the process died between the commit and the rename: the file is unseen again.
    fs::rename(
        sandbox.path(INBOX).join("cur/1000.M1.mx:2,S"),
        sandbox.path(INBOX).join("new/1000.M1.mx"),
    )
    .unwrap();
    assert_eq!(counts(&sandbox.collect()), [1, 0, 0, 0, 1]);
    assert_eq!(sandbox.records().len(), 1);
    assert_eq!(files_in(&sandbox, "cur"), ["1000.M1.mx:2,S"]);
}

/// Issue 15: two names that differ only in bytes that are not UTF-8 once shared one key;
/// the second order was taken for a duplicate of the first and its rename into cur/ replaced
/// the first file, so one order was gone from the database and the mailbox.
#[test]
fn maildir_names_differing_only_in_invalid_utf8_are_two_orders() {
    use std::ffi::OsString;
    use std::os::unix::ffi::{OsStrExt, OsStringExt};

    let sandbox = sandbox_with_inbox();
    let names: [&[u8]; 2] = [b"1000.M1\xff.mx", b"1000.M1\xfe.mx"];
    for (n, name) in (1..).zip(names) {
        let path = sandbox
            .path(INBOX)
            .join("new")
            .join(OsString::from_vec(name.to_vec()));
        fs::write(path, order_message(n, "7709745454", 1)).unwrap();
    }
    assert_eq!(counts(&sandbox.collect()), [2, 2, 0, 0, 0]);
    sandbox.assert_one_record_per_order(2);
    let mut in_cur: Vec<Vec<u8>> = fs::read_dir(sandbox.path(INBOX).join("cur"))
        .unwrap()
        .map(|e| e.unwrap().file_name().as_bytes().to_vec())
        .collect();
    in_cur.sort();
    assert_eq!(
        in_cur,
        [
            b"1000.M1\xfe.mx:2,S".to_vec(),
            b"1000.M1\xff.mx:2,S".to_vec()
        ]
    );
    assert_eq!(counts(&sandbox.collect()), [0, 0, 0, 0, 0]);
}

#[test]
fn quarantined_message_stays_in_the_mailbox_and_is_kept_byte_for_byte() {
    let sandbox = sandbox_with_inbox();
    let raw = sample("26-truncated-json.eml");
    sandbox.deliver(INBOX, "1000.M1.mx", &raw);
    assert_eq!(counts(&sandbox.collect()), [1, 0, 0, 1, 0]);
    assert_eq!(files_in(&sandbox, "new"), ["1000.M1.mx"]);

    let entries = sandbox.json(&["quarantine", "list", "--json"]);
    assert_eq!(entries.as_array().unwrap().len(), 1);
    let entry = &entries[0];
    assert!(
        entry["reason"].as_str().unwrap().contains("invalid JSON"),
        "{entry}"
    );
    assert_eq!(entry["collector"], "site-orders");
    let id = entry["id"].to_string();
    let shown = sandbox.run(&["quarantine", "show", &id, "--raw"]);
    assert!(shown.status.success());
    assert_eq!(shown.stdout, raw);

    // Not quarantined again on the next pass, and still in the mailbox.
    assert_eq!(counts(&sandbox.collect()), [0, 0, 0, 0, 0]);
    assert_eq!(sandbox.quarantined(), 1);
    assert_eq!(files_in(&sandbox, "new"), ["1000.M1.mx"]);
}

#[test]
fn quarantine_retry_after_a_config_fix_creates_the_record_and_acknowledges_later() {
    let sandbox = Sandbox::new();
    sandbox.maildir(INBOX);
    // A wrong default charset: the undeclared cp1251 attachment cannot be read as JSON.
    sandbox.write_config(&[("site-orders", INBOX)], "default-charset = \"utf-16le\"");
    sandbox.deliver(INBOX, "1000.M1.mx", &sample("02-lead-octet-stream.eml"));
    assert_eq!(counts(&sandbox.collect()), [1, 0, 0, 1, 0]);
    let id = sandbox.json(&["quarantine", "list", "--json"])[0]["id"].to_string();

    let still = sandbox.json(&["quarantine", "retry", &id, "--json"]);
    assert_eq!(still["status"], "quarantined");

    sandbox.write_config(
        &[("site-orders", INBOX)],
        "default-charset = \"windows-1251\"",
    );
    let retried = sandbox.json(&["quarantine", "retry", &id, "--json", "--actor", "admin"]);
    assert_eq!(retried["status"], "accepted", "{retried}");
    let records = sandbox.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["kind"], "lead");
    assert_eq!(records[0]["source"]["charset"], "windows-1251");
    assert_eq!(records[0]["id"], retried["record_id"]);
    assert_eq!(sandbox.quarantined(), 0);

    let shown = sandbox.json(&[
        "records",
        "show",
        &retried["record_id"].to_string(),
        "--json",
    ]);
    let events: Vec<(&str, &str)> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["event"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(events, [("created", "admin"), ("released", "admin")]);

    // The message is now acknowledged as already stored.
    assert_eq!(counts(&sandbox.collect()), [1, 0, 0, 0, 1]);
    assert_eq!(files_in(&sandbox, "new"), Vec::<String>::new());
    assert!(
        !sandbox.run(&["quarantine", "retry", &id]).status.success(),
        "a released entry cannot be retried"
    );
}

#[test]
fn counterparties_by_inn_contacts_by_phone_and_one_tech_card_per_goods_line() {
    let sandbox = sandbox_with_inbox();
    sandbox.deliver(INBOX, "1.M1.mx", &order_message(1, "7709745454", 3));
    sandbox.deliver(INBOX, "2.M2.mx", &order_message(2, "7709745454", 1));
    sandbox.deliver(INBOX, "3.M3.mx", &order_message(3, "500100732259", 2));
    sandbox.deliver(INBOX, "4.M4.mx", &order_message(4, "7709745455", 1));
    sandbox.deliver(INBOX, "5.M5.mx", &sample("02-lead-octet-stream.eml"));
    assert_eq!(counts(&sandbox.collect()), [5, 5, 0, 0, 0]);
    let records = sandbox.records();
    let cp: Vec<Value> = records
        .iter()
        .map(|r| r["counterparty_id"].clone())
        .collect();
    assert!(
        cp[0].is_i64() && cp[0] == cp[1],
        "same INN, same counterparty: {cp:?}"
    );
    assert!(
        cp[2].is_i64() && cp[2] != cp[0],
        "12-digit INN gets its own: {cp:?}"
    );
    assert!(
        cp[3].is_null() && records[3]["inn_valid"] == false && records[3]["inn"] == "7709745455"
    );

    // Line 2 (index 1) of each generated order is a service: no tech card for it.
    let cards = |r: &Value| -> Vec<u64> {
        r["tech_cards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["line"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(cards(&records[0]), [1, 3]);
    assert_eq!(cards(&records[1]), [1]);
    assert_eq!(cards(&records[2]), [1]);
    assert_eq!(records[4]["kind"], "lead");
    assert!(cards(&records[4]).is_empty());

    // Same phone again: same contact.
    sandbox.deliver(INBOX, "6.M6.mx", &order_message(1001, "7709745454", 1));
    sandbox.collect();
    let records = sandbox.records();
    assert_eq!(records[5]["phone"], "+7 (900) 123-00-01");
    assert_eq!(records[5]["contact_id"], records[0]["contact_id"]);
    assert_ne!(records[1]["contact_id"], records[0]["contact_id"]);
}

#[test]
fn records_list_filters_by_kind_phone_queue_and_since() {
    let sandbox = Sandbox::new();
    sandbox.maildir("a");
    sandbox.maildir("b");
    sandbox.write_config(&[("shop", "a"), ("forms", "b")], "");
    sandbox.deliver("a", "1.M1.mx", &sample("01-seed-order.eml"));
    sandbox.deliver("a", "2.M2.mx", &sample("02-lead-octet-stream.eml"));
    sandbox.deliver("b", "3.M3.mx", &sample("15-minimal-lead.eml"));
    let reports = sandbox.json(&["collect", "--json"]);
    assert_eq!(collector_names(&reports), ["shop", "forms"]);

    let ids = |args: &[&str]| -> Vec<String> {
        let mut full = vec!["records", "list", "--json"];
        full.extend_from_slice(args);
        sandbox
            .json(&full)
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["source"]["order_ref"].as_str().unwrap_or("-").to_string())
            .collect()
    };
    assert_eq!(ids(&["--queue", "forms"]).len(), 1);
    assert_eq!(ids(&["--queue", "shop"]), ["123", "124"]);
    assert_eq!(ids(&["--kind", "order"]), ["123"]);
    assert_eq!(ids(&["--kind", "lead"]).len(), 2);
    assert_eq!(ids(&["--phone", "9256424290"]), ["123"]);
    assert_eq!(ids(&["--status", "new"]).len(), 3);
    assert_eq!(ids(&["--since", "2000-01-01"]).len(), 3);
    assert_eq!(ids(&["--since", "2999-01-01"]).len(), 0);
    assert_eq!(
        sandbox
            .json(&["collect", "--json", "--collector", "forms"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let table = sandbox.run(&["records", "list"]);
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(
        text.contains("Прилепский") && text.contains("3 record(s)"),
        "{text}"
    );
}

#[test]
fn concurrent_collect_processes_store_each_message_once() {
    let sandbox = sandbox_with_inbox();
    for n in 0..400 {
        sandbox.deliver(
            INBOX,
            &format!("{n:06}.M{n}.mx"),
            &order_message(n, "7709745454", 1 + n % 4),
        );
    }
    let spawn = || {
        sandbox
            .command(&["collect", "--json"])
            .env("MAILINTAKE_LOG", "error")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    sandbox.collect();
    sandbox.assert_one_record_per_order(400);
    assert!(files_in(&sandbox, "new").is_empty());
}

#[test]
fn killed_mid_drain_and_restarted_ends_with_exactly_one_record_per_message() {
    let sandbox = sandbox_with_inbox();
    let total = 1500;
    for n in 0..total {
        sandbox.deliver(
            INBOX,
            &format!("{n:06}.M{n}.mx"),
            &order_message(n, "7709745454", 1 + n % 6),
        );
    }
    // SIGKILL at varying moments, then let a last pass finish.
    for delay_ms in [150u64, 300, 60, 450] {
        let collect = Daemon::spawn(
            sandbox
                .command(&["collect"])
                .env("MAILINTAKE_LOG", "error")
                .stdout(std::process::Stdio::null()),
        );
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        collect.kill();
    }
    sandbox.collect();
    let records = sandbox.assert_one_record_per_order(total);
    let lines: usize = records
        .iter()
        .map(|r| r["lines"].as_array().unwrap().len())
        .sum();
    assert_eq!(
        lines,
        (0..total).map(|n| 1 + n % 6).sum::<usize>(),
        "every record has all its lines"
    );
    assert!(files_in(&sandbox, "new").is_empty());
    assert_eq!(counts(&sandbox.collect()), [0, 0, 0, 0, 0]);
}

#[test]
fn check_names_file_line_and_key_of_a_config_error() {
    let sandbox = sandbox_with_inbox();
    let ok = sandbox.run(&["check"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let text = fs::read_to_string(sandbox.path("collectors.toml"))
        .unwrap()
        .replace("schedule =", "shedule =");
    fs::write(sandbox.path("collectors.toml"), text).unwrap();
    let bad = sandbox.run(&["check"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("collectors.toml:10:1: shedule: unknown field `shedule`"),
        "{err}"
    );
    assert!(
        !sandbox.run(&["collect"]).status.success(),
        "collect refuses a broken config too"
    );
}

/// Issue 15: `check` said OK for a Maildir that is not there; `collect` then failed.
#[test]
fn check_refuses_a_maildir_that_is_missing_or_not_a_maildir() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&[("site-orders", INBOX)], "");
    let err = failure_text(sandbox.run(&["check"]));
    assert!(
        err.contains("collectors.toml:13:8: collector.maildir.path: collector `site-orders`: ")
            && err.contains("is not a Maildir"),
        "{err}"
    );

    fs::create_dir_all(sandbox.path(INBOX).join("new")).unwrap();
    fs::write(sandbox.path(INBOX).join("cur"), b"a file, not a folder").unwrap();
    assert!(!sandbox.run(&["check"]).status.success(), "cur/ is a file");

    fs::remove_file(sandbox.path(INBOX).join("cur")).unwrap();
    sandbox.maildir(INBOX);
    let ok = sandbox.run(&["check"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains(": OK ("));
}

#[test]
fn shipped_demo_config_collects_orders_and_service_requests() {
    // The README's demo in a copy of the checkout: samples/demo copies the samples beside the
    // shipped config, and the config reads them there.
    let sandbox = shipped_demo(|config| config);
    let reports = sandbox.collect_all();
    let accepted: Vec<(String, u64)> = reports
        .iter()
        .map(|r| {
            (
                r["collector"].as_str().unwrap().to_string(),
                r["accepted"].as_u64().unwrap(),
            )
        })
        .collect();
    let want = [("site-orders", 3), ("emes", 9)];
    assert_eq!(accepted, want.map(|(c, n)| (c.to_string(), n)));
    let triage = sandbox.json(&["records", "triage-list", "--json"]);
    assert_eq!(triage.as_array().unwrap().len(), 3);
    assert!(
        sandbox.path("samples/demo-state/mailintake.db").is_file(),
        "the database sits where the config says, relative to the config's folder"
    );
}

#[test]
fn output_into_a_closed_pipe_is_not_a_crash() {
    let sandbox = Sandbox::new();
    copy_tree(&repo().join("samples/maildir"), &sandbox.path(INBOX));
    sandbox.write_config(&[("site-orders", INBOX)], "");
    sandbox.collect();
    let mut child = sandbox
        .command(&["records", "list"])
        .env_remove("MAILINTAKE_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // like `| head -0`
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        matches!(out.status.code(), Some(0) | Some(141)),
        "{:?}",
        out.status
    );
}
