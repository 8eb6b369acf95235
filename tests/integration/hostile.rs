//! Hostile input never stops a collector: a message is accepted, skipped or quarantined
//! with a short reason, the same way every time, and the rest of its batch is stored.
//! The corpus is the kit's seeded hostile generator (`tests/kit/hostile.rs`).

use std::collections::BTreeMap;

use mail_parser::MessageParser;
use mailintake::decode::DecodeRules;
use mailintake::decode::nesting::{MAX_NESTING, nesting_depth, tree_depth};
use mailintake::decode::reason::MAX_REASON_CHARS;
use mailintake::ingest::{Mapped, prepare};
use mailintake::mapping::PayloadFormat;
use serde_json::Value;

use crate::kit::hostile::{Hostile, hostile_corpus};
use crate::kit::mail::order_message;
use crate::kit::sandbox::{Sandbox, counts, run_bare, success_json};

const INBOX: &str = "inbox";

/// `levels` attached messages within each other, the reproduction.
fn nested(levels: usize) -> Vec<u8> {
    let mut raw = b"Subject: ORDER: 1\r\nContent-Type: message/rfc822\r\n\r\n".repeat(levels);
    raw.extend_from_slice(b"Subject: x\r\n\r\nhi\r\n");
    raw
}

fn parse_file(sandbox: &Sandbox, name: &str, raw: &[u8]) -> Value {
    let path = sandbox.path(name);
    std::fs::write(&path, raw).unwrap();
    success_json(run_bare(&["parse", "--json", path.to_str().unwrap()]))
}

fn assert_reason_is_short(reason: &str, what: &str) {
    assert!(!reason.trim().is_empty(), "{what}: empty reason");
    let chars = reason.chars().count();
    assert!(
        chars <= MAX_REASON_CHARS,
        "{what}: a {chars}-character reason"
    );
}

#[test]
fn deeply_nested_messages_are_quarantined_by_parse_with_depth_and_limit() {
    let sandbox = Sandbox::new();
    for levels in [5_000, 20_000] {
        let outcome = parse_file(&sandbox, "deep.eml", &nested(levels));
        assert_eq!(outcome["status"], "quarantined", "{outcome}");
        assert_eq!(
            outcome["reason"],
            format!(
                "attached messages are nested {levels} levels deep, limit {MAX_NESTING}; not parsed"
            ),
        );
        assert_eq!(outcome["subject"], "ORDER: 1");
    }
}

#[test]
fn a_deep_message_in_a_batch_is_quarantined_and_every_order_is_stored() {
    let sandbox = Sandbox::new();
    sandbox.maildir(INBOX);
    sandbox.write_config(&[("site-orders", INBOX)], "");
    // More than enough for the batch to be decoded on several threads.
    let orders = 40;
    for n in 0..orders {
        let raw = order_message(1000 + n, "7709745454", 2);
        sandbox.deliver(INBOX, &format!("{}.M{n}.mx", 1000 + n), &raw);
    }
    sandbox.deliver(INBOX, "1020.Mdeep.mx", &nested(5_000));

    let report = sandbox.collect();
    assert_eq!(counts(&report), [41, 40, 0, 1, 0], "{report}");
    sandbox.assert_one_record_per_order(orders);
    let entries = sandbox.json(&["quarantine", "list", "--json"]);
    assert_eq!(entries.as_array().unwrap().len(), 1, "{entries}");
    assert!(
        entries[0]["reason"]
            .as_str()
            .unwrap()
            .contains("nested 5000 levels deep, limit 32"),
        "{entries}"
    );
    let left: Vec<_> = std::fs::read_dir(sandbox.path(INBOX).join("new"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["1020.Mdeep.mx"]);
}

#[test]
fn fifty_thousand_unusable_parts_give_a_short_reason_that_counts_the_rest() {
    let mut raw =
        b"Subject: ORDER: 7\r\nContent-Type: multipart/mixed; boundary=\"p\"\r\n\r\n".to_vec();
    for i in 0..50_000 {
        raw.extend_from_slice(
            format!("--p\r\nContent-Type: text/plain; name=\"part{i}.txt\"\r\n\r\nno\r\n")
                .as_bytes(),
        );
    }
    raw.extend_from_slice(b"--p--\r\n");
    let outcome = parse_file(&Sandbox::new(), "parts.eml", &raw);
    let reason = outcome["reason"].as_str().unwrap();
    assert_reason_is_short(reason, "50,000 parts");
    assert!(
        reason.starts_with("no attachment holds a JSON object: `part0.txt`: invalid JSON"),
        "{reason}"
    );
    assert!(reason.ends_with("; and 49995 more"), "{reason}");
}

/// `prepare`'s verdict on one message, as a word and a reason.
fn verdict(message: &Hostile) -> (&'static str, String) {
    match prepare(
        &message.raw,
        &DecodeRules::default(),
        &PayloadFormat::default(),
    )
    .mapped
    {
        Mapped::Accept(record) => ("accepted", record.payload.len().to_string()),
        Mapped::Skip(reason) => ("skipped", reason),
        Mapped::Quarantine(reason) => ("quarantined", reason),
    }
}

#[test]
fn hostile_messages_get_one_stable_short_verdict_from_prepare() {
    let corpus = hostile_corpus(3_000);
    let mut seen: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for (i, message) in corpus.iter().enumerate() {
        let what = format!("message {i} ({})", message.kind);
        let first = verdict(message);
        assert_eq!(first, verdict(message), "{what}: a second run differs");
        if first.0 != "accepted" {
            assert_reason_is_short(&first.1, &what);
        }
        if message.kind == "valid order" || message.kind == "forwarded order" {
            assert_eq!(first.0, "accepted", "{what}: {}", first.1);
        }
        // The probe never finds less depth than the parser builds (checked where the
        // message is shallow enough to be parsed at all).
        let probed = nesting_depth(&message.raw);
        if probed <= MAX_NESTING
            && let Some(parsed) = MessageParser::default().parse(&message.raw)
        {
            assert!(tree_depth(&parsed) <= probed, "{what}: probe {probed}");
        }
        *seen.entry((message.kind, first.0)).or_default() += 1;
    }
    // The corpus exercised what it claims to: deep ones quarantined, shallow ones accepted.
    assert!(
        seen.contains_key(&("nested messages", "quarantined")),
        "{seen:?}"
    );
    assert!(
        seen.contains_key(&("nested messages", "accepted")),
        "{seen:?}"
    );
    assert!(seen.contains_key(&("deep JSON", "quarantined")), "{seen:?}");
    assert!(
        seen.contains_key(&("mutated order", "accepted")),
        "{seen:?}"
    );
}

#[test]
fn hostile_batch_is_accounted_for_by_parse_and_by_maildir_collect_the_same_way_twice() {
    let corpus = hostile_corpus(400);
    let expected: Vec<_> = corpus.iter().map(verdict).collect();
    let skipped = expected.iter().filter(|v| v.0 == "skipped").count();

    // parse: one message of each kind, and what it says agrees with prepare.
    let sandbox = Sandbox::new();
    let mut kinds_done = Vec::new();
    for (message, (status, reason)) in corpus.iter().zip(&expected) {
        if kinds_done.contains(&message.kind) {
            continue;
        }
        kinds_done.push(message.kind);
        let outcome = parse_file(&sandbox, "m.eml", &message.raw);
        assert_eq!(outcome["status"], *status, "{}: {outcome}", message.kind);
        if *status != "accepted" {
            assert_eq!(outcome["reason"], *reason, "{}", message.kind);
        }
    }

    // collect, on two mailboxes holding the same messages.
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let sandbox = Sandbox::new();
            sandbox.maildir(INBOX);
            sandbox.write_config(&[("site-orders", INBOX)], "");
            for (i, message) in corpus.iter().enumerate() {
                sandbox.deliver(INBOX, &format!("{}.M{i}.mx", 2000 + i), &message.raw);
            }
            let report = sandbox.collect();
            let [fetched, accepted, skipped_now, quarantined, duplicates] = counts(&report);
            assert_eq!(fetched as usize, corpus.len(), "{report}");
            assert_eq!(
                fetched,
                accepted + skipped_now + quarantined + duplicates,
                "{report}"
            );
            assert_eq!(skipped_now as usize, skipped, "{report}");
            let entries = sandbox.json(&["quarantine", "list", "--json"]);
            let mut reasons: Vec<String> = entries
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["reason"].as_str().unwrap().to_string())
                .collect();
            for reason in &reasons {
                assert_reason_is_short(reason, "quarantine list");
            }
            reasons.sort();
            (counts(&report), sandbox.records().len(), reasons)
        })
        .collect();
    assert_eq!(
        runs[0], runs[1],
        "the same mailbox gave two different outcomes"
    );
}
