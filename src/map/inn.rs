//! Russian taxpayer numbers (ИНН) and phone numbers: the keys counterparties and contacts
//! are found by.

use std::fmt;

/// A checksum-valid INN: 10 digits (organisation) or 12 digits (individual).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Inn(String);

const WEIGHTS_10: [u32; 9] = [2, 4, 10, 3, 5, 9, 4, 6, 8];
const WEIGHTS_11: [u32; 10] = [7, 2, 4, 10, 3, 5, 9, 4, 6, 8];
const WEIGHTS_12: [u32; 11] = [3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8];

fn check_digit(digits: &[u32], weights: &[u32]) -> u32 {
    digits.iter().zip(weights).map(|(d, w)| d * w).sum::<u32>() % 11 % 10
}

impl Inn {
    /// Accepts the digits with optional blanks between them; `None` when the length or the
    /// check digits are wrong.
    pub fn parse(text: &str) -> Option<Inn> {
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
        valid.then_some(Inn(compact))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Inn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The digits of a phone number (`+7 925 642 42-90` gives `79256424290`); `None` when it
/// holds fewer than five, which cannot identify anyone.
pub fn phone_digits(phone: &str) -> Option<String> {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    (digits.len() >= 5).then_some(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_inns_parse() {
        assert_eq!(Inn::parse("7709745454").unwrap().as_str(), "7709745454");
        assert_eq!(Inn::parse(" 7709 745 454 ").unwrap().as_str(), "7709745454");
        assert_eq!(Inn::parse("500100732259").unwrap().as_str(), "500100732259");
    }

    #[test]
    fn wrong_checksum_length_or_characters_are_rejected() {
        assert_eq!(Inn::parse("7709745455"), None);
        assert_eq!(Inn::parse("500100732258"), None);
        assert_eq!(Inn::parse("770974545"), None);
        assert_eq!(Inn::parse("77O9745454"), None);
        assert_eq!(Inn::parse(""), None);
    }

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
}
