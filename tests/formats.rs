//! Declarative formats from `collectors.toml`: a website's own JSON keys become a service
//! request, with no code change (the seed's EMES consult form).

mod common;

use common::{Sandbox, counts};
use mail_builder::MessageBuilder;
use mail_builder::headers::content_type::ContentType;
use mail_builder::mime::MimePart;

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
        reasons[0].contains("required field `contact-phone` is missing"),
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
