//! A small iCalendar (RFC 5545) writer: what a feed of events needs, and nothing else.
//!
//! The rules it keeps, since calendar clients are strict about them:
//! - every line ends in CRLF (3.1);
//! - a line longer than 75 octets is folded: CRLF and one space before the rest, never in
//!   the middle of a UTF-8 sequence (3.1: "split ... between octets ... multi-octet
//!   sequences" must not be broken);
//! - TEXT values escape `\`, `;`, `,` and newlines (3.3.11); other control characters are
//!   not allowed in TEXT, so they are dropped;
//! - a DATE-TIME is UTC with a `Z` or "floating" (local wherever the reader is) without.

use chrono::{DateTime, NaiveDateTime, Utc};

/// The longest line in octets, without its CRLF.
const MAX_LINE: usize = 75;

/// A DATE-TIME value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// An instant: written in UTC (`20261129T143000Z`).
    Utc(DateTime<Utc>),
    /// A wall-clock time with no zone (a website's form time): the same clock time in
    /// every reader's calendar.
    Floating(NaiveDateTime),
}

impl When {
    fn value(self) -> String {
        match self {
            When::Utc(at) => at.format("%Y%m%dT%H%M%SZ").to_string(),
            When::Floating(at) => at.format("%Y%m%dT%H%M%S").to_string(),
        }
    }
}

/// Escapes a TEXT value.
pub fn text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let value = value.replace("\r\n", "\n").replace('\r', "\n");
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A calendar being written: content lines, folded as they are added.
pub struct Calendar {
    out: String,
}

impl Calendar {
    /// Opens a `VCALENDAR` named `name` (`X-WR-CALNAME`, which Apple, Google and Thunderbird
    /// show as the subscription's title).
    pub fn new(product: &str, name: &str) -> Calendar {
        let mut calendar = Calendar { out: String::new() };
        calendar.line("BEGIN:VCALENDAR");
        calendar.line("VERSION:2.0");
        calendar.line(&format!("PRODID:{}", text(product)));
        calendar.line("CALSCALE:GREGORIAN");
        calendar.line(&format!("X-WR-CALNAME:{}", text(name)));
        calendar
    }

    /// Adds one content line as written (`NAME:value`, the value already escaped), folded.
    pub fn line(&mut self, line: &str) {
        let mut rest = line;
        let mut limit = MAX_LINE;
        loop {
            if rest.len() <= limit {
                self.out.push_str(rest);
                self.out.push_str("\r\n");
                return;
            }
            let mut cut = limit;
            while !rest.is_char_boundary(cut) {
                cut -= 1;
            }
            self.out.push_str(&rest[..cut]);
            self.out.push_str("\r\n ");
            rest = &rest[cut..];
            // The leading space of a continuation line counts towards its 75 octets.
            limit = MAX_LINE - 1;
        }
    }

    /// A TEXT property.
    pub fn text(&mut self, name: &str, value: &str) {
        self.line(&format!("{name}:{}", text(value)));
    }

    /// A DATE-TIME property.
    pub fn when(&mut self, name: &str, when: When) {
        self.line(&format!("{name}:{}", when.value()));
    }

    /// Closes the calendar and returns its text.
    pub fn finish(mut self) -> String {
        self.line("END:VCALENDAR");
        self.out
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn text_escapes_backslash_semicolon_comma_and_newlines_and_drops_controls() {
        assert_eq!(
            text("a\\b;c,d\r\ne\nf\rg\u{7}h"),
            "a\\\\b\\;c\\,d\\ne\\nf\\ng".to_string() + "h"
        );
    }

    #[test]
    fn long_lines_fold_at_75_octets_without_splitting_a_character() {
        let mut calendar = Calendar { out: String::new() };
        let value = "描述".repeat(40) + &"x".repeat(100);
        calendar.text("DESCRIPTION", &value);
        let out = calendar.out;
        assert!(out.ends_with("\r\n"));
        let lines: Vec<&str> = out.trim_end_matches("\r\n").split("\r\n").collect();
        assert!(lines.len() > 3, "{lines:?}");
        for (i, line) in lines.iter().enumerate() {
            assert!(line.len() <= 75, "line {i} has {} octets", line.len());
            assert_eq!(i > 0, line.starts_with(' '), "line {i}");
        }
        // Unfolding gives the line back.
        let unfolded = out.trim_end_matches("\r\n").replace("\r\n ", "");
        assert_eq!(unfolded, format!("DESCRIPTION:{value}"));
    }

    #[test]
    fn utc_times_carry_z_and_floating_times_do_not() {
        let at = Utc.with_ymd_and_hms(2026, 11, 29, 14, 30, 5).unwrap();
        assert_eq!(When::Utc(at).value(), "20261129T143005Z");
        assert_eq!(When::Floating(at.naive_utc()).value(), "20261129T143005");
    }

    #[test]
    fn a_calendar_opens_and_closes_with_crlf_lines() {
        let mut calendar = Calendar::new("-//mailintake//EN", "Заказы, сайт");
        calendar.line("BEGIN:VEVENT");
        calendar.line("END:VEVENT");
        let out = calendar.finish();
        assert!(
            out.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"),
            "{out}"
        );
        assert!(out.contains("X-WR-CALNAME:Заказы\\, сайт\r\n"), "{out}");
        assert!(out.ends_with("END:VEVENT\r\nEND:VCALENDAR\r\n"), "{out}");
        assert!(!out.replace("\r\n", "").contains('\n'));
    }
}
