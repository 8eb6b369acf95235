//! `[[notify]]` rules, decided without a database: which rules fire for an event on a
//! record, and what each one sends (subject, body and recipients, rendered and header-safe).
//!
//! A rule fires when its `on` is the event and every `when` key matches the record as it is
//! after the event (a list matches any of its values). Templates are the formats' own
//! `{{field|filter}}` language over the record's fields ([`RecordFields`]); they were checked
//! against the fields of the record kinds a rule can see when the config loaded, so a
//! rendering never meets an unknown field. Recipients are resolved in [`super::recipients`].

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::recipients::{self, Directory, RecipientSpec, Resolved};
use super::text::{body_text, header_text};
use crate::mapping::RecordKind;
use crate::mapping::template::{Template, ValueTables};

/// What happened to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// Stored from a message (or released from the quarantine).
    Created,
    /// A pending request classified (`records triage`).
    Triaged,
    /// Its status changed (`records start|resolve|accept|reject`).
    Status,
    /// Only when asked: `records notify ID --rule NAME` (the seed's 新梯提醒邮件 button).
    Manual,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Created => "created",
            Trigger::Triaged => "triaged",
            Trigger::Status => "status",
            Trigger::Manual => "manual",
        }
    }
}

/// How a notification travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// An e-mail to addresses.
    Email,
    /// A text message, sent as e-mail to the `[sms] gateway` address made from each phone.
    Sms,
}

impl Channel {
    /// The stored text (`notifications.channel`).
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }
}

/// The record fields a `when` may test.
pub const WHEN_KEYS: [&str; 7] = [
    "queue", "kind", "type", "sub-type", "status", "format", "branch",
];

/// Fields every record has, for templates and `when`.
pub const COMMON_FIELDS: [&str; 12] = [
    "id",
    "queue",
    "kind",
    "status",
    "format",
    "collector",
    "title",
    "description",
    "phone",
    "email",
    "contact-name",
    "inn",
];

/// Fields only service requests have.
pub const SERVICE_FIELDS: [&str; 17] = [
    "number",
    "type",
    "sub-type",
    "source",
    "owner",
    "contact",
    "contact-phone",
    "gender",
    "region",
    "site",
    "building",
    "address",
    "content",
    "identity",
    "elevator-no",
    "customer-id",
    "branch",
];

/// Whether a record of `kind` has the field `name`.
pub fn kind_has_field(kind: RecordKind, name: &str) -> bool {
    COMMON_FIELDS.contains(&name)
        || (kind == RecordKind::ServiceRequest && SERVICE_FIELDS.contains(&name))
}

/// A record's fields by their config names, as text (absent when the record has no value).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordFields(Map<String, Value>);

impl RecordFields {
    /// Sets `name` (a config name, e.g. `contact-phone`); `None` or blank leaves it absent.
    pub fn set(&mut self, name: &str, value: Option<&str>) -> &mut Self {
        match value.filter(|v| !v.trim().is_empty()) {
            Some(v) => self
                .0
                .insert(name.to_string(), Value::String(v.to_string())),
            None => self.0.remove(name),
        };
        self
    }

    /// The value of `name`, if the record has one.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Value::as_str)
    }

    /// The fields as the template engine reads them.
    pub(super) fn as_value(&self) -> Value {
        Value::Object(self.0.clone())
    }
}

/// One `when` key: the record's field must equal one of the values.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// One of [`WHEN_KEYS`].
    pub key: String,
    pub any_of: Vec<String>,
}

/// A `[[notify]]` rule, checked at load.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Unique name (`records notify --rule NAME`, the log's `rule`).
    pub name: String,
    pub on: Trigger,
    pub when: Vec<Condition>,
    pub channel: Channel,
    pub to: Vec<RecipientSpec>,
    pub subject: Template,
    pub body: Template,
}

impl Rule {
    /// Whether every `when` key matches `fields`.
    pub fn matches(&self, fields: &RecordFields) -> bool {
        self.when.iter().all(|c| {
            fields
                .get(&c.key)
                .is_some_and(|v| c.any_of.iter().any(|want| want == v))
        })
    }

    /// The first `when` key `fields` does not match, as a sentence (why a manual rule was
    /// refused for a record).
    pub fn mismatch(&self, fields: &RecordFields) -> Option<String> {
        self.when
            .iter()
            .find(|c| {
                !fields
                    .get(&c.key)
                    .is_some_and(|v| c.any_of.iter().any(|w| w == v))
            })
            .map(|c| {
                format!(
                    "its {} is `{}`, the rule wants {}",
                    c.key,
                    fields.get(&c.key).unwrap_or(""),
                    c.any_of
                        .iter()
                        .map(|v| format!("`{v}`"))
                        .collect::<Vec<_>>()
                        .join(" or ")
                )
            })
    }
}

/// Every rule of the config, and what rendering needs besides the record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NotifyRules {
    pub rules: Vec<Rule>,
    /// `[sms] gateway`: a template over `digits`.
    pub sms_gateway: Option<Template>,
    /// Collector name -> its format's name, for the `format` field.
    pub formats: HashMap<String, String>,
}

/// What one rule sends for one record, ready to be written to the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub rule: String,
    pub channel: Channel,
    /// The resolved addresses (for SMS, the gateway addresses); never empty when queued.
    pub to: Vec<String>,
    pub subject: String,
    pub body: String,
    /// Recipients that could not be resolved (`no enabled gm for branch X`, an empty
    /// `{{email}}`...). With no address left the notification is written `failed` with these.
    pub problems: Vec<String>,
}

impl Outgoing {
    /// Why nothing can be sent, when no recipient was resolved.
    pub fn failure(&self) -> Option<String> {
        self.to.is_empty().then(|| {
            if self.problems.is_empty() {
                "no recipient".to_string()
            } else {
                self.problems.join("; ")
            }
        })
    }
}

impl NotifyRules {
    /// True when no rule is configured (nothing to look at on any event).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules that fire for `trigger` on a record with `fields`, in config order.
    pub fn firing<'a>(
        &'a self,
        trigger: Trigger,
        fields: &'a RecordFields,
    ) -> impl Iterator<Item = &'a Rule> + 'a {
        self.rules
            .iter()
            .filter(move |r| r.on == trigger && r.matches(fields))
    }

    /// The rule called `name`.
    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.name == name)
    }

    /// Renders `rule` for a record: subject and body, and its recipients resolved (people
    /// from `directory`).
    pub fn prepare<E>(
        &self,
        rule: &Rule,
        fields: &RecordFields,
        directory: &mut impl Directory<E>,
    ) -> Result<Outgoing, E> {
        let Resolved { to, problems } =
            recipients::resolve(rule, fields, self.sms_gateway.as_ref(), directory)?;
        Ok(Outgoing {
            rule: rule.name.clone(),
            channel: rule.channel,
            to,
            subject: header_text(&render(&rule.subject, fields)),
            body: body_text(&render(&rule.body, fields)),
            problems,
        })
    }
}

/// Renders a notification template; a field the record lacks renders empty.
pub(super) fn render(template: &Template, fields: &RecordFields) -> String {
    // NOTE: notification templates may not use `map:` (refused at load), the one filter
    // that can fail, so an error cannot happen here; it would render empty.
    template
        .render_text(&fields.as_value(), &ValueTables::default())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::recipients::Person;

    fn fields(pairs: &[(&str, &str)]) -> RecordFields {
        let mut f = RecordFields::default();
        for (k, v) in pairs {
            f.set(k, Some(v));
        }
        f
    }

    fn rule(name: &str, on: Trigger, when: &[(&str, &[&str])], to: &[&str]) -> Rule {
        Rule {
            name: name.into(),
            on,
            when: when
                .iter()
                .map(|(k, vs)| Condition {
                    key: (*k).into(),
                    any_of: vs.iter().map(|v| v.to_string()).collect(),
                })
                .collect(),
            channel: Channel::Email,
            to: to
                .iter()
                .map(|t| RecipientSpec::parse(t, Channel::Email).unwrap())
                .collect(),
            subject: Template::parse("单据编号: {{number}}").unwrap(),
            body: Template::parse("联系人: {{contact}}\r\n地址: {{address}}").unwrap(),
        }
    }

    fn nobody(_: &str, _: &str) -> Result<Vec<Person>, ()> {
        Ok(Vec::new())
    }

    #[test]
    fn a_rule_fires_on_its_event_when_every_key_matches_any_value() {
        let rules = NotifyRules {
            rules: vec![
                rule(
                    "retrofit",
                    Trigger::Created,
                    &[
                        ("queue", &["emes-consult"]),
                        ("sub-type", &["加装", "新梯"]),
                    ],
                    &["a@example.test"],
                ),
                rule("any", Trigger::Status, &[], &["b@example.test"]),
            ],
            ..NotifyRules::default()
        };
        let record = fields(&[("queue", "emes-consult"), ("sub-type", "加装")]);
        let names = |t| {
            rules
                .firing(t, &record)
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(Trigger::Created), ["retrofit"]);
        assert_eq!(names(Trigger::Status), ["any"]);
        assert!(names(Trigger::Triaged).is_empty());
        let other = fields(&[("queue", "emes-consult"), ("sub-type", "楼宇")]);
        assert_eq!(rules.firing(Trigger::Created, &other).count(), 0);
        let missing = fields(&[("queue", "emes-consult")]);
        assert_eq!(rules.firing(Trigger::Created, &missing).count(), 0);
        assert_eq!(
            rules.rules[0].mismatch(&other).unwrap(),
            "its sub-type is `楼宇`, the rule wants `加装` or `新梯`"
        );
    }

    #[test]
    fn subject_loses_line_breaks_and_body_keeps_them() {
        let r = rule("r", Trigger::Created, &[], &["a@example.test"]);
        let record = fields(&[
            ("number", "ZX1\r\nBcc: victim@example.test"),
            ("contact", "张三\u{0}"),
            ("address", "北京"),
        ]);
        let out = NotifyRules::default()
            .prepare(&r, &record, &mut nobody)
            .unwrap();
        assert_eq!(out.subject, "单据编号: ZX1 Bcc: victim@example.test");
        assert_eq!(out.body, "联系人: 张三\n地址: 北京");
        assert_eq!(out.to, ["a@example.test"]);
        assert_eq!(out.failure(), None);
    }

    #[test]
    fn missing_fields_render_empty() {
        let r = rule("r", Trigger::Created, &[], &["a@example.test"]);
        let out = NotifyRules::default()
            .prepare(&r, &RecordFields::default(), &mut nobody)
            .unwrap();
        // Rendered empty, and the subject trimmed as it is sent.
        assert_eq!(out.subject, "单据编号:");
    }

    #[test]
    fn fields_belong_to_kinds() {
        assert!(kind_has_field(RecordKind::Lead, "email"));
        assert!(!kind_has_field(RecordKind::Lead, "contact-phone"));
        assert!(kind_has_field(RecordKind::ServiceRequest, "branch"));
        assert!(!kind_has_field(RecordKind::ServiceRequest, "nonsense"));
        for key in WHEN_KEYS {
            assert!(kind_has_field(RecordKind::ServiceRequest, key), "{key}");
        }
    }
}
