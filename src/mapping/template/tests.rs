//! Template parsing and rendering, rule by rule.

use super::*;
use serde_json::json;

fn tables() -> ValueTables {
    let consult: HashMap<String, String> = [
        ("加装电梯咨询", "加装"),
        ("维保服务咨询", "其他"),
        ("新梯采购咨询", "新梯"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    ValueTables {
        maps: HashMap::from([("consult-type".to_string(), consult)]),
        defaults: HashMap::new(),
    }
}

fn render(template: &str, payload: &Value) -> Result<Option<String>, RenderError> {
    Template::parse(template)
        .unwrap()
        .render(payload, &tables())
}

#[test]
fn contact_is_name_slash_salutation() {
    let payload = json!({"姓名": "张三", "性别": "男"});
    assert_eq!(
        render("{{姓名}} /{{性别|salutation}}", &payload)
            .unwrap()
            .as_deref(),
        Some("张三 /先生")
    );
    let payload = json!({"name": "Lee", "gender": "F"});
    assert_eq!(
        render("{{name}} /{{gender|salutation}}", &payload)
            .unwrap()
            .as_deref(),
        Some("Lee /女士")
    );
}

#[test]
fn paths_reach_into_objects_and_lists() {
    let payload = json!({"address": {"city": "北京"}, "items": [{"x": 1}, {"x": "two"}]});
    assert_eq!(
        render("{{address.city}}", &payload).unwrap().as_deref(),
        Some("北京")
    );
    assert_eq!(
        render("{{items[1].x}}", &payload).unwrap().as_deref(),
        Some("two")
    );
    assert_eq!(
        render("{{items[0].x}}", &payload).unwrap().as_deref(),
        Some("1")
    );
    assert_eq!(render("{{items[5].x}}", &payload).unwrap(), None);
}

#[test]
fn value_tables_map_or_fail_clearly() {
    let payload = json!({"业务": "加装电梯咨询"});
    assert_eq!(
        render("{{业务|map:consult-type}}", &payload)
            .unwrap()
            .as_deref(),
        Some("加装")
    );
    let err = render("{{业务|map:consult-type}}", &json!({"业务": "电梯租赁"})).unwrap_err();
    assert_eq!(
        err.to_string(),
        "value `电梯租赁` of `业务` is not in the value table `consult-type`"
    );
    let mut with_default = tables();
    with_default
        .defaults
        .insert("consult-type".into(), "其他".into());
    let template = Template::parse("{{业务|map:consult-type}}").unwrap();
    assert_eq!(
        template
            .render(&json!({"业务": "电梯租赁"}), &with_default)
            .unwrap()
            .as_deref(),
        Some("其他")
    );
}

#[test]
fn filters_digits_trim_default_join() {
    let payload = json!({"手机": "+86 138-0013-8000", "说明": "  hi  ", "tags": ["a", "b", 3]});
    assert_eq!(
        render("{{手机|digits}}", &payload).unwrap().as_deref(),
        Some("8613800138000")
    );
    assert_eq!(
        render("{{说明|trim}}", &payload).unwrap().as_deref(),
        Some("hi")
    );
    assert_eq!(
        render("{{tags|join:\" / \"}}", &payload)
            .unwrap()
            .as_deref(),
        Some("a / b / 3")
    );
    assert_eq!(
        render("{{梯号|default:\"未知\"}}", &payload)
            .unwrap()
            .as_deref(),
        Some("未知")
    );
    assert_eq!(
        render(
            "{{省}}{{市}}{{区}}{{详细地址}}",
            &json!({"省": "北京", "区": "东城区"})
        )
        .unwrap()
        .as_deref(),
        Some("北京东城区")
    );
}

#[test]
fn missing_fields_render_as_none_and_constants_as_text() {
    assert_eq!(
        render("{{姓名}} /{{性别|salutation}}", &json!({})).unwrap(),
        None
    );
    assert_eq!(
        render("日立官网", &json!({})).unwrap().as_deref(),
        Some("日立官网")
    );
}

#[test]
fn syntax_errors_are_reported_at_parse_time() {
    for (template, message) in [
        ("{{姓名", "`{{` without `}}`"),
        ("{{a|shout}}", "unknown filter `shout`"),
        ("{{a|map}}", "needs an argument"),
        ("{{list[x]}}", "not a list index"),
        ("{{}}", "empty path"),
        ("a}}", "`}}` without `{{`"),
    ] {
        let err = Template::parse(template).unwrap_err().to_string();
        assert!(err.contains(message), "{template}: {err}");
    }
    let template = Template::parse("{{a|map:x}} {{b|map:\"y z\"}}").unwrap();
    assert_eq!(template.maps().collect::<Vec<_>>(), ["x", "y z"]);
}
