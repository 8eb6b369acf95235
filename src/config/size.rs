//! Sizes in bytes as an admin writes them: `max-message-size = "25MB"` or a plain number of
//! bytes (`26214400`).
//!
//! Units are powers of 1024, as in Dovecot's and nginx's size settings, so `"25MB"` is the
//! 26,214,400 bytes a provider means by a 25 MB attachment limit. `K`, `KB`, `KiB` (and `M`,
//! `G` likewise) are the same unit, in any case, with or without a space before it; `B` or no
//! unit means bytes. Fractions are refused: `"1.5MB"` is better written `"1536KB"`.

use std::ops::RangeInclusive;

use toml::Spanned;

use super::error::{ConfigError, ErrorSite};
use super::quantity::{self, Units};

/// One kibibyte, the smallest unit a size is written in.
pub const KIB: u64 = 1024;
/// One mebibyte: what `"1MB"` means.
pub const MIB: u64 = 1024 * KIB;
/// One gibibyte: what `"1GB"` means.
pub const GIB: u64 = 1024 * MIB;

/// The multiplier of a unit as written after the number (`""` is bytes).
fn unit(word: &str) -> Option<u64> {
    match word.to_ascii_lowercase().as_str() {
        "" | "b" => Some(1),
        "k" | "kb" | "kib" => Some(KIB),
        "m" | "mb" | "mib" => Some(MIB),
        "g" | "gb" | "gib" => Some(GIB),
        _ => None,
    }
}

/// How sizes are written.
const UNITS: Units = Units {
    multiplier: unit,
    display,
    example: "a size like \"25MB\", \"512KB\" or a number of bytes",
};

/// Shows a byte count the way it would be written, e.g. `25MB` or `1536KB`.
pub fn display(bytes: u64) -> String {
    match bytes {
        b if b >= GIB && b % GIB == 0 => format!("{}GB", b / GIB),
        b if b >= MIB && b % MIB == 0 => format!("{}MB", b / MIB),
        b if b >= KIB && b % KIB == 0 => format!("{}KB", b / KIB),
        b => format!("{b} bytes"),
    }
}

/// The size at `value` (a number of bytes, or a string with a unit) within `range`, or an
/// error at its span naming `key`.
pub(super) fn size_in(
    site: &ErrorSite<'_>,
    value: &Spanned<toml::Value>,
    range: RangeInclusive<u64>,
    key: &str,
) -> Result<u64, ConfigError> {
    quantity::quantity_in(site, value, range, key, &UNITS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `"25MB"`, `"25 MiB"`, `"512k"` or `"1048576"` as bytes.
    fn parse(text: &str) -> Option<u64> {
        quantity::parse(text, &UNITS)
    }

    #[test]
    fn units_are_powers_of_1024_in_any_case_with_or_without_a_space() {
        assert_eq!(parse("25MB"), Some(25 * MIB));
        assert_eq!(parse("25 mib"), Some(25 * MIB));
        assert_eq!(parse("512k"), Some(512 * KIB));
        assert_eq!(parse("1GB"), Some(1024 * MIB));
        assert_eq!(parse("1048576"), Some(MIB));
        assert_eq!(parse("100 B"), Some(100));
    }

    #[test]
    fn fractions_negatives_unknown_units_and_overflow_are_refused() {
        for bad in [
            "1.5MB",
            "-1MB",
            "25 megs",
            "MB",
            "",
            "99999999999999999999",
            "9999999999999GB",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn sizes_display_in_the_largest_whole_unit() {
        assert_eq!(display(25 * MIB), "25MB");
        assert_eq!(display(1536 * KIB), "1536KB");
        assert_eq!(display(1000), "1000 bytes");
        assert_eq!(display(2 * GIB), "2GB");
    }
}
