//! The JSON API's read and act paths (issue 11, seed 001's helpdesk) over real HTTP against
//! the real server and SQLite file, with records made by collecting real fault-report mail;
//! the CLI is the reference for the JSON the API answers with.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::tokens::add as add_token;
use super::web::with_fault_reports;
use crate::kit::mail::fault_report;
use crate::kit::sandbox::{Sandbox, repo};
use crate::kit::web::{Client, Served};

/// A sandbox with `count` collected fault reports (record `n` from phone `1380000000n`,
/// described as `fault n`), and a read and a write token.
struct Helpdesk {
    sandbox: Sandbox,
    read: String,
    write: String,
}

fn helpdesk(count: usize) -> Helpdesk {
    let reports: Vec<(String, String)> = (1..=count)
        .map(|n| (format!("138{n:08}"), format!("fault {n}")))
        .collect();
    let reports: Vec<(&str, &str)> = reports
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_str()))
        .collect();
    let sandbox = with_fault_reports(&reports);
    let read = add_token(&sandbox, &["--name", "helpdesk", "--scope", "read"]);
    let write = add_token(&sandbox, &["--name", "helpdesk-rw", "--scope", "write"]);
    Helpdesk {
        sandbox,
        read,
        write,
    }
}

/// `method path` with `token` and a JSON `body` (none when null): (status, JSON answer).
fn call(client: &mut Client, token: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    let mut headers = vec![("Content-Type", "application/json")];
    if !token.is_empty() {
        headers.push(("Authorization", auth.as_str()));
    }
    let bytes = if body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(&body).unwrap()
    };
    let page = client.send(method, path, &headers, &bytes);
    let answer = serde_json::from_str(&page.body)
        .unwrap_or_else(|e| panic!("{method} {path}: {} is not JSON: {e}", page.body));
    (page.status, answer)
}

fn get(client: &mut Client, token: &str, path: &str) -> Value {
    let (status, answer) = call(client, token, "GET", path, Value::Null);
    assert_eq!(status, 200, "GET {path}: {answer}");
    answer
}

/// The error code of a call expected to fail with `status`.
fn refused(
    client: &mut Client,
    token: &str,
    method: &str,
    path: &str,
    body: Value,
) -> (u16, String) {
    let (status, answer) = call(client, token, method, path, body);
    let code = answer["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"));
    assert!(answer["error"]["message"].is_string(), "{answer}");
    (status, code.to_string())
}

fn ids(page: &Value) -> Vec<u64> {
    page["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect()
}

/// A record's history as (actor, event, detail).
fn history(record: &Value) -> Vec<(String, String, String)> {
    record["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_string(),
                e["event"].as_str().unwrap().to_string(),
                e["detail"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn records_read_as_the_cli_prints_them_with_the_filters_of_records_list() {
    let desk = helpdesk(3);
    let served = Served::start(&desk.sandbox);
    let mut client = served.client();

    let page = get(&mut client, &desk.read, "/api/v1/records");
    assert_eq!(page["next"], Value::Null);
    assert_eq!(
        page["records"],
        Value::Array(desk.sandbox.records()),
        "the page holds what `records list --json` prints"
    );
    let first = &page["records"][0];
    assert_eq!(
        (
            &first["id"],
            &first["queue"],
            &first["kind"],
            &first["status"]
        ),
        (
            &json!(1),
            &json!("triage"),
            &json!("service-request"),
            &json!("new")
        )
    );
    assert_eq!(first["description"], "fault 1");
    assert_eq!(first["phone"], "13800000001");
    assert_eq!(first["service"]["type"], "pending");

    let shown = get(&mut client, &desk.read, "/api/v1/records/2");
    assert_eq!(
        shown,
        desk.sandbox.json(&["records", "show", "2", "--json"]),
        "one record is what `records show --json` prints"
    );
    assert_eq!(
        history(&shown)
            .into_iter()
            .map(|(_, event, _)| event)
            .collect::<Vec<_>>(),
        ["created"]
    );

    for (query, want) in [
        ("phone=00000002", vec![2]),
        ("phone=138-0000-0003", vec![3]),
        (
            "queue=triage&status=new&kind=service-request",
            vec![1, 2, 3],
        ),
        ("queue=orders", vec![]),
        ("kind=order", vec![]),
        ("status=in%20progress", vec![]),
        ("since=2000-01-01", vec![1, 2, 3]),
        ("since=2000-01-01T00:00:00Z", vec![1, 2, 3]),
        ("since=2999-01-01", vec![]),
        ("updated-since=2000-01-01", vec![1, 2, 3]),
    ] {
        let page = get(&mut client, &desk.read, &format!("/api/v1/records?{query}"));
        assert_eq!(ids(&page), want, "{query}");
    }

    for query in [
        "kind=ticket",
        "phone=12",
        "since=yesterday",
        "updated-since=soon",
        "per-page=0",
        "per-page=many",
        "updated_since=2000-01-01",
        "cursor=00",
    ] {
        let path = format!("/api/v1/records?{query}");
        let got = refused(&mut client, &desk.read, "GET", &path, Value::Null);
        assert_eq!(got, (400, "bad_request".into()), "{query}");
    }
    let missing = refused(
        &mut client,
        &desk.read,
        "GET",
        "/api/v1/records/99",
        Value::Null,
    );
    assert_eq!(missing, (404, "not_found".into()));
    let not_a_number = refused(
        &mut client,
        &desk.read,
        "GET",
        "/api/v1/records/one",
        Value::Null,
    );
    assert_eq!(not_a_number, (400, "bad_request".into()));
}

#[test]
fn pages_follow_the_cursor_to_the_end_without_repeats_while_mail_keeps_arriving() {
    let desk = helpdesk(7);
    let served = Served::start(&desk.sandbox);
    let mut client = served.client();

    let first = get(
        &mut client,
        &desk.read,
        "/api/v1/records?queue=triage&per-page=3",
    );
    assert_eq!(ids(&first), [1, 2, 3]);
    let mut cursor = first["next"].as_str().expect("a next page").to_string();

    // Two more reports arrive while the helpdesk pages: they come last, after the others.
    for n in 8..=9u32 {
        desk.sandbox.deliver(
            "mail/triage",
            &format!("{n:03}.M{n}.mx"),
            &fault_report(n, &format!("138{n:08}"), "late"),
        );
    }
    desk.sandbox.collect_all();

    // Another filter beside a cursor is refused; the same one, or none, follows it.
    let mixed = format!("/api/v1/records?queue=orders&cursor={cursor}");
    assert_eq!(
        refused(&mut client, &desk.read, "GET", &mixed, Value::Null),
        (400, "bad_request".into())
    );
    // The same filters beside the cursor are fine; the page size stays the first page's.
    let second = format!("/api/v1/records?queue=triage&cursor={cursor}");
    let second = get(&mut client, &desk.read, &second);
    assert_eq!(ids(&second), [4, 5, 6]);
    let mut seen = [ids(&first), ids(&second)].concat();
    cursor = second["next"].as_str().unwrap().to_string();
    let mut pages = 2;
    loop {
        let page = get(
            &mut client,
            &desk.read,
            &format!("/api/v1/records?cursor={cursor}"),
        );
        pages += 1;
        assert!(ids(&page).len() <= 3, "{page}");
        seen.extend(ids(&page));
        match page["next"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    assert_eq!(seen, (1..=9).collect::<Vec<u64>>());
    assert_eq!(pages, 3, "3 + 3 + 3 records");

    // per-page is capped rather than refused.
    let all = get(&mut client, &desk.read, "/api/v1/records?per-page=100000");
    assert_eq!(ids(&all).len(), 9);
    assert_eq!(all["next"], Value::Null);
}

/// The config's `[[notify]]` rule `ping`, sent by hand; it stays queued (nothing listens on
/// the SMTP port: it is retried later).
const PING_RULE: &str = r#"
[smtp]
host = "127.0.0.1"
port = 1
tls = "none"
from = "EMES <emes@example.test>"

[[notify]]
name = "ping"
on = "manual"
channel = "email"
to = ["ops@example.test"]
subject = "call"
body = "see the call"
"#;

/// `updated_at` of `record` plus one microsecond, as RFC 3339: "changed after this".
fn just_after(record: &Value) -> String {
    let at: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(record["updated_at"].clone()).unwrap();
    (at + chrono::Duration::microseconds(1)).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

#[test]
fn updated_since_finds_a_record_after_any_history_event_and_not_before() {
    let desk = helpdesk(3);
    let path = desk.sandbox.path("collectors.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{text}{PING_RULE}")).unwrap();
    let served = Served::start(&desk.sandbox);
    let mut client = served.client();

    let all = get(&mut client, &desk.read, "/api/v1/records");
    let newest = all["records"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|r| r["updated_at"].as_str().unwrap().to_string())
        .unwrap()
        .clone();
    let since = just_after(&newest);
    let poll = format!("/api/v1/records?updated-since={since}");
    assert!(ids(&get(&mut client, &desk.read, &poll)).is_empty());

    // A notification queued by hand is a history event too: record 1 moves.
    let notified = desk
        .sandbox
        .run(&["records", "notify", "1", "--rule", "ping"]);
    assert!(notified.status.success(), "{notified:?}");
    let changed = get(&mut client, &desk.read, &poll);
    assert_eq!(ids(&changed), [1]);
    let record = &changed["records"][0];
    assert!(record["updated_at"].as_str() > newest["updated_at"].as_str());
    let shown = get(&mut client, &desk.read, "/api/v1/records/1");
    let last = history(&shown).pop().unwrap();
    assert_eq!(last.1, "notification queued");
    assert_eq!(shown["updated_at"], record["updated_at"]);

    // The notification log, filtered as `notifications list` is.
    let log = get(
        &mut client,
        &desk.read,
        "/api/v1/notifications?record=1&channel=email",
    );
    assert_eq!(
        log,
        Value::Array(desk.sandbox.notifications(&["--record", "1"]))
    );
    assert_eq!(log[0]["rule"], "ping");
    assert_eq!(log[0]["to"], json!(["ops@example.test"]));
    assert_eq!(log[0]["status"], "queued");
    assert_eq!(
        get(&mut client, &desk.read, "/api/v1/notifications?record=2"),
        json!([])
    );
    assert_eq!(
        get(&mut client, &desk.read, "/api/v1/notifications?status=sent"),
        json!([])
    );
    let bad = refused(
        &mut client,
        &desk.read,
        "GET",
        "/api/v1/notifications?channel=fax",
        Value::Null,
    );
    assert_eq!(bad, (400, "bad_request".into()));

    // A change through the API moves record 3 after record 1, in the polling order.
    let (status, _) = call(
        &mut client,
        &desk.write,
        "POST",
        "/api/v1/records/3/status",
        json!({"change": "start"}),
    );
    assert_eq!(status, 200);
    assert_eq!(ids(&get(&mut client, &desk.read, &poll)), [1, 3]);
    let later = just_after(&get(&mut client, &desk.read, "/api/v1/records/1"));
    let poll = format!("/api/v1/records?updated-since={later}");
    assert_eq!(ids(&get(&mut client, &desk.read, &poll)), [3]);
}

#[test]
fn a_write_token_triages_and_moves_records_through_the_workflow_with_history() {
    let desk = helpdesk(2);
    let served = Served::start(&desk.sandbox);
    let mut client = served.client();
    let post = |client: &mut Client, path: &str, body: Value| {
        call(client, &desk.write, "POST", path, body)
    };

    let (status, triaged) = post(
        &mut client,
        "/api/v1/records/1/triage",
        json!({"as": "complaint", "set": {"branch": "北京分公司", "elevator-no": "3"}}),
    );
    assert_eq!(status, 200, "{triaged}");
    assert_eq!(triaged["service"]["type"], "complaint");
    assert_eq!(triaged["service"]["branch"], "北京分公司");
    assert_eq!(triaged["service"]["elevator_no"], "3");
    for (change, text) in [
        (json!({"change": "start"}), "new -> in-progress"),
        (
            json!({"change": "resolve", "result": "relay replaced"}),
            "in-progress -> 已解决: relay replaced",
        ),
        (json!({"change": "accept"}), "已解决 -> 已确认"),
    ] {
        let (status, record) = post(&mut client, "/api/v1/records/1/status", change.clone());
        assert_eq!(status, 200, "{change}: {record}");
        assert_eq!(history(&record).pop().unwrap().2, text, "{change}");
    }
    let record = get(&mut client, &desk.read, "/api/v1/records/1");
    assert_eq!(record["status"], "已确认");
    assert_eq!(record["result"], "relay replaced");
    let actor = "api:helpdesk-rw".to_string();
    assert_eq!(
        history(&record),
        [
            (
                "collector:triage".to_string(),
                "created".to_string(),
                "service-request from fault-1@hitachi.example (0 lines, 0 tech cards)".to_string()
            ),
            (actor.clone(), "triaged".into(), "as complaint".into()),
            (
                actor.clone(),
                "field set".into(),
                "branch = 北京分公司".into()
            ),
            (actor.clone(), "field set".into(), "elevator-no = 3".into()),
            (
                actor.clone(),
                "status changed".into(),
                "new -> in-progress".into()
            ),
            (
                actor.clone(),
                "resolved".into(),
                "in-progress -> 已解决: relay replaced".into()
            ),
            (actor.clone(), "accepted".into(), "已解决 -> 已确认".into()),
        ]
    );
    assert_eq!(
        record,
        desk.sandbox.json(&["records", "show", "1", "--json"])
    );

    // Record 2: resolved, then the customer rejects with a reason.
    post(
        &mut client,
        "/api/v1/records/2/status",
        json!({"change": "start"}),
    );
    post(
        &mut client,
        "/api/v1/records/2/status",
        json!({"change": "resolve", "result": "reset"}),
    );
    let (status, rejected) = post(
        &mut client,
        "/api/v1/records/2/status",
        json!({"change": "reject", "reason": "still stuck"}),
    );
    assert_eq!(status, 200);
    assert_eq!(rejected["status"], "未解决");
    assert_eq!(
        history(&rejected).pop().unwrap(),
        (
            actor.clone(),
            "rejected".into(),
            "已解决 -> 未解决: still stuck".into()
        )
    );

    // What the workflow refuses is a 409 and writes nothing; a bad body is a 400.
    for (path, body, want) in [
        (
            "/api/v1/records/1/status",
            json!({"change": "start"}),
            (409, "conflict"),
        ),
        // Record 1 is a complaint: triaging it as one again corrects nothing.
        (
            "/api/v1/records/1/triage",
            json!({"as": "complaint"}),
            (409, "conflict"),
        ),
        (
            "/api/v1/records/2/status",
            json!({"change": "accept"}),
            (409, "conflict"),
        ),
        (
            "/api/v1/records/2/status",
            json!({"change": "resolve"}),
            (400, "bad_request"),
        ),
        (
            "/api/v1/records/2/status",
            json!({"change": "start", "result": "x"}),
            (400, "bad_request"),
        ),
        (
            "/api/v1/records/2/status",
            json!({"change": "close"}),
            (400, "bad_request"),
        ),
        (
            "/api/v1/records/2/status",
            json!({"change": "start", "by": "me"}),
            (400, "bad_request"),
        ),
        (
            "/api/v1/records/2/triage",
            json!({"as": "fault", "set": {"colour": "red"}}),
            (400, "bad_request"),
        ),
        (
            "/api/v1/records/2/triage",
            json!({"as": "maybe"}),
            (400, "bad_request"),
        ),
        (
            "/api/v1/records/2/triage",
            json!("fault"),
            (400, "bad_request"),
        ),
        (
            "/api/v1/records/99/status",
            json!({"change": "start"}),
            (404, "not_found"),
        ),
        (
            "/api/v1/records/99/triage",
            json!({"as": "fault"}),
            (404, "not_found"),
        ),
    ] {
        let got = refused(&mut client, &desk.write, "POST", path, body.clone());
        assert_eq!(got, (want.0, want.1.to_string()), "{path} {body}");
    }
    let not_json = client.send(
        "POST",
        "/api/v1/records/2/status",
        &[("Authorization", &format!("Bearer {}", desk.write))],
        b"change=start",
    );
    assert_eq!(not_json.status, 400, "{}", not_json.body);
    assert_eq!(
        history(&get(&mut client, &desk.read, "/api/v1/records/2")).len(),
        4
    );
}

#[test]
fn reading_needs_a_token_and_acting_a_write_token() {
    let desk = helpdesk(1);
    let calendar = add_token(&desk.sandbox, &["--name", "cal", "--calendar", "triage"]);
    let served = Served::start(&desk.sandbox);
    let mut client = served.client();
    let reads = [
        "/api/v1/records",
        "/api/v1/records/1",
        "/api/v1/notifications",
        "/api/v1/quarantine",
        "/api/v1/collectors",
    ];
    for path in reads {
        for token in ["", "mit_not-a-token"] {
            let got = refused(&mut client, token, "GET", path, Value::Null);
            assert_eq!(got, (401, "unauthorized".into()), "{path}");
        }
        let got = refused(&mut client, &calendar, "GET", path, Value::Null);
        assert_eq!(got, (403, "forbidden".into()), "{path}");
        get(&mut client, &desk.write, path);
    }
    for (path, body) in [
        ("/api/v1/records/1/triage", json!({"as": "fault"})),
        ("/api/v1/records/1/status", json!({"change": "start"})),
    ] {
        let got = refused(&mut client, &desk.read, "POST", path, body.clone());
        assert_eq!(got, (403, "forbidden".into()), "{path}");
        let got = refused(&mut client, "", "POST", path, body);
        assert_eq!(got, (401, "unauthorized".into()), "{path}");
    }
    let record = get(&mut client, &desk.read, "/api/v1/records/1");
    assert_eq!(history(&record).len(), 1, "nothing was changed");
    // A revoked token reads nothing any more.
    assert!(
        desk.sandbox
            .run(&["tokens", "revoke", "helpdesk"])
            .status
            .success()
    );
    let got = refused(
        &mut client,
        &desk.read,
        "GET",
        "/api/v1/records",
        Value::Null,
    );
    assert_eq!(got, (401, "unauthorized".into()));
}

#[test]
fn quarantine_and_collectors_read_as_their_commands_print_them() {
    let desk = helpdesk(1);
    desk.sandbox.deliver(
        "mail/triage",
        "900.M900.mx",
        &std::fs::read(repo().join("samples/eml/26-truncated-json.eml")).unwrap(),
    );
    desk.sandbox.collect_all();
    let served = Served::start(&desk.sandbox);
    let mut client = served.client();

    let open = get(&mut client, &desk.read, "/api/v1/quarantine");
    assert_eq!(open, desk.sandbox.json(&["quarantine", "list", "--json"]));
    assert_eq!(open.as_array().unwrap().len(), 1);
    assert_eq!(open[0]["collector"], "triage");
    assert_eq!(open[0]["status"], "open");
    assert!(open[0].get("raw").is_none(), "no message bytes in the list");
    assert_eq!(
        get(&mut client, &desk.read, "/api/v1/quarantine?all=true"),
        desk.sandbox
            .json(&["quarantine", "list", "--all", "--json"])
    );
    let bad = refused(
        &mut client,
        &desk.read,
        "GET",
        "/api/v1/quarantine?all=maybe",
        Value::Null,
    );
    assert_eq!(bad, (400, "bad_request".into()));

    let collectors = get(&mut client, &desk.read, "/api/v1/collectors");
    assert_eq!(
        collectors,
        desk.sandbox.json(&["collectors", "status", "--json"])
    );
    let names: Vec<&str> = collectors
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["collector"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["orders", "triage"]);
    assert_eq!(collectors[1]["counts"]["quarantined"], 1);
}

/// Every string literal in `src/` that starts with `/api/`: the paths the code could serve.
fn api_literals_in_source() -> BTreeSet<String> {
    fn walk(dir: &std::path::Path, found: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for piece in text.split("\"/api/").skip(1) {
                    let rest = piece.split('"').next().unwrap();
                    found.insert(format!("/api/{rest}"));
                }
            }
        }
    }
    let mut found = BTreeSet::new();
    walk(&repo().join("src"), &mut found);
    found
}

#[test]
fn the_openapi_document_describes_every_api_route_the_server_serves() {
    let desk = helpdesk(1);
    let served = Served::start(&desk.sandbox);
    let mut client = served.client();
    let document = get(&mut client, "", "/api/openapi.json");
    assert!(
        document["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        document["openapi"]
    );

    let mut documented = BTreeSet::new();
    for (path, operations) in document["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            documented.insert((method.to_uppercase(), path.clone()));
            let what = format!("{method} {path}");
            assert_eq!(operation["security"], json!([{"token": []}]), "{what}");
            assert!(
                operation["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{what}"
            );
            for status in ["200", "401", "403"] {
                assert!(
                    operation["responses"][status].is_object(),
                    "{what}: {status}"
                );
            }
        }
    }

    // What the server really serves under /api: every path the source names, probed with a
    // method no API route takes; a served path answers 405 with the methods it has.
    let mut served_routes = BTreeSet::new();
    for path in api_literals_in_source() {
        let probe: String = path
            .split('/')
            .map(|part| if part.starts_with('{') { "1" } else { part })
            .collect::<Vec<_>>()
            .join("/");
        let answer = client.send("OPTIONS", &probe, &[], b"");
        if answer.status == 404 {
            continue; // a prefix or a message, not a route
        }
        assert_eq!(answer.status, 405, "OPTIONS {probe}: {}", answer.body);
        let allow = answer
            .header("allow")
            .unwrap_or_else(|| panic!("{probe}: no Allow"));
        for method in allow.split(',').map(str::trim).filter(|m| *m != "HEAD") {
            served_routes.insert((method.to_string(), path.clone()));
        }
    }
    // The document itself is the one route it does not list.
    assert!(served_routes.remove(&("GET".to_string(), "/api/openapi.json".to_string())));
    assert_eq!(
        served_routes, documented,
        "served (left) and documented (right) API routes differ"
    );
    for route in [
        "GET /api/v1/records",
        "GET /api/v1/records/{id}",
        "POST /api/v1/records/{id}/triage",
        "POST /api/v1/records/{id}/status",
        "GET /api/v1/notifications",
        "GET /api/v1/quarantine",
        "GET /api/v1/collectors",
    ] {
        let (method, path) = route.split_once(' ').unwrap();
        assert!(
            documented.contains(&(method.to_string(), path.to_string())),
            "{route} is not documented"
        );
    }

    // Every schema the document refers to is in it.
    let text = document.to_string();
    let schemas = &document["components"]["schemas"];
    for reference in text.split("\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(schemas[name].is_object(), "schema {name} is missing");
    }
    for name in [
        "RecordPage",
        "RecordWithHistory",
        "StoredRecord",
        "RecordEvent",
        "ErrorBody",
    ] {
        assert!(schemas[name].is_object(), "schema {name} is missing");
    }
}

/// The newest `updated_at` of a page, just after: the next poll's `updated-since`.
fn watermark(page: &Value) -> String {
    let newest = page["records"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|r| r["updated_at"].as_str().unwrap().to_string())
        .expect("a record changed");
    just_after(newest)
}

/// Seed 001 end to end: the helpdesk's ticket system mails a fault (Call anlegen), polls the
/// call's history (Calldaten abrufen) while the installer works it from the command line,
/// rejects the first solution and accepts the second (Lösung akzeptieren oder ablehnen).
#[test]
fn the_helpdesk_opens_a_call_by_mail_polls_its_history_and_answers_the_solutions() {
    let desk = helpdesk(0);
    let served = Served::start(&desk.sandbox);
    let mut client = served.client();
    let poll_url = |since: &str| format!("/api/v1/records?queue=triage&updated-since={since}");
    let mut since = "2000-01-01T00:00:00Z".to_string();
    assert!(ids(&get(&mut client, &desk.read, &poll_url(&since))).is_empty());

    // The ticket system's e-mail becomes a call.
    desk.sandbox.deliver(
        "mail/triage",
        "001.M1.mx",
        &fault_report(1, "13912345678", "Melder in Halle 3 ausgefallen"),
    );
    desk.sandbox.collect_all();
    let page = get(&mut client, &desk.read, &poll_url(&since));
    assert_eq!(ids(&page), [1]);
    let call_number = page["records"][0]["service"]["number"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(call_number.starts_with("BZ"), "{call_number}");
    assert_eq!(page["records"][0]["status"], "new");
    since = watermark(&page);
    assert!(ids(&get(&mut client, &desk.read, &poll_url(&since))).is_empty());

    // The installer classifies, starts and resolves it from the command line.
    let cli = |args: &[&str]| {
        let output = desk.sandbox.run(args);
        assert!(output.status.success(), "{args:?}: {output:?}");
    };
    cli(&["records", "triage", "1", "--as", "fault", "--actor", "tech"]);
    cli(&["records", "start", "1", "--actor", "tech"]);
    cli(&[
        "records",
        "resolve",
        "1",
        "--result",
        "Melder getauscht",
        "--actor",
        "tech",
    ]);
    let page = get(&mut client, &desk.read, &poll_url(&since));
    assert_eq!(ids(&page), [1]);
    assert_eq!(page["records"][0]["status"], "已解决");
    assert_eq!(page["records"][0]["result"], "Melder getauscht");
    since = watermark(&page);

    // The customer rejects the solution; the installer tries again; the customer accepts.
    let answer = |client: &mut Client, body: Value| {
        let (status, record) = call(
            client,
            &desk.write,
            "POST",
            "/api/v1/records/1/status",
            body,
        );
        assert_eq!(status, 200, "{record}");
    };
    answer(
        &mut client,
        json!({"change": "reject", "reason": "Melder piept weiter"}),
    );
    assert!(
        ids(&get(&mut client, &desk.read, &poll_url(&since))) == [1],
        "the helpdesk's own change is a change too"
    );
    cli(&[
        "records",
        "resolve",
        "1",
        "--result",
        "Zentrale neu gestartet",
        "--actor",
        "tech",
    ]);
    let page = get(&mut client, &desk.read, &poll_url(&since));
    assert_eq!(page["records"][0]["result"], "Zentrale neu gestartet");
    since = watermark(&page);
    answer(&mut client, json!({"change": "accept"}));

    let call = get(&mut client, &desk.read, "/api/v1/records/1");
    assert_eq!(call["service"]["number"], call_number.as_str());
    assert_eq!(call["status"], "已确认");
    let helpdesk = "api:helpdesk-rw";
    let steps: Vec<(String, String, String)> = history(&call).into_iter().skip(1).collect();
    let expected = [
        ("tech", "triaged", "as fault"),
        ("tech", "status changed", "new -> in-progress"),
        (
            "tech",
            "resolved",
            "in-progress -> 已解决: Melder getauscht",
        ),
        (
            helpdesk,
            "rejected",
            "已解决 -> 未解决: Melder piept weiter",
        ),
        (
            "tech",
            "resolved",
            "未解决 -> 已解决: Zentrale neu gestartet",
        ),
        (helpdesk, "accepted", "已解决 -> 已确认"),
    ]
    .map(|(a, e, d)| (a.to_string(), e.to_string(), d.to_string()));
    assert_eq!(steps, expected);
    let page = get(&mut client, &desk.read, &poll_url(&since));
    assert_eq!(ids(&page), [1], "the acceptance is the last change");
    assert!(ids(&get(&mut client, &desk.read, &poll_url(&watermark(&page)))).is_empty());
    // An accepted call is closed.
    let late = json!({"change": "reject", "reason": "zu spät"});
    let path = "/api/v1/records/1/status";
    let got = refused(&mut client, &desk.write, "POST", path, late);
    assert_eq!(got, (409, "conflict".into()));
}
