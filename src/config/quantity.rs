//! What sizes (`size.rs`) and durations (`duration.rs`) share: a whole number with an
//! optional unit word after it, or a bare TOML integer, checked against a range.

use std::ops::RangeInclusive;

use toml::Spanned;

use super::error::{ConfigError, ErrorSite};

/// How one kind of quantity is written.
pub(super) struct Units {
    /// The multiplier of a unit word as written after the number (`""`: no unit).
    pub(super) multiplier: fn(&str) -> Option<u64>,
    /// Shows a value the way it would be written.
    pub(super) display: fn(u64) -> String,
    /// What to write instead, for the error message: `a size like "25MB"`.
    pub(super) example: &'static str,
}

/// Reads `"25MB"`, `"25 MiB"` or `"15m"`: digits, then an optional unit word.
pub(super) fn parse(text: &str, units: &Units) -> Option<u64> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let number: u64 = text[..digits].parse().ok()?;
    number.checked_mul((units.multiplier)(text[digits..].trim_start())?)
}

/// The quantity at `value` (a bare integer, or a string with a unit) within `range`, or an
/// error at its span naming `key`.
pub(super) fn quantity_in(
    site: &ErrorSite<'_>,
    value: &Spanned<toml::Value>,
    range: RangeInclusive<u64>,
    key: &str,
    units: &Units,
) -> Result<u64, ConfigError> {
    let bounds = format!(
        "between {} and {}",
        (units.display)(*range.start()),
        (units.display)(*range.end())
    );
    let quantity = match value.get_ref() {
        toml::Value::Integer(n) => u64::try_from(*n).ok(),
        toml::Value::String(s) => parse(s, units),
        _ => None,
    }
    .ok_or_else(|| {
        site.at(
            value.span(),
            key,
            format!("give {} ({bounds})", units.example),
        )
    })?;
    if !range.contains(&quantity) {
        return Err(site.at(
            value.span(),
            key,
            format!(
                "{} is out of range: must be {bounds}",
                (units.display)(quantity)
            ),
        ));
    }
    Ok(quantity)
}
