//! Declarative payload formats: `[[format]]` blocks in `collectors.toml` say, field by
//! field, how a website's JSON becomes a record, so a new form needs a mapping, not code.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::selector::Selector;
use super::template::{RenderError, Template, ValueTables};
use super::{Record, RecordKind, SourceInfo, parse_date};
use crate::decode::{Envelope, Payload};
use crate::domain::request_type::UnknownRequestType;
use crate::domain::{Inn, Phone, RequestType};

/// A record field a format can fill. Config names are kebab-case (`contact-phone`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    Title,
    Date,
    Description,
    Inn,
    Phone,
    Email,
    ContactName,
    CustomerId,
    Type,
    SubType,
    Source,
    Owner,
    Contact,
    ContactPhone,
    Gender,
    Region,
    Site,
    Building,
    Address,
    Content,
    Identity,
    ElevatorNo,
    /// The branch (分公司) the request belongs to: whose general manager `directory:gm` means.
    Branch,
}

const TARGETS: [(&str, Target); 23] = [
    ("title", Target::Title),
    ("date", Target::Date),
    ("description", Target::Description),
    ("inn", Target::Inn),
    ("phone", Target::Phone),
    ("email", Target::Email),
    ("contact-name", Target::ContactName),
    ("customer-id", Target::CustomerId),
    ("type", Target::Type),
    ("sub-type", Target::SubType),
    ("source", Target::Source),
    ("owner", Target::Owner),
    ("contact", Target::Contact),
    ("contact-phone", Target::ContactPhone),
    ("gender", Target::Gender),
    ("region", Target::Region),
    ("site", Target::Site),
    ("building", Target::Building),
    ("address", Target::Address),
    ("content", Target::Content),
    ("identity", Target::Identity),
    ("elevator-no", Target::ElevatorNo),
    ("branch", Target::Branch),
];

/// Fields only service requests have.
const SERVICE_ONLY: [Target; 16] = [
    Target::CustomerId,
    Target::Type,
    Target::SubType,
    Target::Source,
    Target::Owner,
    Target::Contact,
    Target::ContactPhone,
    Target::Gender,
    Target::Region,
    Target::Site,
    Target::Building,
    Target::Address,
    Target::Content,
    Target::Identity,
    Target::ElevatorNo,
    Target::Branch,
];

impl Target {
    /// The target called `name` in the config.
    pub fn parse(name: &str) -> Option<Target> {
        TARGETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
    }

    pub fn name(self) -> &'static str {
        TARGETS
            .iter()
            .find(|(_, t)| *t == self)
            .map_or("?", |(n, _)| n)
    }

    /// Every target name, for error messages.
    pub fn all_names() -> String {
        TARGETS
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether a format of `kind` may fill this field.
    pub fn fits(self, kind: RecordKind) -> bool {
        kind == RecordKind::ServiceRequest || !SERVICE_ONLY.contains(&self)
    }
}

/// The service-request part of a record (the seed's EMES 服务请求单).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRequest {
    /// Human-readable unique number, given when stored (prefix + date + sequence).
    pub number: Option<String>,
    /// Prefix of the number, from the format.
    #[serde(skip)]
    pub number_prefix: String,
    #[serde(rename = "type")]
    pub request_type: RequestType,
    pub sub_type: Option<String>,
    pub source: Option<String>,
    pub owner: Option<String>,
    /// "姓名 /先生".
    pub contact: Option<String>,
    pub contact_phone: Option<String>,
    pub gender: Option<String>,
    pub region: Option<String>,
    pub site: Option<String>,
    pub building: Option<String>,
    pub address: Option<String>,
    /// 服务内容.
    pub content: Option<String>,
    pub identity: Option<String>,
    pub elevator_no: Option<String>,
    pub customer_id: Option<String>,
    /// The branch (分公司) it belongs to, from the format or set at triage; left out of the
    /// JSON while unknown, so records of formats without one read as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
}

/// A format defined in the config.
#[derive(Debug, Clone, PartialEq)]
pub struct DeclarativeFormat {
    pub name: String,
    pub kind: RecordKind,
    pub fields: Vec<(Target, Template)>,
    pub required: Vec<Target>,
    pub tables: ValueTables,
    /// Prefix of service request numbers.
    pub number_prefix: String,
    /// The queue its records go to (`queue`); none: the collector's.
    pub queue: Option<String>,
    /// Which payloads are this form (`when`, `when-subject`); empty: every payload.
    pub selector: Selector,
}

/// Why a payload does not fit a format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// A required field came out empty; `keys` are the payload keys its template reads.
    #[error("{field}: {}", missing_keys(keys))]
    Missing {
        field: &'static str,
        keys: Vec<(String, bool)>,
    },
    #[error("field `{field}`: {source}")]
    Render {
        field: &'static str,
        #[source]
        source: RenderError,
    },
    #[error("field `type`: {0}")]
    BadType(#[from] UnknownRequestType),
}

/// `payload key 手机 is missing`, `payload keys 省, 市 are missing or empty`: what the
/// website's developer has to add. Each key comes with whether the payload has it at all.
fn missing_keys(keys: &[(String, bool)]) -> String {
    let names: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
    let how = if keys.iter().all(|(_, present)| !present) {
        "missing"
    } else {
        "missing or empty"
    };
    match names.as_slice() {
        [] => "no value (its template reads no payload key)".to_string(),
        [one] => format!("payload key {one} is {how}"),
        many => format!("payload keys {} are {how}", many.join(", ")),
    }
}

/// The contact's name without the salutation that `contact` adds (`张伟 /先生` -> `张伟`).
fn without_salutation(contact: &str) -> String {
    match contact.rsplit_once(" /") {
        Some((name, _)) if !name.trim().is_empty() => name.trim().to_string(),
        _ => contact.trim().to_string(),
    }
}

impl DeclarativeFormat {
    /// Maps a payload to a record.
    pub fn map(
        &self,
        payload: &Payload,
        order_ref: Option<String>,
        envelope: &Envelope,
    ) -> Result<Record, FormatError> {
        let object = Value::Object(payload.object.clone());
        let mut values: Vec<(Target, String)> = Vec::with_capacity(self.fields.len());
        for (target, template) in &self.fields {
            let rendered =
                template
                    .render(&object, &self.tables)
                    .map_err(|source| FormatError::Render {
                        field: target.name(),
                        source,
                    })?;
            if let Some(text) = rendered {
                values.push((*target, text));
            }
        }
        let get = |t: Target| {
            values
                .iter()
                .find(|(target, _)| *target == t)
                .map(|(_, v)| v.clone())
        };
        if let Some(missing) = self.required.iter().find(|t| get(**t).is_none()) {
            return Err(self.missing(*missing, &object));
        }
        let mut warnings = Vec::new();
        let is_service = self.kind == RecordKind::ServiceRequest;
        // A service request is dated by the form's submission time when the format maps
        // one, else by the message's Date: the hotline sorts and filters by when it was asked.
        let fallback = if is_service { envelope.date } else { None };
        let date = match get(Target::Date) {
            Some(text) => parse_date(&text).or_else(|| {
                let instead = if fallback.is_some() {
                    "the message's Date is used"
                } else {
                    "left empty"
                };
                warnings.push(format!("field `date`: `{text}` is not a date; {instead}"));
                fallback
            }),
            None => fallback,
        };
        let service = is_service
            .then(|| {
                let request_type = match get(Target::Type) {
                    Some(text) => text.parse()?,
                    None => RequestType::default(),
                };
                Ok::<_, FormatError>(ServiceRequest {
                    number: None,
                    number_prefix: self.number_prefix.clone(),
                    request_type,
                    sub_type: get(Target::SubType),
                    source: get(Target::Source),
                    owner: get(Target::Owner),
                    contact: get(Target::Contact),
                    contact_phone: get(Target::ContactPhone),
                    gender: get(Target::Gender),
                    region: get(Target::Region),
                    site: get(Target::Site),
                    building: get(Target::Building),
                    address: get(Target::Address),
                    content: get(Target::Content),
                    identity: get(Target::Identity),
                    elevator_no: get(Target::ElevatorNo),
                    customer_id: get(Target::CustomerId),
                    branch: get(Target::Branch),
                })
            })
            .transpose()?;
        let phone = get(Target::Phone)
            .or_else(|| service.as_ref().and_then(|s| s.contact_phone.clone()))
            .map(Phone::parse);
        let contact_name = get(Target::ContactName).or_else(|| {
            service
                .as_ref()
                .and_then(|s| s.contact.as_deref().map(without_salutation))
        });
        let description =
            get(Target::Description).or_else(|| service.as_ref().and_then(|s| s.content.clone()));
        Ok(Record {
            kind: self.kind,
            title: get(Target::Title),
            date,
            description,
            inn: get(Target::Inn).map(Inn::parse),
            phone,
            email: get(Target::Email),
            contact_name,
            layout_files: Vec::new(),
            lines: Vec::new(),
            source: SourceInfo::of(payload, envelope, order_ref),
            warnings,
            payload: payload.text.clone(),
            service,
            queue: None,
        })
    }

    /// The error for required field `target` without a value, naming its payload keys.
    fn missing(&self, target: Target, payload: &Value) -> FormatError {
        let keys = self
            .fields
            .iter()
            .filter(|(t, _)| *t == target)
            .flat_map(|(_, template)| template.paths())
            .map(|path| {
                let present = super::template::PayloadPath::parse(&path)
                    .ok()
                    .and_then(|p| p.find(payload).filter(|v| !v.is_null()).cloned())
                    .is_some();
                (path, present)
            })
            .collect();
        FormatError::Missing {
            field: target.name(),
            keys,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn consult_format() -> DeclarativeFormat {
        let field = |t: Target, s: &str| (t, Template::parse(s).unwrap());
        DeclarativeFormat {
            name: "emes-consult".into(),
            kind: RecordKind::ServiceRequest,
            fields: vec![
                field(Target::Type, "consult"),
                field(Target::SubType, "{{业务|map:consult-type}}"),
                field(Target::Source, "日立官网"),
                field(Target::Contact, "{{姓名}} /{{性别|salutation}}"),
                field(Target::ContactPhone, "{{手机}}"),
                field(Target::Address, "{{省}}{{市}}{{区}}{{详细地址}}"),
                field(Target::Content, "{{说明}}"),
            ],
            required: vec![Target::ContactPhone],
            tables: ValueTables {
                maps: HashMap::from([(
                    "consult-type".to_string(),
                    HashMap::from([("加装电梯咨询".to_string(), "加装".to_string())]),
                )]),
                defaults: HashMap::new(),
            },
            number_prefix: "SR".into(),
            queue: None,
            selector: Selector::default(),
        }
    }

    fn map(json: &str) -> Result<Record, FormatError> {
        let (payload, envelope) = crate::mapping::test_input(json, "form.json", "utf-8");
        consult_format().map(&payload, Some("1".into()), &envelope)
    }

    #[test]
    fn consult_form_becomes_a_consult_request() {
        let record = map(r#"{"业务": "加装电梯咨询", "姓名": "张三", "性别": "男", "手机": "13800138000",
            "邮箱": "a@b.c", "省": "北京", "市": "北京", "区": "东城区", "详细地址": "王府井1号", "说明": "六层住宅加装"}"#)
        .unwrap();
        assert_eq!(record.kind, RecordKind::ServiceRequest);
        let service = record.service.unwrap();
        assert_eq!(service.request_type, RequestType::Consult);
        assert_eq!(service.sub_type.as_deref(), Some("加装"));
        assert_eq!(service.contact.as_deref(), Some("张三 /先生"));
        assert_eq!(service.address.as_deref(), Some("北京北京东城区王府井1号"));
        assert_eq!(record.phone.unwrap().as_str(), "13800138000");
        assert_eq!(record.email, None, "e-mail is not mapped (不做对接)");
        assert_eq!(
            record.contact_name.as_deref(),
            Some("张三"),
            "no salutation"
        );
    }

    #[test]
    fn a_service_request_is_dated_by_the_form_else_by_the_message() {
        let (payload, mut envelope) = crate::mapping::test_input(
            r#"{"手机": "1", "提交时间": "2026-11-20 09:30:00"}"#,
            "f.json",
            "utf-8",
        );
        let sent =
            chrono::NaiveDate::from_ymd_opt(2026, 11, 21).and_then(|d| d.and_hms_opt(8, 0, 0));
        envelope.date = sent;
        let mut format = consult_format();
        let record = format.map(&payload, None, &envelope).unwrap();
        assert_eq!(record.date, sent, "no date mapped: the message's Date");
        format
            .fields
            .push((Target::Date, Template::parse("{{提交时间}}").unwrap()));
        let record = format.map(&payload, None, &envelope).unwrap();
        assert_eq!(
            record.date.unwrap().to_string(),
            "2026-11-20 09:30:00",
            "the form's submission time wins"
        );
        let (payload, _) =
            crate::mapping::test_input(r#"{"手机": "1", "提交时间": "soon"}"#, "f.json", "utf-8");
        let record = format.map(&payload, None, &envelope).unwrap();
        assert_eq!(record.date, sent);
        assert_eq!(
            record.warnings,
            ["field `date`: `soon` is not a date; the message's Date is used"]
        );
    }

    #[test]
    fn missing_required_field_and_unmapped_value_are_named() {
        let err = map(r#"{"业务": "加装电梯咨询", "姓名": "张三"}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "contact-phone: payload key 手机 is missing"
        );
        let err = map(r#"{"业务": "加装电梯咨询", "手机": ""}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "contact-phone: payload key 手机 is missing or empty"
        );
        let err = map(r#"{"业务": "电梯租赁", "手机": "1"}"#).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("field `sub-type`: value `电梯租赁`"),
            "{err}"
        );
    }

    #[test]
    fn targets_know_their_names_and_kinds() {
        assert_eq!(Target::parse("contact-phone"), Some(Target::ContactPhone));
        assert_eq!(Target::ElevatorNo.name(), "elevator-no");
        assert!(!Target::SubType.fits(RecordKind::Lead));
        assert!(Target::Phone.fits(RecordKind::Lead));
        assert_eq!(Target::parse("sub_type"), None);
    }
}
