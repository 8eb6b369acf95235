//! Queues as iCalendar feeds: the real server over HTTP, a real SQLite file, tokens made by
//! `mailintake tokens add --calendar`, and the feed read by a real parser (Debian's
//! python3-icalendar), as a calendar client would.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::kit::sandbox::{Sandbox, failure_text};
use crate::kit::web::Served;
use crate::web::with_fault_reports;

/// `tokens add --name NAME --calendar QUEUE`: the token printed on stdout.
fn calendar_token(sandbox: &Sandbox, name: &str, queue: &str) -> String {
    let output = sandbox.run(&["tokens", "add", "--name", name, "--calendar", queue]);
    assert!(output.status.success(), "{}", failure_text(output));
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// The feed's events as the `icalendar` package reads them.
fn parsed(feed: &[u8]) -> Vec<Value> {
    const SCRIPT: &str = r#"
import json, sys, icalendar
cal = icalendar.Calendar.from_ical(sys.stdin.buffer.read())
out = []
for e in cal.walk("VEVENT"):
    out.append({
        "uid": str(e["UID"]), "summary": str(e["SUMMARY"]),
        "description": str(e["DESCRIPTION"]), "url": str(e["URL"]),
        "status": str(e["STATUS"]), "sequence": int(e["SEQUENCE"]),
        "dtstart": e.decoded("DTSTART").isoformat(),
        "last_modified": e.decoded("LAST-MODIFIED").isoformat(),
        "calname": str(cal["X-WR-CALNAME"]),
    })
print(json.dumps(out))
"#;
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(feed).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn a_queue_feed_has_one_valid_event_per_record_that_changes_with_the_record() {
    let description = "电梯困人; 门, 不关 \\ 第二行\n".to_string() + &"很长的描述".repeat(30);
    let sandbox = with_fault_reports(&[("13800000001", &description), ("13900000009", "异响")]);
    let token = calendar_token(&sandbox, "mia-calendar", "triage");
    let served = Served::start(&sandbox);
    let mut client = served.client();
    let path = format!("/calendars/triage.ics?token={token}");

    let feed = client.get(&path);
    assert_eq!(feed.status, 200, "{}", feed.body);
    assert_eq!(
        feed.header("content-type"),
        Some("text/calendar; charset=utf-8")
    );
    // RFC 5545 on the wire: CRLF only, no line over 75 octets.
    assert!(!feed.body.replace("\r\n", "").contains('\n'));
    assert!(feed.body.split("\r\n").all(|line| line.len() <= 75));
    let events = parsed(&feed.bytes);
    assert_eq!(events.len(), 2, "{events:?}");
    let first = &events[0];
    let records = sandbox.records();
    let number = records[0]["service"]["number"].as_str().unwrap();
    assert_eq!(
        first["summary"],
        format!("Service request · {number} · 李雷")
    );
    assert_eq!(
        first["description"],
        format!(
            "Phone: 13800000001\nAddress: 广东广州天河区体育西路1号\n{description}\nhttp://{}/records/{}",
            served.addr, records[0]["id"]
        )
    );
    assert_eq!(
        first["url"],
        format!("http://{}/records/{}", served.addr, records[0]["id"])
    );
    assert_eq!(first["status"], "TENTATIVE");
    assert_eq!(first["sequence"], 0);
    // The record's date (here the message's, as the record stores it: local wall-clock
    // time), floating as a form's time is.
    assert_eq!(first["dtstart"], records[0]["date"], "{first}");
    assert_eq!(first["calname"], "triage");
    assert_ne!(first["uid"], events[1]["uid"]);

    // The customer rejects the solution: the event is cancelled, with a higher sequence.
    let id = records[0]["id"].to_string();
    // LAST-MODIFIED has whole seconds: let the changes fall in a later one.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    for args in [
        vec!["records", "triage", &id, "--as", "fault"],
        vec!["records", "start", &id],
        vec!["records", "resolve", &id, "--result", "更换门锁"],
        vec!["records", "reject", &id, "--reason", "仍有异响"],
    ] {
        let output = sandbox.run(&args);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            failure_text(output)
        );
    }
    let after = parsed(&client.get(&path).bytes);
    assert_eq!(after[0]["uid"], first["uid"], "the UID is stable");
    assert_eq!(after[0]["status"], "CANCELLED");
    assert_eq!(after[0]["sequence"], 4);
    assert!(
        after[0]["last_modified"].as_str() > first["last_modified"].as_str(),
        "{after:?} vs {first}"
    );
    assert_eq!(after[1], events[1], "the other record is unchanged");
}

#[test]
fn a_feed_needs_a_token_for_its_queue() {
    let sandbox = with_fault_reports(&[("13800000001", "异响")]);
    let triage = calendar_token(&sandbox, "triage-cal", "triage");
    let orders = calendar_token(&sandbox, "orders-cal", "orders");
    let served = Served::start(&sandbox);
    let mut client = served.client();
    let status = |client: &mut crate::kit::web::Client, path: &str| {
        let page = client.get(path);
        if page.status != 200 {
            let body: Value = serde_json::from_str(&page.body).unwrap();
            assert!(body["error"]["code"].is_string(), "{body}");
        }
        page.status
    };
    assert_eq!(
        status(
            &mut client,
            &format!("/calendars/triage.ics?token={triage}")
        ),
        200
    );
    assert_eq!(
        status(
            &mut client,
            &format!("/calendars/triage.ics?token={orders}")
        ),
        403
    );
    assert_eq!(status(&mut client, "/calendars/triage.ics"), 401);
    assert_eq!(status(&mut client, "/calendars/triage.ics?token="), 401);
    assert_eq!(
        status(&mut client, "/calendars/triage.ics?token=mit_nope"),
        401
    );
    assert_eq!(
        status(
            &mut client,
            &format!("/calendars/nosuch.ics?token={triage}")
        ),
        404
    );
    assert_eq!(
        status(&mut client, &format!("/calendars/triage?token={triage}")),
        404
    );
}
