//! The HTTP intake's pure core: a request body becomes a record, or a quarantine reason,
//! exactly as the JSON attachment of a collector's e-mail would (same charset rules, same
//! format). The web handler (`web::api::intake`) and `quarantine retry` both come here.

use sha2::{Digest, Sha256};

use crate::decode::body::{BODY_NAME, request_body};
use crate::decode::reason::bounded;
use crate::decode::{DecodeRules, Envelope, Fingerprint};
use crate::mapping::PayloadFormat;

use super::{Mapped, Prepared};

/// Decodes and maps one request body sent with `content_type`. The envelope's fingerprint
/// is the SHA-256 of the body byte for byte (no e-mail normalisation: a body that differs
/// in one byte is another request); a body has no Message-ID or subject. Never
/// [`Mapped::Skip`]: a body posted to a collector is meant for it.
pub fn prepare_body(
    body: &[u8],
    content_type: Option<&str>,
    rules: &DecodeRules,
    format: &PayloadFormat,
) -> Prepared {
    let envelope = Envelope {
        message_id: None,
        subject: None,
        fingerprint: Fingerprint(Sha256::digest(body).into()),
        // A request has no Date header: it was sent now, as a mailed form's Date says when
        // the website sent it.
        date: Some(chrono::Local::now().naive_local()),
    };
    let mapped = match request_body(body, content_type, rules.default_charset) {
        Err(reason) => Mapped::Quarantine(reason),
        Ok(payload) => match format.map(&payload, None, &envelope) {
            Ok(record) => Mapped::Accept(Box::new(record)),
            Err(e) => Mapped::Quarantine(bounded(format!("{BODY_NAME}: {e}"))),
        },
    };
    Prepared { envelope, mapped }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_body_maps_and_identical_bodies_share_a_fingerprint() {
        let body =
            "{\"Телефон\": \"+7 925 642 42-90\", \"Товары\": [{\"Номенклатура\": \"Ролап\"}]}";
        let cp1251 = encoding_rs::WINDOWS_1251.encode(body).0.into_owned();
        let rules = DecodeRules::default();
        let prepared = prepare_body(&cp1251, None, &rules, &PayloadFormat::default());
        let Mapped::Accept(record) = &prepared.mapped else {
            panic!("{:?}", prepared.mapped);
        };
        assert_eq!(record.lines[0].item.as_deref(), Some("Ролап"));
        assert_eq!(record.source.charset, "windows-1251");
        assert_eq!(record.source.message_id, None);
        let again = prepare_body(&cp1251, None, &rules, &PayloadFormat::default());
        assert_eq!(again.envelope.fingerprint, prepared.envelope.fingerprint);
        let mut other = cp1251.clone();
        other.push(b'\n');
        let other = prepare_body(&other, None, &rules, &PayloadFormat::default());
        assert_ne!(other.envelope.fingerprint, prepared.envelope.fingerprint);
    }

    #[test]
    fn a_body_that_is_not_json_is_quarantined_with_its_reason() {
        let prepared = prepare_body(
            b"<html>",
            Some("text/html"),
            &DecodeRules::default(),
            &PayloadFormat::default(),
        );
        assert!(
            matches!(&prepared.mapped, Mapped::Quarantine(r) if r.starts_with("request body: invalid JSON")),
            "{:?}",
            prepared.mapped
        );
    }
}
