//! Map stage: a payload object becomes a typed [`Record`] (pure, no I/O).
//!
//! This is where the website's text becomes domain values ([`Inn`], [`Phone`],
//! [`RequestType`](crate::domain::RequestType)): parsed once here, trusted downstream.
//! Two kinds of format: the built-in [`order_json`] and the [`declarative`] ones of the
//! config.

pub mod declarative;
pub mod order_json;
pub mod selector;
pub mod template;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use crate::decode::{Envelope, Payload};
use crate::domain::{Inn, Phone};

pub use order_json::{MapError, map_order_json};

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
    /// The format that mapped it (`order-json`, or a `[[format]]` name): with several
    /// formats per collector, which form the website sent.
    #[serde(default)]
    pub format: Option<String>,
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
            format: None,
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

/// One e-mail's worth of work: a lead, an order or a service request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Record {
    pub kind: RecordKind,
    pub title: Option<String>,
    /// Дата, a local date-time as the website wrote it.
    pub date: Option<NaiveDateTime>,
    pub description: Option<String>,
    /// Printed as `inn` and `inn_valid` (false when an INN is given but fails the
    /// length/checksum test; it is kept anyway).
    #[serde(flatten, serialize_with = "crate::domain::inn::as_fields::serialize")]
    pub inn: Option<Inn>,
    /// Printed as the text sent; its digits link the record to a contact.
    pub phone: Option<Phone>,
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
    /// The queue its format routes it to (`[[format]] queue`); none: the collector's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
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

/// How a collector's payloads become records: the built-in order file, a format from the
/// config, or several of those tried in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum PayloadFormat {
    /// The website order file v0.1 (`order-json`), with goods lines.
    #[default]
    OrderJson,
    Declarative(std::sync::Arc<declarative::DeclarativeFormat>),
    /// `formats = [...]`: the first whose [`selector::Selector`] holds maps the message.
    FirstOf(std::sync::Arc<[PayloadFormat]>),
}

impl PayloadFormat {
    /// The name collectors give it (`order-json`, or the `[[format]]` name; the names joined
    /// by `, ` for a list).
    pub fn name(&self) -> String {
        match self {
            PayloadFormat::OrderJson => "order-json".to_string(),
            PayloadFormat::Declarative(format) => format.name.clone(),
            PayloadFormat::FirstOf(list) => {
                let names: Vec<String> = list.iter().map(PayloadFormat::name).collect();
                names.join(", ")
            }
        }
    }

    /// The single formats this one tries, in order.
    pub fn members(&self) -> Vec<&PayloadFormat> {
        match self {
            PayloadFormat::FirstOf(list) => list.iter().flat_map(PayloadFormat::members).collect(),
            single => vec![single],
        }
    }

    /// The queue a single format routes its records to, if it names one.
    pub fn queue(&self) -> Option<&str> {
        match self {
            PayloadFormat::Declarative(format) => format.queue.as_deref(),
            _ => None,
        }
    }

    /// Why a single format does not fit this message, or `None` when it does.
    fn mismatch(&self, payload: &Payload, envelope: &Envelope) -> Option<String> {
        match self {
            PayloadFormat::Declarative(format) => format.selector.mismatch(
                &serde_json::Value::Object(payload.object.clone()),
                envelope.subject.as_deref(),
            ),
            _ => None,
        }
    }

    /// Maps a payload with the first format that fits; the error is a quarantine reason
    /// (naming every format tried when none fits).
    pub fn map(
        &self,
        payload: &Payload,
        order_ref: Option<String>,
        envelope: &Envelope,
    ) -> Result<Record, String> {
        let mut tried = Vec::new();
        for format in self.members() {
            match format.mismatch(payload, envelope) {
                Some(why) => tried.push((format.name(), why)),
                None => return format.map_fitting(payload, order_ref, envelope),
            }
        }
        Err(selector::no_format_fits(&tried))
    }

    /// Maps with this single format, which fits; the record says which format it was.
    fn map_fitting(
        &self,
        payload: &Payload,
        order_ref: Option<String>,
        envelope: &Envelope,
    ) -> Result<Record, String> {
        let mut record = match self {
            PayloadFormat::Declarative(format) => format
                .map(payload, order_ref, envelope)
                .map_err(|e| e.to_string())?,
            _ => map_order_json(payload, order_ref, envelope).map_err(|e| e.to_string())?,
        };
        record.source.format = Some(self.name());
        record.queue = self.queue().map(str::to_string);
        Ok(record)
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
        date: None,
    };
    (payload, envelope)
}
