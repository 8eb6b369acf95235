//! How often and when each record of a queue changed, from its history: what a calendar
//! feed gives as an event's `SEQUENCE` and `LAST-MODIFIED`, so a subscribed client knows
//! which events to update.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::dsl::{count_star, max};
use diesel::prelude::*;

use super::schema::{record_events, records};
use super::{Store, StoreError};

/// One record's changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revision {
    /// History entries that changed the record, its creation included.
    pub changes: i64,
    /// When the last of them happened.
    pub last_at: NaiveDateTime,
}

impl Store {
    /// The [`Revision`] of every record in `queue` that has a history. Notification entries
    /// are left out: a message sent about a record does not change it.
    pub fn record_revisions(&mut self, queue: &str) -> Result<HashMap<i64, Revision>, StoreError> {
        let rows: Vec<(i64, i64, Option<NaiveDateTime>)> = record_events::table
            .inner_join(records::table)
            .filter(records::queue.eq(queue))
            .filter(record_events::event.not_like("notification%"))
            .group_by(record_events::record_id)
            .select((
                record_events::record_id,
                count_star(),
                max(record_events::at),
            ))
            .load(&mut self.conn)?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, changes, last_at)| {
                Some((
                    id,
                    Revision {
                        changes,
                        last_at: last_at?,
                    },
                ))
            })
            .collect())
    }
}
