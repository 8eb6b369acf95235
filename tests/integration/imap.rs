//! IMAP collectors against a real Dovecot started by the tests (see tests/kit/dovecot.rs):
//! TLS modes, routing, after-processing actions, quarantine keyword, UIDVALIDITY change,
//! failing collectors, the daemon with IDLE, SIGTERM and SIGKILL.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::kit::dovecot::{Dovecot, DovecotOptions};
use crate::kit::imap_server::MailboxMessage;
use crate::kit::mail::{header_section, order_message, padded};
use crate::kit::process::wait_until;
use crate::kit::sandbox::{HTTP_SECTION, Sandbox, collector_names, counts, failure_text, sample};
use crate::size_limits::collect_in_byte_batches;

pub(crate) const USER: &str = "orders@example.test";
pub(crate) const PASSWORD: &str = "s3cret-pass";

pub(crate) fn dovecot(tls: bool) -> Dovecot {
    let server = Dovecot::start(DovecotOptions {
        tls,
        ..DovecotOptions::default()
    });
    server.add_user(USER, PASSWORD);
    server
}

/// One `[[queue]]` + `[[collector]]` block for an IMAP collector.
pub(crate) struct ImapCollector<'a> {
    pub(crate) name: &'a str,
    pub(crate) port: u16,
    pub(crate) tls: &'a str,
    pub(crate) mailbox: &'a str,
    /// Extra collector keys (before the tables).
    pub(crate) keys: &'a str,
    /// Extra `[collector.imap]` keys.
    pub(crate) imap_keys: &'a str,
    /// A `[collector.after]` table body, if any.
    pub(crate) after: &'a str,
}

impl<'a> ImapCollector<'a> {
    pub(crate) fn new(name: &'a str, port: u16) -> Self {
        ImapCollector {
            name,
            port,
            tls: "none",
            mailbox: "INBOX",
            keys: "",
            imap_keys: "",
            after: "",
        }
    }

    fn toml(&self) -> String {
        let after = if self.after.is_empty() {
            String::new()
        } else {
            format!("[collector.after]\n{}\n", self.after)
        };
        format!(
            "[[queue]]\nname = \"{name}\"\n\n[[collector]]\nname = \"{name}\"\nqueue = \"{name}\"\nschedule = \"0 0 0 1 1 *\"\n{keys}\n[collector.imap]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"{tls}\"\nusername = \"{USER}\"\npassword-file = \"imap-password\"\nmailbox = \"{mailbox}\"\ntimeout-secs = 10\n{imap_keys}\n{after}\n",
            name = self.name,
            keys = self.keys,
            port = self.port,
            tls = self.tls,
            mailbox = self.mailbox,
            imap_keys = self.imap_keys,
        )
    }
}

pub(crate) fn sandbox_for(collectors: &[ImapCollector<'_>]) -> Sandbox {
    let sandbox = Sandbox::new();
    std::fs::write(sandbox.path("imap-password"), format!("{PASSWORD}\n")).unwrap();
    write_imap_config(&sandbox, collectors);
    sandbox
}

fn write_imap_config(sandbox: &Sandbox, collectors: &[ImapCollector<'_>]) {
    let mut text = String::from("[storage]\nurl = \"sqlite://data/mailintake.db\"\n\n");
    for c in collectors {
        text.push_str(&c.toml());
    }
    // A daemon started here serves its page on a port of its own, never the shared 8080.
    text.push_str(HTTP_SECTION);
    std::fs::write(sandbox.path("collectors.toml"), text).unwrap();
}

pub(crate) fn flags_of(server: &Dovecot, mailbox: &str, uid: u32) -> Vec<String> {
    server
        .messages(USER, mailbox)
        .into_iter()
        .find(|m| m.uid == uid)
        .unwrap_or_else(|| panic!("UID {uid} is not in {mailbox}"))
        .flags
}

#[test]
fn plain_imap_collect_stores_marks_seen_and_leaves_the_rest() {
    let server = dovecot(false);
    let order = server.append(USER, PASSWORD, "INBOX", &sample("01-seed-order.eml"));
    let other = server.append(USER, PASSWORD, "INBOX", &sample("21-reply-question.eml"));
    let broken = server.append(USER, PASSWORD, "INBOX", &sample("26-truncated-json.eml"));
    let lead = server.append(USER, PASSWORD, "INBOX", &sample("02-lead-octet-stream.eml"));
    let sandbox = sandbox_for(&[ImapCollector::new("site-orders", server.port())]);

    assert_eq!(counts(&sandbox.collect()), [4, 2, 1, 1, 0]);
    assert!(flags_of(&server, "INBOX", order).contains(&"\\Seen".to_string()));
    assert!(flags_of(&server, "INBOX", lead).contains(&"\\Seen".to_string()));
    assert!(
        flags_of(&server, "INBOX", other).is_empty(),
        "a message without the keyword is not touched"
    );
    let broken_flags = flags_of(&server, "INBOX", broken);
    assert!(
        broken_flags.contains(&"$MailintakeQuarantined".to_string())
            && !broken_flags.contains(&"\\Seen".to_string()),
        "{broken_flags:?}"
    );

    let records = sandbox.records();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["contact_name"], "Прилепский Алексей Анатольевич");
    assert_eq!(records[0]["lines"][0]["price"], 500.0);
    assert_eq!(records[1]["kind"], "lead");

    // Nothing is fetched again; a new message is.
    assert_eq!(counts(&sandbox.collect()), [0, 0, 0, 0, 0]);
    server.append(USER, PASSWORD, "INBOX", &order_message(7, "7709745454", 2));
    assert_eq!(counts(&sandbox.collect()), [1, 1, 0, 0, 0]);
    assert_eq!(sandbox.quarantined(), 1);

    let status = sandbox.json(&["collectors", "status", "--json"]);
    assert_eq!(status[0]["collector"], "site-orders");
    assert_eq!(status[0]["counts"]["accepted"], 1);
    assert!(
        status[0]["last_success"].is_string() && status[0]["last_error"].is_null(),
        "{status}"
    );
}

/// `text` in base64, by coreutils (the forms a SASL PLAIN login would put on the wire).
fn base64(text: &[u8]) -> String {
    let mut child = std::process::Command::new("base64")
        .args(["-w", "0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), text).unwrap();
    String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
}

/// Issue 15: at `trace`, async-imap logged the `LOGIN "user" "password"` it sent. The most
/// specific directive for its target is asked for too: the filter must hold against it.
#[test]
fn the_password_is_never_logged_even_at_trace() {
    let server = dovecot(false);
    server.append(USER, PASSWORD, "INBOX", &order_message(1, "7709745454", 1));
    server.append(USER, PASSWORD, "INBOX", &sample("21-reply-question.eml"));
    let sandbox = sandbox_for(&[ImapCollector::new("site-orders", server.port())]);

    let output = sandbox
        .command(&["collect", "--json"])
        .env(
            "MAILINTAKE_LOG",
            "trace,async_imap=trace,async_imap::imap_stream=trace",
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(counts(&report[0]), [2, 1, 1, 0, 0]);
    assert!(
        stderr.contains("DEBUG") && stderr.contains("skipped"),
        "the log ran at debug level or finer: {stderr}"
    );
    let secrets = [
        PASSWORD.to_string(),
        base64(PASSWORD.as_bytes()),
        base64(format!("\0{USER}\0{PASSWORD}").as_bytes()),
        base64(format!("{USER}\0{PASSWORD}").as_bytes()),
    ];
    for secret in &secrets {
        assert!(
            !stderr.contains(secret.as_str()),
            "`{secret}` was logged:\n{stderr}"
        );
    }
}

/// Issue 15: `check` reads the `ca-file` (PEM) and the password, without connecting.
#[test]
fn check_reads_the_ca_file_and_the_password_file() {
    let server = dovecot(true);
    let ca_file = server.ca_file().unwrap();
    let ca = format!("ca-file = \"{}\"", ca_file.display());
    let mut collector = ImapCollector::new("implicit", server.tls_port().unwrap());
    collector.tls = "implicit";
    collector.imap_keys = &ca;
    let sandbox = sandbox_for(&[collector]);
    let ok = sandbox.run(&["check"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    // A file that holds no PEM certificate (the password file).
    let not_a_ca = format!("ca-file = \"{}\"", sandbox.path("imap-password").display());
    let mut collector = ImapCollector::new("implicit", server.tls_port().unwrap());
    collector.imap_keys = &not_a_ca;
    write_imap_config(&sandbox, &[collector]);
    let err = failure_text(sandbox.run(&["check"]));
    assert!(
        err.contains("collector.imap.ca-file: collector `implicit`: ")
            && err.contains("holds no certificate"),
        "{err}"
    );

    std::fs::remove_file(sandbox.path("imap-password")).unwrap();
    write_imap_config(&sandbox, &[ImapCollector::new("plain", server.port())]);
    let err = failure_text(sandbox.run(&["check"]));
    assert!(
        err.contains("collector.imap.password-file: collector `plain`: cannot read password file"),
        "{err}"
    );
}

#[test]
fn implicit_tls_and_starttls_verify_the_server_against_the_ca_file() {
    let server = dovecot(true);
    server.append(USER, PASSWORD, "INBOX", &order_message(1, "7709745454", 1));
    server.append(USER, PASSWORD, "Shop", &order_message(2, "7709745454", 1));
    let ca = format!("ca-file = \"{}\"", server.ca_file().unwrap().display());
    let mut implicit = ImapCollector::new("implicit", server.tls_port().unwrap());
    implicit.tls = "implicit";
    implicit.imap_keys = &ca;
    let mut starttls = ImapCollector::new("starttls", server.port());
    starttls.tls = "starttls";
    starttls.mailbox = "Shop";
    starttls.imap_keys = &ca;
    let sandbox = sandbox_for(&[implicit, starttls]);
    let reports = sandbox.json(&["collect", "--json"]);
    assert_eq!(counts(&reports[0]), [1, 1, 0, 0, 0]);
    assert_eq!(counts(&reports[1]), [1, 1, 0, 0, 0]);

    // Without the private CA the certificate is not trusted, and nothing is read.
    server.append(USER, PASSWORD, "INBOX", &order_message(3, "7709745454", 1));
    let mut untrusted = ImapCollector::new("implicit", server.tls_port().unwrap());
    untrusted.tls = "implicit";
    write_imap_config(&sandbox, &[untrusted]);
    let out = sandbox.run(&["collect", "--json"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    assert!(
        !err.contains(PASSWORD),
        "the password never appears in errors"
    );
}

#[test]
fn two_collectors_on_one_account_route_to_their_own_queues() {
    let server = dovecot(false);
    server.append(USER, PASSWORD, "INBOX", &order_message(1, "7709745454", 1));
    server.append(USER, PASSWORD, "Forms", &sample("15-minimal-lead.eml"));
    server.append(USER, PASSWORD, "Forms", &sample("02-lead-octet-stream.eml"));
    let mut forms = ImapCollector::new("forms", server.port());
    forms.mailbox = "Forms";
    let sandbox = sandbox_for(&[ImapCollector::new("shop", server.port()), forms]);
    sandbox.collect_all();
    let queue_of = |q: &str| {
        sandbox
            .json(&["records", "list", "--json", "--queue", q])
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!((queue_of("shop"), queue_of("forms")), (1, 2));
}

#[test]
fn move_and_delete_actions_and_quarantine_folder() {
    let server = dovecot(false);
    server.append(USER, PASSWORD, "INBOX", &order_message(1, "7709745454", 1));
    server.append(USER, PASSWORD, "INBOX", &sample("27-json-array.eml"));
    let keep = server.append(USER, PASSWORD, "INBOX", &sample("22-reorder.eml"));
    server.append(
        USER,
        PASSWORD,
        "Deletes",
        &order_message(2, "7709745454", 1),
    );
    let mut mover = ImapCollector::new("mover", server.port());
    mover.after = "action = \"move\"\nmove-to = \"Processed\"\nquarantine-move-to = \"Quarantine\"";
    let mut deleter = ImapCollector::new("deleter", server.port());
    deleter.mailbox = "Deletes";
    deleter.after = "action = \"delete\"";
    let sandbox = sandbox_for(&[mover, deleter]);
    sandbox.collect_all();
    let uids = |mailbox: &str| server.messages(USER, mailbox).len();
    assert_eq!(
        server
            .messages(USER, "INBOX")
            .iter()
            .map(|m| m.uid)
            .collect::<Vec<_>>(),
        [keep]
    );
    assert_eq!(
        (uids("Processed"), uids("Quarantine"), uids("Deletes")),
        (1, 1, 0)
    );
    assert_eq!(sandbox.records().len(), 2);
}

#[test]
fn delete_after_days_expunges_only_old_processed_messages() {
    let server = dovecot(false);
    let old_date = Some("01-Jan-2020 10:00:00 +0000");
    let old_order = server.append_with(
        USER,
        PASSWORD,
        "INBOX",
        &[],
        old_date,
        &order_message(1, "7709745454", 1),
    );
    let old_other = server.append_with(
        USER,
        PASSWORD,
        "INBOX",
        &[],
        old_date,
        &sample("21-reply-question.eml"),
    );
    let new_order = server.append(USER, PASSWORD, "INBOX", &order_message(2, "7709745454", 1));
    let mut collector = ImapCollector::new("site", server.port());
    collector.after = "delete-after-days = 30";
    let sandbox = sandbox_for(&[collector]);
    sandbox.collect();
    let left: Vec<u32> = server
        .messages(USER, "INBOX")
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(
        left,
        [old_other, new_order],
        "old order {old_order} expunged"
    );
    assert_eq!(sandbox.records().len(), 2);
}

#[test]
fn uidvalidity_change_rescans_without_duplicates() {
    let server = dovecot(false);
    for n in 0..3 {
        server.append(USER, PASSWORD, "INBOX", &order_message(n, "7709745454", 1));
    }
    let sandbox = sandbox_for(&[ImapCollector::new("site", server.port())]);
    assert_eq!(counts(&sandbox.collect()), [3, 3, 0, 0, 0]);
    server.set_uidvalidity(USER, "INBOX", 4242);
    server.append(USER, PASSWORD, "INBOX", &order_message(9, "7709745454", 1));
    assert_eq!(counts(&sandbox.collect()), [4, 1, 0, 0, 3]);
    assert_eq!(sandbox.records().len(), 4);
    let status = sandbox.json(&["collectors", "status", "--json"]);
    assert_eq!(status[0]["uidvalidity"], 4242);
}

#[test]
fn a_failing_collector_does_not_stop_the_others() {
    let server = dovecot(false);
    server.append(USER, PASSWORD, "INBOX", &order_message(1, "7709745454", 1));
    let dead_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let good = ImapCollector::new("good", server.port());
    let dead = ImapCollector::new("dead", dead_port);
    let mut wrong = ImapCollector::new("wrong", server.port());
    wrong.imap_keys = "password-env = \"MAILINTAKE_TEST_WRONG_PASSWORD\"";
    let sandbox = sandbox_for(&[dead, wrong, good]);
    // The wrong collector uses an env password instead of the file.
    let text = std::fs::read_to_string(sandbox.path("collectors.toml")).unwrap();
    let text = text.replacen(
        "password-file = \"imap-password\"\nmailbox = \"INBOX\"\ntimeout-secs = 10\npassword-env",
        "mailbox = \"INBOX\"\ntimeout-secs = 10\npassword-env",
        1,
    );
    std::fs::write(sandbox.path("collectors.toml"), text).unwrap();
    let out = sandbox
        .command(&["collect", "--json"])
        .env("MAILINTAKE_LOG", "info")
        .env("MAILINTAKE_TEST_WRONG_PASSWORD", "not-the-password")
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "failures are reported in the exit status"
    );
    // Issue 13: every collector is reported; the failed ones with their `error` and what
    // they did before it (nothing here).
    let reports: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(collector_names(&reports), ["dead", "wrong", "good"]);
    for failed in &reports.as_array().unwrap()[..2] {
        assert_eq!(counts(failed), [0, 0, 0, 0, 0], "{failed}");
        assert!(failed["error"].is_string(), "{failed}");
    }
    assert!(
        reports[0]["error"]
            .as_str()
            .unwrap()
            .contains("cannot connect"),
        "{reports}"
    );
    assert!(
        reports[1]["error"].as_str().unwrap().contains("login as"),
        "{reports}"
    );
    assert_eq!(counts(&reports[2]), [1, 1, 0, 0, 0]);
    assert!(reports[2].get("error").is_none(), "{reports}");
    assert!(!reports.to_string().contains("not-the-password"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("dead") && err.contains("wrong") && !err.contains("not-the-password"),
        "{err}"
    );
    assert_eq!(sandbox.records().len(), 1);
    let status = sandbox.json(&["collectors", "status", "--json"]);
    let error_of = |name: &str| {
        status
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["collector"] == name)
            .unwrap()["last_error"]
            .clone()
    };
    assert!(
        error_of("dead").as_str().unwrap().contains("connect"),
        "{status}"
    );
    assert!(
        error_of("wrong").as_str().unwrap().contains("login"),
        "{status}"
    );
    assert!(error_of("good").is_null());
}

/// Appends orders `0..total` (1 to 6 lines each) to INBOX over one connection.
fn append_orders(server: &Dovecot, total: usize) {
    let mut imap = server.connect_as(USER, PASSWORD);
    for n in 0..total {
        imap.append(
            "INBOX",
            &[],
            None,
            &order_message(n, "7709745454", 1 + n % 6),
        );
    }
    imap.logout();
}

/// Asserts that every message in INBOX is `\Seen`: every stored one was acknowledged.
fn assert_all_seen(server: &Dovecot) {
    let unseen = MailboxMessage::unseen(&server.messages(USER, "INBOX"));
    assert_eq!(unseen, 0, "every stored message is acknowledged");
}

/// A daemon with one `mode = "idle"` collector on a server holding one order, once that
/// order is stored. The schedule is yearly: only the start-up pass and IDLE bring mail in.
fn idle_daemon(server: &Dovecot) -> (Sandbox, crate::kit::process::Daemon) {
    server.append(USER, PASSWORD, "INBOX", &order_message(1, "7709745454", 1));
    let mut collector = ImapCollector::new("site", server.port());
    collector.keys = "mode = \"idle\"";
    let sandbox = sandbox_for(&[collector]);
    let daemon = sandbox.spawn_daemon();
    sandbox.wait_for_records(1, Duration::from_secs(15));
    (sandbox, daemon)
}

#[test]
fn daemon_with_idle_picks_up_an_appended_message_and_stops_on_sigterm() {
    let server = dovecot(false);
    let (sandbox, daemon) = idle_daemon(&server);
    std::thread::sleep(Duration::from_millis(500));
    server.append(USER, PASSWORD, "INBOX", &order_message(2, "7709745454", 1));
    sandbox.wait_for_records(2, Duration::from_secs(10));
    assert!(daemon.terminate().success());
}

#[test]
fn daemon_killed_mid_drain_and_restarted_stores_each_message_once() {
    let server = dovecot(false);
    let total = 600;
    append_orders(&server, total);
    let mut collector = ImapCollector::new("site", server.port());
    collector.keys = "batch-size = 50";
    let sandbox = sandbox_for(&[collector]);
    for delay in [400u64, 700, 250] {
        let daemon = sandbox.spawn_daemon();
        std::thread::sleep(Duration::from_millis(delay));
        daemon.kill();
    }
    let daemon = sandbox.spawn_daemon();
    sandbox.wait_for_records(total, Duration::from_secs(60));
    assert!(daemon.terminate().success());
    sandbox.assert_one_record_per_order(total);
    assert_all_seen(&server);
}

/// The `out=N` (bytes sent to the client) of every IMAP session Dovecot logged out, once
/// `sessions` of them are in its log.
fn bytes_sent_per_session(server: &Dovecot, sessions: usize) -> Vec<usize> {
    wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        let sent: Vec<usize> = server
            .log()
            .lines()
            .filter_map(|line| {
                let at = line.find(" out=")? + 5;
                let digits: String = line[at..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                digits.parse().ok()
            })
            .collect();
        if sent.len() >= sessions {
            Ok(sent)
        } else {
            Err(format!(
                "{} sessions logged out\n{}",
                sent.len(),
                server.log()
            ))
        }
    })
}

#[test]
fn an_oversized_message_is_quarantined_by_its_size_without_being_fetched() {
    let server = dovecot(false);
    let big_size = 3 * 1024 * 1024;
    let big = padded(order_message(2, "7709745454", 1), big_size);
    let first = server.append(USER, PASSWORD, "INBOX", &order_message(1, "7709745454", 1));
    let oversized = server.append(USER, PASSWORD, "INBOX", &big);
    let last = server.append(USER, PASSWORD, "INBOX", &order_message(3, "7709745454", 1));
    let mut collector = ImapCollector::new("site", server.port());
    collector.keys = "max-message-size = \"1MB\"";
    let sandbox = sandbox_for(&[collector]);

    assert_eq!(counts(&sandbox.collect()), [3, 2, 0, 1, 0]);
    for uid in [first, last] {
        assert!(flags_of(&server, "INBOX", uid).contains(&"\\Seen".to_string()));
    }
    let flags = flags_of(&server, "INBOX", oversized);
    assert!(
        flags.contains(&"$MailintakeQuarantined".to_string())
            && !flags.contains(&"\\Seen".to_string()),
        "{flags:?}"
    );
    let entries = sandbox.json(&["quarantine", "list", "--json"]);
    assert_eq!(entries.as_array().unwrap().len(), 1);
    assert_eq!(
        entries[0]["reason"],
        format!("too large: {big_size} bytes, limit 1MB")
    );
    let id = entries[0]["id"].to_string();
    let raw = sandbox.run(&["quarantine", "show", &id, "--raw"]);
    assert_eq!(raw.stdout, header_section(&big));
    assert_eq!(sandbox.records().len(), 2);

    // Three appends and the collector's session: none sent the big message's body.
    let sent = bytes_sent_per_session(&server, 4);
    assert!(sent.iter().all(|&bytes| bytes < 1024 * 1024), "{sent:?}");

    // Set aside by its keyword: the next pass does not see it.
    assert_eq!(counts(&sandbox.collect()), [0, 0, 0, 0, 0]);
    assert_eq!(sandbox.quarantined(), 1);
}

#[test]
fn batches_cut_by_bytes_store_every_message_once_and_acknowledge_it() {
    let server = dovecot(false);
    let total = 40;
    append_orders(&server, total);
    let mut collector = ImapCollector::new("site", server.port());
    collector.keys = "batch-bytes = \"8KB\"\nbatch-size = 15";
    let sandbox = sandbox_for(&[collector]);
    collect_in_byte_batches(&sandbox, total, 8192);
    sandbox.assert_one_record_per_order(total);
    assert_all_seen(&server);
    assert_eq!(counts(&sandbox.collect()), [0, 0, 0, 0, 0]);
}

/// Issue 14: unseen mail whose subject carries the keyword in another case or inside a word
/// ("REORDER", "ORDERS", "order:") is listed by every pass's keyword search, found not ours
/// and left unseen. The first look reads it; later passes, in new processes, read none of it.
#[test]
fn mail_skipped_once_is_not_fetched_again_and_stays_unseen() {
    let server = dovecot(false);
    let big = 256 * 1024;
    let mut skipped = Vec::new();
    for name in ["22-reorder.eml", "23-orders.eml", "24-lowercase-order.eml"] {
        skipped.push(server.append(USER, PASSWORD, "INBOX", &padded(sample(name), big)));
    }
    server.append(USER, PASSWORD, "INBOX", &order_message(1, "7709745454", 1));
    let sandbox = sandbox_for(&[ImapCollector::new("site", server.port())]);

    assert_eq!(counts(&sandbox.collect()), [4, 1, 3, 0, 0]);
    // Later passes: the keyword search lists the three again (the checkpoint is past them),
    // and none of them is fetched or counted.
    server.append(USER, PASSWORD, "INBOX", &order_message(2, "7709745454", 1));
    assert_eq!(counts(&sandbox.collect()), [1, 1, 0, 0, 0]);
    assert_eq!(counts(&sandbox.collect()), [0, 0, 0, 0, 0]);
    // In Dovecot's log, in order: four appends, the first pass, an append, two passes. The
    // first pass sent the three big messages, the two later ones not one of them.
    let sent = bytes_sent_per_session(&server, 8);
    assert!(sent[4] > 3 * big, "{sent:?}");
    assert!(
        sent[6] < big && sent[7] < big,
        "a skipped message was fetched again: {sent:?}"
    );
    for uid in skipped {
        assert!(flags_of(&server, "INBOX", uid).is_empty(), "UID {uid}");
    }
    assert_eq!(sandbox.records().len(), 2);
}

/// Issue 14: an IDLE collector runs its passes on the connection it idles on: one login for
/// the daemon's whole life, however much mail IDLE brings; a connection the server drops is
/// replaced, and the daemon logs out at SIGTERM.
#[test]
fn idle_collector_runs_every_pass_on_its_one_connection_and_reconnects_when_dropped() {
    let server = dovecot(false);
    let (sandbox, daemon) = idle_daemon(&server);
    for n in 2..=4 {
        server.append(USER, PASSWORD, "INBOX", &order_message(n, "7709745454", 1));
        sandbox.wait_for_records(n, Duration::from_secs(10));
    }
    // Dovecot's log, once it holds `count` lines containing `what` (it is written a moment
    // after the fact); never more.
    let log_with = |what: &str, count: usize| {
        let log = wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
            let log = server.log();
            match log.matches(what).count() {
                n if n >= count => Ok(log),
                n => Err(format!("{n} lines with {what:?}\n{log}")),
            }
        });
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(server.log().matches(what).count(), count, "{log}");
    };
    // Four appends, each a login of its own, and the daemon's one.
    log_with("imap-login: Info: Login:", 5);

    // The server drops the connection: the collector logs in again and IDLE brings mail in.
    server.doveadm(&["kick", USER]);
    server.append(USER, PASSWORD, "INBOX", &order_message(5, "7709745454", 1));
    sandbox.wait_for_records(5, Duration::from_secs(15));
    log_with("imap-login: Info: Login:", 7);
    assert!(daemon.terminate().success());
    // Every session but the kicked one logged out politely, the daemon's last one too.
    log_with("Logged out", 6);
    assert_all_seen(&server);
}
