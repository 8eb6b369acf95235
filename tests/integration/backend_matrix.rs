//! One installation's whole flow on SQLite and on PostgreSQL (issue 8), through the real
//! binary and the real HTTP server: the shipped demo config collects the sample mail, a bad
//! message is quarantined and retried, a request is triaged and moved through the workflow,
//! `[[notify]]` rules queue notifications, a website posts one order twice under one
//! `Idempotency-Key`, and the JSON API pages through the records and polls with
//! `updated-since`; then `mailintake run` stores new mail. Every step must succeed on each
//! backend, and what the two stored must be the same, times aside.
//!
//! On PostgreSQL this runs `check`, `collect`, `records`, `quarantine`, `notifications`,
//! `tokens`, `serve` and `run` against the database once each.

use serde_json::{Value, json};

use super::postgres::output_text;
use super::tokens::add as add_token;
use crate::kit::backend::Backend;
use crate::kit::mail::order_message;
use crate::kit::sandbox::{Sandbox, counts, sample, shipped_demo};
use crate::kit::web::{Client, Served};

/// The shipped config's `[storage] url` line.
const DEMO_URL_LINE: &str = "url = \"sqlite://samples/demo-state/mailintake.db\"\n";
/// The shipped config's `site-orders` Maildir (seeded by `samples/demo`).
const ORDERS_MAILDIR: &str = "samples/demo-state/maildir";

/// The seed's order file (v0.1) as a website posts it.
const ORDER: &str = r#"{"Тема": "Заказ №7 с сайта", "Телефон": "+7 925 642 42-90",
 "Товары": [{"Номенклатура": "Ролап", "Количество": 1}]}"#;

/// `value` without what differs between two runs of the same flow: the times (keys ending
/// in `_at`, and a history event's `at`).
fn timeless(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(key, _)| !key.ends_with("_at") && key.as_str() != "at")
                .map(|(key, v)| (key.clone(), timeless(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(timeless).collect()),
        other => other.clone(),
    }
}

/// `GET path` with a bearer token: the JSON answer of a 200.
fn api_get(client: &mut Client, token: &str, path: &str) -> Value {
    let auth = format!("Bearer {token}");
    let page = client.get_with(path, &[("Authorization", &auth)]);
    assert_eq!(page.status, 200, "GET {path}: {}", page.body);
    serde_json::from_str(&page.body).unwrap()
}

/// The ids of every record the API lists from `first`, following `next` cursors.
fn walk_pages(client: &mut Client, token: &str, first: &str) -> Vec<u64> {
    let mut ids = Vec::new();
    let mut path = first.to_string();
    loop {
        let page = api_get(client, token, &path);
        ids.extend(
            page["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_u64().unwrap()),
        );
        match page["next"].as_str() {
            Some(cursor) => path = format!("/api/v1/records?cursor={cursor}"),
            None => return ids,
        }
    }
}

/// The ids of the records `records list --json` prints.
fn record_ids(sandbox: &Sandbox) -> Vec<u64> {
    sandbox
        .records()
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect()
}

/// Runs the flow on `backend`, checking each step; returns what was stored, times aside.
fn flow(backend: Backend) -> Value {
    let sandbox = shipped_demo(|c| c.replacen("# [collector.http]\n", "[collector.http]\n", 1));
    backend.install_in_place_of(&sandbox, DEMO_URL_LINE);
    let check = sandbox.run(&["check"]);
    let checked = output_text(&check);
    assert!(check.status.success(), "{checked}");
    if backend == Backend::Postgres {
        assert!(checked.contains(": answers (PostgreSQL "), "{checked}");
    }

    // Collect the sample mail (one without an attachment), and a message whose JSON is cut
    // short.
    let truncated = sample("26-truncated-json.eml");
    sandbox.deliver(ORDERS_MAILDIR, "1999.M99.mx", &truncated);
    let collected: Vec<(String, [u64; 5])> = sandbox
        .collect_all()
        .iter()
        .map(|r| (r["collector"].as_str().unwrap().to_string(), counts(r)))
        .collect();

    // Quarantined byte for byte; a retry with the same config keeps it there.
    let entries = sandbox.json(&["quarantine", "list", "--json"]);
    assert_eq!(
        entries.as_array().unwrap().len(),
        2,
        "the demo's own and this one"
    );
    let entry = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["source_key"] == "1999.M99.mx")
        .unwrap_or_else(|| panic!("{entries}"))["id"]
        .to_string();
    let raw = sandbox.run(&["quarantine", "show", &entry, "--raw"]);
    assert_eq!(raw.stdout, truncated);
    let retried = sandbox.json(&["quarantine", "retry", &entry, "--json"]);
    assert_eq!(retried["status"], "quarantined", "{retried}");

    // Triage the first pending request, then take it through the workflow.
    let pending = sandbox.json(&["records", "triage-list", "--json"]);
    let request = pending[0]["id"].to_string();
    let run_ok = |args: &[&str]| {
        let out = sandbox.run(args);
        assert!(out.status.success(), "{args:?}: {out:?}");
    };
    run_ok(&[
        "records", "triage", &request, "--as", "fault", "--actor", "desk",
    ]);
    run_ok(&["records", "start", &request, "--actor", "tech"]);
    run_ok(&[
        "records", "resolve", &request, "--result", "fixed", "--actor", "tech",
    ]);
    let shown = sandbox.json(&["records", "show", &request, "--json"]);
    assert_eq!(shown["status"], "resolved");
    let triaged_at = shown["updated_at"].as_str().unwrap().to_string();

    // A website posts one order twice under one key: one record.
    let site = add_token(&sandbox, &["--name", "site", "--collector", "site-orders"]);
    let reader = add_token(&sandbox, &["--name", "helpdesk", "--scope", "read"]);
    let served = Served::start(&sandbox);
    let mut client = served.client();
    let bearer = format!("Bearer {site}");
    let headers = [
        ("Authorization", bearer.as_str()),
        ("Content-Type", "application/json; charset=utf-8"),
        ("Idempotency-Key", "order-7"),
    ];
    let post = |client: &mut Client| {
        let page = client.send(
            "POST",
            "/api/v1/intake/site-orders",
            &headers,
            ORDER.as_bytes(),
        );
        (
            page.status,
            serde_json::from_str::<Value>(&page.body).unwrap(),
        )
    };
    let (first_status, first) = post(&mut client);
    let (again_status, again) = post(&mut client);
    assert_eq!((first_status, again_status), (201, 200), "{first} {again}");
    assert_eq!(
        (&again["id"], &again["duplicate"]),
        (&first["id"], &json!(true))
    );

    // The API lists every record once, two a page, and polls for changes.
    let all = record_ids(&sandbox);
    assert_eq!(
        walk_pages(&mut client, &reader, "/api/v1/records?per-page=2"),
        all
    );
    let changed = walk_pages(
        &mut client,
        &reader,
        &format!("/api/v1/records?per-page=2&updated-since={triaged_at}"),
    );
    assert_eq!(
        changed.first().map(|id| id.to_string()),
        Some(request.clone())
    );
    assert!(
        changed.contains(&first["id"].as_u64().unwrap()),
        "{changed:?}"
    );
    drop(served);

    let stored = json!({
        "collected": collected,
        "records": timeless(&Value::Array(sandbox.records())),
        "history": timeless(&sandbox.json(&["records", "show", &request, "--json"])["history"]),
        "quarantine": timeless(&sandbox.json(&["quarantine", "list", "--json"])),
        "notifications": timeless(&Value::Array(sandbox.notifications(&[]))),
        "intake": [first, again],
        "changed": changed,
    });
    assert!(
        !stored["notifications"].as_array().unwrap().is_empty(),
        "the shipped rules queue notifications"
    );

    // The daemon stores new mail into the same database.
    let mut daemon = sandbox.spawn_daemon();
    sandbox.deliver(
        ORDERS_MAILDIR,
        "2000.M100.mx",
        &order_message(100, "7709745454", 2),
    );
    sandbox.wait_for_records(all.len() + 1, std::time::Duration::from_secs(60));
    assert!(daemon.exited().is_none(), "the daemon is still running");
    daemon.terminate();
    stored
}

#[test]
fn the_same_flow_stores_the_same_on_sqlite_and_postgres() {
    let sqlite = flow(Backend::Sqlite);
    let postgres = flow(Backend::Postgres);
    assert_eq!(postgres, sqlite);
}
