//! Russian taxpayer numbers (ИНН): the key a counterparty is found by.
//!
//! A website may send any text as the INN. It is parsed once, when the payload is mapped:
//! a checksum-valid INN links the record to a counterparty; a wrong one is kept as sent
//! (the manager sees it) and links nothing. Nothing downstream checks the digits again.

use std::fmt;

use serde::{Serialize, Serializer};

/// An INN as the website sent it, checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Inn {
    /// 10 digits (organisation) or 12 digits (individual) with the right check digits.
    Valid {
        /// The text as sent (blanks included).
        text: String,
        /// The digits alone: the counterparty key.
        digits: String,
    },
    /// Wrong length, characters or check digits; kept, linked to no counterparty.
    Invalid(String),
}

const WEIGHTS_10: [u32; 9] = [2, 4, 10, 3, 5, 9, 4, 6, 8];
const WEIGHTS_11: [u32; 10] = [7, 2, 4, 10, 3, 5, 9, 4, 6, 8];
const WEIGHTS_12: [u32; 11] = [3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8];

fn check_digit(digits: &[u32], weights: &[u32]) -> u32 {
    digits.iter().zip(weights).map(|(d, w)| d * w).sum::<u32>() % 11 % 10
}

/// The INN's digits (blanks between them allowed) when the length and check digits are right.
fn checked_digits(text: &str) -> Option<String> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let digits: Vec<u32> = compact
        .chars()
        .map(|c| c.to_digit(10))
        .collect::<Option<_>>()?;
    let valid = match digits.len() {
        10 => check_digit(&digits[..9], &WEIGHTS_10) == digits[9],
        12 => {
            check_digit(&digits[..10], &WEIGHTS_11) == digits[10]
                && check_digit(&digits[..11], &WEIGHTS_12) == digits[11]
        }
        _ => false,
    };
    valid.then_some(compact)
}

impl Inn {
    /// Checks `text`; never fails, since an invalid INN is kept too.
    pub fn parse(text: impl Into<String>) -> Inn {
        let text = text.into();
        match checked_digits(&text) {
            Some(digits) => Inn::Valid { text, digits },
            None => Inn::Invalid(text),
        }
    }

    /// The text as sent.
    pub fn as_str(&self) -> &str {
        match self {
            Inn::Valid { text, .. } | Inn::Invalid(text) => text,
        }
    }

    pub fn is_valid(&self) -> bool {
        matches!(self, Inn::Valid { .. })
    }

    /// The counterparty key: the digits of a valid INN.
    pub fn counterparty_key(&self) -> Option<&str> {
        match self {
            Inn::Valid { digits, .. } => Some(digits),
            Inn::Invalid(_) => None,
        }
    }
}

impl fmt::Display for Inn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The JSON shape of a record's INN, `"inn": "...", "inn_valid": true`, kept from the days
/// it was a string and a flag (`parse --json` and `records show --json` print it).
pub mod as_fields {
    use super::*;

    #[derive(Serialize)]
    struct Fields<'a> {
        inn: Option<&'a str>,
        inn_valid: bool,
    }

    /// Serializes as two fields; use with `#[serde(flatten, serialize_with = ...)]`.
    pub fn serialize<S: Serializer>(inn: &Option<Inn>, s: S) -> Result<S::Ok, S::Error> {
        Fields {
            inn: inn.as_ref().map(Inn::as_str),
            inn_valid: inn.as_ref().is_some_and(Inn::is_valid),
        }
        .serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> Option<String> {
        Inn::parse(text).counterparty_key().map(str::to_string)
    }

    #[test]
    fn valid_inns_give_their_digits_as_the_key() {
        assert_eq!(key("7709745454").as_deref(), Some("7709745454"));
        assert_eq!(key(" 7709 745 454 ").as_deref(), Some("7709745454"));
        assert_eq!(key("500100732259").as_deref(), Some("500100732259"));
        assert_eq!(Inn::parse(" 7709 745 454 ").as_str(), " 7709 745 454 ");
    }

    #[test]
    fn wrong_checksum_length_or_characters_are_kept_as_invalid() {
        for text in ["7709745455", "500100732258", "770974545", "77O9745454", ""] {
            let inn = Inn::parse(text);
            assert_eq!(inn, Inn::Invalid(text.to_string()));
            assert!(!inn.is_valid());
            assert_eq!(inn.counterparty_key(), None);
        }
    }
}
