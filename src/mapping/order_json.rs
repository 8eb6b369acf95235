//! The built-in `order-json` format: the seed's v0.1 website order file, with goods lines.
//!
//! Every key may be missing; numbers may come as JSON numbers or as strings with a decimal
//! comma; a value of the wrong shape is an error naming its path, so the message is
//! quarantined instead of half-read.

use serde_json::{Map, Value};

use super::{ExtraWork, OrderLine, Record, RecordKind, SourceInfo, parse_date};
use crate::decode::{Envelope, Payload};
use crate::domain::{Inn, Phone};

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
    let inn = fields.text(&["ИНН"])?.map(Inn::parse);
    if let Some(inn) = inn.as_ref().filter(|inn| !inn.is_valid()) {
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
        phone: fields.text(&["Телефон"])?.map(Phone::parse),
        email: fields.text(&["АдресЭлектроннойПочты"])?,
        contact_name: fields.text(&["КонтактноеЛицо"])?,
        layout_files: layout_files(&fields)?,
        lines,
        source: SourceInfo::of(payload, envelope, order_ref),
        warnings,
        payload: payload.text.clone(),
        service: None,
        queue: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::test_input;

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
        assert!(record.inn.as_ref().is_some_and(Inn::is_valid));
        assert_eq!(record.phone.unwrap().digits(), Some("79256424290"));
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
        assert_eq!((record.title, record.inn), (None, None));
    }

    #[test]
    fn invalid_inn_and_date_are_kept_with_warnings() {
        let record = map(r#"{"ИНН": "1234567890", "Дата": "вчера"}"#).unwrap();
        assert_eq!(
            (record.inn, record.date),
            (Some(Inn::Invalid("1234567890".into())), None)
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
