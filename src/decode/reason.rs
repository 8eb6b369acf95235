//! Reasons are short: a quarantine reason is stored with the message, logged as one line and
//! shown in `quarantine list`, and much of its text comes from the message itself (file
//! names, payload values), so a message could otherwise make it megabytes long (50,000
//! unusable parts, one 1 MB file name). Every reason passes through [`bounded`] before it
//! leaves the pure core, and lists of parts are cut by [`Notes`] while they are collected.

use std::fmt::Write as _;

/// The longest reason kept, in characters.
pub const MAX_REASON_CHARS: usize = 1000;

/// How many parts a reason names before it only counts the rest.
const LISTED_PARTS: usize = 5;

/// Longest piece of message text (a file name, a value) quoted inside a reason, in characters.
pub const MAX_QUOTED_CHARS: usize = 120;

/// `text` cut to `max` characters, with an ellipsis and the count of what was cut.
pub fn clip(text: &str, max: usize) -> String {
    let total = text.chars().count();
    if total <= max {
        return text.to_string();
    }
    let mut kept: String = text.chars().take(max).collect();
    let _ = write!(kept, "… ({} more characters)", total - max);
    kept
}

/// A reason fit to store and log: never empty, at most [`MAX_REASON_CHARS`] characters.
pub fn bounded(reason: String) -> String {
    if reason.trim().is_empty() {
        return "unusable (no reason was given; kept for inspection)".into();
    }
    if reason.chars().count() <= MAX_REASON_CHARS {
        return reason;
    }
    // The suffix `clip` adds is short; keep the whole within the bound.
    clip(&reason, MAX_REASON_CHARS - 40)
}

/// Notes on the parts looked at, collected with a bound: the first few in full (each quoted
/// text clipped), then only a count.
#[derive(Debug, Default)]
pub struct Notes {
    listed: Vec<String>,
    more: usize,
}

impl Notes {
    /// Records why the part `name` was not taken.
    pub fn push(&mut self, name: &str, why: &str) {
        if self.listed.len() < LISTED_PARTS {
            self.listed
                .push(format!("`{}`: {}", clip(name, MAX_QUOTED_CHARS), why));
        } else {
            self.more += 1;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.listed.is_empty()
    }

    /// `a; b; c and N more`.
    pub fn joined(&self) -> String {
        let mut text = self.listed.join("; ");
        if self.more > 0 {
            let _ = write!(text, "; and {} more", self.more);
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_reasons_are_cut_and_empty_ones_filled() {
        let long = bounded("x".repeat(3_200_000));
        assert!(long.chars().count() <= MAX_REASON_CHARS, "{}", long.len());
        assert!(long.ends_with("more characters)"));
        assert!(!bounded("  ".into()).trim().is_empty());
        assert_eq!(bounded("short".into()), "short");
    }

    #[test]
    fn notes_name_the_first_parts_and_count_the_rest() {
        let mut notes = Notes::default();
        for i in 0..50_000 {
            notes.push(&format!("part{i}.bin"), "binary content, passed over");
        }
        let text = notes.joined();
        assert!(text.starts_with("`part0.bin`: binary content"), "{text}");
        assert!(text.ends_with("; and 49995 more"), "{text}");
        assert!(text.len() < 400, "{text}");
    }
}
