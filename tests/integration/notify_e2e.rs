//! Notifications end to end, on the shipped `collectors.toml` and the sample Maildirs as
//! `samples/demo --seed-only` seeds them, with `[smtp]` pointed at a real aiosmtpd: what a
//! `collect`, a triage and the manual GM button queue arrives at the server exactly once,
//! with the seed's texts, the rule's recipients and the loop-protection header; an outage
//! during a `collect` is ridden out by the daemon or `notifications send`; STARTTLS with a
//! private CA carries a collected record's notifications; a failed notification is retried.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::kit::process::wait_until;
use crate::kit::sandbox::{Sandbox, counts, failure_text, shipped_demo, success_json};
use crate::kit::smtp::{Received, SmtpServer};

const CONSULT_SMS: &str = "尊敬的客户，您好！我们已收到您的咨询信息，稍后会有专人与您联系，感谢您对日立电梯（中国）有限公司的支持！谢谢！【日立电梯】";
const FAULT_SMS: &str = "尊敬的客户, 您好! 我们已收到您的反馈, 稍后会有专人与您联系, 感谢您对日立电梯(中国)有限公司的支持! 谢谢! 【日立电梯】";

/// Replaces `from` (which must be there: the test would otherwise test something else).
fn edit(text: String, from: &str, to: &str) -> String {
    assert!(text.contains(from), "the shipped config has no `{from}`");
    text.replacen(from, to, 1)
}

/// The shipped config sending to the plain server on `port` (the shipped 2525 replaced).
fn shipped_on(port: u16) -> Sandbox {
    shipped_demo(|c| edit(c, "port = 2525", &format!("port = {port}")))
}

/// What one notification should be, or was, as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Mail {
    record: u64,
    rule: String,
    to: Vec<String>,
    subject: String,
    body: String,
}

fn sms(record: u64, rule: &str, phone_digits: &str, body: &str) -> Mail {
    Mail {
        record,
        rule: rule.into(),
        to: vec![format!("{phone_digits}@sms.example.test")],
        subject: String::new(),
        body: body.into(),
    }
}

/// What the seed's rules send for each collected consult, from the stored records' fields.
fn expected_for_consults(records: &[Value]) -> Vec<Mail> {
    let mut want = Vec::new();
    for record in records.iter().filter(|r| r["queue"] == "emes-consult") {
        let id = record["id"].as_u64().unwrap();
        let s = &record["service"];
        let field = |k: &str| s[k].as_str().unwrap().to_string();
        let digits: String = field("contact_phone")
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        let contact_block = format!(
            "联系人: {}\n联系方式: {}\n地址: {}\n咨询内容: {}",
            field("contact"),
            field("contact_phone"),
            field("address"),
            field("content")
        );
        match s["sub_type"].as_str().unwrap() {
            "加装" => want.push(sms(
                id,
                "retrofit-to-manager",
                "8613900000001",
                &format!(
                    "EMES 新增加装梯咨询单据 {}: {}, {}, {}",
                    field("number"),
                    field("contact"),
                    field("contact_phone"),
                    field("address")
                ),
            )),
            "其他" => want.push(Mail {
                record: id,
                rule: "maintenance-to-callcenter".into(),
                to: vec!["callcenter@example.test".into()],
                subject: format!(
                    "EMES 新增维保业务咨询单据, 单据编号: {}, 请处理, 谢谢!",
                    field("number")
                ),
                body: String::new(),
            }),
            "楼宇" => want.push(Mail {
                record: id,
                rule: "smart-building-to-desk".into(),
                to: vec!["smart-building@example.test".into()],
                subject: "智能楼宇业务咨询单据, 请处理, 谢谢!".into(),
                body: format!(
                    "您好, 有客户在日立电梯官网填写了智能楼宇业务咨询事宜, 烦请跟进处理, 以下为客户联系信息, 谢谢!\n{contact_block}"
                ),
            }),
            // 新梯: the GM e-mail is manual.
            "新梯" => {}
            other => panic!("a sample consult of sub-type {other}"),
        }
        want.push(sms(id, "consult-confirmation", &digits, CONSULT_SMS));
    }
    want.sort();
    want
}

/// The received messages, each matched to its notification by its `Message-ID`; asserts
/// every message is one of the log's, carries the loop-protection header and the sender,
/// and that no notification arrived twice.
fn received_as_mail(sandbox: &Sandbox, received: &[Received]) -> Vec<Mail> {
    let by_id: BTreeMap<String, Value> = sandbox
        .notifications(&[])
        .into_iter()
        .map(|n| (format!("<notification-{}@example.test>", n["id"]), n))
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    let mut mails: Vec<Mail> = received
        .iter()
        .map(|m| {
            let message_id = m.header("Message-ID");
            assert_eq!(message_id.len(), 1, "{:?}", m.headers);
            assert!(seen.insert(message_id[0].to_string()), "twice: {m:?}");
            let n = by_id
                .get(message_id[0])
                .unwrap_or_else(|| panic!("no notification {message_id:?}"));
            assert_eq!(m.header("Auto-Submitted"), ["auto-generated"]);
            assert_eq!(m.header("From"), ["EMES <emes@example.test>"]);
            assert_eq!(m.header("Subject").len(), 1, "{:?}", m.headers);
            Mail {
                record: n["record_id"].as_u64().unwrap(),
                rule: n["rule"].as_str().unwrap().to_string(),
                to: m.rcpt_to.clone(),
                subject: m.subject.clone().unwrap_or_default(),
                body: m.body.trim_end().to_string(),
            }
        })
        .collect();
    mails.sort();
    mails
}

fn trimmed(mut mails: Vec<Mail>) -> Vec<Mail> {
    for m in &mut mails {
        m.body = m.body.trim_end().to_string();
    }
    mails
}

fn succeeds(output: std::process::Output) {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn every_sample_rule_arrives_once_with_the_seed_texts_from_collect_triage_and_the_gm_button() {
    let server = SmtpServer::start();
    let sandbox = shipped_on(server.port());
    let reports = sandbox.collect_all();
    assert_eq!(
        reports.iter().map(|r| counts(r)[1]).collect::<Vec<_>>(),
        [3, 9],
        "the orders, then the six consults and three fault reports of the one EMES mailbox"
    );
    let records = sandbox.records();
    let want = expected_for_consults(&records);
    assert_eq!(want.len(), 11);
    // `collect` sent them before it exited: they are there without waiting.
    let received = server.received();
    assert_eq!(received_as_mail(&sandbox, &received), trimmed(want.clone()));
    // The new-lift consult's confirmation went to its contact's phone, every digit.
    assert!(
        received
            .iter()
            .any(|m| m.rcpt_to == ["13812345678@sms.example.test"] && m.body == CONSULT_SMS)
    );

    // The log: each sent once, with its attempt, the time and the server's reply.
    let sent = sandbox.notifications(&[]);
    for n in &sent {
        assert_eq!(
            (n["status"].as_str(), n["attempts"].as_u64()),
            (Some("sent"), Some(1)),
            "{n}"
        );
        assert!(n["sent_at"].is_string(), "{n}");
        assert!(
            n["server_reply"].as_str().unwrap().starts_with("250"),
            "{n}"
        );
        // And in its record's history: queued, then sent.
        let id = n["id"].as_u64().unwrap();
        let events = sandbox.history(n["record_id"].as_u64().unwrap());
        let of_this: Vec<&str> = events
            .iter()
            .filter(|(_, d)| d.ends_with(&format!("(notification {id})")))
            .map(|(e, _)| e.as_str())
            .collect();
        assert_eq!(
            of_this,
            ["notification queued", "notification sent"],
            "{events:?}"
        );
    }

    // Collecting again sends nothing again; neither does a `notifications send`.
    sandbox.json(&["collect", "--json"]);
    assert_eq!(
        success_json(sandbox.run(&["notifications", "send", "--json"]))["sent"],
        0
    );
    assert_eq!(server.received().len(), 11);

    // A fault report triaged into a request: its confirmation SMS arrives before exit.
    let triage = sandbox.json(&["records", "triage-list", "--json"]);
    let fault = &triage[0];
    let fault_id = fault["id"].as_u64().unwrap();
    let id = fault_id.to_string();
    succeeds(sandbox.run(&[
        "records",
        "triage",
        &id,
        "--as",
        "fault",
        "--set",
        "branch=南京分公司",
    ]));
    let digits: String = fault["service"]["contact_phone"]
        .as_str()
        .unwrap()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let received = server.received();
    assert_eq!(received.len(), 12);
    let mut want_all = want;
    want_all.push(sms(fault_id, "fault-confirmation", &digits, FAULT_SMS));
    want_all.sort();
    assert_eq!(
        received_as_mail(&sandbox, &received),
        trimmed(want_all.clone())
    );

    // The manual new-lift button: to the 北京分公司 GM the directory holds.
    let new_lift = records
        .iter()
        .find(|r| r["service"]["sub_type"] == "新梯")
        .unwrap();
    let new_lift_id = new_lift["id"].as_u64().unwrap();
    assert_eq!(new_lift["service"]["branch"], "北京分公司");
    succeeds(sandbox.run(&[
        "people",
        "add",
        "--name",
        "刘总",
        "--branch",
        "北京分公司",
        "--role",
        "gm",
        "--email",
        "liu@example.test",
    ]));
    let id = new_lift_id.to_string();
    succeeds(sandbox.run(&["records", "notify", &id, "--rule", "new-lift-to-gm"]));
    let received = server.received();
    assert_eq!(received.len(), 13, "sent before `records notify` exited");
    let s = &new_lift["service"];
    let field = |k: &str| s[k].as_str().unwrap().to_string();
    want_all.push(Mail {
        record: new_lift_id,
        rule: "new-lift-to-gm".into(),
        to: vec!["liu@example.test".into()],
        subject: "新梯业务咨询单据, 请处理, 谢谢!".into(),
        body: format!(
            "您好, 有客户在日立电梯官网填写了新梯业务咨询事宜, 请贵司跟进处理, 以下为客户联系信息, 谢谢!\n联系人: {}\n联系方式: {}\n地址: {}\n咨询内容: {}",
            field("contact"),
            field("contact_phone"),
            field("address"),
            field("content")
        ),
    });
    want_all.sort();
    assert_eq!(received_as_mail(&sandbox, &received), trimmed(want_all));

    // Without an enabled GM: exit 1 naming why, `failed` in the log and the history, and
    // nothing sent.
    succeeds(sandbox.run(&["people", "disable", "1"]));
    let refused =
        failure_text(sandbox.run(&["records", "notify", &id, "--rule", "new-lift-to-gm"]));
    assert!(
        refused.contains("no enabled gm for branch 北京分公司"),
        "{refused}"
    );
    let failed = sandbox.notifications(&["--status", "failed"]);
    assert_eq!(failed.len(), 1);
    assert_eq!(
        failed[0]["last_error"],
        "no enabled gm for branch 北京分公司"
    );
    assert_eq!(
        sandbox.history(new_lift_id).last().unwrap().0,
        "notification failed"
    );
    assert_eq!(server.received().len(), 13);
    assert_eq!(sandbox.notifications(&["--status", "sent"]).len(), 13);
}

/// Waits until every notification of the log is `sent`; returns the log.
fn wait_all_sent(sandbox: &Sandbox) -> Vec<Value> {
    wait_until(
        std::time::Duration::from_secs(60),
        std::time::Duration::from_millis(100),
        || {
            let rows = sandbox.notifications(&[]);
            if rows.iter().all(|n| n["status"] == "sent") {
                Ok(rows)
            } else {
                Err(format!("not all sent: {rows:#?}"))
            }
        },
    )
}

#[test]
fn a_collect_during_an_outage_is_delivered_once_when_smtp_is_back() {
    let mut server = SmtpServer::start();
    let sandbox = shipped_on(server.port());
    server.stop();
    // The ingestion succeeds; the notifications wait, one attempt spent.
    let reports = sandbox.collect_all();
    assert_eq!(
        reports.iter().map(|r| counts(r)[1]).collect::<Vec<_>>(),
        [3, 9],
        "the orders, then the six consults and three fault reports of the one EMES mailbox"
    );
    let queued = sandbox.notifications(&[]);
    assert_eq!(queued.len(), 11);
    for n in &queued {
        assert_eq!(
            (n["status"].as_str(), n["attempts"].as_u64()),
            (Some("queued"), Some(1)),
            "{n}"
        );
        assert!(
            n["last_error"].as_str().unwrap().contains("127.0.0.1"),
            "{n}"
        );
    }

    // Back: the daemon delivers each of them, once.
    server.start_again();
    let daemon = sandbox.spawn_daemon();
    wait_all_sent(&sandbox);
    assert!(daemon.terminate().success());
    let want = trimmed(expected_for_consults(&sandbox.records()));
    assert_eq!(received_as_mail(&sandbox, &server.received()), want);

    // Another outage, this time with a timer setup: `notifications send` delivers.
    server.stop();
    let fault = sandbox.json(&["records", "triage-list", "--json"])[0]["id"]
        .as_u64()
        .unwrap();
    succeeds(sandbox.run(&["records", "triage", &fault.to_string(), "--as", "fault"]));
    let waiting = sandbox.notifications(&["--status", "queued"]);
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0]["rule"], "fault-confirmation");
    server.start_again();
    let report = success_json(sandbox.run(&["notifications", "send", "--json"]));
    assert_eq!(
        (report["sent"].as_u64(), report["retrying"].as_u64()),
        (Some(1), Some(0))
    );
    let received = server.received();
    assert_eq!(received.len(), 12);
    let mails = received_as_mail(&sandbox, &received);
    assert_eq!(
        mails
            .iter()
            .filter(|m| m.rule == "fault-confirmation")
            .count(),
        1
    );
    assert!(
        sandbox
            .notifications(&[])
            .iter()
            .all(|n| n["status"] == "sent")
    );
}

#[test]
fn a_notification_failed_by_the_dispatcher_is_retried_and_sent() {
    let mut server = SmtpServer::start();
    let sandbox = shipped_demo(|c| {
        let c = edit(c, "port = 2525", &format!("port = {}", server.port()));
        edit(c, "# max-attempts = 10", "max-attempts = 1")
    });
    server.stop();
    sandbox.json(&["collect", "--json", "--collector", "emes"]);
    let failed = sandbox.notifications(&["--status", "failed"]);
    assert_eq!(failed.len(), 11, "one attempt allowed, the server down");
    let first = &failed[0];
    let id = first["id"].as_u64().unwrap();
    let record = first["record_id"].as_u64().unwrap();
    assert_eq!(
        sandbox
            .history(record)
            .iter()
            .filter(
                |(e, d)| e == "notification failed" && d.ends_with(&format!("(notification {id})"))
            )
            .count(),
        1
    );

    server.start_again();
    succeeds(sandbox.run(&["notifications", "retry", &id.to_string()]));
    // `retry` sends what it re-queued before it exits, like every command that queues.
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].header("Message-ID"),
        [format!("<notification-{id}@example.test>")]
    );
    let row = sandbox
        .notifications(&["--record", &record.to_string()])
        .into_iter()
        .find(|n| n["id"] == id)
        .unwrap();
    assert_eq!(
        (row["status"].as_str(), row["attempts"].as_u64()),
        (Some("sent"), Some(1))
    );
    let events: Vec<String> = sandbox
        .history(record)
        .into_iter()
        .filter(|(_, d)| d.ends_with(&format!("(notification {id})")))
        .map(|(e, _)| e)
        .collect();
    assert_eq!(
        events,
        [
            "notification queued",
            "notification failed",
            "notification retried",
            "notification sent"
        ]
    );
    assert_eq!(sandbox.notifications(&["--status", "failed"]).len(), 10);
}

#[test]
fn starttls_with_a_private_ca_carries_a_collected_records_notifications() {
    let server = SmtpServer::start_tls();
    let ca = server.ca_file().unwrap().display().to_string();
    let sandbox = shipped_demo(|c| {
        let c = edit(c, "host = \"127.0.0.1\"", "host = \"localhost\"");
        let c = edit(c, "port = 2525", &format!("port = {}", server.port()));
        let c = edit(c, "tls = \"none\"", "tls = \"starttls\"");
        edit(
            c,
            "# ca-file = \"/etc/mailintake/private-ca.pem\"",
            &format!("ca-file = \"{ca}\""),
        )
    });
    sandbox.json(&["collect", "--json", "--collector", "emes"]);
    let want = trimmed(expected_for_consults(&sandbox.records()));
    assert_eq!(received_as_mail(&sandbox, &server.received()), want);
    assert!(
        sandbox
            .notifications(&[])
            .iter()
            .all(|n| n["status"] == "sent")
    );
}

#[test]
fn the_demo_without_an_smtp_server_keeps_them_queued_and_logs_once_per_round() {
    // The shipped [smtp] with nobody listening, as `bash samples/demo` runs it.
    let mut server = SmtpServer::start();
    let sandbox = shipped_on(server.port());
    server.stop();
    let daemon = sandbox.spawn_daemon();
    // Two rounds: the one after the collect, and the first retry after its backoff.
    let rows = wait_until(
        std::time::Duration::from_secs(60),
        std::time::Duration::from_millis(200),
        || {
            let rows = sandbox.notifications(&[]);
            if rows.len() == 11 && rows.iter().all(|n| n["attempts"].as_u64() >= Some(2)) {
                Ok(rows)
            } else {
                Err(format!("not every row tried twice: {rows:#?}"))
            }
        },
    );
    assert!(daemon.terminate().success());
    assert!(rows.iter().all(|n| n["status"] == "queued"), "{rows:#?}");
    let log = plain(&std::fs::read_to_string(sandbox.path("daemon.log")).unwrap());
    let loud: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .filter(|l| !l.contains("message quarantined"))
        .collect();
    // One line a round for all it tried, not one a notification. A round that starts while
    // the demo's collectors are still committing sees only part of the eleven, so the lines
    // are counted by what they cover: together, every attempt exactly once.
    let covered: Vec<u64> = loud
        .iter()
        .map(|l| {
            assert!(l.contains("notifications not sent"), "{l}");
            let (_, count) = l.split_once("notifications=").expect("a count");
            let digits: String = count.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().unwrap()
        })
        .collect();
    // Read after the daemon stopped: a round may have run since `rows` was read.
    let attempts: u64 = sandbox
        .notifications(&[])
        .iter()
        .map(|n| n["attempts"].as_u64().unwrap())
        .sum();
    assert_eq!(covered.iter().sum::<u64>(), attempts, "{log}");
    assert!(covered.iter().any(|&n| n > 1), "{log}");
    assert!(covered.len() < rows.len() * 2, "{log}");
}

/// `text` without the terminal colour codes the log carries (`ESC [ ... m`).
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|&c| c == 'm');
        } else {
            out.push(c);
        }
    }
    out
}
