//! Decode stage: raw message bytes to a JSON payload (pure, no I/O).
//!
//! Decides whether a message is for us (subject keyword), finds the attachment that holds
//! the payload, and fingerprints the message for the exactly-once ledger.

pub mod body;
pub mod charset;
pub mod loops;
pub mod mime;
pub mod nesting;
pub mod reason;
pub mod subject;

use std::fmt;

use encoding_rs::Encoding;
use mail_parser::MessageParser;
use sha2::{Digest, Sha256};

pub use mime::Payload;

/// Per-collector decoding settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeRules {
    /// Word that must appear in the subject (case-sensitive).
    pub subject_keyword: String,
    /// Charset for attachments that declare none and are not valid UTF-8.
    pub default_charset: &'static Encoding,
    /// Our own notifications' From address (`[smtp] from`, lower-case): mail from it is
    /// skipped, so a notification that reaches a collected mailbox never loops.
    pub own_address: Option<String>,
}

impl Default for DecodeRules {
    fn default() -> Self {
        DecodeRules {
            subject_keyword: "ORDER".to_string(),
            default_charset: encoding_rs::WINDOWS_1251,
            own_address: None,
        }
    }
}

/// SHA-256 of a message's content, for recognising a copy delivered twice.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // NOTE: one write of the 64 digits: the commit formats a fingerprint per message, and
        // a `write!` per byte cost more than the rest of its ledger row.
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex = [0; 64];
        for (pair, byte) in hex.chunks_exact_mut(2).zip(self.0) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 0x0f)];
        }
        f.write_str(std::str::from_utf8(&hex).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// Header fields added in transit: a redelivered copy differs only in these.
const TRACE_FIELDS: [&str; 6] = [
    "received",
    "return-path",
    "delivered-to",
    "x-original-to",
    "x-delivered-to",
    "x-envelope-to",
];

impl Fingerprint {
    /// Hashes the raw message without its trace header fields and with CRLF read as LF, so
    /// the same message hashes the same whether it came from a Maildir (LF) or IMAP (CRLF)
    /// and however many relays it passed.
    pub fn of(raw: &[u8]) -> Fingerprint {
        let mut hasher = Sha256::new();
        let mut in_headers = true;
        let mut skipping_field = false;
        for line in raw.split_inclusive(|&b| b == b'\n') {
            let content = line.strip_suffix(b"\n").unwrap_or(line);
            let content = content.strip_suffix(b"\r").unwrap_or(content);
            if in_headers {
                if content.is_empty() {
                    in_headers = false;
                } else if content[0] == b' ' || content[0] == b'\t' {
                    if skipping_field {
                        continue;
                    }
                } else {
                    skipping_field = is_trace_field(content);
                    if skipping_field {
                        continue;
                    }
                }
            }
            hasher.update(content);
            hasher.update(b"\n");
        }
        Fingerprint(hasher.finalize().into())
    }
}

fn is_trace_field(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return false;
    };
    let name = line[..colon].trim_ascii();
    TRACE_FIELDS
        .iter()
        .any(|t| name.eq_ignore_ascii_case(t.as_bytes()))
}

/// What identifies a message, whatever became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Message-ID without angle brackets.
    pub message_id: Option<String>,
    /// Decoded subject.
    pub subject: Option<String>,
    pub fingerprint: Fingerprint,
    /// The `Date` header in this machine's local time, like the dates websites write: a
    /// service request's date when its form sends none.
    pub date: Option<chrono::NaiveDateTime>,
}

/// The decode stage's decision on one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Not for us (no keyword in the subject); left untouched in the mailbox.
    Skipped(String),
    /// For us, but unusable; kept whole with this reason.
    Quarantined(String),
    /// For us, with its payload.
    Matched {
        order_ref: Option<String>,
        payload: Payload,
    },
}

/// A decoded message: its identity and the verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedMessage {
    pub envelope: Envelope,
    pub verdict: Verdict,
}

/// Decodes one raw message under `rules`.
///
/// A message whose attached messages nest deeper than [`nesting::MAX_NESTING`] only has its
/// header parsed (for the envelope): the tree of its parts is never built (see [`nesting`]).
/// Every reason is [`reason::bounded`].
pub fn decode_message(raw: &[u8], rules: &DecodeRules) -> DecodedMessage {
    let fingerprint = Fingerprint::of(raw);
    let parser = MessageParser::default();
    let depth = nesting::nesting_depth(raw);
    let too_deep = depth > nesting::MAX_NESTING;
    let parsed = if too_deep {
        parser.parse_headers(raw)
    } else {
        parser.parse(raw)
    };
    let Some(message) = parsed else {
        return DecodedMessage {
            envelope: Envelope {
                message_id: None,
                subject: None,
                fingerprint,
                date: None,
            },
            verdict: Verdict::Quarantined(
                "not an e-mail message: no header could be parsed".into(),
            ),
        };
    };
    debug_assert!(
        too_deep || nesting::tree_depth(&message) <= depth,
        "the nesting probe found less depth than the parser built"
    );
    let envelope = Envelope {
        message_id: message.message_id().map(str::to_string),
        subject: message.subject().map(str::to_string),
        fingerprint,
        date: message
            .date()
            .and_then(|d| chrono::DateTime::from_timestamp(d.to_timestamp(), 0))
            .map(|d| d.with_timezone(&chrono::Local).naive_local()),
    };
    let automatic = loops::automatic_mail(&message, rules.own_address.as_deref());
    let verdict = match (automatic, envelope.subject.as_deref()) {
        (Some(reason), _) => Verdict::Skipped(reason::bounded(reason)),
        (None, None) => Verdict::Skipped("the message has no subject".into()),
        (None, Some(subject)) => match subject::match_subject(subject, &rules.subject_keyword) {
            None => Verdict::Skipped(reason::bounded(format!(
                "the subject does not contain the keyword `{}`",
                rules.subject_keyword
            ))),
            Some(_) if too_deep => Verdict::Quarantined(format!(
                "attached messages are nested {depth} levels deep, limit {}; not parsed",
                nesting::MAX_NESTING
            )),
            Some(found) => match mime::find_payload(&message, rules.default_charset) {
                Ok(payload) => Verdict::Matched {
                    order_ref: found.order_ref,
                    payload,
                },
                Err(why) => Verdict::Quarantined(reason::bounded(why)),
            },
        },
    };
    DecodedMessage { envelope, verdict }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_builder::MessageBuilder;
    use mail_builder::headers::content_type::ContentType;
    use mail_builder::mime::MimePart;

    const JSON: &str = r#"{"Тема": "Заказ", "Телефон": "+7 925 642 42-90"}"#;

    fn cp1251(s: &str) -> Vec<u8> {
        encoding_rs::WINDOWS_1251.encode(s).0.into_owned()
    }

    fn message(subject: &str, attachment: MimePart<'static>) -> Vec<u8> {
        let body = MimePart::new(
            "multipart/alternative",
            vec![
                MimePart::new("text/plain", "Заказ с сайта"),
                MimePart::new("text/html", "<p>Заказ с сайта</p>"),
            ],
        );
        MessageBuilder::new()
            .from("site@shop.example")
            .to("orders@shop.example")
            .subject(subject)
            .message_id("m1@shop.example")
            .body(MimePart::new("multipart/mixed", vec![body, attachment]))
            .write_to_vec()
            .unwrap()
    }

    fn file(
        content_type: &str,
        charset: Option<&str>,
        name: &str,
        bytes: Vec<u8>,
    ) -> MimePart<'static> {
        let mut ct = ContentType::new(content_type.to_string());
        if let Some(charset) = charset {
            ct = ct.attribute("charset", charset.to_string());
        }
        MimePart::new(ct, bytes).attachment(name.to_string())
    }

    fn matched(raw: &[u8]) -> (Option<String>, Payload) {
        match decode_message(raw, &DecodeRules::default()).verdict {
            Verdict::Matched { order_ref, payload } => (order_ref, payload),
            other => panic!("expected a match, got {other:?}"),
        }
    }

    fn quarantine_reason(raw: &[u8]) -> String {
        match decode_message(raw, &DecodeRules::default()).verdict {
            Verdict::Quarantined(reason) => reason,
            other => panic!("expected quarantine, got {other:?}"),
        }
    }

    #[test]
    fn cp1251_attachment_without_charset_is_decoded_from_raw_bytes() {
        let raw = message(
            "ORDER: 123",
            file("text/plain", None, "order.txt", cp1251(JSON)),
        );
        let (order_ref, payload) = matched(&raw);
        assert_eq!(order_ref.as_deref(), Some("123"));
        assert_eq!(payload.attachment_name, "order.txt");
        assert_eq!(payload.charset, "windows-1251");
        assert_eq!(payload.text, JSON);
        assert_eq!(payload.object["Тема"], "Заказ");
    }

    #[test]
    fn declared_charset_and_octet_stream_are_handled() {
        let raw = message(
            "ORDER:7",
            file(
                "text/plain",
                Some("koi8-r"),
                "a.json",
                encoding_rs::KOI8_R.encode(JSON).0.into_owned(),
            ),
        );
        assert_eq!(matched(&raw).1.charset, "koi8-r");
        let raw = message(
            "ORDER:7",
            file("application/octet-stream", None, "a.json", cp1251(JSON)),
        );
        let payload = matched(&raw).1;
        assert_eq!(
            (payload.charset.as_str(), payload.text.as_str()),
            ("windows-1251", JSON)
        );
    }

    #[test]
    fn non_matching_subject_is_skipped_before_anything_else() {
        let raw = message(
            "Re: question",
            file("text/plain", None, "order.txt", cp1251(JSON)),
        );
        assert!(matches!(
            decode_message(&raw, &DecodeRules::default()).verdict,
            Verdict::Skipped(_)
        ));
    }

    #[test]
    fn missing_attachment_broken_json_and_arrays_are_quarantined_with_reasons() {
        let raw = MessageBuilder::new()
            .subject("ORDER: 1")
            .text_body(JSON)
            .write_to_vec()
            .unwrap();
        assert!(quarantine_reason(&raw).starts_with("no attachment: "));
        let raw = message(
            "ORDER: 1",
            file("text/plain", None, "o.txt", b"{\"a\": ".to_vec()),
        );
        let reason = quarantine_reason(&raw);
        assert!(
            reason.contains("`o.txt`: invalid JSON (EOF while parsing"),
            "{reason}"
        );
        let raw = message(
            "ORDER: 1",
            file("text/plain", None, "o.txt", b"[1, 2]".to_vec()),
        );
        assert!(quarantine_reason(&raw).contains("`o.txt`: the JSON is an array, not an object"));
        let raw = message(
            "ORDER: 1",
            file(
                "image/png",
                None,
                "p.png",
                b"\x89PNG\r\n\x1a\n\0\0".to_vec(),
            ),
        );
        assert!(quarantine_reason(&raw).contains("`p.png`: image/png, passed over"));
    }

    #[test]
    fn image_before_the_json_is_passed_over() {
        let raw = MessageBuilder::new()
            .subject("ORDER: 2")
            .text_body("x")
            .attachment("image/png", "logo.png", b"\x89PNG\r\n\x1a\n\0\0\0".to_vec())
            .attachment("text/plain", "order.txt", cp1251(JSON))
            .write_to_vec()
            .unwrap();
        assert_eq!(matched(&raw).1.attachment_name, "order.txt");
    }

    #[test]
    fn payload_inside_a_forwarded_message_is_found() {
        let inner = message(
            "ORDER: 88",
            file(
                "text/plain",
                Some("windows-1251"),
                "inner.txt",
                cp1251(JSON),
            ),
        );
        let raw = MessageBuilder::new()
            .subject("Fwd: ORDER: 88")
            .text_body("see attached")
            .attachment("message/rfc822", "fwd.eml", inner)
            .write_to_vec()
            .unwrap();
        let payload = matched(&raw).1;
        assert_eq!(
            (payload.attachment_name.as_str(), payload.text.as_str()),
            ("inner.txt", JSON)
        );
    }

    #[test]
    fn fingerprint_ignores_trace_fields_and_line_endings() {
        let raw = message("ORDER: 1", file("text/plain", None, "o.txt", cp1251(JSON)));
        let lf: Vec<u8> = String::from_utf8_lossy(&raw)
            .replace("\r\n", "\n")
            .into_bytes();
        let mut relayed = b"Received: from mx.example by mx2.example;\r\n\tMon, 1 Jan 2024 00:00:00 +0000\r\nDelivered-To: orders@shop.example\r\n".to_vec();
        relayed.extend_from_slice(&raw);
        assert_eq!(Fingerprint::of(&raw), Fingerprint::of(&lf));
        assert_eq!(Fingerprint::of(&raw), Fingerprint::of(&relayed));
        let other = message("ORDER: 2", file("text/plain", None, "o.txt", cp1251(JSON)));
        assert_ne!(Fingerprint::of(&raw), Fingerprint::of(&other));
    }

    #[test]
    fn a_fingerprint_prints_as_64_lowercase_hex_digits() {
        let mut bytes = [0; 32];
        bytes[0] = 0x0f;
        bytes[31] = 0xa0;
        let expected = format!("0f{}a0", "0".repeat(60));
        assert_eq!(Fingerprint(bytes).to_string(), expected);
        assert_eq!(
            format!("{:?}", Fingerprint(bytes)),
            format!("Fingerprint({expected})")
        );
    }

    #[test]
    fn envelope_carries_message_id_and_decoded_subject() {
        let raw = message(
            "ORDER: 5 Заказ с сайта",
            file("text/plain", None, "o.txt", cp1251(JSON)),
        );
        let decoded = decode_message(&raw, &DecodeRules::default());
        assert_eq!(
            decoded.envelope.message_id.as_deref(),
            Some("m1@shop.example")
        );
        assert_eq!(
            decoded.envelope.subject.as_deref(),
            Some("ORDER: 5 Заказ с сайта")
        );
    }
}
