//! Health, metrics and logs for machines, over real HTTP against a running `mailintake run`
//! or `serve` with a real SQLite file: `/metrics` moves after a pass, `/healthz` turns 503
//! when a collector's IMAP server (a real Dovecot) is down longer than its `stale-after` and
//! back to 200 once it works, and `MAILINTAKE_LOG_FORMAT=json` logs one object per line.

use std::time::Duration;

use serde_json::Value;

use crate::imap::{ImapCollector, USER, dovecot, sandbox_for};
use crate::kit::mail::order_message;
use crate::kit::process::{Daemon, wait_until};
use crate::kit::sandbox::Sandbox;
use crate::kit::web::{Client, logged_address};

const PATIENCE: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(50);

/// `command` (`run` or `serve`) on `sandbox`, logging at info in `format` into daemon.log.
fn spawn(sandbox: &Sandbox, command: &str, format: &str) -> (Daemon, Client) {
    let log = sandbox.path("daemon.log");
    let _ = std::fs::remove_file(&log);
    let daemon = Daemon::spawn(
        sandbox
            .command(&[command])
            .env("MAILINTAKE_LOG", "info")
            .env("MAILINTAKE_LOG_FORMAT", format)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap()),
    );
    let addr = logged_address(&log).parse().unwrap();
    (daemon, Client::new(addr))
}

/// The value of the sample `series` (name and labels exactly as rendered) in `/metrics`.
fn sample(client: &mut Client, series: &str) -> Option<f64> {
    let page = client.get("/metrics");
    assert_eq!(page.status, 200);
    page.body.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        Some(value.parse().unwrap())
    })
}

/// Waits until `series` has a value for which `want` holds, and returns it.
fn await_sample(client: &mut Client, series: &str, want: impl Fn(f64) -> bool) -> f64 {
    wait_until(PATIENCE, POLL, || match sample(client, series) {
        Some(v) if want(v) => Ok(v),
        other => Err(format!("{series} is {other:?}")),
    })
}

fn health(client: &mut Client) -> (u16, Value) {
    let page = client.get("/healthz");
    assert_eq!(page.header("content-type"), Some("application/json"));
    (page.status, serde_json::from_str(&page.body).unwrap())
}

#[test]
fn metrics_move_after_a_pass_and_serve_reports_what_the_database_knows() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&[("orders", "mail/orders")], "");
    sandbox.maildir("mail/orders");
    let (mut daemon, mut client) = spawn(&sandbox, "run", "json");
    let passes = r#"mailintake_pass_duration_seconds_count{collector="orders"}"#;
    let accepted = r#"mailintake_messages_total{collector="orders",outcome="accepted"}"#;
    await_sample(&mut client, passes, |n| n == 1.0);
    assert_eq!(sample(&mut client, accepted), Some(0.0));

    // A message arrives; a reload runs the collector again at once.
    sandbox.deliver("mail/orders", "1.M1.mx", &order_message(1, "7709745454", 1));
    daemon.signal("HUP");
    await_sample(&mut client, accepted, |n| n == 1.0);
    assert_eq!(sample(&mut client, passes), Some(2.0));
    let last_success = r#"mailintake_last_success_timestamp_seconds{collector="orders"}"#;
    let at = sample(&mut client, last_success).expect("the last success is reported");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(at > now - 600.0 && at <= now + 1.0, "{at} vs {now}");
    assert_eq!(sample(&mut client, "mailintake_outbox_depth"), Some(0.0));

    // Requests are counted by their route template, never by the raw path.
    assert_eq!(client.get("/records/98765").status, 303);
    assert_eq!(client.get("/no/such/page").status, 404);
    let text = client.get("/metrics").body;
    assert!(
        text.contains("# TYPE mailintake_pass_duration_seconds histogram"),
        "{text}"
    );
    for series in [
        r#"mailintake_http_requests_total{route="/records/{id}",status="303"} 1"#,
        r#"mailintake_http_requests_total{route="unmatched",status="404"} 1"#,
    ] {
        assert!(text.lines().any(|l| l == series), "{series} in:\n{text}");
    }
    assert!(
        !text.contains("98765") && !text.contains("/no/such"),
        "{text}"
    );
    let (status, body) = health(&mut client);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["collectors"][0]["name"], "orders");
    assert_eq!(body["collectors"][0]["status"], "ok");
    assert_eq!(body["collectors"][0]["stale_after_secs"], 900);
    assert!(daemon.terminate().success());

    // Every line of the JSON log is one object; the pass is logged with its fields.
    let log = std::fs::read_to_string(sandbox.path("daemon.log")).unwrap();
    let events: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let pass = events
        .iter()
        .find(|e| e["message"] == "collector pass done" && e["accepted"] == 1)
        .unwrap_or_else(|| panic!("no pass with accepted = 1 in:\n{log}"));
    assert_eq!(pass["collector"], "orders");
    assert_eq!(pass["level"], "INFO");

    // `serve` runs no pass, yet reports the last success and health from the database.
    let (server, mut client) = spawn(&sandbox, "serve", "");
    assert_eq!(sample(&mut client, last_success), Some(at));
    assert_eq!(sample(&mut client, accepted), None);
    assert_eq!(health(&mut client).0, 200);
    assert!(server.terminate().success());
}

fn write_config(sandbox: &Sandbox, port: u16) {
    let collector = ImapCollector {
        keys: "stale-after = 2",
        ..ImapCollector::new("shop", port)
    };
    // A pass every second, so the server's outage is met by passes (the daemon notices it no
    // other way); sandbox_for's config already serves the page on port 0.
    let fresh = sandbox_for(&[collector]);
    let text = std::fs::read_to_string(fresh.path("collectors.toml"))
        .unwrap()
        .replacen(
            "schedule = \"0 0 0 1 1 *\"",
            "schedule = \"* * * * * *\"",
            1,
        );
    assert!(text.contains("* * * * * *"), "{text}");
    std::fs::write(sandbox.path("collectors.toml"), text).unwrap();
    std::fs::copy(fresh.path("imap-password"), sandbox.path("imap-password")).unwrap();
}

#[test]
fn healthz_is_503_while_an_imap_server_is_down_longer_than_stale_after_and_200_again() {
    let mut first = dovecot(false);
    let sandbox = Sandbox::new();
    write_config(&sandbox, first.port());
    let (mut daemon, mut client) = spawn(&sandbox, "run", "");
    let collector_status = |client: &mut Client| {
        let (code, body) = health(client);
        (
            code,
            body["collectors"][0]["status"]
                .as_str()
                .unwrap()
                .to_string(),
            body,
        )
    };
    wait_until(PATIENCE, POLL, || match collector_status(&mut client) {
        (200, status, _) if status == "ok" => Ok(()),
        other => Err(format!("{other:?}")),
    });

    first.stop();
    let body = wait_until(PATIENCE, POLL, || match collector_status(&mut client) {
        (503, status, body) if status == "stale" => Ok(body),
        other => Err(format!("{other:?}")),
    });
    assert_eq!(body["status"], "unavailable");
    let reason = body["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("collector `shop` has been failing for ")
            && reason.ends_with("longer than its stale-after (2s)"),
        "{reason}"
    );
    assert!(body["collectors"][0]["failing_since"].is_string(), "{body}");
    assert_eq!(body["collectors"][0]["stale_after_secs"], 2);
    assert!(!body.to_string().contains(USER), "no error text: {body}");

    // The server is back (on another port): after a reload the collector works again.
    let second = dovecot(false);
    write_config(&sandbox, second.port());
    daemon.signal("HUP");
    let body = wait_until(PATIENCE, POLL, || match collector_status(&mut client) {
        (200, status, body) if status == "ok" => Ok(body),
        other => Err(format!("{other:?}")),
    });
    assert_eq!(body["status"], "ok");
    assert!(body["collectors"][0]["failing_since"].is_null(), "{body}");
    assert!(body.get("reason").is_none(), "{body}");
    assert!(daemon.terminate().success());
}
