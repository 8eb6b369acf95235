//! Several forms in one mailbox: which format a payload is.
//!
//! A website mails every form it has to one address, and says which form it is in the
//! payload (a key such as `"form": "consult"`, or the keys only that form has), sometimes in
//! the subject. A format's [`Selector`] (`when = { ... }`, `when-subject = "..."`) states that
//! identity; a collector with several formats tries them in order and the first whose
//! selector holds maps the message. When none holds the message is quarantined with what was
//! tried, never mapped by a format it does not fit (a consult is never an empty fault report).

use serde_json::Value;

use super::template::{PayloadPath, scalar_text};
use crate::decode::reason::{MAX_QUOTED_CHARS, clip};

/// What a `when` condition wants of the value at its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// `"*"`: the key is there with a value that is not null.
    Present,
    /// The value, as text (a JSON number `2` equals `"2"`), is exactly this.
    Equals(String),
}

/// One `when` entry: a payload path and what it must hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub path: PayloadPath,
    pub want: Want,
}

/// A format's identity: every condition must hold, and the subject contain the text.
/// Empty, it holds for every payload (a format alone, or the last in a list, as a catch-all).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selector {
    pub when: Vec<Condition>,
    /// The decoded subject contains this text (`when-subject`).
    pub subject: Option<String>,
}

impl Selector {
    /// `None` when the payload and subject fit; else why not, for the quarantine reason
    /// (`业务 is missing`, `form is "consult", not "fault"`). Website values are clipped.
    pub fn mismatch(&self, payload: &Value, subject: Option<&str>) -> Option<String> {
        for condition in &self.when {
            let value = condition.path.find(payload).filter(|v| !v.is_null());
            let path = &condition.path;
            match (&condition.want, value) {
                (_, None) => return Some(format!("{path} is missing")),
                (Want::Present, Some(_)) => {}
                (Want::Equals(want), Some(value)) => match scalar_text(value) {
                    Some(text) if text == *want => {}
                    Some(text) => {
                        return Some(format!(
                            "{path} is \"{}\", not \"{want}\"",
                            clip(&text, MAX_QUOTED_CHARS)
                        ));
                    }
                    None => return Some(format!("{path} is not a single value")),
                },
            }
        }
        match &self.subject {
            Some(text) if !subject.is_some_and(|s| s.contains(text.as_str())) => {
                Some(format!("the subject does not contain \"{text}\""))
            }
            _ => None,
        }
    }
}

/// The quarantine reason when no format fits: each format tried, and why it did not.
pub fn no_format_fits(tried: &[(String, String)]) -> String {
    let tried: Vec<String> = tried
        .iter()
        .map(|(name, why)| format!("{name} ({why})"))
        .collect();
    format!("no format fits the payload; tried {}", tried.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn selector(when: &[(&str, &str)], subject: Option<&str>) -> Selector {
        Selector {
            when: when
                .iter()
                .map(|(path, want)| Condition {
                    path: PayloadPath::parse(path).unwrap(),
                    want: match *want {
                        "*" => Want::Present,
                        text => Want::Equals(text.into()),
                    },
                })
                .collect(),
            subject: subject.map(str::to_string),
        }
    }

    #[test]
    fn every_condition_must_hold() {
        let fault = selector(&[("form", "fault"), ("描述", "*")], None);
        let payload = json!({"form": "fault", "描述": "困人"});
        assert_eq!(fault.mismatch(&payload, None), None);
        assert_eq!(
            fault.mismatch(&json!({"form": "consult", "描述": "x"}), None),
            Some("form is \"consult\", not \"fault\"".into())
        );
        assert_eq!(
            fault.mismatch(&json!({"form": "fault", "描述": null}), None),
            Some("描述 is missing".into())
        );
        assert_eq!(
            fault.mismatch(&json!({"form": ["fault"], "描述": "x"}), None),
            Some("form is not a single value".into())
        );
    }

    #[test]
    fn nested_paths_numbers_and_the_subject() {
        let selector = selector(&[("meta.form_id", "2")], Some("报障"));
        let payload = json!({"meta": {"form_id": 2}});
        assert_eq!(selector.mismatch(&payload, Some("ORDER: 5 官网报障")), None);
        assert_eq!(
            selector.mismatch(&payload, Some("ORDER: 5 官网咨询")),
            Some("the subject does not contain \"报障\"".into())
        );
        assert_eq!(
            selector.mismatch(&payload, None),
            Some("the subject does not contain \"报障\"".into())
        );
        assert_eq!(Selector::default().mismatch(&json!({}), None), None);
    }

    #[test]
    fn the_reason_lists_what_was_tried() {
        let reason = no_format_fits(&[
            ("emes-consult".into(), "业务 is missing".into()),
            ("emes-fault".into(), "描述 is missing".into()),
        ]);
        assert_eq!(
            reason,
            "no format fits the payload; tried emes-consult (业务 is missing), emes-fault (描述 is missing)"
        );
    }
}

#[cfg(test)]
mod first_of {
    use std::sync::Arc;

    use crate::mapping::PayloadFormat;
    use crate::mapping::declarative::{DeclarativeFormat, Target};
    use crate::mapping::template::{PayloadPath, Template};

    use super::*;

    /// A service-request format `name` with `when = { form = value }` and its queue.
    fn form(name: &str, value: &str, queue: Option<&str>) -> PayloadFormat {
        PayloadFormat::Declarative(Arc::new(DeclarativeFormat {
            name: name.into(),
            kind: crate::mapping::RecordKind::ServiceRequest,
            fields: vec![(Target::ContactPhone, Template::parse("{{tel}}").unwrap())],
            required: vec![],
            tables: Default::default(),
            number_prefix: "SR".into(),
            queue: queue.map(str::to_string),
            selector: Selector {
                when: vec![Condition {
                    path: PayloadPath::parse("form").unwrap(),
                    want: Want::Equals(value.into()),
                }],
                subject: None,
            },
        }))
    }

    #[test]
    fn the_first_fitting_format_maps_and_routes_the_record() {
        let list = PayloadFormat::FirstOf(
            vec![
                form("consult", "consult", None),
                form("fault", "fault", Some("triage")),
            ]
            .into(),
        );
        let map = |json: &str| {
            let (payload, envelope) = crate::mapping::test_input(json, "f.json", "utf-8");
            list.map(&payload, None, &envelope)
        };
        let record = map(r#"{"form": "fault", "tel": "1"}"#).unwrap();
        assert_eq!(record.source.format.as_deref(), Some("fault"));
        assert_eq!(record.queue.as_deref(), Some("triage"));
        let record = map(r#"{"form": "consult", "tel": "1"}"#).unwrap();
        assert_eq!(record.source.format.as_deref(), Some("consult"));
        assert_eq!(record.queue, None, "the collector's queue");
        assert_eq!(
            map(r#"{"form": "join"}"#).unwrap_err(),
            "no format fits the payload; tried consult (form is \"join\", not \"consult\"), fault (form is \"join\", not \"fault\")"
        );
        // A single format's condition holds too.
        let (payload, envelope) = crate::mapping::test_input(r#"{"tel": "1"}"#, "f.json", "utf-8");
        let one = form("fault", "fault", None);
        assert_eq!(
            one.map(&payload, None, &envelope).unwrap_err(),
            "no format fits the payload; tried fault (form is missing)"
        );
    }
}
