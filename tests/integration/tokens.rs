//! `mailintake tokens`: the bearer tokens other systems call the API, the intake and the
//! calendar feeds with. Real CLI runs against a real SQLite file, and the real server.

use serde_json::Value;

use crate::kit::sandbox::{Sandbox, failure_text, success_json};
use crate::kit::web::Served;

fn sandbox() -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.write_config(&[("orders", "mail/orders"), ("triage", "mail/triage")], "");
    sandbox
}

/// `tokens add ...`: the token printed alone on stdout.
pub(super) fn add(sandbox: &Sandbox, args: &[&str]) -> String {
    let mut full = vec!["tokens", "add"];
    full.extend_from_slice(args);
    let output = sandbox.run(&full);
    assert!(output.status.success(), "{}", failure_text(output));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let token = stdout.strip_suffix('\n').expect("one line");
    assert!(!token.contains('\n'), "{stdout:?}");
    assert!(token.starts_with("mit_") && token.len() == 68, "{token}");
    token.to_string()
}

fn listed(sandbox: &Sandbox) -> Vec<Value> {
    success_json(sandbox.run(&["tokens", "list", "--json"]))
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn tokens_are_printed_once_stored_as_hashes_listed_and_revoked() {
    let sandbox = sandbox();
    let intake = add(&sandbox, &["--name", "shop-site", "--collector", "orders"]);
    let reader = add(&sandbox, &["--name", "helpdesk", "--scope", "read"]);
    let writer = add(&sandbox, &["--name", "helpdesk-rw", "--scope", "write"]);
    let calendar = add(&sandbox, &["--name", "anna-cal", "--calendar", "triage"]);
    assert_eq!(
        [&intake, &reader, &writer, &calendar]
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        4
    );

    let tokens = listed(&sandbox);
    let shapes: Vec<(&str, &str, Option<&str>, bool)> = tokens
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap(),
                t["scope"].as_str().unwrap(),
                t["target"].as_str(),
                t["revoked"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shapes,
        [
            ("shop-site", "intake", Some("orders"), false),
            ("helpdesk", "read", None, false),
            ("helpdesk-rw", "write", None, false),
            ("anna-cal", "calendar", Some("triage"), false),
        ]
    );
    // Neither the listing nor the database file holds a secret.
    let listing = String::from_utf8(sandbox.run(&["tokens", "list"]).stdout).unwrap();
    let database = std::fs::read(sandbox.path("data/mailintake.db")).unwrap();
    for secret in [&intake, &reader, &writer, &calendar] {
        assert!(!listing.contains(secret.as_str()));
        assert!(
            !database
                .windows(secret.len())
                .any(|w| w == secret.as_bytes())
        );
    }

    // A live name cannot be given twice; a revoked one can.
    let again =
        failure_text(sandbox.run(&["tokens", "add", "--name", "helpdesk", "--scope", "read"]));
    assert!(
        again.contains("already a live token called `helpdesk`"),
        "{again}"
    );
    let revoked = sandbox.run(&["tokens", "revoke", "helpdesk"]);
    assert!(revoked.status.success(), "{}", failure_text(revoked));
    let twice = failure_text(sandbox.run(&["tokens", "revoke", "helpdesk"]));
    assert!(twice.contains("no live token helpdesk"), "{twice}");
    add(&sandbox, &["--name", "helpdesk", "--scope", "write"]);
    let states: Vec<(String, bool)> = listed(&sandbox)
        .iter()
        .filter(|t| t["name"] == "helpdesk")
        .map(|t| {
            (
                t["scope"].as_str().unwrap().to_string(),
                t["revoked"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [("read".to_string(), true), ("write".to_string(), false)]
    );
}

/// The text of a command line clap refused (exit status 2).
fn usage_error(output: std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    stderr
}

#[test]
fn a_token_names_a_configured_collector_or_queue_and_exactly_one_scope() {
    let sandbox = sandbox();
    let collector =
        failure_text(sandbox.run(&["tokens", "add", "--name", "x", "--collector", "nosuch"]));
    assert!(
        collector.contains("--collector nosuch: no such [[collector]]"),
        "{collector}"
    );
    let queue =
        failure_text(sandbox.run(&["tokens", "add", "--name", "x", "--calendar", "nosuch"]));
    assert!(
        queue.contains("--calendar nosuch: no such [[queue]]"),
        "{queue}"
    );
    let none = usage_error(sandbox.run(&["tokens", "add", "--name", "x"]));
    assert!(
        none.contains("--collector") && none.contains("--scope"),
        "{none}"
    );
    let both = usage_error(sandbox.run(&[
        "tokens",
        "add",
        "--name",
        "x",
        "--scope",
        "read",
        "--calendar",
        "orders",
    ]));
    assert!(both.contains("cannot be used with"), "{both}");
    assert!(listed(&sandbox).is_empty());
}

#[test]
fn the_api_answers_in_json_and_describes_itself_without_a_token() {
    let sandbox = sandbox();
    let served = Served::start(&sandbox);
    let mut client = served.client();

    let document = client.get("/api/openapi.json");
    assert_eq!(document.status, 200);
    let document: Value = serde_json::from_str(&document.body).unwrap();
    assert!(
        document["openapi"].as_str().unwrap().starts_with("3.1"),
        "{document}"
    );
    assert_eq!(
        document["components"]["securitySchemes"]["token"]["scheme"],
        "bearer"
    );

    let missing = client.get("/api/v1/no-such-thing");
    assert_eq!(missing.status, 404);
    let body: Value = serde_json::from_str(&missing.body).unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/api/v1/no-such-thing")
    );

    let wrong_method = client.send("DELETE", "/api/openapi.json", &[], b"");
    assert_eq!(wrong_method.status, 405);
    let body: Value = serde_json::from_str(&wrong_method.body).unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");

    // Outside /api the review page keeps its own answers.
    assert_eq!(client.get("/no-such-page").status, 404);
    assert!(
        client
            .get("/no-such-page")
            .body
            .contains("<h1>404 Not Found</h1>")
    );
}
