//! What arrives with the mail cannot steer notifications: hostile payload values never break
//! a rendered subject or recipient, and automatic mail (auto-replies, bounces, our own
//! notifications) is never ingested, whatever its subject says.

use mail_builder::MessageBuilder;
use serde_json::{Value, json};

use crate::kit::mail::order_message;
use crate::kit::sandbox::{Sandbox, counts};
use crate::kit::smtp::SmtpServer;

const NOTIFY: &str = r#"
[smtp]
host = "127.0.0.1"
port = 2525
tls = "none"
from = "Intake <intake@example.test>"
send-timeout-secs = 0

[sms]
gateway = "{{digits}}@sms.example.test"

[[format]]
name = "form"
kind = "service-request"
[format.fields]
type = "consult"
contact = "{{name}}"
contact-phone = "{{phone}}"
email = "{{email}}"
content = "{{text}}"

[[notify]]
name = "to-customer"
on = "created"
when = { kind = "service-request" }
channel = "email"
to = ["{{email}}", "desk@example.test"]
subject = "Re: {{contact}} / {{content}}"
body = "{{content}}"

[[notify]]
name = "sms"
on = "created"
when = { kind = "service-request" }
channel = "sms"
to = ["{{contact-phone}}"]
body = "{{contact}}"
"#;

fn sandbox() -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.maildir("inbox");
    sandbox.write_config(&[("form", "inbox")], "format = \"form\"");
    let text = std::fs::read_to_string(sandbox.path("collectors.toml")).unwrap();
    std::fs::write(sandbox.path("collectors.toml"), format!("{text}{NOTIFY}")).unwrap();
    sandbox
}

fn form_mail(n: u32, payload: &Value) -> Vec<u8> {
    MessageBuilder::new()
        .from("web@example.test")
        .subject(format!("ORDER: {n}"))
        .message_id(format!("form-{n}@example.test"))
        .text_body("form")
        .attachment("application/json", "form.json", payload.to_string())
        .write_to_vec()
        .unwrap()
}

fn is_address(text: &str) -> bool {
    let (local, domain) = text.split_once('@').unwrap_or_default();
    !local.is_empty()
        && domain.contains('.')
        && text.len() <= 254
        && !text
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "<>,;".contains(c))
}

#[test]
fn hostile_payload_values_never_break_a_subject_or_recipient() {
    let sandbox = sandbox();
    let long = "很长的内容".repeat(400);
    let payloads = [
        json!({"name": "Eve\r\nBcc: victim@example.test", "phone": "138\r\n0013 8000",
               "email": "eve@example.test\r\nBcc: victim@example.test", "text": "x\r\nSubject: spoof"}),
        json!({"name": "王小明", "phone": "+86 139-1234-5678", "email": "Evil <eve@example.test>",
               "text": long}),
        json!({"name": "\u{0}\u{7}\u{1b}[31m", "phone": "13800138000",
               "email": format!("{}@example.test", "a".repeat(300)), "text": "\u{2028}line"}),
    ];
    for (n, payload) in (1..).zip(&payloads) {
        sandbox.deliver("inbox", &format!("{n}.M{n}.mx"), &form_mail(n, payload));
    }
    assert_eq!(counts(&sandbox.collect()), [3, 3, 0, 0, 0]);
    let log = sandbox.json(&["notifications", "list", "--json"]);
    let log = log.as_array().unwrap();
    assert_eq!(log.len(), 6, "{log:#?}");
    for n in log {
        let subject = n["subject"].as_str().unwrap();
        assert!(!subject.chars().any(char::is_control), "{subject:?}");
        for to in n["to"].as_array().unwrap() {
            assert!(is_address(to.as_str().unwrap()), "{to}");
        }
        for text in [&n["last_error"]].into_iter().filter_map(Value::as_str) {
            assert!(!text.chars().any(char::is_control), "{text:?}");
        }
    }
    let emails: Vec<&Value> = log.iter().filter(|n| n["rule"] == "to-customer").collect();
    // The injected address is not taken, the desk still gets each one.
    for n in &emails {
        assert_eq!(n["status"], "queued");
        assert!(
            n["to"]
                .as_array()
                .unwrap()
                .contains(&json!("desk@example.test"))
        );
        assert!(!n["to"].to_string().contains("victim"));
    }
    assert_eq!(
        emails[0]["subject"],
        "Re: Eve Bcc: victim@example.test / x Subject: spoof"
    );
    assert_eq!(
        emails[0]["body"], "x\nSubject: spoof",
        "a body keeps its lines"
    );
    assert!(emails[1]["subject"].as_str().unwrap().chars().count() > 2000);
    // The SMS go to every digit of the phone as written, CR/LF and all.
    let sms: Vec<&Value> = log.iter().filter(|n| n["rule"] == "sms").collect();
    assert_eq!(sms[0]["to"], json!(["13800138000@sms.example.test"]));
    assert_eq!(sms[1]["to"], json!(["8613912345678@sms.example.test"]));
    // What was dropped is said in the history.
    let record = sandbox.json(&["records", "show", "1", "--json"]);
    let history = record["history"].to_string();
    assert!(history.contains("not sent to:"), "{history}");
    assert!(history.contains("is not an e-mail address"), "{history}");
}

#[test]
fn hostile_payload_values_arrive_as_one_clean_subject_and_no_injected_header() {
    let server = SmtpServer::start();
    let sandbox = sandbox();
    let config = std::fs::read_to_string(sandbox.path("collectors.toml")).unwrap();
    let config = config
        .replacen("port = 2525", &format!("port = {}", server.port()), 1)
        .replacen("send-timeout-secs = 0", "send-timeout-secs = 30", 1);
    std::fs::write(sandbox.path("collectors.toml"), config).unwrap();
    let payload = json!({"name": "Eve\r\nBcc: victim@example.test", "phone": "138 0013 8000",
        "email": "eve@example.test\r\nBcc: victim@example.test",
        "text": "订单\r\nSubject: spoof\r\n\r\nX-Injected: 1"});
    sandbox.deliver("inbox", "1.M1.mx", &form_mail(1, &payload));
    assert_eq!(counts(&sandbox.collect()), [1, 1, 0, 0, 0]);
    // Sent before `collect` exited: the e-mail (to the desk only) and the SMS.
    let received = server.received();
    assert_eq!(received.len(), 2);
    let mail = received
        .iter()
        .find(|m| m.rcpt_to == ["desk@example.test"])
        .unwrap_or_else(|| panic!("{received:#?}"));
    assert_eq!(mail.header("Subject").len(), 1, "{:?}", mail.headers);
    assert_eq!(
        mail.subject.as_deref(),
        Some("Re: Eve Bcc: victim@example.test / 订单 Subject: spoof X-Injected: 1")
    );
    for injected in ["Bcc", "X-Injected"] {
        assert!(mail.header(injected).is_empty(), "{:?}", mail.headers);
    }
    assert_eq!(
        mail.body.trim_end(),
        "订单\nSubject: spoof\n\nX-Injected: 1"
    );
    let log = sandbox.json(&["notifications", "list", "--json"]);
    let logged = log
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["rule"] == "to-customer")
        .unwrap();
    assert_eq!(
        logged["subject"],
        mail.subject.clone().unwrap(),
        "the log shows what was sent"
    );
    assert_eq!(logged["status"], "sent");
    let sms = received.iter().find(|m| m.rcpt_to != mail.rcpt_to).unwrap();
    assert_eq!(sms.rcpt_to, ["13800138000@sms.example.test"]);
    // A body keeps its lines: text, not a header.
    assert_eq!(sms.body.trim_end(), "Eve\nBcc: victim@example.test");
    assert!(sms.header("Bcc").is_empty(), "{:?}", sms.headers);
}

/// An ORDER message with the same payload and one extra header (or none).
fn with_header(n: usize, header: Option<(&'static str, &'static str)>) -> Vec<u8> {
    let raw = order_message(n, "7707083893", 1);
    match header {
        None => raw,
        Some((name, value)) => {
            let mut out = format!("{name}: {value}\r\n").into_bytes();
            out.extend_from_slice(&raw);
            out
        }
    }
}

#[test]
fn auto_replies_bounces_and_our_own_mail_are_not_ingested_whatever_the_subject() {
    let sandbox = Sandbox::new();
    sandbox.maildir("inbox");
    sandbox.write_config(&[("shop", "inbox")], "");
    let text = std::fs::read_to_string(sandbox.path("collectors.toml")).unwrap();
    std::fs::write(
        sandbox.path("collectors.toml"),
        format!(
            "{text}[smtp]\nhost = \"127.0.0.1\"\ntls = \"none\"\nfrom = \"Intake <Intake@Example.test>\"\n"
        ),
    )
    .unwrap();
    let skipped = [
        with_header(1, Some(("Auto-Submitted", "auto-replied"))),
        with_header(2, Some(("Auto-Submitted", "auto-notified"))),
        with_header(3, Some(("X-Autoreply", "yes"))),
        with_header(4, Some(("X-Autorespond", "yes"))),
        with_header(5, Some(("Return-Path", "<>"))),
        MessageBuilder::new()
            .from("intake@example.test")
            .subject("ORDER: 6")
            .text_body("x")
            .attachment(
                "text/plain",
                "order.txt",
                r#"{"Телефон": "+7 925 000 00 06"}"#,
            )
            .write_to_vec()
            .unwrap(),
        // A DSN as Postfix writes it, with the bounced order attached.
        [
            "From: MAILER-DAEMON@example.test (Mail Delivery System)\r\n",
            "Subject: ORDER: 7 Undelivered Mail Returned to Sender\r\n",
            "MIME-Version: 1.0\r\n",
            "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n",
            "--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n",
            "--b\r\nContent-Type: message/delivery-status\r\n\r\nAction: failed\r\n",
            "--b\r\nContent-Type: text/plain; name=order.txt\r\n\r\n{\"x\": 1}\r\n--b--\r\n",
        ]
        .concat()
        .into_bytes(),
    ];
    for (n, raw) in (1..).zip(&skipped) {
        sandbox.deliver("inbox", &format!("{n}.M{n}.mx"), raw);
    }
    sandbox.deliver(
        "inbox",
        "8.M8.mx",
        &with_header(8, Some(("Auto-Submitted", "auto-generated"))),
    );
    let report = sandbox.collect();
    assert_eq!(
        counts(&report),
        [8, 1, 7, 0, 0],
        "{:#}",
        sandbox.json(&["quarantine", "list", "--json"])
    );
    let records = sandbox.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["source"]["subject"], "ORDER: 8");
    // Skipped mail stays in new/ untouched, as any mail not for us.
    assert_eq!(sandbox.files_in("inbox", "new").len(), 7);
}
