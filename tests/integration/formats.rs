//! Declarative formats from `collectors.toml`: a website's own JSON keys become a service
//! request, with no code change (the seed's EMES consult form).

use mail_builder::MessageBuilder;
use mail_builder::headers::content_type::ContentType;
use mail_builder::mime::MimePart;

use crate::kit::mail::{FAULT_FORMAT, fault_report, order_message};
use crate::kit::sandbox::{Sandbox, counts};

const CONSULT_FORMAT: &str = r#"
[[format]]
name = "emes-consult"
kind = "service-request"
number-prefix = "ZX"
required = ["contact-phone", "sub-type"]
[format.fields]
type = "consult"
sub-type = "{{业务|map:consult-type}}"
source = "日立官网"
owner = "日立官网"
contact = "{{姓名}} /{{性别|salutation}}"
contact-phone = "{{手机}}"
site = "{{详细地址}}"
building = "{{详细地址}}"
address = "{{省}}{{市}}{{区}}{{详细地址}}"
content = "{{说明}}"
[format.maps.consult-type]
"加装电梯咨询" = "加装"
"别墅电梯咨询" = "加装"
"更新改造咨询" = "加装"
"维保服务咨询" = "其他"
"新梯采购咨询" = "新梯"
"智能楼宇咨询" = "楼宇"
"#;

/// A consult form e-mail with a GBK-encoded JSON attachment (declared charset).
fn consult_mail(n: u32, business: &str, phone: Option<&str>) -> Vec<u8> {
    let mut payload = serde_json::json!({
        "业务": business, "姓名": "王小明", "性别": "女", "邮箱": "wang@example.cn",
        "省": "上海", "市": "上海", "区": "浦东新区", "详细地址": "世纪大道100号", "说明": "12层住宅加装电梯"
    });
    if let Some(phone) = phone {
        payload["手机"] = phone.into();
    }
    let json = serde_json::to_string_pretty(&payload).unwrap();
    let attachment = MimePart::new(
        ContentType::new("text/plain").attribute("charset", "gbk"),
        encoding_rs::GBK.encode(&json).0.into_owned(),
    )
    .attachment("consult.json");
    MessageBuilder::new()
        .from("web@hitachi.example")
        .to("emes@hitachi.example")
        .subject(format!("ORDER: {n} 官网咨询"))
        .message_id(format!("consult-{n}@hitachi.example"))
        .body(MimePart::new(
            "multipart/mixed",
            vec![MimePart::new("text/plain", "官网咨询"), attachment],
        ))
        .write_to_vec()
        .unwrap()
}

fn sandbox() -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.maildir("inbox");
    sandbox.write_config(&[("consult", "inbox")], "format = \"emes-consult\"");
    let text = std::fs::read_to_string(sandbox.path("collectors.toml")).unwrap();
    std::fs::write(
        sandbox.path("collectors.toml"),
        format!("{text}{CONSULT_FORMAT}"),
    )
    .unwrap();
    sandbox
}

#[test]
fn consult_form_becomes_a_numbered_consult_request() {
    let sandbox = sandbox();
    sandbox.deliver(
        "inbox",
        "1.M1.mx",
        &consult_mail(1, "加装电梯咨询", Some("13800138000")),
    );
    sandbox.deliver(
        "inbox",
        "2.M2.mx",
        &consult_mail(2, "智能楼宇咨询", Some("139-0000-1111")),
    );
    assert_eq!(counts(&sandbox.collect()), [2, 2, 0, 0, 0]);
    let records = sandbox.json(&["records", "list", "--json", "--kind", "service-request"]);
    let first = &records[0];
    assert_eq!(first["kind"], "service-request");
    assert_eq!(first["source"]["charset"], "gbk");
    let service = &first["service"];
    assert_eq!(service["type"], "consult");
    assert_eq!(service["sub_type"], "加装");
    assert_eq!(service["contact"], "王小明 /女士");
    assert_eq!(service["contact_phone"], "13800138000");
    assert_eq!(service["address"], "上海上海浦东新区世纪大道100号");
    assert_eq!(service["site"], "世纪大道100号");
    assert_eq!(service["content"], "12层住宅加装电梯");
    assert_eq!(service["source"], "日立官网");
    assert!(first["email"].is_null(), "e-mail is not mapped");
    let today = chrono::Local::now().format("%Y%m%d").to_string();
    assert_eq!(service["number"], format!("ZX{today}0001"));
    assert_eq!(records[1]["service"]["number"], format!("ZX{today}0002"));
    assert_eq!(records[1]["service"]["sub_type"], "楼宇");
}

#[test]
fn missing_required_field_and_unmapped_type_are_quarantined_with_reasons() {
    let sandbox = sandbox();
    sandbox.deliver("inbox", "1.M1.mx", &consult_mail(1, "加装电梯咨询", None));
    sandbox.deliver(
        "inbox",
        "2.M2.mx",
        &consult_mail(2, "电梯租赁咨询", Some("13800138000")),
    );
    assert_eq!(counts(&sandbox.collect()), [2, 0, 0, 2, 0]);
    let entries = sandbox.json(&["quarantine", "list", "--json"]);
    let reasons: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons[0].contains("contact-phone: payload key 手机 is missing"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].contains("`电梯租赁咨询`") && reasons[1].contains("consult-type"),
        "{reasons:?}"
    );
}

#[test]
fn parse_with_the_collector_shows_what_the_mapping_produces() {
    let sandbox = sandbox();
    let file = sandbox.path("consult.eml");
    std::fs::write(&file, consult_mail(5, "维保服务咨询", Some("13800138000"))).unwrap();
    let out = sandbox.json(&[
        "parse",
        "--json",
        "--collector",
        "consult",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out["status"], "accepted");
    assert_eq!(out["record"]["service"]["sub_type"], "其他");
    assert!(
        out["record"]["service"]["number"].is_null(),
        "numbers are given when stored"
    );
}

#[test]
fn format_errors_name_the_line_and_field() {
    let sandbox = sandbox();
    let text = std::fs::read_to_string(sandbox.path("collectors.toml")).unwrap();
    let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    for (from, to, key, message) in [
        (
            "content = \"{{说明}}\"",
            "contnet = \"{{说明}}\"",
            "format.fields.contnet",
            "unknown field `contnet`",
        ),
        (
            "{{业务|map:consult-type}}",
            "{{业务|map:consult-types}}",
            "format.fields.sub-type",
            "value table `consult-types` is not defined",
        ),
        (
            "{{手机}}",
            "{{手机|shout}}",
            "format.fields.contact-phone",
            "unknown filter `shout`",
        ),
    ] {
        std::fs::write(sandbox.path("collectors.toml"), text.replace(from, to)).unwrap();
        let out = sandbox.run(&["check"]);
        let err = String::from_utf8_lossy(&out.stderr);
        let line = line_of(from);
        assert!(
            !out.status.success()
                && err.contains(&format!("collectors.toml:{line}:"))
                && err.contains(key)
                && err.contains(message),
            "{err}"
        );
    }
}

/// A fault report (see [`fault_report`]) with the description the tests below expect.
fn fault_mail(n: u32, phone: &str) -> Vec<u8> {
    fault_report(n, phone, "电梯困人")
}

fn fault_sandbox() -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.maildir("faults");
    sandbox.write_config(&[("faults", "faults")], "format = \"emes-fault\"");
    let text = std::fs::read_to_string(sandbox.path("collectors.toml")).unwrap();
    std::fs::write(
        sandbox.path("collectors.toml"),
        format!("{text}{FAULT_FORMAT}"),
    )
    .unwrap();
    sandbox
}

#[test]
fn fault_reports_wait_for_triage_and_take_the_content_of_their_outcome() {
    let sandbox = fault_sandbox();
    for n in 1..=3 {
        sandbox.deliver(
            "faults",
            &format!("{n}.M{n}.mx"),
            &fault_mail(n, &format!("1380000000{n}")),
        );
    }
    sandbox.collect();
    let pending = sandbox.json(&["records", "triage-list", "--json"]);
    assert_eq!(pending.as_array().unwrap().len(), 3);
    assert_eq!(pending[0]["service"]["type"], "pending");
    assert_eq!(pending[0]["service"]["contact"], "李雷 /先生");
    let ids: Vec<String> = pending
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].to_string())
        .collect();

    for (id, outcome) in ids.iter().zip(["fault", "consult", "complaint"]) {
        let out = sandbox.run(&[
            "records",
            "triage",
            id,
            "--as",
            outcome,
            "--set",
            "site=体育西路站",
            "--actor",
            "hotline",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let show = |id: &str| sandbox.json(&["records", "show", id, "--json"]);
    let contents: Vec<(String, String)> = ids
        .iter()
        .map(|id| {
            let service = show(id)["service"].clone();
            (
                service["type"].as_str().unwrap().into(),
                service["content"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        contents,
        [
            ("fault".to_string(), "电梯困人".to_string()),
            ("consult".to_string(), "电梯困人".to_string()),
            ("complaint".to_string(), "物业:电梯困人".to_string()),
        ]
    );
    assert_eq!(show(&ids[0])["service"]["site"], "体育西路站");
    assert_eq!(
        sandbox
            .json(&["records", "triage-list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        sandbox
            .json(&["records", "triage-list", "--json", "--status", "processed"])
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert!(
        !sandbox
            .run(&["records", "triage", &ids[0], "--as", "fault"])
            .status
            .success(),
        "only pending requests are triaged"
    );
}

#[test]
fn lifecycle_uses_the_configured_status_names_and_keeps_the_history_in_order() {
    let sandbox = fault_sandbox();
    sandbox.deliver("faults", "1.M1.mx", &fault_mail(1, "13800000001"));
    sandbox.collect();
    let id = sandbox.json(&["records", "triage-list", "--json"])[0]["id"].to_string();
    let run = |args: &[&str]| assert!(sandbox.run(args).status.success(), "{args:?}");
    run(&[
        "records",
        "triage",
        &id,
        "--as",
        "fault",
        "--set",
        "elevator-no=3号梯",
        "--actor",
        "hotline",
    ]);
    run(&["records", "start", &id, "--actor", "tech"]);
    run(&[
        "records",
        "resolve",
        &id,
        "--result",
        "已救出乘客, 更换门锁",
        "--actor",
        "tech",
    ]);
    run(&[
        "records",
        "reject",
        &id,
        "--reason",
        "门锁仍有异响",
        "--actor",
        "customer",
    ]);
    run(&[
        "records",
        "resolve",
        &id,
        "--result",
        "更换门机",
        "--actor",
        "tech",
    ]);
    run(&["records", "accept", &id, "--actor", "customer"]);
    let record = sandbox.json(&["records", "show", &id, "--json"]);
    assert_eq!(record["status"], "已确认");
    assert_eq!(record["result"], "更换门机");
    assert_eq!(record["service"]["elevator_no"], "3号梯");
    let history: Vec<(String, String)> = record["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap().into(),
                e["actor"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want = [
        ("created", "collector:faults"),
        ("triaged", "hotline"),
        ("field set", "hotline"),
        ("status changed", "tech"),
        ("resolved", "tech"),
        ("rejected", "customer"),
        ("resolved", "tech"),
        ("accepted", "customer"),
    ];
    assert_eq!(history, want.map(|(e, a)| (e.to_string(), a.to_string())));
    assert!(
        record["history"][5]["detail"]
            .as_str()
            .unwrap()
            .contains("已解决 -> 未解决: 门锁仍有异响")
    );
}

#[test]
fn contacts_show_tells_a_result_only_in_customer_visible_statuses() {
    let sandbox = fault_sandbox();
    let text = std::fs::read_to_string(sandbox.path("collectors.toml")).unwrap();
    let text = text.replace(
        "[workflow]\n",
        "[workflow]\nvisible-to-customer = [\"已确认\"]\n",
    );
    std::fs::write(sandbox.path("collectors.toml"), text).unwrap();
    sandbox.deliver("faults", "1.M1.mx", &fault_mail(1, "13800000001"));
    sandbox.collect();
    let id = sandbox.json(&["records", "triage-list", "--json"])[0]["id"].to_string();
    let run = |args: &[&str]| assert!(sandbox.run(args).status.success(), "{args:?}");
    let hotline_view = || {
        let out = sandbox.run(&["contacts", "show", "13800000001"]);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    run(&["records", "triage", &id, "--as", "fault"]);
    run(&["records", "resolve", &id, "--result", "更换门锁"]);
    let resolved = hotline_view();
    assert!(resolved.contains("1 record(s)"), "{resolved}");
    assert!(!resolved.contains("更换门锁"), "not final yet: {resolved}");
    run(&["records", "accept", &id]);
    let accepted = hotline_view();
    assert!(
        accepted.contains(&format!("record {id} (已确认): 更换门锁")),
        "{accepted}"
    );
}

#[test]
fn the_same_phone_links_records_to_one_contact() {
    let sandbox = fault_sandbox();
    sandbox.deliver("faults", "1.M1.mx", &fault_mail(1, "13800000001"));
    sandbox.deliver("faults", "2.M2.mx", &fault_mail(2, "138-0000-0001"));
    sandbox.deliver("faults", "3.M3.mx", &fault_mail(3, "13900000009"));
    sandbox.collect();
    let linked = sandbox.json(&["contacts", "show", "+86 138 0000 0001", "--json"]);
    let ids: Vec<i64> = linked
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2]);
    assert_eq!(
        sandbox
            .json(&["contacts", "show", "13700000000", "--json"])
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn unknown_customer_ids_get_the_fallback_counterparty_and_status() {
    let sandbox = fault_sandbox();
    sandbox.maildir("orders");
    let text = std::fs::read_to_string(sandbox.path("collectors.toml")).unwrap();
    let text = text.replace(
        "elevator-no = \"{{梯号}}\"",
        "elevator-no = \"{{梯号}}\"\ncustomer-id = \"{{客户编号}}\"",
    ) + "\n[unknown-customer]\ncounterparty = \"0000000000\"\nstatus = \"customer-unknown\"\n"
        + "\n[[queue]]\nname = \"orders\"\n[[collector]]\nname = \"orders\"\nqueue = \"orders\"\n[collector.maildir]\npath = \"orders\"\n";
    std::fs::write(sandbox.path("collectors.toml"), text).unwrap();
    // A known customer: the counterparty with INN 7709745454 exists after this order.
    sandbox.deliver("orders", "0.M0.mx", &order_message(1, "7709745454", 1));
    sandbox.json(&["collect", "--json", "--collector", "orders"]);
    let with_customer = |n: u32, customer: &str| {
        let json = serde_json::json!({"姓名": "李雷", "性别": "男", "手机": "13800000001", "描述": "电梯困人", "客户编号": customer});
        let attachment = MimePart::new(
            "application/octet-stream",
            serde_json::to_vec(&json).unwrap(),
        )
        .attachment("fault.json");
        MessageBuilder::new()
            .subject(format!("ORDER: {n}"))
            .message_id(format!("customer-{n}@hitachi.example"))
            .body(MimePart::new(
                "multipart/mixed",
                vec![MimePart::new("text/plain", "报障"), attachment],
            ))
            .write_to_vec()
            .unwrap()
    };
    sandbox.deliver("faults", "1.M1.mx", &with_customer(1, "7709745454"));
    sandbox.deliver("faults", "2.M2.mx", &with_customer(2, "9999999999"));
    sandbox.collect_all();
    let records = sandbox.records();
    let order_counterparty = records[0]["counterparty_id"].clone();
    assert!(order_counterparty.is_i64());
    assert_eq!(
        (
            records[1]["counterparty_id"].clone(),
            records[1]["status"].as_str()
        ),
        (order_counterparty.clone(), Some("new"))
    );
    assert_ne!(records[2]["counterparty_id"], order_counterparty);
    assert!(records[2]["counterparty_id"].is_i64());
    assert_eq!(records[2]["status"], "customer-unknown");
}

#[test]
fn an_unmapped_value_takes_the_configured_default() {
    let sandbox = sandbox();
    let text = std::fs::read_to_string(sandbox.path("collectors.toml")).unwrap();
    std::fs::write(
        sandbox.path("collectors.toml"),
        format!("{text}\n[format.map-defaults]\nconsult-type = \"其他\"\n"),
    )
    .unwrap();
    sandbox.deliver(
        "inbox",
        "1.M1.mx",
        &consult_mail(1, "电梯租赁咨询", Some("13800138000")),
    );
    assert_eq!(counts(&sandbox.collect()), [1, 1, 0, 0, 0]);
    assert_eq!(sandbox.records()[0]["service"]["sub_type"], "其他");
}
