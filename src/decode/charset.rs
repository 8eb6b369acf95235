//! Turning attachment bytes into text: which charset to trust.
//!
//! Order: a BOM; the declared `charset` when the bytes really are valid in it (mail clients
//! mislabel, e.g. cp1251 bytes declared utf-8); valid UTF-8; the collector's default.

use std::borrow::Cow;

use encoding_rs::Encoding;

/// Decoded text and the name of the charset that produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedText<'a> {
    pub text: Cow<'a, str>,
    /// Lower-case WHATWG name (`windows-1251`, `utf-8`, `koi8-r`, ...), or `us-ascii`.
    pub charset: String,
}

/// Labels that encoding_rs maps to windows-1252 but that really promise 7-bit ASCII.
fn is_ascii_label(label: &str) -> bool {
    matches!(
        label.to_ascii_lowercase().as_str(),
        "us-ascii" | "ascii" | "ansi_x3.4-1968" | "iso646-us" | "us" | "csascii"
    )
}

/// Lower-case canonical name of an encoding (`windows-1251`, `utf-8`, `koi8-r`, ...).
pub fn charset_name(encoding: &'static Encoding) -> String {
    encoding.name().to_ascii_lowercase()
}

/// Decodes `bytes` following the charset order above.
pub fn decode_text<'a>(
    bytes: &'a [u8],
    declared: Option<&str>,
    default: &'static Encoding,
) -> DecodedText<'a> {
    if let Some((encoding, bom_len)) = Encoding::for_bom(bytes) {
        let (text, _had_errors) = encoding.decode_without_bom_handling(&bytes[bom_len..]);
        return DecodedText {
            text,
            charset: charset_name(encoding),
        };
    }
    if let Some(label) = declared.map(str::trim).filter(|l| !l.is_empty()) {
        if is_ascii_label(label) {
            if bytes.is_ascii() {
                return DecodedText {
                    text: Cow::Borrowed(std::str::from_utf8(bytes).unwrap_or_default()),
                    charset: "us-ascii".to_string(),
                };
            }
        } else if let Some(encoding) = Encoding::for_label(label.as_bytes())
            && encoding != encoding_rs::REPLACEMENT
            && let Some(text) = encoding.decode_without_bom_handling_and_without_replacement(bytes)
        {
            return DecodedText {
                text,
                charset: charset_name(encoding),
            };
        }
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return DecodedText {
            text: Cow::Borrowed(text),
            charset: "utf-8".to_string(),
        };
    }
    let (text, _had_errors) = default.decode_without_bom_handling(bytes);
    DecodedText {
        text,
        charset: charset_name(default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use encoding_rs::{GBK, KOI8_R, WINDOWS_1251};

    const TEXT: &str = "Заказ №123: Прилепский";
    /// KOI8-R has no `№`.
    const KOI_TEXT: &str = "Заказ 123: Прилепский";

    fn cp1251(s: &str) -> Vec<u8> {
        WINDOWS_1251.encode(s).0.into_owned()
    }

    fn decoded(
        bytes: &[u8],
        declared: Option<&str>,
        default: &'static Encoding,
    ) -> (String, String) {
        let d = decode_text(bytes, declared, default);
        (d.text.into_owned(), d.charset)
    }

    #[test]
    fn declared_cp1251_is_used() {
        assert_eq!(
            decoded(&cp1251(TEXT), Some("cp1251"), WINDOWS_1251),
            (TEXT.to_string(), "windows-1251".to_string())
        );
    }

    #[test]
    fn mislabelled_utf8_falls_through_to_the_default() {
        assert_eq!(
            decoded(&cp1251(TEXT), Some("utf-8"), WINDOWS_1251),
            (TEXT.to_string(), "windows-1251".to_string())
        );
    }

    #[test]
    fn undeclared_utf8_is_recognised() {
        assert_eq!(
            decoded(TEXT.as_bytes(), None, WINDOWS_1251),
            (TEXT.to_string(), "utf-8".to_string())
        );
    }

    #[test]
    fn undeclared_8bit_uses_the_collector_default() {
        assert_eq!(
            decoded(&cp1251(TEXT), None, WINDOWS_1251),
            (TEXT.to_string(), "windows-1251".to_string())
        );
        let koi = KOI8_R.encode(KOI_TEXT).0;
        assert_eq!(
            decoded(&koi, None, KOI8_R),
            (KOI_TEXT.to_string(), "koi8-r".to_string())
        );
    }

    #[test]
    fn bom_wins_over_a_wrong_declaration() {
        let mut bytes = b"\xEF\xBB\xBF".to_vec();
        bytes.extend_from_slice(TEXT.as_bytes());
        assert_eq!(
            decoded(&bytes, Some("windows-1251"), WINDOWS_1251),
            (TEXT.to_string(), "utf-8".to_string())
        );
        let mut utf16: Vec<u8> = vec![0xFF, 0xFE];
        utf16.extend(TEXT.encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(
            decoded(&utf16, None, WINDOWS_1251),
            (TEXT.to_string(), "utf-16le".to_string())
        );
    }

    #[test]
    fn koi8r_and_gbk_declarations_are_honoured() {
        assert_eq!(
            decoded(&KOI8_R.encode(KOI_TEXT).0, Some("KOI8-R"), WINDOWS_1251),
            (KOI_TEXT.to_string(), "koi8-r".to_string())
        );
        let chinese = "加装电梯咨询";
        assert_eq!(
            decoded(&GBK.encode(chinese).0, Some("gb2312"), WINDOWS_1251),
            (chinese.to_string(), "gbk".to_string())
        );
    }

    #[test]
    fn ascii_declaration_with_8bit_bytes_falls_through() {
        assert_eq!(
            decoded(&cp1251(TEXT), Some("us-ascii"), WINDOWS_1251),
            (TEXT.to_string(), "windows-1251".to_string())
        );
        let d = decode_text(b"{\"a\": 1}", Some("us-ascii"), WINDOWS_1251);
        assert_eq!(d.charset, "us-ascii");
    }
}
