//! One mailbox, several forms (issue 12): a collector lists formats, each with its `when`
//! and queue; the first that fits maps the message, none fitting quarantines it with what
//! was tried; a wrong triage is corrected with both decisions in the history; a required
//! field names the payload key the website failed to send; service requests are dated by
//! the form, else by the message; the text tables line up with Chinese and Cyrillic text.

use serde_json::{Value, json};
use unicode_width::UnicodeWidthStr;

use crate::kit::mail::form_mail;
use crate::kit::sandbox::{HTTP_SECTION, Sandbox, counts, failure_text, shipped_demo};

/// Two queues, the consult and fault forms told apart by the payload's `form` key (the fault
/// form also by the subject), one collector listing both, reading `inbox`.
const TWO_FORMS: &str = r#"[storage]
url = "sqlite://mailintake.db"

[[queue]]
name = "consult"
[[queue]]
name = "triage"

[[format]]
name = "consult"
kind = "service-request"
number-prefix = "ZX"
required = ["contact-phone"]
when = { form = "consult" }
[format.fields]
type = "consult"
contact = "{{name}} /{{gender|salutation}}"
contact-phone = "{{contact.mobile}}"
content = "{{text}}"

[[format]]
name = "fault"
kind = "service-request"
number-prefix = "BZ"
queue = "triage"
required = ["contact-phone"]
when = { form = "fault", "描述" = "*" }
when-subject = "报障"
[format.fields]
type = "pending"
date = "{{提交时间}}"
contact = "{{name}} /{{gender|salutation}}"
contact-phone = "{{contact.mobile}}"
description = "{{描述}}"
identity = "{{身份}}"

[[collector]]
name = "site"
queue = "consult"
formats = ["consult", "fault"]
[collector.maildir]
path = "inbox"
"#;

fn two_forms() -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.maildir("inbox");
    let config = format!("{TWO_FORMS}\n{HTTP_SECTION}");
    std::fs::write(sandbox.path("collectors.toml"), config).unwrap();
    sandbox
}

fn consult(name: &str, phone: &str) -> Value {
    json!({"form": "consult", "name": name, "gender": "男", "contact": {"mobile": phone},
           "text": "想了解加装电梯"})
}

fn fault(name: &str, phone: &str) -> Value {
    json!({"form": "fault", "name": name, "gender": "女", "contact": {"mobile": phone},
           "描述": "电梯困人", "身份": "物业", "提交时间": "2026-11-20 09:30:00"})
}

/// Delivers website form mail `n` (`ORDER: n <what>`, `payload` attached) into `inbox`.
fn post(sandbox: &Sandbox, n: u32, what: &str, payload: &Value) {
    post_at(sandbox, n, what, payload, None);
}

/// [`post`], the message's `Date` being `sent` (Unix seconds) when given.
fn post_at(sandbox: &Sandbox, n: u32, what: &str, payload: &Value, sent: Option<i64>) {
    let name = format!("{n}.M{n}.mx");
    sandbox.deliver("inbox", &name, &form_mail(n, what, payload, sent));
}

/// Quarantine reasons, oldest first.
fn reasons(sandbox: &Sandbox) -> Vec<String> {
    let entries = sandbox.json(&["quarantine", "list", "--json"]);
    entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap().to_string())
        .collect()
}

fn stdout(sandbox: &Sandbox, args: &[&str]) -> String {
    let out = sandbox.run(args);
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn one_mailbox_fills_two_queues_by_the_form_each_payload_is() {
    let sandbox = two_forms();
    post(&sandbox, 1, "官网咨询", &consult("张伟", "13800000001"));
    post(&sandbox, 2, "官网报障", &fault("李娜", "13800000002"));
    assert_eq!(counts(&sandbox.collect()), [2, 2, 0, 0, 0]);
    let records = sandbox.records();
    assert_eq!(records[0]["queue"], "consult");
    assert_eq!(records[0]["service"]["type"], "consult");
    assert_eq!(records[0]["source"]["format"], "consult");
    assert_eq!(
        records[1]["queue"], "triage",
        "the fault format's own queue"
    );
    assert_eq!(records[1]["service"]["type"], "pending");
    assert_eq!(records[1]["source"]["format"], "fault");
    assert_eq!(records[1]["service"]["contact_phone"], "13800000002");
    let triage = sandbox.json(&["records", "triage-list", "--json"]);
    assert_eq!(triage.as_array().unwrap().len(), 1);
    let in_triage = sandbox.json(&["records", "list", "--queue", "triage", "--json"]);
    assert_eq!(in_triage.as_array().unwrap().len(), 1);
}

#[test]
fn a_consult_shaped_payload_never_becomes_a_fault_report() {
    let sandbox = two_forms();
    // A consult sent with the fault form's subject: the payload says consult.
    post(&sandbox, 1, "官网报障", &consult("张伟", "13800000001"));
    // A fault-shaped payload without the fault subject fits neither format.
    post(&sandbox, 2, "官网咨询", &fault("李娜", "13800000002"));
    assert_eq!(counts(&sandbox.collect()), [2, 1, 0, 1, 0]);
    let records = sandbox.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["service"]["type"], "consult");
    assert_eq!(records[0]["queue"], "consult");
    let reasons = reasons(&sandbox);
    assert_eq!(
        reasons,
        [
            "attachment `form.json`: no format fits the payload; tried consult (form is \"fault\", not \"consult\"), fault (the subject does not contain \"报障\")"
        ]
    );
}

#[test]
fn a_payload_matching_no_format_is_quarantined_naming_what_was_tried() {
    let sandbox = two_forms();
    let join = json!({"form": "join", "name": "王五", "contact": {"mobile": "13800000003"}});
    post(&sandbox, 1, "加入我们", &join);
    let no_form = json!({"name": "赵六", "描述": "门不关"});
    post(&sandbox, 2, "官网报障", &no_form);
    assert_eq!(counts(&sandbox.collect()), [2, 0, 0, 2, 0]);
    assert_eq!(
        reasons(&sandbox),
        [
            "attachment `form.json`: no format fits the payload; tried consult (form is \"join\", not \"consult\"), fault (form is \"join\", not \"fault\")",
            "attachment `form.json`: no format fits the payload; tried consult (form is missing), fault (form is missing)",
        ]
    );
    assert!(sandbox.records().is_empty(), "never an empty fault report");
    // `parse` says the same without a database, and which format fits when one does.
    let file = sandbox.path("inbox/new/1.M1.mx");
    let out = sandbox.json(&[
        "parse",
        "--json",
        "--collector",
        "site",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out["status"], "quarantined");
    let file = sandbox.deliver(
        "other",
        "3.M3.mx",
        &form_mail(3, "官网报障", &fault("李娜", "1"), None),
    );
    let out = sandbox.json(&[
        "parse",
        "--json",
        "--collector",
        "site",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out["record"]["source"]["format"], "fault");
    assert_eq!(out["record"]["queue"], "triage");
}

#[test]
fn required_field_reasons_name_the_payload_key_the_website_left_out() {
    let sandbox = two_forms();
    let no_mobile = json!({"form": "consult", "name": "张伟", "contact": {}});
    post(&sandbox, 1, "官网咨询", &no_mobile);
    let empty_mobile = json!({"form": "consult", "name": "张伟", "contact": {"mobile": ""}});
    post(&sandbox, 2, "官网咨询", &empty_mobile);
    assert_eq!(counts(&sandbox.collect()), [2, 0, 0, 2, 0]);
    assert_eq!(
        reasons(&sandbox),
        [
            "attachment `form.json`: contact-phone: payload key contact.mobile is missing",
            "attachment `form.json`: contact-phone: payload key contact.mobile is missing or empty",
        ]
    );
}

#[test]
fn the_date_is_the_forms_submission_time_else_the_messages_date() {
    let sandbox = two_forms();
    // 2026-11-21 08:00:00 UTC, shown in this machine's local time.
    let sent = 1_795_248_000;
    post_at(&sandbox, 1, "官网咨询", &consult("张伟", "1"), Some(sent));
    post_at(&sandbox, 2, "官网报障", &fault("李娜", "2"), Some(sent));
    sandbox.collect();
    let local = chrono::DateTime::from_timestamp(sent, 0)
        .unwrap()
        .with_timezone(&chrono::Local)
        .naive_local();
    let records = sandbox.records();
    assert_eq!(
        records[0]["date"],
        local.format("%Y-%m-%dT%H:%M:%S").to_string()
    );
    assert_eq!(records[1]["date"], "2026-11-20T09:30:00", "提交时间 wins");
    let list = stdout(&sandbox, &["records", "list"]);
    assert!(
        list.contains(&local.format("%Y-%m-%d %H:%M").to_string()),
        "{list}"
    );
    assert!(list.contains("2026-11-20 09:30"), "{list}");
    let triage = stdout(&sandbox, &["records", "triage-list"]);
    assert!(triage.lines().next().unwrap().contains("DATE"), "{triage}");
    assert!(triage.contains("2026-11-20 09:30"), "{triage}");
}

#[test]
fn contact_name_has_no_salutation_while_contact_keeps_it() {
    let sandbox = two_forms();
    post(&sandbox, 1, "官网咨询", &consult("张伟", "1"));
    sandbox.collect();
    let record = &sandbox.records()[0];
    assert_eq!(record["contact_name"], "张伟");
    assert_eq!(record["service"]["contact"], "张伟 /先生");
}

#[test]
fn a_wrong_triage_is_corrected_and_the_history_shows_both_decisions() {
    let sandbox = two_forms();
    post(&sandbox, 1, "官网咨询", &consult("张伟", "1"));
    post(&sandbox, 2, "官网报障", &fault("李娜", "2"));
    sandbox.collect();
    let triage = |id: &str, outcome: &str| sandbox.run(&["records", "triage", id, "--as", outcome]);
    assert!(triage("2", "fault").status.success());
    let corrected = triage("2", "complaint");
    assert!(corrected.status.success(), "{corrected:?}");
    let record = sandbox.json(&["records", "show", "2", "--json"]);
    assert_eq!(record["service"]["type"], "complaint");
    assert_eq!(
        record["service"]["content"], "物业:电梯困人",
        "the complaint rule"
    );
    let triaged: Vec<String> = sandbox
        .history(2)
        .into_iter()
        .filter(|(event, _)| event == "triaged")
        .map(|(_, detail)| detail)
        .collect();
    assert_eq!(triaged, ["as fault", "as complaint (was fault)"]);
    // Back to a fault: the description again, by the same rules.
    assert!(triage("2", "fault").status.success());
    let record = sandbox.json(&["records", "show", "2", "--json"]);
    assert_eq!(record["service"]["content"], "电梯困人");
    assert!(
        failure_text(triage("2", "fault")).contains("is triaged as fault already"),
        "the same type again is no correction"
    );
    assert!(
        failure_text(triage("1", "complaint")).contains("is a consult request, not pending triage"),
        "a consult from its own form was never triaged"
    );
    // The triage list counts it once, as processed.
    let processed = sandbox.json(&["records", "triage-list", "--status", "processed", "--json"]);
    assert_eq!(processed.as_array().unwrap().len(), 1);
}

#[test]
fn the_shipped_sample_runs_both_forms_from_one_maildir_into_two_queues() {
    let sandbox = shipped_demo(|c| c.replace("# send-timeout-secs = 30", "send-timeout-secs = 0"));
    let reports = sandbox.json(&["collect", "--json", "--collector", "emes"]);
    assert_eq!(counts(&reports[0]), [9, 9, 0, 0, 0]);
    let records = sandbox.records();
    let queue_of = |format: &str| -> Vec<&str> {
        records
            .iter()
            .filter(|r| r["source"]["format"] == format)
            .map(|r| r["queue"].as_str().unwrap())
            .collect()
    };
    assert_eq!(queue_of("emes-consult"), ["emes-consult"; 6]);
    assert_eq!(queue_of("emes-fault"), ["emes-triage"; 3]);
    for r in &records {
        let pending = r["service"]["type"] == "pending";
        assert_eq!(pending, r["queue"] == "emes-triage", "{r}");
        assert!(r["date"].is_string(), "dated by 提交时间: {r}");
        assert!(!r["contact_name"].as_str().unwrap().contains(" /"), "{r}");
    }
    // Triage and a correction: the customer's confirmation SMS goes out once.
    let sms = |s: &Sandbox| s.notifications(&["--record", "7"]).len();
    assert!(
        sandbox
            .run(&["records", "triage", "7", "--as", "fault"])
            .status
            .success()
    );
    assert_eq!(sms(&sandbox), 1);
    assert!(
        sandbox
            .run(&["records", "triage", "7", "--as", "complaint"])
            .status
            .success()
    );
    assert_eq!(
        sms(&sandbox),
        1,
        "a correction does not tell the customer again"
    );
}

#[test]
fn text_tables_line_up_with_chinese_and_cyrillic_text() {
    let sandbox = two_forms();
    let names = ["欧阳娜娜", "Иванов Сергей", "Lee", "张伟"];
    for (n, name) in (1..).zip(names) {
        post(
            &sandbox,
            n,
            "官网报障",
            &fault(name, &format!("1380000000{n}")),
        );
    }
    sandbox.collect();
    for args in [
        &["records", "list"][..],
        &["records", "triage-list"],
        &["contacts", "show", "13800000002"],
    ] {
        let text = stdout(&sandbox, args);
        let lines: Vec<&str> = text.lines().filter(|l| l.contains("1380000000")).collect();
        assert!(!lines.is_empty(), "{args:?}: {text}");
        // The phone column starts at the same display column on every line.
        let columns: Vec<usize> = lines
            .iter()
            .map(|l| l[..l.find("1380000000").unwrap()].width())
            .collect();
        assert!(
            columns.iter().all(|c| *c == columns[0]),
            "{args:?}:\n{text}"
        );
        let header = text.lines().find(|l| l.contains("PHONE")).unwrap();
        assert_eq!(
            header[..header.find("PHONE").unwrap()].width(),
            columns[0],
            "{args:?}:\n{text}"
        );
    }
}
