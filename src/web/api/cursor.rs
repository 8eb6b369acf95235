//! The opaque `cursor` of `GET /api/v1/records`: where the last page ended, and the filters
//! and page size it was asked with, so `?cursor=CURSOR` alone fetches the next page. It is hex of a small JSON
//! object: opaque to callers (they only hand it back), readable in a log, and checked on the
//! way back in (a cursor this server did not make is a 400, not a wrong page).

use serde::{Deserialize, Serialize};

use super::ApiError;
use crate::store::{PageOrder, PagePosition};

/// What a cursor carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Cursor<F> {
    /// The filters as the first page was asked for them.
    pub filters: F,
    pub order: PageOrder,
    /// The page size asked for first, kept for the pages after.
    pub per_page: i64,
    /// The last record of the page before.
    pub after: PagePosition,
}

impl<F: Serialize + for<'de> Deserialize<'de>> Cursor<F> {
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).expect("a cursor serializes");
        json.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn decode(text: &str) -> Result<Cursor<F>, ApiError> {
        let bad = || ApiError::BadRequest("cursor: not one this server handed out".to_string());
        if !text.len().is_multiple_of(2) || !text.is_ascii() {
            return Err(bad());
        }
        let bytes = (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| bad())?;
        serde_json::from_slice(&bytes).map_err(|_| bad())
    }
}

#[cfg(test)]
mod tests {
    use super::Cursor;
    use crate::store::{PageOrder, PagePosition};

    #[test]
    fn a_cursor_comes_back_as_it_went_out_and_a_forged_one_is_refused() {
        let at = chrono::NaiveDate::from_ymd_opt(2026, 11, 29)
            .unwrap()
            .and_hms_nano_opt(10, 0, 0, 123_456_789)
            .unwrap();
        let cursor = Cursor {
            filters: vec!["queue".to_string()],
            order: PageOrder::Updated,
            per_page: 3,
            after: PagePosition {
                id: 7,
                updated_at: Some(at),
            },
        };
        let text = cursor.encode();
        assert!(text.bytes().all(|b| b.is_ascii_hexdigit()), "{text}");
        assert_eq!(Cursor::decode(&text).unwrap(), cursor);
        for forged in ["", "zz", "7b", &text[1..]] {
            assert!(Cursor::<Vec<String>>::decode(forged).is_err(), "{forged}");
        }
    }
}
