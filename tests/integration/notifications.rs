//! Delivery of queued notifications to a real SMTP server (aiosmtpd): what arrives (envelope
//! recipients, decoded subject, body, headers), retries through an outage, STARTTLS with a
//! private CA, hostile subjects, attempts running out, and the three ways sending is
//! triggered (`notifications send`, a command's send-before-exit, the daemon).
//!
//! Rows are queued with `Store::queue_notification` on records made by a real `collect`.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use mailintake::config::Config;
use mailintake::notify::dispatch::run_once;
use mailintake::store::schema::notifications;
use mailintake::store::{Due, NewNotification, Store};

use crate::kit::mail::order_message;
use crate::kit::process::wait_until;
use crate::kit::sandbox::{Sandbox, success_json};
use crate::kit::smtp::SmtpServer;

/// A sandbox with one record (id returned), its config sending through `smtp_section`.
fn sandbox_with_record(smtp_section: &str) -> (Sandbox, i64) {
    let sandbox = Sandbox::new();
    sandbox.maildir("in");
    sandbox.write_config(&[("shop", "in")], "");
    let path = sandbox.path("collectors.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(smtp_section);
    std::fs::write(&path, text).unwrap();
    sandbox.deliver("in", "1.M1.mx", &order_message(1, "7709745454", 1));
    sandbox.collect();
    let id = sandbox.records()[0]["id"].as_i64().unwrap();
    (sandbox, id)
}

/// `[smtp]` for the plain server on `port`.
fn plain_smtp(port: u16, extra: &str) -> String {
    format!(
        "\n[smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nfrom = \"EMES <emes@example.test>\"\n{extra}\n"
    )
}

fn config(sandbox: &Sandbox) -> Config {
    Config::load(&sandbox.path("collectors.toml")).unwrap()
}

fn store(sandbox: &Sandbox) -> Store {
    Store::open(&config(sandbox).storage).unwrap()
}

fn queue(sandbox: &Sandbox, record_id: i64, to: &[&str], subject: &str, body: &str) -> i64 {
    let recipients: Vec<String> = to.iter().map(|s| s.to_string()).collect();
    store(sandbox)
        .queue_notification(&NewNotification {
            record_id,
            rule: "maintenance-to-callcenter",
            channel: "email",
            recipients: &recipients,
            subject,
            body,
        })
        .unwrap()
}

/// One outbox row as stored.
#[derive(Debug, Queryable)]
struct Row {
    id: i64,
    status: String,
    attempts: i32,
    last_error: Option<String>,
    server_reply: Option<String>,
}

fn outbox(sandbox: &Sandbox) -> Vec<Row> {
    let mut conn =
        SqliteConnection::establish(&sandbox.path("data/mailintake.db").to_string_lossy()).unwrap();
    // NOTE: the running daemon writes meanwhile (leases every few seconds); a reader without
    // a busy timeout fails at once if it meets a moment when the file is locked.
    conn.batch_execute("PRAGMA busy_timeout = 10000").unwrap();
    notifications::table
        .order(notifications::id.asc())
        .select((
            notifications::id,
            notifications::status,
            notifications::attempts,
            notifications::last_error,
            notifications::server_reply,
        ))
        .load(&mut conn)
        .unwrap()
}

/// The record's history lines (`event: detail`).
fn history(sandbox: &Sandbox, id: i64) -> Vec<String> {
    let shown = sandbox.json(&["records", "show", &id.to_string(), "--json"]);
    shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{}: {}", e["event"].as_str().unwrap(), e["detail"]))
        .collect()
}

#[test]
fn queued_notifications_arrive_with_recipients_subject_body_and_headers() {
    let server = SmtpServer::start();
    let (sandbox, record) = sandbox_with_record(&plain_smtp(server.port(), ""));
    let first = queue(
        &sandbox,
        record,
        &["callcenter@example.test", "Duty Desk <duty@example.test>"],
        "EMES 新增维保业务咨询单据, 单据编号: 42, 请处理, 谢谢!",
        "第一行\n second line",
    );
    let second = queue(&sandbox, record, &["gm@example.test"], "Plain subject", "");

    let report = success_json(sandbox.run(&["notifications", "send", "--json"]));
    assert_eq!(report["sent"], 2, "{report}");
    let received = server.wait_for(2);
    assert_eq!(received.len(), 2);
    let (a, b) = (&received[0], &received[1]);
    assert_eq!(a.rcpt_to, ["callcenter@example.test", "duty@example.test"]);
    assert_eq!(
        a.subject.as_deref(),
        Some("EMES 新增维保业务咨询单据, 单据编号: 42, 请处理, 谢谢!")
    );
    assert_eq!(a.body.trim_end(), "第一行\n second line");
    assert_eq!(a.header("Auto-Submitted"), ["auto-generated"]);
    assert_eq!(a.header("From"), ["EMES <emes@example.test>"]);
    assert_eq!(
        a.header("Message-ID"),
        [format!("<notification-{first}@example.test>")]
    );
    assert_eq!(a.header("MIME-Version"), ["1.0"]);
    assert!(
        a.header("Content-Type")[0].starts_with("text/plain; charset=utf-8"),
        "{:?}",
        a.header("Content-Type")
    );
    assert_eq!(b.rcpt_to, ["gm@example.test"]);
    assert_eq!(
        b.header("Message-ID"),
        [format!("<notification-{second}@example.test>")]
    );

    let rows = outbox(&sandbox);
    assert!(rows.iter().all(|r| r.status == "sent" && r.attempts == 1));
    assert!(
        rows[0].server_reply.as_deref().unwrap().starts_with("250"),
        "{rows:?}"
    );
    assert!(
        history(&sandbox, record).contains(
            &format!("notification sent: \"maintenance-to-callcenter -> callcenter@example.test, Duty Desk <duty@example.test> (notification {first})\"")
        ),
        "{:?}",
        history(&sandbox, record)
    );

    // Sent is sent: another round sends nothing again.
    let report = success_json(sandbox.run(&["notifications", "send", "--json"]));
    assert_eq!(report["sent"], 0, "{report}");
    assert_eq!(server.received().len(), 2);
}

#[test]
fn hostile_subjects_give_one_subject_header_with_the_sanitized_text() {
    let server = SmtpServer::start();
    let (sandbox, record) = sandbox_with_record(&plain_smtp(server.port(), ""));
    let long = "Заявка ".repeat(60) + &"x".repeat(300);
    let subjects = [
        "Hello\r\nBcc: victim@example.test\r\n\r\nbody?",
        long.as_str(),
        "订单确认 #42 — 谢谢\t\u{7}ü",
    ];
    for subject in subjects {
        queue(
            &sandbox,
            record,
            &["desk@example.test"],
            subject,
            "x\r\nBcc: no",
        );
    }
    success_json(sandbox.run(&["notifications", "send", "--json"]));
    let received = server.wait_for(3);
    let expected = [
        "Hello Bcc: victim@example.test body?".to_string(),
        format!("{}{}", "Заявка ".repeat(60), "x".repeat(300)),
        "订单确认 #42 — 谢谢 ü".to_string(),
    ];
    for (message, want) in received.iter().zip(&expected) {
        assert_eq!(message.header("Subject").len(), 1, "{:?}", message.headers);
        assert_eq!(message.subject.as_deref(), Some(want.as_str()));
        assert!(message.header("Bcc").is_empty(), "{:?}", message.headers);
        assert_eq!(message.rcpt_to, ["desk@example.test"]);
        assert_eq!(message.body.trim_end(), "x\nBcc: no");
        assert!(
            message.headers.iter().all(|(_, v)| v.lines().count() == 1
                || v.lines().skip(1).all(|l| l.starts_with([' ', '\t']))),
            "a header line that is not a continuation: {:?}",
            message.headers
        );
    }
}

#[test]
fn an_outage_is_ridden_out_and_every_notification_arrives_once() {
    let mut server = SmtpServer::start();
    let (sandbox, record) = sandbox_with_record(&plain_smtp(server.port(), ""));
    server.stop();
    let ids: Vec<i64> = (1..=3)
        .map(|n| {
            queue(
                &sandbox,
                record,
                &["desk@example.test"],
                &format!("n{n}"),
                "",
            )
        })
        .collect();

    let mut config = config(&sandbox);
    let smtp = config.smtp.as_mut().unwrap();
    smtp.retry.first = Duration::from_millis(50);
    smtp.retry.max = Duration::from_millis(200);
    smtp.max_attempts = 1000;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let shutdown = mailintake::ingest::Shutdown::new();
    let (_reload, reload) = tokio::sync::mpsc::channel(1);
    let daemon = runtime.spawn(mailintake::daemon::run(
        sandbox.path("collectors.toml"),
        config,
        mailintake::daemon::Signals {
            shutdown: shutdown.clone(),
            reload,
        },
    ));

    // The daemon keeps trying while the server is down...
    wait_until(Duration::from_secs(30), Duration::from_millis(50), || {
        let rows = outbox(&sandbox);
        if rows.iter().all(|r| r.status == "queued" && r.attempts >= 2) {
            Ok(())
        } else {
            Err(format!("not every row retried yet: {rows:?}"))
        }
    });
    assert!(outbox(&sandbox)[0].last_error.is_some());
    // ...and delivers everything once it is back.
    server.start_again();
    wait_until(Duration::from_secs(30), Duration::from_millis(50), || {
        let rows = outbox(&sandbox);
        if rows.iter().all(|r| r.status == "sent") {
            Ok(())
        } else {
            Err(format!("not all sent: {rows:?}"))
        }
    });
    shutdown.cancel();
    runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(20), daemon).await })
        .expect("the daemon stops")
        .unwrap()
        .unwrap();

    let mut message_ids: Vec<String> = server
        .received()
        .iter()
        .map(|m| m.header("Message-ID")[0].to_string())
        .collect();
    message_ids.sort();
    let mut want: Vec<String> = ids
        .iter()
        .map(|id| format!("<notification-{id}@example.test>"))
        .collect();
    want.sort();
    assert_eq!(message_ids, want, "each delivered exactly once");
}

#[test]
fn starttls_with_a_private_ca_is_trusted_and_another_ca_is_refused() {
    let server = SmtpServer::start_tls();
    let ca = server.ca_file().unwrap().display().to_string();
    let section = format!(
        "\n[smtp]\nhost = \"localhost\"\nport = {}\ntls = \"starttls\"\nfrom = \"emes@example.test\"\nca-file = \"{ca}\"\n",
        server.port()
    );
    let (sandbox, record) = sandbox_with_record(&section);
    queue(&sandbox, record, &["desk@example.test"], "over TLS", "");
    let report = success_json(sandbox.run(&["notifications", "send", "--json"]));
    assert_eq!(report["sent"], 1, "{report}");
    assert_eq!(server.wait_for(1)[0].subject.as_deref(), Some("over TLS"));

    // A CA that did not sign the server's certificate: nothing is sent.
    let other = tempfile::tempdir().unwrap();
    let other_ca = crate::kit::dovecot::make_certificates(other.path());
    let mut settings = config(&sandbox).smtp.unwrap();
    settings.ca_file = Some(other_ca);
    queue(
        &sandbox,
        record,
        &["desk@example.test"],
        "must not arrive",
        "",
    );
    let report = run_once(&mut store(&sandbox), &settings, Due::IgnoringBackoff, None).unwrap();
    assert_eq!((report.sent, report.retrying), (0, 1), "{report:?}");
    let row = outbox(&sandbox).pop().unwrap();
    assert_eq!(row.status, "queued");
    let error = row.last_error.unwrap();
    assert!(error.contains("certificate"), "{error}");
    assert_eq!(server.received().len(), 1);
}

#[test]
fn spent_attempts_and_bad_recipients_end_failed_with_the_last_error() {
    let mut server = SmtpServer::start();
    let (sandbox, record) = sandbox_with_record(&plain_smtp(server.port(), "max-attempts = 2"));
    server.stop();
    let down = queue(&sandbox, record, &["desk@example.test"], "down", "");

    let report = success_json(sandbox.run(&["notifications", "send", "--json"]));
    assert_eq!(report["retrying"], 1, "{report}");
    let row = &outbox(&sandbox)[0];
    assert_eq!((row.status.as_str(), row.attempts), ("queued", 1));
    let report = success_json(sandbox.run(&["notifications", "send", "--json"]));
    assert_eq!(report["failed"], 1, "{report}");
    let row = &outbox(&sandbox)[0];
    assert_eq!(
        (row.id, row.status.as_str(), row.attempts),
        (down, "failed", 2)
    );
    let error = row.last_error.clone().unwrap();
    assert!(error.contains("127.0.0.1"), "{error}");
    assert!(
        history(&sandbox, record).iter().any(|h| h.starts_with(
            "notification failed: \"maintenance-to-callcenter -> desk@example.test: smtp 127.0.0.1"
        )),
        "{:?}",
        history(&sandbox, record)
    );

    // A recipient that is no address fails at once, whatever attempts are left.
    server.start_again();
    queue(&sandbox, record, &["not an address"], "bad", "");
    let report = success_json(sandbox.run(&["notifications", "send", "--json"]));
    assert_eq!(report["failed"], 1, "{report}");
    let row = outbox(&sandbox).pop().unwrap();
    assert_eq!((row.status.as_str(), row.attempts), ("failed", 1));
    assert!(
        row.last_error
            .as_deref()
            .unwrap()
            .starts_with("recipient `not an address` is not an e-mail address"),
        "{row:?}"
    );
    assert!(server.received().is_empty());
}

#[test]
fn collect_sends_what_is_queued_before_it_exits_and_leaves_it_queued_when_smtp_is_down() {
    let mut server = SmtpServer::start();
    let (sandbox, record) = sandbox_with_record(&plain_smtp(server.port(), ""));
    queue(&sandbox, record, &["desk@example.test"], "first", "");
    sandbox.deliver("in", "2.M1.mx", &order_message(2, "7709745454", 1));
    sandbox.collect();
    // Sent before `collect` exited: no waiting.
    assert_eq!(server.received().len(), 1);
    assert_eq!(outbox(&sandbox)[0].status, "sent");

    server.stop();
    queue(&sandbox, record, &["desk@example.test"], "second", "");
    sandbox.deliver("in", "3.M1.mx", &order_message(3, "7709745454", 1));
    let report = sandbox.collect();
    assert_eq!(
        report["accepted"], 1,
        "the collect itself succeeded: {report}"
    );
    let row = outbox(&sandbox).pop().unwrap();
    assert_eq!((row.status.as_str(), row.attempts), ("queued", 1));
}

#[test]
fn the_daemon_delivers_what_is_queued_while_it_runs() {
    let server = SmtpServer::start();
    let (sandbox, record) = sandbox_with_record(&plain_smtp(server.port(), ""));
    let before = queue(&sandbox, record, &["desk@example.test"], "before start", "");
    let daemon = sandbox.spawn_daemon();
    assert_eq!(
        server.wait_for(1)[0].subject.as_deref(),
        Some("before start")
    );
    // Queued by another process while the daemon runs (a command whose own
    // send-before-exit gave up): the daemon's periodic look finds it.
    let during = queue(
        &sandbox,
        record,
        &["desk@example.test"],
        "while running",
        "",
    );
    let received = server.wait_for(2);
    assert_eq!(received[1].subject.as_deref(), Some("while running"));
    assert!(daemon.terminate().success());
    let rows = outbox(&sandbox);
    assert_eq!(
        rows.iter()
            .map(|r| (r.id, r.status.as_str()))
            .collect::<Vec<_>>(),
        [(before, "sent"), (during, "sent")]
    );
}
