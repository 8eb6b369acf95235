//! Who a notification goes to, and the header safety of everything that reaches a header.
//!
//! A rule's `to` entries are literal addresses (e-mail) or phone numbers (SMS), templates
//! over the record (`{{email}}`, `{{contact-phone}}`) and `directory:ROLE` (the enabled people
//! of that role in the record's branch). SMS go out as e-mail to the `[sms] gateway` address
//! made from every ASCII digit of the phone as written.
//!
//! Payload text is hostile until proven otherwise: every recipient is made header-safe
//! ([`super::text::header_text`]: control characters, CR/LF included, become a space) and
//! then must parse as an address (lettre's parser, which the sender uses too), so no value
//! can add or break a header; one that does not parse is a problem recorded with the
//! notification, never a header.

use std::str::FromStr;

use super::rules::{Channel, RecordFields, Rule, render};
use super::text::header_text;
use crate::domain::phone_digits;
use crate::mapping::template::Template;

/// The longest address SMTP carries (RFC 5321: a 256-octet path with its angle brackets).
const MAX_ADDRESS: usize = 254;

/// One entry of a rule's `to`, checked at load.
#[derive(Debug, Clone, PartialEq)]
pub enum RecipientSpec {
    /// An e-mail address, checked.
    Address(String),
    /// A phone number as written (SMS rules).
    Phone(String),
    /// A template over the record's fields, as written and parsed.
    Field(String, Template),
    /// `directory:ROLE`: the enabled people of this role in the record's branch.
    Directory(String),
}

impl RecipientSpec {
    /// Reads one `to` entry of a rule on `channel`; the error says what is wrong.
    pub fn parse(text: &str, channel: Channel) -> Result<RecipientSpec, String> {
        let text = text.trim();
        if let Some(role) = text.strip_prefix("directory:") {
            let role = role.trim();
            if role.is_empty() || role.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!(
                    "`{text}`: directory: needs a role, e.g. directory:gm"
                ));
            }
            return Ok(RecipientSpec::Directory(role.to_string()));
        }
        if text.contains("{{") {
            let template = Template::parse(text).map_err(|e| e.to_string())?;
            return Ok(RecipientSpec::Field(text.to_string(), template));
        }
        match channel {
            Channel::Email => email_address(text).map(RecipientSpec::Address),
            Channel::Sms if phone_digits(text).is_some() => {
                Ok(RecipientSpec::Phone(text.to_string()))
            }
            Channel::Sms => Err(format!(
                "`{text}` is not a phone number (an SMS rule sends to phones: give at least 5 digits, {{{{contact-phone}}}} or directory:ROLE)"
            )),
        }
    }

    /// The template of a field entry, for the load-time field check.
    pub fn template(&self) -> Option<&Template> {
        match self {
            RecipientSpec::Field(_, template) => Some(template),
            _ => None,
        }
    }
}

/// A person of the directory, as a recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// Where `directory:ROLE` recipients are looked up: the enabled people of a role in a branch.
pub trait Directory<E> {
    fn people(&mut self, role: &str, branch: &str) -> Result<Vec<Person>, E>;
}

impl<E, F: FnMut(&str, &str) -> Result<Vec<Person>, E>> Directory<E> for F {
    fn people(&mut self, role: &str, branch: &str) -> Result<Vec<Person>, E> {
        self(role, branch)
    }
}

/// A rule's recipients for one record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    /// Addresses, each once, in the order of `to`.
    pub to: Vec<String>,
    /// What could not be resolved, as sentences.
    pub problems: Vec<String>,
}

impl Resolved {
    fn add(&mut self, address: Result<String, String>) {
        match address {
            Ok(a) if !self.to.contains(&a) => self.to.push(a),
            Ok(_) => {}
            Err(problem) => self.problems.push(problem),
        }
    }
}

/// Resolves `rule`'s recipients for a record with `fields`.
pub(super) fn resolve<E>(
    rule: &Rule,
    fields: &RecordFields,
    gateway: Option<&Template>,
    directory: &mut impl Directory<E>,
) -> Result<Resolved, E> {
    let mut out = Resolved::default();
    let address = |text: &str| match rule.channel {
        Channel::Email => email_address(text),
        Channel::Sms => sms_address(gateway, text),
    };
    for spec in &rule.to {
        match spec {
            RecipientSpec::Address(a) => out.add(Ok(a.clone())),
            RecipientSpec::Phone(p) => out.add(address(p)),
            RecipientSpec::Field(text, template) => {
                let value = render(template, fields);
                if value.trim().is_empty() {
                    out.problems
                        .push(format!("`{text}` is empty for this record"));
                } else {
                    out.add(address(&value));
                }
            }
            RecipientSpec::Directory(role) => {
                let Some(branch) = fields.get("branch") else {
                    out.problems
                        .push(format!("no enabled {role}: the record has no branch"));
                    continue;
                };
                let people = directory.people(role, branch)?;
                if people.is_empty() {
                    out.problems.push(format!(
                        "no enabled {role} for branch {}",
                        header_text(branch)
                    ));
                }
                for person in people {
                    let (contact, what) = match rule.channel {
                        Channel::Email => (person.email, "e-mail"),
                        Channel::Sms => (person.phone, "phone"),
                    };
                    out.add(contact.as_deref().map_or_else(
                        || {
                            Err(format!(
                                "{role} {} has no {what}",
                                header_text(&person.name)
                            ))
                        },
                        address,
                    ));
                }
            }
        }
    }
    Ok(out)
}

/// A short, header-safe quote of a value for an error message.
fn quoted(text: &str) -> String {
    let safe = header_text(text);
    match safe.char_indices().nth(80) {
        Some((cut, _)) => format!("`{}…`", &safe[..cut]),
        None => format!("`{safe}`"),
    }
}

/// `text` as an e-mail address, if it is one (header-safe first, then lettre's parser).
pub fn email_address(text: &str) -> Result<String, String> {
    let safe = header_text(text);
    let safe = safe.trim();
    if safe.len() > MAX_ADDRESS {
        return Err(format!(
            "{} is not an e-mail address (longer than {MAX_ADDRESS} bytes)",
            quoted(safe)
        ));
    }
    lettre::Address::from_str(safe)
        .map(|a| a.to_string())
        .map_err(|e| format!("{} is not an e-mail address ({e})", quoted(safe)))
}

/// The gateway address an SMS to `phone` is mailed to.
pub fn sms_address(gateway: Option<&Template>, phone: &str) -> Result<String, String> {
    // NOTE: `{{digits}}` is every ASCII digit of the number as written
    // (`+86 139-1234-5678` -> `8613912345678`), the form gateways address phones by.
    let digits =
        phone_digits(phone).ok_or_else(|| format!("{} is not a phone number", quoted(phone)))?;
    let gateway = gateway.ok_or("no [sms] gateway is configured")?;
    let mut fields = RecordFields::default();
    fields.set("digits", Some(&digits));
    email_address(&render(gateway, &fields))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::rules::{Channel, Condition, Trigger};

    fn rule(channel: Channel, to: &[&str]) -> Rule {
        Rule {
            name: "r".into(),
            on: Trigger::Created,
            when: Vec::<Condition>::new(),
            channel,
            to: to
                .iter()
                .map(|t| RecipientSpec::parse(t, channel).unwrap())
                .collect(),
            subject: Template::parse("").unwrap(),
            body: Template::parse("").unwrap(),
        }
    }

    fn gateway() -> Template {
        Template::parse("{{digits}}@sms.example.test").unwrap()
    }

    fn record(pairs: &[(&str, &str)]) -> RecordFields {
        let mut f = RecordFields::default();
        for (k, v) in pairs {
            f.set(k, Some(v));
        }
        f
    }

    fn gm(role: &str, branch: &str) -> Result<Vec<Person>, ()> {
        assert_eq!(role, "gm");
        Ok(match branch {
            "北京分公司" => vec![
                Person {
                    name: "刘总".into(),
                    email: Some("liu@example.test".into()),
                    phone: Some("+86 139-1234-5678".into()),
                },
                Person {
                    name: "无邮箱".into(),
                    email: None,
                    phone: None,
                },
            ],
            _ => Vec::new(),
        })
    }

    fn resolve_for(rule: &Rule, fields: &RecordFields) -> Resolved {
        let g = gateway();
        resolve(rule, fields, Some(&g), &mut gm).unwrap()
    }

    #[test]
    fn sms_go_to_the_gateway_address_of_every_digit() {
        let r = rule(
            Channel::Sms,
            &["{{contact-phone}}", "+86 139-1234-5678", "directory:gm"],
        );
        let out = resolve_for(
            &r,
            &record(&[("contact-phone", "138 0013 8000"), ("branch", "北京分公司")]),
        );
        assert_eq!(
            out.to,
            [
                "13800138000@sms.example.test",
                "8613912345678@sms.example.test"
            ],
            "the GM's phone is the same as the literal one: sent once"
        );
        assert_eq!(out.problems, ["gm 无邮箱 has no phone"]);
    }

    #[test]
    fn directory_without_anyone_or_without_a_branch_is_a_problem_not_silence() {
        let r = rule(Channel::Email, &["directory:gm"]);
        let out = resolve_for(&r, &record(&[("branch", "上海分公司")]));
        assert!(out.to.is_empty());
        assert_eq!(out.problems, ["no enabled gm for branch 上海分公司"]);
        let out = resolve_for(&r, &record(&[]));
        assert_eq!(out.problems, ["no enabled gm: the record has no branch"]);
        let out = resolve_for(&r, &record(&[("branch", "北京分公司")]));
        assert_eq!(out.to, ["liu@example.test"]);
    }

    #[test]
    fn hostile_recipients_never_become_headers() {
        let r = rule(Channel::Email, &["{{email}}"]);
        for hostile in [
            "a@example.test\r\nBcc: victim@example.test",
            "a@example.test\nSubject: x",
            "Evil <a@example.test>",
            &format!("{}@example.test", "a".repeat(300)),
            "用户@例子.测试\r\n",
        ] {
            let out = resolve_for(&r, &record(&[("email", hostile)]));
            for address in &out.to {
                assert!(!address.chars().any(char::is_control), "{address:?}");
                assert!(lettre::Address::from_str(address).is_ok(), "{address:?}");
            }
            for problem in &out.problems {
                assert!(!problem.chars().any(char::is_control), "{problem:?}");
                assert!(problem.chars().count() < 200, "{problem:?}");
            }
            assert_eq!(out.to.len() + out.problems.len(), 1, "{hostile:?}");
        }
        let out = resolve_for(&r, &record(&[]));
        assert_eq!(out.problems, ["`{{email}}` is empty for this record"]);
    }

    #[test]
    fn config_entries_are_checked_per_channel() {
        assert!(RecipientSpec::parse("callcenter@example.test", Channel::Email).is_ok());
        assert!(RecipientSpec::parse("not an address", Channel::Email).is_err());
        assert!(RecipientSpec::parse("139", Channel::Sms).is_err());
        assert_eq!(
            RecipientSpec::parse("directory:gm", Channel::Sms),
            Ok(RecipientSpec::Directory("gm".into()))
        );
        assert!(RecipientSpec::parse("directory:", Channel::Email).is_err());
    }
}
