//! Finding the JSON payload among a message's parts.
//!
//! A payload is any part that carries a file name (Content-Disposition `filename`, or only a
//! Content-Type `name`) whose text is a JSON object; the first one wins. Body text is ignored,
//! media types are passed over, and attached messages (forward-as-attachment) are searched too.

use std::borrow::Cow;

use encoding_rs::Encoding;
use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;
use mail_parser::{Message, MessagePart, MimeHeaders, PartType};
use serde_json::{Map, Value};

use super::body::{JsonText, json_payload};
use super::nesting::MAX_NESTING;
use super::reason::Notes;

/// The decoded JSON payload of a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    pub object: Map<String, Value>,
    /// The attachment's text, as decoded (kept verbatim with the record).
    pub text: String,
    /// Decoded file name of the attachment.
    pub attachment_name: String,
    /// Charset the text was decoded with (see [`super::charset`]).
    pub charset: String,
}

/// Media types that never hold a text payload.
const MEDIA_TYPES: [&str; 5] = ["image", "audio", "video", "font", "model"];

/// Searches `message` for the payload; on failure returns the reason, naming the first
/// attachments looked at and why they were not taken, and counting the rest.
pub fn find_payload(
    message: &Message<'_>,
    default_charset: &'static Encoding,
) -> Result<Payload, String> {
    let mut notes = Notes::default();
    if let Some(payload) = search(message, default_charset, &mut notes, 0) {
        return Ok(payload);
    }
    if notes.is_empty() {
        Err("no attachment: the message has no attached file (the JSON payload must come as an attached file; body text is ignored)".into())
    } else {
        Err(format!(
            "no attachment holds a JSON object: {}",
            notes.joined()
        ))
    }
}

/// Depth-first, so the first payload in reading order wins. Recursion is one frame per
/// attached message, `depth` of them: [`decode_message`](super::decode_message) lets no
/// message deeper than [`MAX_NESTING`] reach here, and the search also stops there itself.
fn search(
    message: &Message<'_>,
    default_charset: &'static Encoding,
    notes: &mut Notes,
    depth: usize,
) -> Option<Payload> {
    for part in &message.parts {
        match &part.body {
            PartType::Multipart(_) => {}
            PartType::Message(_) if depth >= MAX_NESTING => {
                notes.push(
                    "attached message",
                    &format!("nested deeper than {MAX_NESTING} levels, not searched"),
                );
            }
            PartType::Message(nested) => {
                if let Some(payload) = search(nested, default_charset, notes, depth + 1) {
                    return Some(payload);
                }
            }
            _ => {
                let Some(name) = part.attachment_name() else {
                    continue;
                };
                match examine(message, part, default_charset) {
                    Ok((object, text, charset)) => {
                        return Some(Payload {
                            object,
                            text,
                            attachment_name: name.to_string(),
                            charset,
                        });
                    }
                    Err(why) => notes.push(name, &why),
                }
            }
        }
    }
    None
}

fn examine(
    message: &Message<'_>,
    part: &MessagePart<'_>,
    default_charset: &'static Encoding,
) -> Result<JsonText, String> {
    let content_type = part.content_type();
    let media = content_type.map(|ct| ct.ctype().to_ascii_lowercase());
    if let Some(media) = media.as_deref().filter(|m| MEDIA_TYPES.contains(m)) {
        let subtype = content_type.and_then(|ct| ct.subtype()).unwrap_or("*");
        return Err(format!("{media}/{subtype}, passed over"));
    }
    let bytes = transfer_decoded(message, part).ok_or("the transfer encoding is broken")?;
    let declared = content_type.and_then(|ct| ct.attribute("charset"));
    json_payload(&bytes, declared, default_charset)
}

/// The part's bytes with the transfer encoding undone but no charset conversion.
///
/// NOTE: mail-parser converts text/* parts to UTF-8 by their declared charset while parsing
/// (lossily when none is declared), which destroys undeclared cp1251. So text parts are
/// re-read from the raw buffer. Offsets of a nested message's parts refer to that nested
/// message's own `raw_message` (the decoded bytes when it was base64-encoded).
fn transfer_decoded<'m>(
    message: &'m Message<'_>,
    part: &'m MessagePart<'_>,
) -> Option<Cow<'m, [u8]>> {
    match &part.body {
        PartType::Binary(bytes) | PartType::InlineBinary(bytes) => {
            Some(Cow::Borrowed(bytes.as_ref()))
        }
        _ => {
            let raw = message
                .raw_message
                .get(part.raw_body_offset() as usize..part.raw_end_offset() as usize)?;
            match part.encoding {
                mail_parser::Encoding::None => Some(Cow::Borrowed(raw)),
                mail_parser::Encoding::Base64 => base64_decode(raw).map(Cow::Owned),
                mail_parser::Encoding::QuotedPrintable => {
                    quoted_printable_decode(raw).map(Cow::Owned)
                }
            }
        }
    }
}
