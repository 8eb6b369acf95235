//! What a collector read and found not its own, remembered by position so it is not read
//! again (see the `skipped_messages` migration). Losing an entry costs one more read of the
//! message, never a record: the memory only ever saves work, so it is written after the
//! batch's commit, outside its transaction.

use diesel::prelude::*;
use diesel::upsert::excluded;

use super::insert::now;
use super::on_backend;
use super::schema::skipped_messages;
use super::{Store, StoreError};

/// Keys per statement: under SQLite's bound-parameter limit.
const CHUNK: usize = 500;

impl Store {
    /// Every position `collector` remembers skipping, with the rules fingerprint each skip
    /// was decided under.
    pub fn skipped_positions(
        &mut self,
        collector: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        Ok(skipped_messages::table
            .filter(skipped_messages::collector.eq(collector))
            .select((skipped_messages::source_key, skipped_messages::rules))
            .load(self.connection())?)
    }

    /// Remembers that the messages at `source_keys` were skipped under `rules`.
    pub fn remember_skipped(
        &mut self,
        collector: &str,
        rules: &str,
        source_keys: &[String],
    ) -> Result<(), StoreError> {
        let at = now();
        self.connection().transaction(|conn| {
            for keys in source_keys.chunks(CHUNK) {
                let rows: Vec<_> = keys
                    .iter()
                    .map(|key| {
                        (
                            skipped_messages::collector.eq(collector),
                            skipped_messages::source_key.eq(key),
                            skipped_messages::rules.eq(rules),
                            skipped_messages::skipped_at.eq(at),
                        )
                    })
                    .collect();
                on_backend!(&mut *conn, c => diesel::insert_into(skipped_messages::table)
                    .values(&rows)
                    .on_conflict((skipped_messages::collector, skipped_messages::source_key))
                    .do_update()
                    .set((
                        skipped_messages::rules.eq(excluded(skipped_messages::rules)),
                        skipped_messages::skipped_at.eq(excluded(skipped_messages::skipped_at)),
                    ))
                    .execute(c))?;
            }
            Ok::<_, diesel::result::Error>(())
        })?;
        Ok(())
    }

    /// Forgets the skips of `collector` at `source_keys`.
    pub fn forget_skipped(
        &mut self,
        collector: &str,
        source_keys: &[String],
    ) -> Result<(), StoreError> {
        self.connection().transaction(|conn| {
            for keys in source_keys.chunks(CHUNK) {
                diesel::delete(
                    skipped_messages::table
                        .filter(skipped_messages::collector.eq(collector))
                        .filter(skipped_messages::source_key.eq_any(keys)),
                )
                .execute(conn)?;
            }
            Ok::<_, diesel::result::Error>(())
        })?;
        Ok(())
    }
}
