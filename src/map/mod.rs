//! Map stage: a payload object becomes a typed [`Record`] (pure, no I/O).
//!
//! The `order-json` format is the seed's v0.1 order file. Every key may be missing; numbers
//! may come as JSON numbers or as strings with a decimal comma; a value of the wrong shape
//! is an error naming its path, so the message is quarantined instead of half-read.

pub mod declarative;
pub mod inn;
pub mod template;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::decode::{Envelope, Payload};
pub use inn::{Inn, phone_digits};

/// What a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordKind {
    /// A contact only, to be worked by a manager.
    Lead,
    /// An order with goods lines.
    Order,
    /// A service request (consult, fault report, complaint), see [`declarative::ServiceRequest`].
    ServiceRequest,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Lead => "lead",
            RecordKind::Order => "order",
            RecordKind::ServiceRequest => "service-request",
        }
    }

    pub fn parse(text: &str) -> Option<RecordKind> {
        match text {
            "lead" => Some(RecordKind::Lead),
            "order" => Some(RecordKind::Order),
            "service-request" => Some(RecordKind::ServiceRequest),
            _ => None,
        }
    }
}

/// Where a record came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    pub message_id: Option<String>,
    pub subject: Option<String>,
    /// The token after the keyword in the subject (`123` for `ORDER: 123`).
    pub order_ref: Option<String>,
    pub attachment_name: Option<String>,
    pub charset: String,
}

impl SourceInfo {
    /// Where a record decoded from `payload` came from.
    pub fn of(payload: &Payload, envelope: &Envelope, order_ref: Option<String>) -> SourceInfo {
        SourceInfo {
            message_id: envelope.message_id.clone(),
            subject: envelope.subject.clone(),
            order_ref,
            attachment_name: Some(payload.attachment_name.clone()),
            charset: payload.charset.clone(),
        }
    }
}

/// A post-print work on a goods line (ДополнительныеРаботы).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtraWork {
    pub kind: Option<String>,
    pub quantity: Option<f64>,
    pub description: Option<String>,
}

/// A goods line (Товары); each non-service line gets a tech card when stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderLine {
    pub item: Option<String>,
    pub machine_code: Option<String>,
    pub resolution: Option<String>,
    pub material: Option<String>,
    pub material_code: Option<String>,
    pub width: Option<f64>,
    pub height: Option<f64>,
    pub quantity: Option<f64>,
    pub price: Option<f64>,
    pub amount: Option<f64>,
    pub is_service: bool,
    pub extra_work: Vec<ExtraWork>,
}

/// One e-mail's worth of work: a lead or an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub kind: RecordKind,
    pub title: Option<String>,
    /// Дата, a local date-time as the website wrote it.
    pub date: Option<NaiveDateTime>,
    pub description: Option<String>,
    pub inn: Option<String>,
    /// False when an INN is given but fails the length/checksum test (it is kept anyway).
    pub inn_valid: bool,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub contact_name: Option<String>,
    pub layout_files: Vec<String>,
    pub lines: Vec<OrderLine>,
    pub source: SourceInfo,
    /// Things that did not stop the record but deserve a look (e.g. an unreadable date).
    pub warnings: Vec<String>,
    /// The payload text verbatim (as decoded UTF-8).
    pub payload: String,
    /// The service-request fields, for that kind only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<declarative::ServiceRequest>,
}

impl Record {
    /// The INN when it is valid (the counterparty key).
    pub fn valid_inn(&self) -> Option<Inn> {
        self.inn.as_deref().and_then(Inn::parse)
    }
}

/// A payload value of the wrong shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key `{path}`: expected {expected}, found {found}")]
pub struct MapError {
    pub path: String,
    pub expected: &'static str,
    pub found: String,
}

/// A view of one JSON object that knows its path, for error messages.
struct Fields<'a> {
    object: &'a Map<String, Value>,
    path: String,
}

/// The path of a key below a [`Fields`] view, formatted only when an error needs it
/// (building it for every lookup cost a tenth of the decode time).
struct KeyPath<'p> {
    parent: &'p str,
    key: &'p str,
}

impl std::fmt::Display for KeyPath<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.parent.is_empty() {
            f.write_str(self.key)
        } else {
            write!(f, "{}.{}", self.parent, self.key)
        }
    }
}

impl<'a> Fields<'a> {
    fn value<'k>(&'k self, keys: &[&'k str]) -> (KeyPath<'k>, Option<&'a Value>) {
        let found = keys
            .iter()
            .find_map(|k| self.object.get(*k).map(|v| (*k, v)));
        let key = found.map_or(keys[0], |(k, _)| k);
        let path = KeyPath {
            parent: &self.path,
            key,
        };
        (path, found.map(|(_, v)| v).filter(|v| !v.is_null()))
    }

    fn error(path: impl std::fmt::Display, expected: &'static str, value: &Value) -> MapError {
        let mut found = value.to_string();
        if found.chars().count() > 60 {
            found = found.chars().take(57).collect::<String>() + "...";
        }
        MapError {
            path: path.to_string(),
            expected,
            found,
        }
    }

    /// Text; numbers are taken as their text (an INN or phone sent as a number), blank is none.
    fn text(&self, keys: &[&str]) -> Result<Option<String>, MapError> {
        match self.value(keys) {
            (_, None) => Ok(None),
            (_, Some(Value::String(s))) => Ok((!s.trim().is_empty()).then(|| s.clone())),
            (_, Some(Value::Number(n))) => Ok(Some(n.to_string())),
            (path, Some(other)) => Err(Self::error(path, "text", other)),
        }
    }

    /// A number, from a JSON number or a string like `500.50`, `500,50` or `1 000`.
    fn number(&self, keys: &[&str]) -> Result<Option<f64>, MapError> {
        match self.value(keys) {
            (_, None) => Ok(None),
            (_, Some(Value::Number(n))) => Ok(n.as_f64()),
            (path, Some(value @ Value::String(s))) => {
                let compact: String = s
                    .chars()
                    .filter(|c| !c.is_whitespace() && *c != '\u{202F}')
                    .map(|c| if c == ',' { '.' } else { c })
                    .collect();
                if compact.is_empty() {
                    return Ok(None);
                }
                compact
                    .parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite())
                    .map(Some)
                    .ok_or_else(|| Self::error(path, "a number", value))
            }
            (path, Some(other)) => Err(Self::error(path, "a number", other)),
        }
    }

    /// A yes/no flag; missing means no.
    fn flag(&self, keys: &[&str]) -> Result<bool, MapError> {
        match self.value(keys) {
            (_, None) => Ok(false),
            (_, Some(Value::Bool(b))) => Ok(*b),
            (path, Some(value)) => {
                let text = match value {
                    Value::String(s) => s.trim().to_lowercase(),
                    Value::Number(n) => n.to_string(),
                    _ => return Err(Self::error(path, "true or false", value)),
                };
                match text.as_str() {
                    "true" | "1" | "yes" | "да" | "истина" => Ok(true),
                    "false" | "0" | "no" | "нет" | "ложь" | "" => Ok(false),
                    _ => Err(Self::error(path, "true or false", value)),
                }
            }
        }
    }

    /// A list of objects; missing means empty.
    fn objects(&self, keys: &[&str]) -> Result<Vec<Fields<'a>>, MapError> {
        match self.value(keys) {
            (_, None) => Ok(Vec::new()),
            (path, Some(Value::Array(items))) => items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::Object(object) => Ok(Fields {
                        object,
                        path: format!("{path}[{i}]"),
                    }),
                    other => Err(Self::error(format!("{path}[{i}]"), "an object", other)),
                })
                .collect(),
            (path, Some(other)) => Err(Self::error(path, "a list", other)),
        }
    }
}

/// Date formats seen from websites, the seed's `dd.mm.yyyy hh:mm:ss` first.
const DATE_FORMATS: [&str; 5] = [
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M",
];

pub(crate) fn parse_date(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    DATE_FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .or_else(|| {
            ["%d.%m.%Y", "%Y-%m-%d"]
                .iter()
                .find_map(|f| chrono::NaiveDate::parse_from_str(text, f).ok())
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
}

fn layout_files(fields: &Fields<'_>) -> Result<Vec<String>, MapError> {
    let (path, value) = fields.value(&["ФайлыМакета"]);
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = value else {
        return Err(Fields::error(path, "a list", value));
    };
    let mut files = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let file = match item {
            Value::String(url) => Some(url.clone()),
            Value::Object(object) => Fields {
                object,
                path: format!("{path}[{i}]"),
            }
            .text(&["Файл"])?,
            other => {
                return Err(Fields::error(
                    format!("{path}[{i}]"),
                    "an object with Файл",
                    other,
                ));
            }
        };
        files.extend(file);
    }
    Ok(files)
}

fn order_line(line: &Fields<'_>) -> Result<OrderLine, MapError> {
    let extra_work = line
        .objects(&["ДополнительныеРаботы"])?
        .iter()
        .map(|work| {
            Ok(ExtraWork {
                kind: work.text(&["ВидРаботы"])?,
                quantity: work.number(&["Количество"])?,
                description: work.text(&["Описание"])?,
            })
        })
        .collect::<Result<_, MapError>>()?;
    Ok(OrderLine {
        item: line.text(&["Номенклатура"])?,
        machine_code: line.text(&["СтанокКод"])?,
        // NOTE: the seed's own example misspells this key; both spellings are read.
        resolution: line.text(&["Разрешение", "Разрешеине"])?,
        material: line.text(&["Материал"])?,
        material_code: line.text(&["МатериалКод"])?,
        width: line.number(&["Ширина"])?,
        height: line.number(&["Высота"])?,
        quantity: line.number(&["Количество"])?,
        price: line.number(&["Цена"])?,
        amount: line.number(&["Сумма"])?,
        is_service: line.flag(&["Услуга"])?,
        extra_work,
    })
}

/// Maps an `order-json` payload to a record.
pub fn map_order_json(
    payload: &Payload,
    order_ref: Option<String>,
    envelope: &Envelope,
) -> Result<Record, MapError> {
    let fields = Fields {
        object: &payload.object,
        path: String::new(),
    };
    let mut warnings = Vec::new();
    let date = match fields.text(&["Дата"])? {
        Some(text) => {
            let date = parse_date(&text);
            if date.is_none() {
                warnings.push(format!(
                    "key `Дата`: `{text}` is not a date (dd.mm.yyyy hh:mm:ss); left empty"
                ));
            }
            date
        }
        None => None,
    };
    let inn = fields.text(&["ИНН"])?;
    let inn_valid = inn.as_deref().is_some_and(|i| Inn::parse(i).is_some());
    if let Some(inn) = inn.as_deref().filter(|_| !inn_valid) {
        warnings.push(format!(
            "key `ИНН`: `{inn}` is not a valid INN; no counterparty linked"
        ));
    }
    let lines = fields
        .objects(&["Товары"])?
        .iter()
        .map(order_line)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Record {
        kind: if lines.is_empty() {
            RecordKind::Lead
        } else {
            RecordKind::Order
        },
        title: fields.text(&["Тема"])?,
        date,
        description: fields.text(&["Описание"])?,
        inn,
        inn_valid,
        phone: fields.text(&["Телефон"])?,
        email: fields.text(&["АдресЭлектроннойПочты"])?,
        contact_name: fields.text(&["КонтактноеЛицо"])?,
        layout_files: layout_files(&fields)?,
        lines,
        source: SourceInfo::of(payload, envelope, order_ref),
        warnings,
        payload: payload.text.clone(),
        service: None,
    })
}

/// How a collector's payloads become records: the built-in order file, or a format from
/// the config.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum PayloadFormat {
    /// The website order file v0.1 (`order-json`), with goods lines.
    #[default]
    OrderJson,
    Declarative(std::sync::Arc<declarative::DeclarativeFormat>),
}

impl PayloadFormat {
    /// Maps a payload; the error is a quarantine reason.
    pub fn map(
        &self,
        payload: &Payload,
        order_ref: Option<String>,
        envelope: &Envelope,
    ) -> Result<Record, String> {
        match self {
            PayloadFormat::OrderJson => {
                map_order_json(payload, order_ref, envelope).map_err(|e| e.to_string())
            }
            PayloadFormat::Declarative(format) => format
                .map(payload, order_ref, envelope)
                .map_err(|e| e.to_string()),
        }
    }
}

/// A payload and envelope for mapping tests.
#[cfg(test)]
pub(crate) fn test_input(json: &str, attachment: &str, charset: &str) -> (Payload, Envelope) {
    let payload = Payload {
        object: serde_json::from_str(json).expect("test JSON"),
        text: json.to_string(),
        attachment_name: attachment.into(),
        charset: charset.into(),
    };
    let envelope = Envelope {
        message_id: Some("m@x".into()),
        subject: Some("ORDER: 123".into()),
        fingerprint: crate::decode::Fingerprint([0; 32]),
    };
    (payload, envelope)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = r#"{
	"Тема": "Заказ №123 от 01.06.2019 бла бла бла",
	"Дата": "29.05.2019 15:15:00",
	"Описание": "Произвольный тест описание заказа строкой",
	"ИНН": "7709745454",
	"Телефон": "+7 925 642 42-90",
	"АдресЭлектроннойПочты": "adwcom@gmail.com",
	"КонтактноеЛицо": "Прилепский Алексей Анатольевич",
	"ФайлыМакета": [{"Файл": "https://demo.solvent.ru/cabinet/print/2019/DAC_noyXsAEV-Cx.jpg"}],
	"Товары": [{
		"Номенклатура": "Ролап 123 22 22", "СтанокКод": 1, "Разрешеине": "360 dpi",
		"Материал": "Баннеры - Эконом (340 гр./м2) - 360 dpi", "МатериалКод": "00-00000021",
		"Ширина": 2, "Высота": 2, "Количество": 2, "Цена": 500, "Сумма": 1000, "Услуга": false,
		"ДополнительныеРаботы": [{"ВидРаботы": "Люверсы", "Количество": 2, "Описание": "шаг 30см"}]
	}, {"Номенклатура": "Доставка ", "Услуга": true, "Количество": 2, "Цена": 500, "Сумма": 1000}]
}"#;

    fn map(json: &str) -> Result<Record, MapError> {
        let (payload, envelope) = test_input(json, "order.txt", "windows-1251");
        map_order_json(&payload, Some("123".into()), &envelope)
    }

    #[test]
    fn seed_payload_maps_to_an_order() {
        let record = map(SEED).unwrap();
        assert_eq!(record.kind, RecordKind::Order);
        assert_eq!(record.date.unwrap().to_string(), "2019-05-29 15:15:00");
        assert!(record.inn_valid);
        assert_eq!(record.phone.as_deref(), Some("+7 925 642 42-90"));
        assert_eq!(record.layout_files.len(), 1);
        let roll_up = &record.lines[0];
        assert_eq!(roll_up.machine_code.as_deref(), Some("1"));
        assert_eq!(roll_up.resolution.as_deref(), Some("360 dpi"));
        assert_eq!(
            (roll_up.width, roll_up.price, roll_up.amount),
            (Some(2.0), Some(500.0), Some(1000.0))
        );
        assert!(!roll_up.is_service);
        assert_eq!(
            roll_up.extra_work[0].description.as_deref(),
            Some("шаг 30см")
        );
        assert_eq!(record.lines[1].item.as_deref(), Some("Доставка "));
        assert!(record.lines[1].is_service);
        assert_eq!(record.source.order_ref.as_deref(), Some("123"));
        assert_eq!(record.payload, SEED);
        assert!(record.warnings.is_empty());
    }

    #[test]
    fn numbers_arrive_as_strings_with_either_decimal_mark() {
        let record = map(r#"{"Товары": [{"Количество": "2", "Цена": "500.50", "Сумма": "1 001,00", "Услуга": "да"}]}"#).unwrap();
        let line = &record.lines[0];
        assert_eq!(
            (line.quantity, line.price, line.amount),
            (Some(2.0), Some(500.5), Some(1001.0))
        );
        assert!(line.is_service);
    }

    #[test]
    fn no_goods_makes_a_lead_and_missing_keys_are_empty() {
        let record = map(r#"{"Телефон": "+7 900 000-00-00", "Товары": []}"#).unwrap();
        assert_eq!(record.kind, RecordKind::Lead);
        assert_eq!(
            (record.title, record.inn, record.inn_valid),
            (None, None, false)
        );
    }

    #[test]
    fn invalid_inn_and_date_are_kept_with_warnings() {
        let record = map(r#"{"ИНН": "1234567890", "Дата": "вчера"}"#).unwrap();
        assert_eq!(
            (record.inn.as_deref(), record.inn_valid, record.date),
            (Some("1234567890"), false, None)
        );
        assert_eq!(record.warnings.len(), 2);
    }

    #[test]
    fn wrong_shapes_name_their_path() {
        let err = map(r#"{"Товары": [{"Ширина": "широко"}]}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "key `Товары[0].Ширина`: expected a number, found \"широко\""
        );
        let err = map(r#"{"Товары": "много"}"#).unwrap_err();
        assert_eq!(err.path, "Товары");
        let err = map(r#"{"Телефон": ["1"]}"#).unwrap_err();
        assert_eq!(err.path, "Телефон");
    }

    #[test]
    fn other_date_forms_are_read() {
        for (text, expected) in [
            ("29.05.2019 15:15", "2019-05-29 15:15:00"),
            ("2019-05-29T15:15:00", "2019-05-29 15:15:00"),
            ("29.05.2019", "2019-05-29 00:00:00"),
        ] {
            assert_eq!(parse_date(text).unwrap().to_string(), expected);
        }
    }
}
