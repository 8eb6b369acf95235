//! Durations as an admin writes them: `stale-after = "15m"` or a plain number of seconds
//! (`900`).
//!
//! One unit per value (`s`, `m`, `h`, `d`, in any case, with or without a space before it;
//! no unit means seconds), as systemd's and Prometheus's short forms read: `"1h30m"` is
//! refused, `"90m"` says it. Minutes are `m`; there is no month.

use std::ops::RangeInclusive;
use std::time::Duration;

use toml::Spanned;

use super::error::{ConfigError, ErrorSite};
use super::quantity::{self, Units};

/// Seconds in one unit as written after the number (`""` is seconds).
fn unit(word: &str) -> Option<u64> {
    match word.to_ascii_lowercase().as_str() {
        "" | "s" | "sec" | "secs" => Some(1),
        "m" | "min" | "mins" => Some(60),
        "h" => Some(3600),
        "d" => Some(86_400),
        _ => None,
    }
}

/// How durations are written.
const UNITS: Units = Units {
    multiplier: unit,
    display: |seconds| display(Duration::from_secs(seconds)),
    example: "a duration like \"15m\", \"90s\", \"2h\" or a number of seconds",
};

/// Shows seconds in the largest whole unit, e.g. `15m` or `90s`.
pub fn display(duration: Duration) -> String {
    match duration.as_secs() {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s >= 3600 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// The duration at `value` (a number of seconds, or a string with a unit) within `range`
/// (in seconds), or an error at its span naming `key`.
pub(super) fn duration_in(
    site: &ErrorSite<'_>,
    value: &Spanned<toml::Value>,
    range: RangeInclusive<u64>,
    key: &str,
) -> Result<Duration, ConfigError> {
    quantity::quantity_in(site, value, range, key, &UNITS).map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `"90s"`, `"15m"`, `"2 h"`, `"1d"` or `"600"` as seconds.
    fn parse(text: &str) -> Option<u64> {
        quantity::parse(text, &UNITS)
    }

    #[test]
    fn one_unit_in_any_case_with_or_without_a_space_and_plain_seconds() {
        assert_eq!(parse("90s"), Some(90));
        assert_eq!(parse("15m"), Some(900));
        assert_eq!(parse("2 H"), Some(7200));
        assert_eq!(parse("1d"), Some(86_400));
        assert_eq!(parse("600"), Some(600));
    }

    #[test]
    fn compound_fractional_negative_and_unknown_durations_are_refused() {
        for bad in [
            "1h30m",
            "1.5h",
            "-5m",
            "5 weeks",
            "m",
            "",
            "99999999999999999999d",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn durations_display_in_the_largest_whole_unit() {
        assert_eq!(display(Duration::from_secs(900)), "15m");
        assert_eq!(display(Duration::from_secs(90)), "90s");
        assert_eq!(display(Duration::from_secs(7200)), "2h");
        assert_eq!(display(Duration::from_secs(172_800)), "2d");
    }
}
