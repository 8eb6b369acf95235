//! Size limits over real Maildirs: a message above `max-message-size` is quarantined by its
//! size with its headers only and left in the mailbox, batches are cut by `batch-bytes`, and
//! bad sizes in the config are errors at file:line:key. (The IMAP side is in `imap.rs`.)

use crate::kit::mail::{header_section, order_message, padded};
use crate::kit::sandbox::{Sandbox, counts};

const INBOX: &str = "inbox";

fn files_in(sandbox: &Sandbox, sub: &str) -> Vec<String> {
    sandbox.files_in(INBOX, sub)
}

#[test]
fn oversized_messages_are_quarantined_with_their_headers_and_left_in_new() {
    let sandbox = Sandbox::new();
    sandbox.maildir(INBOX);
    sandbox.write_config(&[("site-orders", INBOX)], "max-message-size = \"64KB\"");
    let big = padded(order_message(2, "7709745454", 1), 100_000);
    let limit_plus_one = padded(order_message(4, "7709745454", 1), 64 * 1024 + 1);
    let at_the_limit = padded(order_message(5, "7709745454", 1), 64 * 1024);
    sandbox.deliver(INBOX, "1000.M1.mx", &order_message(1, "7709745454", 2));
    sandbox.deliver(INBOX, "1001.M2.mx", &big);
    sandbox.deliver(INBOX, "1002.M3.mx", &order_message(3, "7709745454", 1));
    sandbox.deliver(INBOX, "1003.M4.mx", &limit_plus_one);
    sandbox.deliver(INBOX, "1004.M5.mx", &at_the_limit);

    assert_eq!(counts(&sandbox.collect()), [5, 3, 0, 2, 0]);
    let refs: Vec<String> = sandbox
        .records()
        .iter()
        .map(|r| r["source"]["order_ref"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(refs.len(), 3, "{refs:?}");
    assert_eq!(files_in(&sandbox, "new"), ["1001.M2.mx", "1003.M4.mx"]);
    assert_eq!(
        files_in(&sandbox, "cur"),
        ["1000.M1.mx:2,S", "1002.M3.mx:2,S", "1004.M5.mx:2,S"]
    );

    let entries = sandbox.json(&["quarantine", "list", "--json"]);
    assert_eq!(entries.as_array().unwrap().len(), 2);
    assert_eq!(entries[0]["reason"], "too large: 100000 bytes, limit 64KB");
    assert_eq!(entries[1]["reason"], "too large: 65537 bytes, limit 64KB");
    assert_eq!(entries[0]["source_key"], "1001.M2.mx");
    assert_eq!(entries[0]["subject"], "ORDER: 2");
    let id = entries[0]["id"].to_string();
    let raw = sandbox.run(&["quarantine", "show", &id, "--raw"]);
    assert!(raw.status.success());
    assert_eq!(
        raw.stdout,
        header_section(&big),
        "the headers, and only them"
    );
    let shown = sandbox.run(&["quarantine", "show", &id]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("too large: 100000 bytes") && shown.contains("headers only"),
        "{shown}"
    );
    let retry = sandbox.run(&["quarantine", "retry", &id]);
    assert!(!retry.status.success());
    assert!(
        String::from_utf8_lossy(&retry.stderr).contains("still in the mailbox at 1001.M2.mx"),
        "{}",
        String::from_utf8_lossy(&retry.stderr)
    );

    // A second pass reads nothing and quarantines nothing again; the files stay.
    assert_eq!(counts(&sandbox.collect()), [0, 0, 0, 0, 0]);
    assert_eq!(sandbox.quarantined(), 2);
    assert_eq!(files_in(&sandbox, "new"), ["1001.M2.mx", "1003.M4.mx"]);
}

#[test]
fn a_redelivered_copy_of_an_oversized_message_is_a_duplicate_of_its_entry() {
    let sandbox = Sandbox::new();
    sandbox.maildir(INBOX);
    sandbox.write_config(&[("site-orders", INBOX)], "max-message-size = 2048");
    let big = padded(order_message(2, "7709745454", 1), 10_000);
    sandbox.deliver(INBOX, "1000.M1.mx", &big);
    assert_eq!(counts(&sandbox.collect()), [1, 0, 0, 1, 0]);

    let mut relayed = b"Received: from relay.example by mx.example\r\n".to_vec();
    relayed.extend_from_slice(&big[..big.len() - relayed.len() - 2]);
    relayed.extend_from_slice(b"\r\n");
    assert_eq!(relayed.len(), big.len());
    sandbox.deliver(INBOX, "2000.M2.mx", &relayed);
    assert_eq!(counts(&sandbox.collect()), [1, 0, 0, 0, 1]);
    assert_eq!(sandbox.quarantined(), 1);
    assert_eq!(files_in(&sandbox, "new"), ["1000.M1.mx", "2000.M2.mx"]);
}

/// Runs `collect` with a debug log and checks its `batch read` lines: several batches, none
/// reading more than `budget` bytes, `total` messages read in all.
pub fn collect_in_byte_batches(sandbox: &Sandbox, total: usize, budget: usize) {
    let out = sandbox
        .command(&["collect", "--json"])
        .env("MAILINTAKE_LOG", "mailintake=debug")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let batches = read_batches(&log);
    assert!(batches.len() >= 5, "{log}");
    assert!(batches.iter().all(|&(_, bytes)| bytes <= budget), "{log}");
    assert_eq!(batches.iter().map(|&(read, _)| read).sum::<usize>(), total);
}

/// `(messages, bytes)` read whole by each batch, from a debug log's `batch read` lines.
fn read_batches(log: &str) -> Vec<(usize, usize)> {
    let field = |line: &str, name: &str| -> usize {
        let at = line.find(&format!(" {name}=")).unwrap() + name.len() + 2;
        let digits: String = line[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().unwrap()
    };
    log.lines()
        .filter(|line| line.contains("batch read"))
        .map(|line| (field(line, "read"), field(line, "bytes")))
        .collect()
}

#[test]
fn batches_cut_by_bytes_store_every_message_once() {
    let sandbox = Sandbox::new();
    sandbox.maildir(INBOX);
    sandbox.write_config(&[("site-orders", INBOX)], "batch-bytes = \"8KB\"");
    let total = 30;
    for n in 0..total {
        let name = format!("{:04}.M{n}.mx", 1000 + n);
        sandbox.deliver(INBOX, &name, &order_message(n, "7709745454", 1 + n % 6));
    }
    collect_in_byte_batches(&sandbox, total, 8192);
    sandbox.assert_one_record_per_order(total);
    assert!(files_in(&sandbox, "new").is_empty());
}

#[test]
fn bad_sizes_are_refused_at_file_line_and_key() {
    let sandbox = Sandbox::new();
    sandbox.maildir(INBOX);
    for (keys, key, message) in [
        (
            "max-message-size = \"25 megs\"",
            "collector.max-message-size",
            "give a size like",
        ),
        (
            "max-message-size = \"1.5MB\"",
            "collector.max-message-size",
            "give a size like",
        ),
        (
            "max-message-size = -1",
            "collector.max-message-size",
            "give a size like",
        ),
        (
            "max-message-size = true",
            "collector.max-message-size",
            "give a size like",
        ),
        (
            "max-message-size = \"1GB\"",
            "collector.max-message-size",
            "1GB is out of range",
        ),
        (
            "max-message-size = 100",
            "collector.max-message-size",
            "100 bytes is out of range",
        ),
        (
            "batch-bytes = \"0KB\"",
            "collector.batch-bytes",
            "0 bytes is out of range",
        ),
        (
            "batch-bytes = \"2GB\"",
            "collector.batch-bytes",
            "2GB is out of range",
        ),
    ] {
        sandbox.write_config(&[("site-orders", INBOX)], keys);
        let out = sandbox.run(&["check"]);
        let err = String::from_utf8_lossy(&out.stderr);
        let path = sandbox.path("collectors.toml").display().to_string();
        assert!(!out.status.success(), "{keys}: {err}");
        assert!(
            err.contains(&format!("{path}:11:")) && err.contains(&format!("{key}: {message}")),
            "{keys}: {err}"
        );
    }
}
