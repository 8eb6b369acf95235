//! Notifications from the shipped `collectors.toml`: the seed's rules queue exactly the
//! expected outbox rows (recipients, rendered subject and body) in the transaction that
//! stores, triages or notifies, each with its history event; the GM comes from the people
//! directory and its absence fails visibly; the log filters; a failed one is retried.

use serde_json::Value;

use crate::kit::sandbox::{Sandbox, copy_tree, counts, failure_text, repo};

/// The shipped config in a sandbox with copies of the sample Maildirs, as the demo runs it.
/// Sending is not tried (`send-timeout-secs = 0`): these tests look at the outbox.
fn shipped() -> Sandbox {
    let sandbox = Sandbox::new();
    let config = std::fs::read_to_string(repo().join("collectors.toml")).unwrap();
    let config = config.replace("# send-timeout-secs = 30", "send-timeout-secs = 0");
    std::fs::write(sandbox.path("collectors.toml"), config).unwrap();
    for (from, to) in [
        ("samples/emes/inbox", "samples/demo-state/emes/inbox"),
        ("samples/maildir", "samples/demo-state/maildir"),
    ] {
        copy_tree(&repo().join(from), &sandbox.path(to));
    }
    sandbox
}

fn collect(sandbox: &Sandbox, collector: &str) -> Value {
    let reports = sandbox.json(&["collect", "--json", "--collector", collector]);
    reports[0].clone()
}

/// (rule, to, subject, body) of each notification of record `id`, in order.
fn rows_of(log: &[Value], id: u64) -> Vec<(String, Vec<String>, String, String)> {
    log.iter()
        .filter(|n| n["record_id"] == id)
        .map(|n| {
            (
                n["rule"].as_str().unwrap().to_string(),
                n["to"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_str().unwrap().to_string())
                    .collect(),
                n["subject"].as_str().unwrap().to_string(),
                n["body"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

const CONSULT_SMS: &str = "尊敬的客户，您好！我们已收到您的咨询信息，稍后会有专人与您联系，感谢您对日立电梯（中国）有限公司的支持！谢谢！【日立电梯】";
const FAULT_SMS: &str = "尊敬的客户, 您好! 我们已收到您的反馈, 稍后会有专人与您联系, 感谢您对日立电梯(中国)有限公司的支持! 谢谢! 【日立电梯】";

#[test]
fn every_sample_consult_queues_exactly_the_seed_notifications() {
    let sandbox = shipped();
    // One mailbox: the six consults (records 1-6), then the three fault reports (7-9).
    assert_eq!(counts(&collect(&sandbox, "emes")), [9, 9, 0, 0, 0]);
    let log = sandbox.notifications(&[]);
    assert_eq!(log.len(), 11, "{log:#?}");
    assert!(
        log.iter()
            .all(|n| n["status"] == "queued" && n["attempts"] == 0)
    );
    let records = sandbox.records();
    let number = |i: usize| {
        records[i]["service"]["number"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let sms = |rule: &str, to: &str, body: &str| {
        (
            rule.to_string(),
            vec![to.to_string()],
            String::new(),
            body.to_string(),
        )
    };
    let retrofit = |i: usize, contact: &str, phone: &str| {
        let address = records[i]["service"]["address"].as_str().unwrap();
        sms(
            "retrofit-to-manager",
            "8613900000001@sms.example.test",
            &format!(
                "EMES 新增加装梯咨询单据 {}: {contact}, {phone}, {address}",
                number(i)
            ),
        )
    };
    // 301 新梯采购咨询: only the confirmation (the GM e-mail is manual).
    assert_eq!(
        rows_of(&log, 1),
        [sms(
            "consult-confirmation",
            "13812345678@sms.example.test",
            CONSULT_SMS
        )]
    );
    // 302-304 加装/别墅/更新改造: the retrofit manager's SMS, then the confirmation.
    assert_eq!(
        rows_of(&log, 2),
        [
            retrofit(1, "李秀英 /女士", "139 0571 2233"),
            sms(
                "consult-confirmation",
                "13905712233@sms.example.test",
                CONSULT_SMS
            ),
        ]
    );
    assert_eq!(rows_of(&log, 3)[1].1, ["8613712345678@sms.example.test"]);
    assert_eq!(rows_of(&log, 3)[0].0, "retrofit-to-manager");
    assert_eq!(rows_of(&log, 4)[0].0, "retrofit-to-manager");
    // 305 维保服务咨询: the call center, the seed's subject, no body.
    assert_eq!(
        rows_of(&log, 5),
        [
            (
                "maintenance-to-callcenter".to_string(),
                vec!["callcenter@example.test".to_string()],
                format!(
                    "EMES 新增维保业务咨询单据, 单据编号: {}, 请处理, 谢谢!",
                    number(4)
                ),
                String::new(),
            ),
            sms(
                "consult-confirmation",
                "79165550305@sms.example.test",
                CONSULT_SMS
            ),
        ]
    );
    // 306 智能楼宇咨询: the designated address with the seed's subject and body.
    let service = &records[5]["service"];
    let field = |k: &str| service[k].as_str().unwrap().to_string();
    assert_eq!(
        rows_of(&log, 6)[0],
        (
            "smart-building-to-desk".to_string(),
            vec!["smart-building@example.test".to_string()],
            "智能楼宇业务咨询单据, 请处理, 谢谢!".to_string(),
            format!(
                "您好, 有客户在日立电梯官网填写了智能楼宇业务咨询事宜, 烦请跟进处理, 以下为客户联系信息, 谢谢!\n联系人: {}\n联系方式: {}\n地址: {}\n咨询内容: {}\n",
                field("contact"),
                field("contact_phone"),
                field("address"),
                field("content")
            ),
        )
    );
    // Each notification is in its record's history.
    let events = sandbox.history(5);
    assert!(events.contains(&(
        "notification queued".into(),
        "maintenance-to-callcenter -> callcenter@example.test (notification 8)".into()
    )));
    // Collecting again queues nothing more: the messages are known.
    assert_eq!(counts(&collect(&sandbox, "emes")), [0, 0, 0, 0, 0]);
    assert_eq!(log_len(&sandbox), 11);
}

fn log_len(sandbox: &Sandbox) -> usize {
    sandbox.notifications(&[]).len()
}

#[test]
fn a_fault_report_gets_its_confirmation_sms_once_triaged() {
    let sandbox = shipped();
    assert_eq!(counts(&collect(&sandbox, "emes")), [9, 9, 0, 0, 0]);
    assert_eq!(
        log_len(&sandbox),
        11,
        "the consults' notifications; pending fault reports notify nobody yet"
    );
    sandbox.run(&[
        "records",
        "triage",
        "7",
        "--as",
        "fault",
        "--set",
        "branch=南京分公司",
        "--actor",
        "hotline",
    ]);
    let log = sandbox.notifications(&[]);
    assert_eq!(
        rows_of(&log, 7),
        [(
            "fault-confirmation".to_string(),
            vec!["15011223344@sms.example.test".to_string()],
            String::new(),
            FAULT_SMS.to_string()
        )]
    );
    assert_eq!(log.last().unwrap()["channel"], "sms");
    assert_eq!(log.last().unwrap()["record_id"], 7);
    let events = sandbox.history(7);
    assert_eq!(events.last().unwrap().0, "notification queued");
    let record = sandbox.json(&["records", "show", "7", "--json"]);
    assert_eq!(record["service"]["branch"], "南京分公司");
    // A status change fires no rule of the sample: nothing more is queued.
    assert!(sandbox.run(&["records", "start", "7"]).status.success());
    assert_eq!(log_len(&sandbox), 12);
}

#[test]
fn the_manual_gm_email_goes_to_the_branch_manager_and_fails_visibly_without_one() {
    let sandbox = shipped();
    collect(&sandbox, "emes");
    let csv = sandbox.path("hr.csv");
    std::fs::write(
        &csv,
        "name,branch,role,email,phone,enabled\n刘总,北京分公司,gm,liu@example.test,,yes\n\
         王总,上海分公司,gm,wang@example.test,,yes\n旧总,北京分公司,gm,old@example.test,,停用\n",
    )
    .unwrap();
    assert!(
        sandbox
            .run(&["people", "import", csv.to_str().unwrap()])
            .status
            .success()
    );
    let notify = |id: &str| sandbox.run(&["records", "notify", id, "--rule", "new-lift-to-gm"]);
    // Record 1 is the 新梯 consult from 北京市: the 北京分公司 GM, not the disabled one.
    assert!(notify("1").status.success());
    let sent = sandbox.notifications(&["--record", "1", "--channel", "email"]);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["to"], serde_json::json!(["liu@example.test"]));
    assert_eq!(sent[0]["subject"], "新梯业务咨询单据, 请处理, 谢谢!");
    assert!(
        sent[0]["body"]
            .as_str()
            .unwrap()
            .starts_with("您好, 有客户在日立电梯官网填写了新梯业务咨询事宜")
    );
    // A record the rule does not fit is refused, and nothing is written.
    let refused = failure_text(notify("2"));
    assert!(refused.contains("does not apply to record 2"), "{refused}");
    // Without an enabled GM: a failed row with the reason, in the log and the history.
    let people = sandbox.json(&["people", "list", "--json"]);
    assert_eq!(people.as_array().unwrap().len(), 3);
    assert_eq!(people[2]["enabled"], false);
    assert!(sandbox.run(&["people", "disable", "1"]).status.success());
    let failed = failure_text(notify("1"));
    assert!(
        failed.contains("no enabled gm for branch 北京分公司"),
        "{failed}"
    );
    let failed = sandbox.notifications(&["--status", "failed"]);
    assert_eq!(failed.len(), 1);
    assert_eq!(
        failed[0]["last_error"],
        "no enabled gm for branch 北京分公司"
    );
    assert_eq!(failed[0]["to"], serde_json::json!([]));
    let id = failed[0]["id"].as_u64().unwrap();
    assert!(sandbox.history(1).contains(&(
        "notification failed".into(),
        format!("new-lift-to-gm: no enabled gm for branch 北京分公司 (notification {id})")
    )));
    // Nobody to retry to: refused, not queued to nobody.
    let refused = failure_text(sandbox.run(&["notifications", "retry", &id.to_string()]));
    assert!(refused.contains("has no recipient"), "{refused}");
    // With a GM again, the button works again.
    assert!(
        sandbox
            .run(&[
                "people",
                "add",
                "--name",
                "新总",
                "--branch",
                "北京分公司",
                "--role",
                "gm",
                "--email",
                "new@example.test"
            ])
            .status
            .success()
    );
    assert!(notify("1").status.success());
    let last = sandbox.notifications(&["--record", "1", "--channel", "email"]);
    assert_eq!(
        last.last().unwrap()["to"],
        serde_json::json!(["new@example.test"])
    );
}

#[test]
fn the_log_filters_and_a_failed_notification_is_retried() {
    let sandbox = shipped();
    collect(&sandbox, "emes");
    assert_eq!(sandbox.notifications(&["--channel", "email"]).len(), 2);
    assert_eq!(sandbox.notifications(&["--channel", "sms"]).len(), 9);
    assert_eq!(sandbox.notifications(&["--record", "2"]).len(), 2);
    assert_eq!(sandbox.notifications(&["--status", "sent"]).len(), 0);
    let tomorrow = (chrono::Local::now() + chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    assert_eq!(sandbox.notifications(&["--since", &tomorrow]).len(), 0);
    assert_eq!(sandbox.notifications(&["--until", &tomorrow]).len(), 11);
    assert_eq!(
        sandbox
            .notifications(&["--until", &tomorrow, "--channel", "email", "--record", "5"])
            .len(),
        1
    );
    // As the dispatcher leaves one after its last attempt.
    mark_failed(&sandbox, 8);
    let failed = sandbox.notifications(&["--status", "failed"]);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["attempts"], 10);
    let refused = failure_text(sandbox.run(&["notifications", "retry", "7"]));
    assert!(
        refused.contains("only a failed one is retried"),
        "{refused}"
    );
    assert!(
        sandbox
            .run(&["notifications", "retry", "8"])
            .status
            .success()
    );
    let retried = &sandbox.notifications(&["--record", "5", "--channel", "email"])[0];
    assert_eq!(retried["status"], "queued");
    assert_eq!(retried["attempts"], 0);
    assert_eq!(retried["last_error"], "connection refused");
    assert!(
        retried["next_attempt_at"].as_str().unwrap() <= chrono::Utc::now().to_rfc3339().as_str()
    );
    assert_eq!(sandbox.history(5).last().unwrap().0, "notification retried");
}

/// Marks notification `id` failed after ten attempts, as the dispatcher would, with
/// Python's sqlite3 on the real database file.
fn mark_failed(sandbox: &Sandbox, id: u64) {
    let db = sandbox.path("samples/demo-state/mailintake.db");
    let script = format!(
        "import sqlite3; c = sqlite3.connect({db:?}); c.execute(\"UPDATE notifications SET status = 'failed', attempts = 10, last_error = 'connection refused', next_attempt_at = '2999-01-01 00:00:00' WHERE id = {id}\"); c.commit()",
        db = db.to_str().unwrap()
    );
    let status = std::process::Command::new("/usr/bin/python3")
        .args(["-c", &script])
        .status()
        .unwrap();
    assert!(status.success());
}
