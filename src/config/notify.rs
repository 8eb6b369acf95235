//! `[[notify]]`: who is told of which event on which records, with which text.
//!
//! Templates are checked here against the fields of the record kinds a rule can see: the
//! kinds its `when` allows (`kind`; `format`, through the formats' kinds; `queue`, through
//! the formats of the collectors filling it; `type`, `sub-type` and `branch` exist on
//! service requests only). A template naming a field one of those kinds lacks is an error
//! at load, with its line, so a typo never renders as silence.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Deserialize;
use toml::Spanned;

use super::collector::Collector;
use super::error::{ConfigError, ErrorSite};
use super::keyword::{Choice, pick};
use crate::mapping::template::Template;
use crate::mapping::{PayloadFormat, RecordKind};
use crate::notify::recipients::RecipientSpec;
use crate::notify::rules::{Channel, Condition, Rule, Trigger, WHEN_KEYS, kind_has_field};

const ALL_KINDS: [RecordKind; 3] = [
    RecordKind::Lead,
    RecordKind::Order,
    RecordKind::ServiceRequest,
];

/// `[[notify]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawNotify {
    /// Unique name. Required.
    name: Spanned<String>,
    /// `created`, `triaged`, `status` or `manual`. Required.
    on: Spanned<Choice<Trigger>>,
    /// Record field = value or [values]; every key must match. Default: every record.
    #[serde(default)]
    when: BTreeMap<String, Spanned<OneOrMany>>,
    /// `email` or `sms`. Required.
    channel: Spanned<Choice<Channel>>,
    /// Recipients. Required, non-empty.
    to: Spanned<Vec<Spanned<String>>>,
    /// Subject template. Required for e-mail; default empty for SMS.
    subject: Option<Spanned<String>>,
    /// Body template (the text of an SMS). Default: empty.
    body: Option<Spanned<String>>,
}

/// A `when` value: one word or a list of them (any matches).
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// What a rule may refer to.
pub(super) struct Known<'a> {
    pub(super) queues: &'a HashSet<String>,
    pub(super) collectors: &'a [Collector],
    /// Format name -> the kinds its records have.
    pub(super) formats: HashMap<String, Vec<RecordKind>>,
    pub(super) sms_gateway: bool,
}

/// The kinds of records a payload format makes.
pub(super) fn kinds_of(format: &PayloadFormat) -> Vec<RecordKind> {
    match format {
        // NOTE: the order file makes a lead when it has no goods lines.
        PayloadFormat::OrderJson => vec![RecordKind::Lead, RecordKind::Order],
        PayloadFormat::Declarative(f) => vec![f.kind],
        PayloadFormat::FirstOf(list) => list.iter().flat_map(kinds_of).collect(),
    }
}

impl RawNotify {
    /// Where the rule starts (its name), for errors about the whole rule.
    pub(super) fn name_span(&self) -> std::ops::Range<usize> {
        self.name.span()
    }

    /// Checks one rule; `names` collects the names taken so far.
    pub(super) fn validate(
        &self,
        site: &ErrorSite<'_>,
        known: &Known<'_>,
        names: &mut HashSet<String>,
    ) -> Result<Rule, ConfigError> {
        let name = self.name.get_ref().trim().to_string();
        if name.is_empty() || !names.insert(name.clone()) {
            return Err(site.at(
                self.name.span(),
                "notify.name",
                format!("a rule needs a unique name (`{name}` is empty or taken)"),
            ));
        }
        let on = pick(site, &self.on, "notify.on", "event")?;
        let channel = pick(site, &self.channel, "notify.channel", "channel")?;
        let mut kinds: Vec<RecordKind> = ALL_KINDS.to_vec();
        let mut when = Vec::new();
        for (key, value) in &self.when {
            let any_of = match value.get_ref() {
                OneOrMany::One(v) => vec![v.clone()],
                OneOrMany::Many(vs) => vs.clone(),
            };
            let allowed = self.when_kinds(site, known, key, value, &any_of)?;
            kinds.retain(|k| allowed.contains(k));
            when.push(Condition {
                key: key.clone(),
                any_of,
            });
        }
        if channel == Channel::Sms && !known.sms_gateway {
            return Err(site.at(
                self.channel.span(),
                "notify.channel",
                "an SMS rule needs the [sms] section with its gateway",
            ));
        }
        if self.to.get_ref().is_empty() {
            return Err(site.at(self.to.span(), "notify.to", "give at least one recipient"));
        }
        let mut to = Vec::new();
        for entry in self.to.get_ref() {
            let spec = RecipientSpec::parse(entry.get_ref(), channel)
                .map_err(|m| site.at(entry.span(), "notify.to", m))?;
            if let Some(t) = spec.template() {
                check_fields(site, entry, "notify.to", t, &kinds)?;
            }
            to.push(spec);
        }
        let subject = match (&self.subject, channel) {
            (Some(s), _) => template(site, s, "notify.subject", &kinds)?,
            (None, Channel::Sms) => Template::parse("").expect("empty template"),
            (None, Channel::Email) => {
                return Err(site.at(
                    self.name.span(),
                    "notify.subject",
                    format!("e-mail rule `{name}` needs a subject"),
                ));
            }
        };
        let body = match &self.body {
            Some(b) => template(site, b, "notify.body", &kinds)?,
            None => Template::parse("").expect("empty template"),
        };
        Ok(Rule {
            name,
            on,
            when,
            channel,
            to,
            subject,
            body,
        })
    }

    /// The kinds of record a `when` key and its values allow, after checking they exist.
    fn when_kinds(
        &self,
        site: &ErrorSite<'_>,
        known: &Known<'_>,
        key: &str,
        value: &Spanned<OneOrMany>,
        any_of: &[String],
    ) -> Result<Vec<RecordKind>, ConfigError> {
        let at = |message: String| site.at(value.span(), &format!("notify.when.{key}"), message);
        if any_of.is_empty() {
            return Err(at("give a value or a non-empty list".into()));
        }
        let unknown = |what: &str, v: &str| at(format!("unknown {what} `{v}`"));
        Ok(match key {
            "kind" => any_of
                .iter()
                .map(|v| RecordKind::parse(v).ok_or_else(|| unknown("record kind", v)))
                .collect::<Result<_, _>>()?,
            "format" => {
                let mut kinds = Vec::new();
                for v in any_of {
                    kinds.extend(known.formats.get(v).ok_or_else(|| unknown("format", v))?);
                }
                kinds
            }
            "queue" => {
                let mut kinds = Vec::new();
                for v in any_of {
                    if !known.queues.contains(v) {
                        return Err(unknown("queue", v));
                    }
                    // A format with its own queue routes there; the others to the collector's.
                    for c in known.collectors {
                        for f in c.format.members() {
                            if f.queue().unwrap_or(&c.queue) == v {
                                kinds.extend(kinds_of(f));
                            }
                        }
                    }
                }
                kinds
            }
            "type" | "sub-type" | "branch" => vec![RecordKind::ServiceRequest],
            "status" => ALL_KINDS.to_vec(),
            other => {
                return Err(site.at(
                    value.span(),
                    &format!("notify.when.{other}"),
                    format!(
                        "unknown record field `{other}`; `when` knows {}",
                        WHEN_KEYS.join(", ")
                    ),
                ));
            }
        })
    }
}

/// A subject or body template, checked against `kinds`.
fn template(
    site: &ErrorSite<'_>,
    text: &Spanned<String>,
    key: &str,
    kinds: &[RecordKind],
) -> Result<Template, ConfigError> {
    let template =
        Template::parse(text.get_ref()).map_err(|e| site.at(text.span(), key, e.to_string()))?;
    check_fields(site, text, key, &template, kinds)?;
    Ok(template)
}

/// Every field `template` names exists on every kind in `kinds`; no `map:` filter.
fn check_fields(
    site: &ErrorSite<'_>,
    text: &Spanned<String>,
    key: &str,
    template: &Template,
    kinds: &[RecordKind],
) -> Result<(), ConfigError> {
    if let Some(map) = template.maps().next() {
        return Err(site.at(
            text.span(),
            key,
            format!(
                "map:{map}: value tables belong to formats; a notification template cannot use them"
            ),
        ));
    }
    for field in template.fields() {
        if let Some(kind) = kinds.iter().find(|k| !kind_has_field(**k, field)) {
            return Err(site.at(
                text.span(),
                key,
                format!(
                    "`{{{{{field}}}}}`: a {} record has no field `{field}` (narrow the rule with when = {{ kind = \"service-request\" }} or a queue/format of that kind)",
                    kind.as_str()
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::config::{Config, TlsMode};

    const BASE: &str = "[[queue]]\nname = \"q\"\n[[collector]]\nname = \"c\"\nqueue = \"q\"\n[collector.maildir]\npath = \"m\"\n";

    fn load(extra: &str) -> Result<Config, String> {
        Config::from_toml(
            Path::new("/etc/m/collectors.toml"),
            &format!("{BASE}{extra}"),
        )
        .map_err(|e| e.to_string())
    }

    const SMTP: &str =
        "[smtp]\nhost = \"mail.example.test\"\nfrom = \"EMES <Emes@Example.test>\"\n";

    #[test]
    fn smtp_defaults_follow_the_tls_mode_and_the_from_address_is_plumbed_to_decoding() {
        let config = load(SMTP).unwrap();
        let smtp = config.smtp.unwrap();
        assert_eq!((smtp.tls, smtp.port), (TlsMode::Starttls, 587));
        assert_eq!(smtp.max_attempts, 10);
        assert_eq!(smtp.send_timeout, Duration::from_secs(30));
        assert_eq!(smtp.from_address, "emes@example.test");
        assert_eq!(
            config.collectors[0].rules.own_address.as_deref(),
            Some("emes@example.test")
        );
        let smtp = load(&SMTP.replace("[smtp]\n", "[smtp]\ntls = \"implicit\"\n"))
            .unwrap()
            .smtp
            .unwrap();
        assert_eq!(smtp.port, 465);
    }

    #[test]
    fn smtp_errors_name_line_and_key() {
        let err = load(&format!("{SMTP}password = \"secret\"\n")).unwrap_err();
        assert!(
            err.starts_with(
                "/etc/m/collectors.toml:11:12: smtp.password: passwords are never written"
            ),
            "{err}"
        );
        let err = load(&format!("{SMTP}tls = \"none\"\n")).unwrap_err();
        assert!(
            err.contains(":11:7: smtp.tls: tls = \"none\" sends mail"),
            "{err}"
        );
        assert!(load(&format!("{SMTP}tls = \"none\"\nallow-insecure = true\n")).is_ok());
        let err = load(&format!("{SMTP}username = \"u\"\n")).unwrap_err();
        assert!(err.contains("smtp.username: the SMTP login needs"), "{err}");
        let err = load(&SMTP.replace("EMES <Emes@Example.test>", "not a mailbox")).unwrap_err();
        assert!(err.contains(":10:8: smtp.from:"), "{err}");
    }

    fn rule(body: &str) -> String {
        format!(
            "{SMTP}[sms]\ngateway = \"{{{{digits}}}}@sms.example.test\"\n[[notify]]\nname = \"r\"\n{body}"
        )
    }

    #[test]
    fn a_template_field_the_record_kind_lacks_is_an_error_with_its_line() {
        // Collector `c` reads order-json: leads and orders, no contact-phone.
        let err = load(&rule(
            "on = \"created\"\nchannel = \"sms\"\nto = [\"{{contact-phone}}\"]\n",
        ))
        .unwrap_err();
        assert!(
            err.contains(":17:7: notify.to: `{{contact-phone}}`: a lead record has no field"),
            "{err}"
        );
        let err = load(&rule(
            "on = \"created\"\nchannel = \"email\"\nto = [\"a@example.test\"]\nsubject = \"{{numbr}}\"\n",
        ))
        .unwrap_err();
        assert!(err.contains(":18:11: notify.subject: `{{numbr}}`"), "{err}");
        // Narrowed to service requests, their fields are known.
        assert!(
            load(&rule(
                "on = \"created\"\nwhen = { kind = \"service-request\" }\nchannel = \"sms\"\nto = [\"{{contact-phone}}\"]\nbody = \"{{number}} {{sub-type}}\"\n",
            ))
            .is_ok()
        );
    }

    #[test]
    fn rule_errors_name_the_key() {
        let err = load(&rule(
            "on = \"created\"\nwhen = { colour = \"red\" }\nchannel = \"email\"\nto = [\"a@example.test\"]\nsubject = \"s\"\n",
        ))
        .unwrap_err();
        assert!(
            err.contains("notify.when.colour: unknown record field"),
            "{err}"
        );
        let err = load(&rule(
            "on = \"created\"\nwhen = { queue = \"nope\" }\nchannel = \"email\"\nto = [\"a@example.test\"]\nsubject = \"s\"\n",
        ))
        .unwrap_err();
        assert!(
            err.contains("notify.when.queue: unknown queue `nope`"),
            "{err}"
        );
        let err = load(&rule(
            "on = \"soon\"\nchannel = \"email\"\nto = [\"a@example.test\"]\nsubject = \"s\"\n",
        ))
        .unwrap_err();
        assert!(err.contains("notify.on: unknown event `soon`"), "{err}");
        let err = load(&rule(
            "on = \"manual\"\nchannel = \"email\"\nto = [\"not an address\"]\nsubject = \"s\"\n",
        ))
        .unwrap_err();
        assert!(
            err.contains("notify.to: `not an address` is not an e-mail"),
            "{err}"
        );
        let err = load(&rule(
            "on = \"manual\"\nchannel = \"email\"\nto = [\"a@example.test\"]\n",
        ))
        .unwrap_err();
        assert!(
            err.contains("notify.subject: e-mail rule `r` needs a subject"),
            "{err}"
        );
        let no_sms = format!(
            "{SMTP}[[notify]]\nname = \"r\"\non = \"manual\"\nchannel = \"sms\"\nto = [\"13800138000\"]\n"
        );
        assert!(
            load(&no_sms)
                .unwrap_err()
                .contains("needs the [sms] section")
        );
        let no_smtp = "[[notify]]\nname = \"r\"\non = \"manual\"\nchannel = \"email\"\nto = [\"a@example.test\"]\nsubject = \"s\"\n";
        assert!(
            load(no_smtp)
                .unwrap_err()
                .contains("need an [smtp] section")
        );
        let bad_gateway = format!("{SMTP}[sms]\ngateway = \"{{{{phone}}}}@sms.example.test\"\n");
        assert!(
            load(&bad_gateway)
                .unwrap_err()
                .contains("sms.gateway: the gateway may name only")
        );
    }
}
