//! A payload that arrives as a body of its own: the HTTP intake's request body, which is the
//! JSON a website would otherwise have attached to its e-mail.
//!
//! It is read exactly as that attachment would be ([`json_payload`] serves both): the charset
//! in the request's `Content-Type` is the attachment's declared charset, so the order of
//! [`super::charset`] holds (a BOM; the declared charset when the bytes are valid in it;
//! UTF-8; the collector's `default-charset`), and the text must be one JSON object.

use encoding_rs::Encoding;
use serde_json::{Map, Value};

use super::charset::decode_text;
use super::mime::Payload;
use super::reason::bounded;

/// What a request body's payload is called where an attachment's file name would be: in the
/// quarantine reason of a body that is not a JSON object.
pub const BODY_NAME: &str = "request body";

/// A JSON object read from text bytes: the object, the decoded text (kept verbatim with the
/// record) and the charset that decoded it.
pub(super) type JsonText = (Map<String, Value>, String, String);

/// Decodes `bytes` (after any transfer encoding) by the charset order and parses them as a
/// JSON object; otherwise says why not, for the quarantine reason.
pub(super) fn json_payload(
    bytes: &[u8],
    declared: Option<&str>,
    default_charset: &'static Encoding,
) -> Result<JsonText, String> {
    let utf16 = declared.is_some_and(|c| c.to_ascii_lowercase().starts_with("utf-16"));
    if !utf16 && Encoding::for_bom(bytes).is_none() && bytes.contains(&0) {
        return Err("binary content, passed over".into());
    }
    let decoded = decode_text(bytes, declared, default_charset);
    match serde_json::from_str::<Value>(decoded.text.trim()) {
        Ok(Value::Object(object)) => Ok((object, decoded.text.into_owned(), decoded.charset)),
        Ok(other) => Err(format!("the JSON is {}, not an object", json_kind(&other))),
        Err(e) => Err(format!("invalid JSON ({e})")),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Array(_) => "an array",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
        Value::Object(_) => "an object",
    }
}

/// The `charset` parameter of a `Content-Type` value (`application/json; charset=windows-1251`),
/// unquoted; none when absent or empty.
pub fn content_type_charset(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        let value = value.trim().trim_matches('"').trim();
        (name.trim().eq_ignore_ascii_case("charset") && !value.is_empty()).then_some(value)
    })
}

/// The payload of an HTTP request body sent with `content_type`, or the (bounded) reason
/// it cannot be one.
pub fn request_body(
    bytes: &[u8],
    content_type: Option<&str>,
    default_charset: &'static Encoding,
) -> Result<Payload, String> {
    let declared = content_type.and_then(content_type_charset);
    match json_payload(bytes, declared, default_charset) {
        Ok((object, text, charset)) => Ok(Payload {
            object,
            text,
            attachment_name: BODY_NAME.to_string(),
            charset,
        }),
        Err(why) => Err(bounded(format!("{BODY_NAME}: {why}"))),
    }
}

#[cfg(test)]
mod tests {
    use encoding_rs::WINDOWS_1251;

    use super::*;

    const JSON: &str = r#"{"КонтактноеЛицо": "Прилепский Алексей", "Телефон": "+7 925 642 42-90"}"#;

    #[test]
    fn the_charset_parameter_is_found_in_any_case_and_quoting() {
        assert_eq!(
            content_type_charset("application/json; charset=windows-1251"),
            Some("windows-1251")
        );
        assert_eq!(
            content_type_charset("application/json;CHARSET=\"utf-8\" ; x=y"),
            Some("utf-8")
        );
        assert_eq!(content_type_charset("application/json"), None);
        assert_eq!(content_type_charset("application/json; charset="), None);
        assert_eq!(content_type_charset("charset=koi8-r"), None);
    }

    #[test]
    fn a_body_decodes_by_its_declared_charset_a_bom_or_the_collector_default() {
        let cp1251 = WINDOWS_1251.encode(JSON).0.into_owned();
        let declared = request_body(
            &cp1251,
            Some("application/json; charset=windows-1251"),
            encoding_rs::KOI8_R,
        )
        .unwrap();
        assert_eq!(
            (declared.text.as_str(), declared.charset.as_str()),
            (JSON, "windows-1251")
        );
        assert_eq!(declared.object["КонтактноеЛицо"], "Прилепский Алексей");
        assert_eq!(declared.attachment_name, BODY_NAME);

        let undeclared = request_body(&cp1251, Some("application/json"), WINDOWS_1251).unwrap();
        assert_eq!(undeclared.charset, "windows-1251");

        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice(JSON.as_bytes());
        let with_bom = request_body(&bom, None, WINDOWS_1251).unwrap();
        assert_eq!(
            (with_bom.text.as_str(), with_bom.charset.as_str()),
            (JSON, "utf-8")
        );
    }

    #[test]
    fn a_body_that_is_no_json_object_says_why() {
        let not_json = request_body(b"name=Anna", None, WINDOWS_1251).unwrap_err();
        assert!(
            not_json.starts_with("request body: invalid JSON ("),
            "{not_json}"
        );
        let array = request_body(b"[1]", None, WINDOWS_1251).unwrap_err();
        assert_eq!(array, "request body: the JSON is an array, not an object");
        let binary = request_body(b"{\0}", None, WINDOWS_1251).unwrap_err();
        assert_eq!(binary, "request body: binary content, passed over");
    }
}
