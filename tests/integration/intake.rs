//! HTTP intake (`POST /api/v1/intake/{collector}`): a website posts its form's JSON and gets
//! its success flag back. Real HTTP against the real server (and once against a real
//! `mailintake run`), a real SQLite file, tokens made with the real `tokens add`, the
//! quarantine read back with the real CLI and review page, notifications received by a real
//! SMTP server.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

use crate::kit::postgres::Postgres;
use crate::kit::process::wait_until;
use crate::kit::sandbox::{HTTP_SECTION, Sandbox, success_json};
use crate::kit::smtp::SmtpServer;
use crate::kit::web::{Client, Page, Served, add_user};

/// A declarative service-request format whose records need a phone.
const CALLBACK_FORMAT: &str = r#"
[[format]]
name = "callback"
kind = "service-request"
number-prefix = "CB"
required = ["contact-phone"]
[format.fields]
type = "consult"
contact = "{{姓名}}"
contact-phone = "{{手机}}"
content = "{{说明}}"
"#;

/// The seed's order file (v0.1), cut to what the assertions read.
const ORDER: &str = r#"{
    "Тема": "Заказ №123 от 01.06.2019",
    "Дата": "29.05.2019 15:15:00",
    "Описание": "Ролап с люверсами",
    "Телефон": "+7 925 642 42-90",
    "КонтактноеЛицо": "Прилепский Алексей Анатольевич",
    "Товары": [{"Номенклатура": "Ролап 123 22 22", "Количество": 2, "Цена": 500, "Сумма": 1000},
               {"Номенклатура": "Доставка", "Услуга": true, "Сумма": 1000}]
}"#;

/// Collectors: `orders` (a Maildir and HTTP, `max-body` 2 KB, KOI8-R by default), `calls` (HTTP alone, the
/// callback format), `mail` (a Maildir alone); `extra` is appended (e.g. `[smtp]`).
fn sandbox(extra: &str) -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.maildir("mail/orders");
    sandbox.maildir("mail/mail");
    let text = format!(
        r#"[storage]
url = "sqlite://data/mailintake.db"

[[queue]]
name = "orders"
[[queue]]
name = "calls"
[[queue]]
name = "mail"

[[collector]]
name = "orders"
queue = "orders"
default-charset = "koi8-r"
[collector.maildir]
path = "mail/orders"
[collector.http]
max-body = "2KB"

[[collector]]
name = "calls"
queue = "calls"
format = "callback"
[collector.http]

[[collector]]
name = "mail"
queue = "mail"
[collector.maildir]
path = "mail/mail"
{CALLBACK_FORMAT}
{extra}
{HTTP_SECTION}"#
    );
    std::fs::write(sandbox.path("collectors.toml"), text).unwrap();
    sandbox
}

/// `tokens add` with `args`; the token it printed.
fn token(sandbox: &Sandbox, args: &[&str]) -> String {
    let mut full = vec!["tokens", "add"];
    full.extend_from_slice(args);
    let output = sandbox.run(&full);
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// `POST /api/v1/intake/{collector}` with a bearer token and these extra headers.
fn post(
    client: &mut Client,
    collector: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Page {
    let bearer = format!("Bearer {token}");
    let mut all = vec![("Authorization", bearer.as_str())];
    all.extend_from_slice(headers);
    client.send("POST", &format!("/api/v1/intake/{collector}"), &all, body)
}

fn json(page: &Page) -> Value {
    serde_json::from_str(&page.body).unwrap_or_else(|e| panic!("{e}: {}", page.body))
}

fn cp1251(text: &str) -> Vec<u8> {
    encoding_rs::WINDOWS_1251.encode(text).0.into_owned()
}

/// The record `id` as `records show --json` prints it.
fn record(sandbox: &Sandbox, id: &Value) -> Value {
    sandbox.json(&["records", "show", &id.to_string(), "--json"])
}

#[test]
fn bodies_decode_by_content_type_charset_bom_or_collector_default_into_records() {
    let sandbox = sandbox("");
    let shop = token(&sandbox, &["--name", "shop-site", "--collector", "orders"]);
    let served = Served::start(&sandbox);
    let mut client = served.client();

    // cp1251 with the charset in Content-Type, where the collector's default (KOI8-R) would
    // read other letters.
    let declared = post(
        &mut client,
        "orders",
        &shop,
        &[("Content-Type", "application/json; charset=windows-1251")],
        &cp1251(ORDER),
    );
    assert_eq!(declared.status, 201, "{}", declared.body);
    let answer = json(&declared);
    assert_eq!(
        (&answer["status"], &answer["duplicate"], &answer["number"]),
        (&Value::from("accepted"), &Value::from(false), &Value::Null)
    );
    let order = record(&sandbox, &answer["id"]);
    assert_eq!(order["kind"], "order");
    assert_eq!(order["queue"], "orders");
    assert_eq!(order["collector"], "orders");
    assert_eq!(order["contact_name"], "Прилепский Алексей Анатольевич");
    assert_eq!(order["title"], "Заказ №123 от 01.06.2019");
    assert_eq!(order["description"], "Ролап с люверсами");
    assert_eq!(order["lines"][0]["item"], "Ролап 123 22 22");
    assert_eq!(order["lines"].as_array().unwrap().len(), 2);
    assert_eq!(order["tech_cards"].as_array().unwrap().len(), 1);
    assert_eq!(order["source"]["charset"], "windows-1251");
    assert_eq!(order["payload"], ORDER);
    // The history says it came over HTTP, and with which token.
    let history = &order["history"][0];
    assert_eq!(
        (&history["event"], &history["actor"]),
        (&Value::from("created"), &Value::from("api:shop-site"))
    );
    assert_eq!(
        history["detail"],
        "order over HTTP by token shop-site (2 lines, 1 tech cards)"
    );

    // UTF-8 with a BOM, under a wrong declaration: the BOM wins, as for an attachment.
    let lead = ORDER.replace(",\n    \"Товары\"", ",\n    \"x\"");
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(lead.as_bytes());
    let with_bom = post(
        &mut client,
        "orders",
        &shop,
        &[("Content-Type", "application/json; charset=koi8-r")],
        &bom,
    );
    assert_eq!(with_bom.status, 201, "{}", with_bom.body);
    let lead_record = record(&sandbox, &json(&with_bom)["id"]);
    assert_eq!(lead_record["kind"], "lead");
    assert_eq!(lead_record["source"]["charset"], "utf-8");
    assert_eq!(
        lead_record["contact_name"],
        "Прилепский Алексей Анатольевич"
    );

    // No charset at all: UTF-8 when valid, else the collector's default-charset (KOI8-R has
    // no `№`).
    let koi8 = ORDER.replace("№123", "N 125");
    for (body, charset, title) in [
        (
            ORDER.replace("№123", "№124").into_bytes(),
            "utf-8",
            "Заказ №124 от 01.06.2019",
        ),
        (
            encoding_rs::KOI8_R.encode(&koi8).0.into_owned(),
            "koi8-r",
            "Заказ N 125 от 01.06.2019",
        ),
    ] {
        let page = post(&mut client, "orders", &shop, &[], &body);
        assert_eq!(page.status, 201, "{}", page.body);
        let stored = record(&sandbox, &json(&page)["id"]);
        assert_eq!(stored["source"]["charset"], charset);
        assert_eq!(stored["contact_name"], "Прилепский Алексей Анатольевич");
        assert_eq!(stored["title"], title);
    }
    assert_eq!(sandbox.records().len(), 4);
}

#[test]
fn a_repeated_key_or_a_repeated_body_answers_with_the_first_record() {
    let sandbox = sandbox("");
    let shop = token(&sandbox, &["--name", "shop-site", "--collector", "orders"]);
    let served = Served::start(&sandbox);
    let mut client = served.client();
    let first_body = ORDER.as_bytes();

    let first = post(
        &mut client,
        "orders",
        &shop,
        &[("Idempotency-Key", "k-1")],
        first_body,
    );
    assert_eq!(first.status, 201, "{}", first.body);
    let id = json(&first)["id"].clone();

    // The same key: the first record, even with another body.
    let other_body = ORDER.replace("№123", "№999");
    for body in [first_body, other_body.as_bytes()] {
        let again = post(
            &mut client,
            "orders",
            &shop,
            &[("Idempotency-Key", "k-1")],
            body,
        );
        assert_eq!(again.status, 200, "{}", again.body);
        let answer = json(&again);
        assert_eq!(
            (&answer["id"], &answer["duplicate"]),
            (&id, &Value::from(true))
        );
        assert_eq!(answer["status"], "accepted");
    }
    // No key and the body accepted before (under a key): the first record too.
    let keyless = post(&mut client, "orders", &shop, &[], first_body);
    assert_eq!(keyless.status, 200, "{}", keyless.body);
    assert_eq!(json(&keyless)["id"], id);
    // A new key is a new request, whatever its body.
    let new_key = post(
        &mut client,
        "orders",
        &shop,
        &[("Idempotency-Key", "k-2")],
        first_body,
    );
    assert_eq!(new_key.status, 201, "{}", new_key.body);
    assert_ne!(json(&new_key)["id"], id);
    // No key and a body seen only with a key's other request: new; sent again: its duplicate.
    let fresh = post(&mut client, "orders", &shop, &[], other_body.as_bytes());
    assert_eq!(fresh.status, 201, "{}", fresh.body);
    let fresh_again = post(&mut client, "orders", &shop, &[], other_body.as_bytes());
    assert_eq!(fresh_again.status, 200, "{}", fresh_again.body);
    assert_eq!(json(&fresh_again)["id"], json(&fresh)["id"]);
    // One byte more is another body.
    let mut longer = first_body.to_vec();
    longer.push(b'\n');
    assert_eq!(post(&mut client, "orders", &shop, &[], &longer).status, 201);

    assert_eq!(sandbox.records().len(), 4);
    let key = post(
        &mut client,
        "orders",
        &shop,
        &[("Idempotency-Key", "")],
        first_body,
    );
    assert_eq!(key.status, 400, "{}", key.body);
    assert_eq!(json(&key)["error"]["code"], "bad_request");
}

#[test]
fn a_body_that_does_not_map_is_quarantined_shown_and_released_by_retry() {
    let sandbox = sandbox("");
    let site = token(
        &sandbox,
        &["--name", "hotline-site", "--collector", "calls"],
    );
    let served = Served::start(&sandbox);
    let mut client = served.client();

    // Not JSON at all.
    let form = b"name=Anna&phone=1";
    let not_json = post(&mut client, "calls", &site, &[], form);
    assert_eq!(not_json.status, 422, "{}", not_json.body);
    let answer = json(&not_json);
    assert_eq!(answer["status"], "quarantined");
    assert_eq!(answer["error"]["code"], "quarantined");
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .starts_with("request body: invalid JSON"),
        "{answer}"
    );

    // JSON without the phone the format requires, in GBK as declared.
    let payload = r#"{"姓名": "王小明", "说明": "12层住宅加装电梯"}"#;
    let gbk = encoding_rs::GBK.encode(payload).0.into_owned();
    let headers = [
        ("Content-Type", "application/json; charset=gbk"),
        ("Idempotency-Key", "call-7"),
    ];
    let unmapped = post(&mut client, "calls", &site, &headers, &gbk);
    assert_eq!(unmapped.status, 422, "{}", unmapped.body);
    let answer = json(&unmapped);
    let entry = answer["quarantine_id"].as_i64().unwrap();
    assert!(
        answer["reason"].as_str().unwrap().contains("contact-phone"),
        "{answer}"
    );
    // Sent again: the same entry, not a second one.
    let again = post(&mut client, "calls", &site, &headers, &gbk);
    assert_eq!(again.status, 422);
    assert_eq!(
        (&json(&again)["quarantine_id"], &json(&again)["duplicate"]),
        (&Value::from(entry), &Value::from(true))
    );
    assert_eq!(sandbox.quarantined(), 2);
    assert!(sandbox.records().is_empty());

    // Kept like a bad e-mail: in the CLI byte for byte, and on the review page.
    let raw = sandbox.run(&["quarantine", "show", &entry.to_string(), "--raw"]);
    assert!(raw.status.success());
    assert_eq!(raw.stdout, gbk);
    add_user(&sandbox, "admin", "admin", &[], "pw-admin-1");
    let mut browser = served.client();
    assert_eq!(browser.log_in("admin", "pw-admin-1").status, 303);
    let page = browser.get("/quarantine");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("contact-phone"), "{}", page.body);
    assert_eq!(browser.get(&format!("/quarantine/{entry}/raw")).bytes, gbk);

    // The config fixed (the phone no longer required), retry releases it as a record
    // decoded with the charset it was sent in; the key now answers with that record.
    let config = sandbox.path("collectors.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("required = [\"contact-phone\"]\n", ""),
    )
    .unwrap();
    let retried = success_json(sandbox.run(&["quarantine", "retry", &entry.to_string(), "--json"]));
    assert_eq!(retried["status"], "accepted", "{retried}");
    let released = record(&sandbox, &retried["record_id"]);
    assert_eq!(released["service"]["contact"], "王小明");
    assert_eq!(released["service"]["content"], "12层住宅加装电梯");
    assert!(
        released["service"]["number"]
            .as_str()
            .unwrap()
            .starts_with("CB")
    );
    let after = post(&mut client, "calls", &site, &headers, &gbk);
    assert_eq!(after.status, 200, "{}", after.body);
    assert_eq!(json(&after)["id"], retried["record_id"]);
    assert_eq!(json(&after)["number"], released["service"]["number"]);
}

/// A request written by hand: chunked, so the server learns the size only while reading.
fn chunked_post(addr: SocketAddr, path: &str, token: &str, chunks: usize) -> u16 {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let chunk = [b' '; 512];
    for _ in 0..chunks {
        // The server may answer and close before the last chunk: stop writing then.
        let sent = stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .and_then(|()| stream.write_all(&chunk))
            .and_then(|()| stream.write_all(b"\r\n"));
        if sent.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    let status = text.split(' ').nth(1).unwrap_or_else(|| panic!("{text}"));
    status.parse().unwrap()
}

#[test]
fn tokens_collectors_methods_and_sizes_are_checked_in_order_with_json_errors() {
    let sandbox = sandbox("");
    let shop = token(&sandbox, &["--name", "shop-site", "--collector", "orders"]);
    let calls = token(
        &sandbox,
        &["--name", "hotline-site", "--collector", "calls"],
    );
    let reader = token(&sandbox, &["--name", "helpdesk", "--scope", "read"]);
    let revoked = token(&sandbox, &["--name", "old-site", "--collector", "orders"]);
    assert!(
        sandbox
            .run(&["tokens", "revoke", "old-site"])
            .status
            .success()
    );
    let served = Served::start(&sandbox);
    // NOTE: a connection of its own per request: the server answers these without reading
    // the body and then closes the connection, which a kept-alive client would reuse.
    let client = || served.client();
    let body = ORDER.as_bytes();

    let code = |page: &Page| json(page)["error"]["code"].as_str().unwrap().to_string();
    let expect = |page: Page, status: u16, want: &str| {
        assert_eq!(page.status, status, "{}", page.body);
        assert_eq!(code(&page), want, "{}", page.body);
    };

    // 401 first: no token, a wrong one, a revoked one, even for a collector that is unknown.
    let none = client().send("POST", "/api/v1/intake/orders", &[], body);
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    expect(none, 401, "unauthorized");
    expect(
        post(&mut client(), "orders", "mit_wrong", &[], body),
        401,
        "unauthorized",
    );
    expect(
        post(&mut client(), "orders", &revoked, &[], body),
        401,
        "unauthorized",
    );
    expect(
        post(&mut client(), "nosuch", "mit_wrong", &[], body),
        401,
        "unauthorized",
    );
    // 404 for any valid token: no such collector, or one that takes nothing over HTTP.
    expect(
        post(&mut client(), "nosuch", &shop, &[], body),
        404,
        "not_found",
    );
    expect(
        post(&mut client(), "mail", &shop, &[], body),
        404,
        "not_found",
    );
    expect(
        post(&mut client(), "mail", &reader, &[], body),
        404,
        "not_found",
    );
    // 403: another collector's intake token, or a token that is not for intake, even with a
    // body over the limit.
    let oversized = vec![b' '; 3000];
    expect(
        post(&mut client(), "orders", &calls, &[], &oversized),
        403,
        "forbidden",
    );
    expect(
        post(&mut client(), "orders", &reader, &[], body),
        403,
        "forbidden",
    );
    // 405: the intake takes only POST.
    let get = client().send(
        "GET",
        "/api/v1/intake/orders",
        &[("Authorization", &format!("Bearer {shop}"))],
        b"",
    );
    expect(get, 405, "method_not_allowed");
    // 413: over max-body (2 KB) by its Content-Length, or while a chunked body streams in.
    expect(
        post(&mut client(), "orders", &shop, &[], &oversized),
        413,
        "payload_too_large",
    );
    assert_eq!(
        chunked_post(served.addr, "/api/v1/intake/orders", &shop, 8),
        413
    );
    // Within the limit, chunked works too (here: spaces only, so quarantined as not JSON).
    assert_eq!(
        chunked_post(served.addr, "/api/v1/intake/orders", &shop, 2),
        422
    );
    assert!(sandbox.records().is_empty());
    assert_eq!(sandbox.quarantined(), 1);

    // The route is in the OpenAPI document.
    let document: Value = serde_json::from_str(&client().get("/api/openapi.json").body).unwrap();
    let route = &document["paths"]["/api/v1/intake/{collector}"]["post"];
    assert!(route["responses"]["201"].is_object(), "{document}");
    assert!(route["responses"]["422"].is_object(), "{document}");
}

/// 100 concurrent requests with 50 keys, spread over `servers` in turn: exactly 50 records,
/// each key answered with one id, 50 created and 50 duplicates.
fn fifty_keys_make_fifty_records(sandbox: &Sandbox, servers: &[Served]) {
    let shop = token(sandbox, &["--name", "shop-site", "--collector", "orders"]);
    let answers: Vec<(String, u16, i64)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..100)
            .map(|i| {
                let (served, shop) = (&servers[i % servers.len()], &shop);
                scope.spawn(move || {
                    let key = format!("order-{}", i % 50);
                    // Every request a body of its own: only the key makes duplicates here.
                    let body = ORDER.replace("№123", &format!("№{i}"));
                    let page = post(
                        &mut served.client(),
                        "orders",
                        shop,
                        &[("Idempotency-Key", &key)],
                        body.as_bytes(),
                    );
                    let id = json(&page)["id"].as_i64().unwrap_or(-1);
                    (key, page.status, id)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });

    let mut by_key: BTreeMap<&str, BTreeSet<i64>> = BTreeMap::new();
    for (key, _, id) in &answers {
        by_key.entry(key).or_default().insert(*id);
    }
    assert_eq!(by_key.len(), 50);
    assert!(by_key.values().all(|ids| ids.len() == 1), "{by_key:?}");
    let created = answers.iter().filter(|a| a.1 == 201).count();
    let duplicates = answers.iter().filter(|a| a.1 == 200).count();
    assert_eq!((created, duplicates), (50, 50), "{answers:?}");
    let records = sandbox.records();
    assert_eq!(records.len(), 50);
    let stored: BTreeSet<i64> = records.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    let answered: BTreeSet<i64> = by_key.values().flatten().copied().collect();
    assert_eq!(stored, answered);
}

#[test]
fn a_hundred_concurrent_requests_with_fifty_keys_make_fifty_records() {
    let sandbox = sandbox("");
    let served = Served::start(&sandbox);
    fifty_keys_make_fifty_records(&sandbox, &[served]);
}

#[test]
fn two_servers_sharing_one_postgres_database_make_one_record_per_key() {
    let db = Postgres::shared().fresh_database();
    let sandbox = sandbox("");
    std::fs::write(sandbox.path("db-password"), &db.password).unwrap();
    let config = std::fs::read_to_string(sandbox.path("collectors.toml"))
        .unwrap()
        .replace(
            "url = \"sqlite://data/mailintake.db\"\n",
            &format!("url = \"{}\"\npassword-file = \"db-password\"\n", db.url),
        );
    std::fs::write(sandbox.path("collectors.toml"), config).unwrap();
    let servers = [Served::start(&sandbox), Served::start(&sandbox)];
    fifty_keys_make_fifty_records(&sandbox, &servers);
}

/// The review page's address, from the daemon's log.
fn served_at(sandbox: &Sandbox) -> SocketAddr {
    wait_until(Duration::from_secs(20), Duration::from_millis(50), || {
        let log = std::fs::read_to_string(sandbox.path("daemon.log")).unwrap_or_default();
        let marker = "review page: http://";
        log.find(marker)
            .and_then(|at| log[at + marker.len()..].split('/').next())
            .and_then(|addr| addr.parse().ok())
            .ok_or("the daemon has not logged its address yet")
    })
}

#[test]
fn an_http_record_in_a_running_daemon_fires_its_notification_rule() {
    let server = SmtpServer::start();
    let notify = format!(
        r#"
[smtp]
host = "127.0.0.1"
port = {}
tls = "none"
from = "orders@example.test"

[[notify]]
name = "new-order"
on = "created"
when = {{ queue = "orders", kind = "order" }}
channel = "email"
to = ["desk@example.test"]
subject = "Новый заказ: {{{{contact-name}}}}"
body = "{{{{title}}}}"
"#,
        server.port()
    );
    let sandbox = sandbox(&notify);
    let shop = token(&sandbox, &["--name", "shop-site", "--collector", "orders"]);
    let daemon = sandbox.spawn_daemon();
    let mut client = Client::new(served_at(&sandbox));

    let page = post(
        &mut client,
        "orders",
        &shop,
        &[("Content-Type", "application/json; charset=windows-1251")],
        &cp1251(ORDER),
    );
    assert_eq!(page.status, 201, "{}", page.body);
    let id = json(&page)["id"].as_u64().unwrap();

    let received = server.wait_for(1);
    assert_eq!(
        received[0].subject.as_deref(),
        Some("Новый заказ: Прилепский Алексей Анатольевич")
    );
    assert_eq!(received[0].rcpt_to, ["desk@example.test"]);
    assert_eq!(received[0].body.trim(), "Заказ №123 от 01.06.2019");
    let rows = sandbox.notifications(&["--record", &id.to_string()]);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["rule"], "new-order");
    let history = sandbox.history(id);
    assert_eq!(history[0].0, "created");
    assert!(
        history[0].1.contains("over HTTP by token shop-site"),
        "{history:?}"
    );
    assert!(
        history
            .iter()
            .any(|(event, detail)| event == "notification queued" && detail.contains("new-order")),
        "{history:?}"
    );
    assert!(daemon.terminate().success());
}
