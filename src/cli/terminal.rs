//! Text from mail, made safe to print on a terminal.
//!
//! Payload values, subjects and reasons come from whoever sent the mail. Printed raw, an
//! `ESC [2J` clears the reader's screen, `ESC ]0;... BEL` sets the terminal's title, and a
//! CR or LF forges lines that look like the program's own (a fake `status:` or history line).
//! Every plain-text view therefore passes such text through this file: control characters
//! (C0, DEL and C1, which holds the one-byte CSI) are shown escaped as Rust writes them
//! (`\u{1b}`, `\r`, `\t`), and a line break in a multi-line value is kept but indented under
//! the value, so it can never start a line of its own. The list views cut every value to one
//! line in `table.rs` instead; `--json` prints the exact values.

/// Appends `c`, escaped if it is a control character.
fn push_shown(out: &mut String, c: char) {
    if c.is_control() {
        out.extend(c.escape_default());
    } else {
        out.push(c);
    }
}

/// `text` on one line: every control character escaped, line breaks included (`\n`).
pub(super) fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        push_shown(&mut out, c);
    }
    out
}

/// `text` with its line breaks (LF or CRLF) kept, each following line indented by `indent`
/// spaces (the column where the value starts); every other control character, a lone CR
/// included, escaped as [`one_line`] does.
pub(super) fn indented(text: &str, indent: usize) -> String {
    let mut out = String::with_capacity(text.len());
    for (n, line) in text.split('\n').enumerate() {
        if n > 0 {
            out.push('\n');
            out.extend(std::iter::repeat_n(' ', indent));
        }
        for c in line.strip_suffix('\r').unwrap_or(line).chars() {
            push_shown(&mut out, c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_line_breaks_are_shown_not_obeyed() {
        assert_eq!(
            one_line("a\u{1b}[2Jb\u{1b}]0;title\u{7}c\r\nd\te\u{9b}f\u{7f}"),
            r"a\u{1b}[2Jb\u{1b}]0;title\u{7}c\r\nd\te\u{9b}f\u{7f}"
        );
        assert_eq!(one_line("Заказ №7 — ok"), "Заказ №7 — ok");
    }

    #[test]
    fn multi_line_values_keep_their_lines_indented_under_the_value() {
        assert_eq!(
            indented("first\r\nstatus: paid\nthird\rx\u{1b}[1A", 4),
            "first\n    status: paid\n    third\\rx\\u{1b}[1A"
        );
        assert_eq!(indented("one line", 4), "one line");
    }
}
