//! How deeply messages are attached inside messages, found before a message is parsed.
//!
//! mail-parser reads an attached message (`message/rfc822`, `message/global`, or a part of a
//! `multipart/digest` without a type) with a heap stack, not by recursion, but the tree it
//! builds has one level per attached message, and everything that walks that tree recurses
//! once per level: its own `into_owned` for an encoded attachment, dropping the tree, our
//! payload search. 20,000 levels fit in a 1 MB message and overflow any stack, and a stack
//! overflow aborts the process (`catch_unwind` cannot catch it): the daemon would die on the
//! same message after every restart. So [`nesting_depth`] runs first, and a message deeper
//! than [`MAX_NESTING`] is quarantined without ever being parsed.
//!
//! The probe follows mail-parser 0.11's own control flow (`MessageParser::parse_`) with
//! mail-parser's own header and boundary readers, keeping only a count of open attached
//! messages instead of the parts, so it finds the depth the parser would build, no less.
//! Multiparts nested in multiparts are no level: their parts are one flat list. The probe is
//! held against the parsed tree by its tests, over the hostile-input corpus, and by a debug
//! assertion on every message decoded in a debug build.

use std::borrow::Cow;
use std::sync::LazyLock;

use mail_parser::parsers::MessageStream;
use mail_parser::{GetHeader, HeaderName, HeaderValue, Message, MessageParser, PartType};
use memchr::memmem::Finder;

/// Attached messages within attached messages allowed before a message is quarantined.
///
/// Forwarding chains seen in real mail are a few levels deep; 32 leaves room for them and
/// keeps every walk over the tree shallow: `decode::tests` runs the deepest allowed message
/// through decode and mapping on a 256 KiB stack in a debug build, an eighth of the 2 MiB of
/// the smallest thread that decodes (tokio's workers and test threads).
pub const MAX_NESTING: usize = 32;

/// mail-parser parses an encoded (base64, quoted-printable) attached message by recursion,
/// at most this many within each other (its `MAX_NESTED_ENCODED`); deeper ones stay bytes.
const ENCODED_LEVELS: usize = 3;

/// The deepest chain of attached messages in `raw`, as mail-parser would build it (0 for a
/// message with no attached message).
pub fn nesting_depth(raw: &[u8]) -> usize {
    if !may_attach_messages(raw) {
        return 0;
    }
    depth_of(raw, ENCODED_LEVELS)
}

/// Whether `raw` names a media subtype that makes a part an attached message.
///
/// NOTE: mail-parser takes a Content-Type's subtype as one contiguous run of the buffer's
/// bytes, ASCII-lowercased; an attached message needs `rfc822` or `global`, or a `digest`
/// around it, and an encoded one is only looked into when its own header (in `raw`) says
/// so. Without any of the three words nothing can nest, and the probe is skipped: most
/// mail pays one byte scan, no second header parse.
fn may_attach_messages(raw: &[u8]) -> bool {
    // Setting bit 0x20 lowercases ASCII letters and leaves the digits alone; it also turns
    // some other bytes into letters or digits, which can only add matches. Done a chunk at a
    // time on the stack, chunks overlapping by a word's length less one.
    const CHUNK: usize = 4096;
    const OVERLAP: usize = 5;
    static WORDS: LazyLock<[Finder<'static>; 3]> = LazyLock::new(|| {
        [
            Finder::new(b"rfc822"),
            Finder::new(b"global"),
            Finder::new(b"digest"),
        ]
    });
    let mut folded = [0u8; CHUNK + OVERLAP];
    let mut start = 0;
    loop {
        let end = raw.len().min(start + CHUNK + OVERLAP);
        let chunk = &mut folded[..end - start];
        for (to, from) in chunk.iter_mut().zip(&raw[start..end]) {
            *to = from | 0x20;
        }
        if WORDS.iter().any(|word| word.find(chunk).is_some()) {
            return true;
        }
        if end == raw.len() {
            return false;
        }
        start += CHUNK;
    }
}

/// A container being read: an attached message (a level of the tree) or a multipart.
#[derive(Default)]
struct Open {
    message: bool,
    digest: bool,
    boundary: Option<Vec<u8>>,
}

/// The depth of one buffer: the top-level message, or an encoded attached message decoded
/// (`encoded_levels` more of those may be entered).
fn depth_of(raw: &[u8], encoded_levels: usize) -> usize {
    let parser = MessageParser::default();
    let mut stream = MessageStream::new(raw);
    let mut headers = Vec::new();
    // Containers enclosing `open`; `true` marks the ones entered for an attached message.
    let mut enclosing: Vec<(Open, bool)> = Vec::new();
    let mut open = Open {
        message: true,
        ..Open::default()
    };
    let (mut depth, mut deepest) = (0, 0);
    'parts: loop {
        headers.clear();
        if !stream.parse_headers(&parser, &mut headers) {
            break;
        }
        let content_type = headers
            .header_value(&HeaderName::ContentType)
            .and_then(HeaderValue::as_content_type);
        let (multipart, mut message, digest) = match content_type {
            Some(ct) => (
                ct.ctype() == "multipart",
                ct.ctype() == "message" && matches!(ct.subtype(), Some("rfc822" | "global")),
                ct.subtype() == Some("digest"),
            ),
            None => (false, open.digest, false),
        };
        let boundary = content_type
            .filter(|_| multipart)
            .and_then(|ct| ct.attribute("boundary"));
        if let Some(boundary) = boundary
            && stream.seek_next_part(boundary.as_bytes())
        {
            let inner = Open {
                digest,
                boundary: Some(boundary.as_bytes().to_vec()),
                ..Open::default()
            };
            enclosing.push((std::mem::replace(&mut open, inner), false));
            stream.skip_crlf();
            continue;
        }
        let encoding = match headers.header_value(&HeaderName::ContentTransferEncoding) {
            Some(HeaderValue::Text(e)) if e.eq_ignore_ascii_case("base64") => Encoding::Base64,
            Some(HeaderValue::Text(e)) if e.eq_ignore_ascii_case("quoted-printable") => {
                Encoding::QuotedPrintable
            }
            _ => Encoding::None,
        };
        if message && encoding == Encoding::None {
            let inner = Open {
                message: true,
                boundary: open.boundary.take(),
                ..Open::default()
            };
            enclosing.push((std::mem::replace(&mut open, inner), true));
            depth += 1;
            deepest = deepest.max(depth);
            continue;
        }
        let boundary = open.boundary.as_deref().unwrap_or_default();
        let (end, bytes): (usize, Cow<'_, [u8]>) = match encoding {
            Encoding::Base64 => stream.decode_base64_mime(boundary),
            Encoding::QuotedPrintable => stream.decode_quoted_printable_mime(boundary),
            Encoding::None => stream.mime_part(boundary),
        };
        if end == usize::MAX {
            // The parser recovers a broken part as text up to the next boundary.
            message = false;
            let (_, found) = stream.seek_part_end(open.boundary.as_deref());
            if !found {
                open.boundary = None;
            }
        }
        if message && encoded_levels > 0 {
            deepest = deepest.max(depth + 1 + depth_of(&bytes, encoded_levels - 1));
        }
        if open.boundary.is_none() {
            if stream.offset() >= stream.len() {
                break;
            }
            continue;
        }
        loop {
            if open.message {
                // An attached message ends at its enclosing multipart's boundary.
                let Some((mut outer, true)) = enclosing.pop() else {
                    break 'parts;
                };
                outer.boundary = open.boundary.take();
                open = outer;
                depth -= 1;
            }
            if !stream.is_multipart_end() {
                continue 'parts;
            }
            // A closing boundary: back to what encloses the open container (the parser does
            // this even when an attached message is open), which goes on at its own next
            // boundary, if any.
            let Some((outer, entered_message)) = enclosing.pop() else {
                break 'parts;
            };
            if entered_message {
                depth -= 1;
            }
            open = outer;
            match open.boundary.as_deref() {
                Some(b) if stream.seek_next_part_offset(b).is_some() => {}
                _ => break 'parts,
            }
        }
    }
    deepest
}

/// The depth of a tree mail-parser built (what [`nesting_depth`] predicts), walked with a
/// heap stack so that it is safe on any tree.
pub fn tree_depth(message: &Message<'_>) -> usize {
    let mut deepest = 0;
    let mut pending = vec![(message, 0)];
    while let Some((message, depth)) = pending.pop() {
        deepest = deepest.max(depth);
        for part in &message.parts {
            if let PartType::Message(nested) = &part.body {
                pending.push((nested, depth + 1));
            }
        }
    }
    deepest
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Encoding {
    None,
    Base64,
    QuotedPrintable,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_probe_matches_parser(raw: &[u8], want: usize) {
        let parsed = MessageParser::default().parse(raw).unwrap();
        assert_eq!(
            (nesting_depth(raw), tree_depth(&parsed)),
            (want, want),
            "{}",
            String::from_utf8_lossy(raw)
        );
    }

    fn chain(levels: usize) -> String {
        "Subject: ORDER: 1\r\nContent-Type: message/rfc822\r\n\r\n".repeat(levels)
            + "Subject: x\r\n\r\nhi\r\n"
    }

    fn multipart(boundary: &str, parts: &[String]) -> String {
        let mut text = format!("Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n");
        for part in parts {
            text.push_str(&format!("--{boundary}\r\n{part}\r\n"));
        }
        text + &format!("--{boundary}--\r\n")
    }

    fn attached(message: &str) -> String {
        format!("Content-Type: message/rfc822\r\n\r\n{message}")
    }

    #[test]
    fn the_pre_check_finds_the_words_in_any_case_and_across_chunks() {
        for at in [0, 4090, 4093, 4096, 9000] {
            for word in ["RFC822", "Global", "diGEST"] {
                let mut raw = vec![b'x'; 10_000];
                raw[at..at + 6].copy_from_slice(word.as_bytes());
                assert!(may_attach_messages(&raw), "{word} at {at}");
            }
        }
        assert!(!may_attach_messages(&[b'x'; 10_000]));
        assert!(!may_attach_messages(b""));
    }

    #[test]
    fn a_chain_counts_every_level() {
        assert_probe_matches_parser(b"Subject: x\r\n\r\nhi\r\n", 0);
        assert_probe_matches_parser(chain(1).as_bytes(), 1);
        assert_probe_matches_parser(chain(100).as_bytes(), 100);
        // Not parsed: the tree would be as deep as the probe says, and too deep to drop.
        assert_eq!(nesting_depth(chain(20_000).as_bytes()), 20_000);
    }

    #[test]
    fn side_by_side_attachments_and_nested_multiparts_are_one_level() {
        let inner = format!("Subject: in\r\n{}", multipart("i", &["hi".into()]));
        let forwards: Vec<String> = (0..40).map(|_| attached(&inner)).collect();
        let raw = format!("Subject: out\r\n{}", multipart("o", &forwards));
        assert_probe_matches_parser(raw.as_bytes(), 1);
        let mut nested = "Content-Type: text/plain\r\n\r\nleaf".to_string();
        for i in 0..60 {
            nested = multipart(&format!("m{i}"), &[nested]);
        }
        assert_probe_matches_parser(format!("Subject: m\r\n{nested}").as_bytes(), 0);
    }

    #[test]
    fn forwards_within_multiparts_count_per_message() {
        let mut message = "Subject: x\r\n\r\nhi".to_string();
        for i in 0..10 {
            let parts = ["note".to_string(), attached(&message)];
            message = format!("Subject: l{i}\r\n{}", multipart(&format!("b{i}"), &parts));
        }
        assert_probe_matches_parser(message.as_bytes(), 10);
    }

    #[test]
    fn digest_parts_are_messages() {
        let mut message = "Subject: x\r\n\r\nhi".to_string();
        for i in 0..7 {
            message = format!(
                "Subject: d{i}\r\nContent-Type: multipart/digest; boundary=\"d{i}\"\r\n\r\n--d{i}\r\n\r\n{message}\r\n--d{i}--\r\n"
            );
        }
        assert_probe_matches_parser(message.as_bytes(), 7);
    }

    #[test]
    fn encoded_attachments_are_looked_into_as_the_parser_does() {
        use mail_builder::encoders::base64::base64_encode;
        let encoded = |message: &str| {
            let body = String::from_utf8(base64_encode(message.as_bytes()).unwrap()).unwrap();
            format!(
                "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n{body}"
            )
        };
        let inner = chain(12);
        let once = format!("Subject: e\r\n{}", multipart("e", &[encoded(&inner)]));
        assert_probe_matches_parser(once.as_bytes(), 13);
        // Four encoded levels: the parser leaves the fourth as bytes.
        let mut message = chain(50);
        for i in 0..4 {
            message = format!(
                "Subject: e{i}\r\n{}",
                multipart(&format!("e{i}"), &[encoded(&message)])
            );
        }
        assert_probe_matches_parser(message.as_bytes(), 3);
    }
}
