//! Phone numbers: the key contacts are found by.
//!
//! The website's text is kept for people; its digits, computed once when the payload is
//! mapped, are what records are linked and searched by.

use std::fmt;

use serde::{Serialize, Serializer};

/// A phone number as the website sent it, with its digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone {
    text: String,
    digits: Option<String>,
}

/// Fewer digits than this cannot identify anyone.
const SHORTEST: usize = 5;

/// The digits of a phone number (`+7 925 642 42-90` gives `79256424290`); `None` when it
/// holds fewer than five. Also how a searched number (`--phone`) is read.
pub fn phone_digits(phone: &str) -> Option<String> {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    (digits.len() >= SHORTEST).then_some(digits)
}

impl Phone {
    /// Keeps `text` and computes its digits; never fails (a short number links no contact).
    pub fn parse(text: impl Into<String>) -> Phone {
        let text = text.into();
        let digits = phone_digits(&text);
        Phone { text, digits }
    }

    /// The text as sent.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The contact key, when the number has enough digits.
    pub fn digits(&self) -> Option<&str> {
        self.digits.as_deref()
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.text)
    }
}

/// A phone serializes as the text sent, as it did when it was a string.
impl Serialize for Phone {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_digits_keep_only_digits() {
        assert_eq!(
            phone_digits("+7 925 642 42-90").as_deref(),
            Some("79256424290")
        );
        assert_eq!(
            phone_digits("(495) 123-45-67").as_deref(),
            Some("4951234567")
        );
        assert_eq!(phone_digits("n/a 12"), None);
    }

    #[test]
    fn a_phone_keeps_its_text_and_carries_its_digits() {
        let phone = Phone::parse("+7 925 642 42-90");
        assert_eq!(phone.as_str(), "+7 925 642 42-90");
        assert_eq!(phone.digits(), Some("79256424290"));
        assert_eq!(
            serde_json::to_string(&phone).unwrap(),
            "\"+7 925 642 42-90\""
        );
        assert_eq!(Phone::parse("12").digits(), None);
    }
}
