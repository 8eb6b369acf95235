//! What payload text may become on its way into a message: the one definition the rules
//! use when they render (so the log shows what is sent) and the sender uses again before
//! lettre sees it (so a row written by anything else is safe too). Both functions are
//! idempotent: applied twice they give what they gave once.
//!
//! A header value can neither end its header nor start another: every run of control
//! characters (CR and LF among them) and line or paragraph separators becomes one space.
//! lettre RFC 2047-encodes a non-ASCII value, but keeps a CR/LF inside the encoded word and
//! panics on one in a display name, so this cannot be left to it.

/// Text safe in a header: each run of control characters and U+2028/U+2029 becomes one
/// space; the ends are trimmed.
pub fn header_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_run = false;
    for c in text.chars() {
        if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
            if !in_run {
                out.push(' ');
            }
            in_run = true;
        } else {
            out.push(c);
            in_run = false;
        }
    }
    out.trim().to_string()
}

/// Text for a body: line breaks kept (CRLF and a lone CR as `\n`; lettre sends CRLF), tabs
/// kept, any other control character dropped.
pub fn body_text(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .chars()
        .filter(|&c| c == '\n' || c == '\t' || !c.is_control())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_text_leaves_no_line_break_and_no_control() {
        assert_eq!(
            header_text("Hello\r\nBcc: victim@example.test\t\u{7}x"),
            "Hello Bcc: victim@example.test x"
        );
        assert_eq!(header_text("  订单 #42  "), "订单 #42");
        assert_eq!(header_text("a\r\nb\u{2028}c\td  e"), "a b c d  e");
    }

    #[test]
    fn body_text_keeps_lines_and_drops_other_controls() {
        assert_eq!(body_text("a\r\nb\rc\u{0}\td\u{1b}[31m"), "a\nb\nc\td[31m");
    }

    #[test]
    fn both_are_idempotent() {
        for text in ["a\r\n\r\nb\u{0}", " x\u{2029}y\t", "订单\r#1\n"] {
            assert_eq!(header_text(&header_text(text)), header_text(text));
            assert_eq!(body_text(&body_text(text)), body_text(text));
        }
    }
}
