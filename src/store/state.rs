//! Collector state: IMAP position and run history, shared between the daemon and the CLI.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::on_backend;
use diesel::upsert::excluded;
use serde::Serialize;

use super::schema::collector_state;
use super::write::now;
use super::{Store, StoreError};

/// What the database knows about a collector.
#[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable)]
#[diesel(table_name = collector_state)]
pub struct CollectorState {
    pub collector: String,
    pub uidvalidity: Option<i64>,
    pub last_uid: Option<i64>,
    #[serde(serialize_with = "opt_utc")]
    pub last_run_at: Option<NaiveDateTime>,
    #[serde(serialize_with = "opt_utc")]
    pub last_success_at: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    /// JSON of the last successful run's counts.
    #[serde(skip)]
    pub last_report: Option<String>,
    #[serde(serialize_with = "opt_utc")]
    pub next_run_at: Option<NaiveDateTime>,
    #[serde(skip)]
    pub updated_at: NaiveDateTime,
    /// The mode in use as the last pass found the server (`idle`, `poll`, or
    /// `schedule (no IDLE on server)`).
    #[serde(skip)]
    pub mode: Option<String>,
    /// JSON array: how the server made the collector fall back, one sentence each.
    #[serde(skip)]
    pub fallbacks: Option<String>,
    /// JSON of the last run's counts when it failed after committing some batches.
    #[serde(skip)]
    pub failed_report: Option<String>,
    /// When the current run of failed passes began; `None` while the last pass succeeded.
    /// `/healthz` compares it with the collector's `stale-after`.
    #[serde(skip)]
    pub failing_since: Option<NaiveDateTime>,
}

fn opt_utc<S: serde::Serializer>(at: &Option<NaiveDateTime>, s: S) -> Result<S::Ok, S::Error> {
    at.map(|t| t.and_utc()).serialize(s)
}

/// The outcome of one run, for [`Store::record_run`].
pub enum RunOutcome<'a> {
    /// Counts as JSON.
    Success(&'a serde_json::Value),
    /// The error, and the counts (as JSON) of what the run did before it.
    Failure(&'a str, Option<&'a serde_json::Value>),
}

impl Store {
    fn ensure_state_row(&mut self, collector: &str) -> QueryResult<()> {
        on_backend!(&mut self.conn, c => diesel::insert_into(collector_state::table)
            .values((
                collector_state::collector.eq(collector),
                collector_state::updated_at.eq(now()),
            ))
            .on_conflict(collector_state::collector)
            .do_nothing()
            .execute(c))?;
        Ok(())
    }

    /// The state of `collector`, if it ever ran.
    pub fn collector_state(
        &mut self,
        collector: &str,
    ) -> Result<Option<CollectorState>, StoreError> {
        Ok(collector_state::table
            .find(collector)
            .select(CollectorState::as_select())
            .first(&mut self.conn)
            .optional()?)
    }

    /// Every collector's state, by name (bytewise, on either backend: see `users::by_bytes`).
    pub fn collector_states(&mut self) -> Result<Vec<CollectorState>, StoreError> {
        let mut states: Vec<CollectorState> = collector_state::table
            .select(CollectorState::as_select())
            .load(&mut self.conn)?;
        states.sort_by(|a, b| super::users::by_bytes(&a.collector, &b.collector));
        Ok(states)
    }

    /// Remembers the IMAP position after a committed batch.
    pub fn save_position(
        &mut self,
        collector: &str,
        uidvalidity: u32,
        last_uid: u32,
    ) -> Result<(), StoreError> {
        on_backend!(&mut self.conn, c => diesel::insert_into(collector_state::table)
            .values((
                collector_state::collector.eq(collector),
                collector_state::uidvalidity.eq(i64::from(uidvalidity)),
                collector_state::last_uid.eq(i64::from(last_uid)),
                collector_state::updated_at.eq(now()),
            ))
            .on_conflict(collector_state::collector)
            .do_update()
            .set((
                collector_state::uidvalidity.eq(excluded(collector_state::uidvalidity)),
                collector_state::last_uid.eq(excluded(collector_state::last_uid)),
                collector_state::updated_at.eq(excluded(collector_state::updated_at)),
            ))
            .execute(c))?;
        Ok(())
    }

    /// Records how a run ended and when the next one is due.
    pub fn record_run(
        &mut self,
        collector: &str,
        outcome: RunOutcome<'_>,
        next_run: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        self.ensure_state_row(collector)?;
        let at = now();
        let target = collector_state::table.find(collector);
        let next = collector_state::next_run_at.eq(next_run.map(|t| t.naive_utc()));
        match outcome {
            RunOutcome::Success(report) => diesel::update(target)
                .set((
                    collector_state::last_run_at.eq(at),
                    collector_state::last_success_at.eq(at),
                    collector_state::last_error.eq(None::<String>),
                    collector_state::last_report.eq(report.to_string()),
                    collector_state::failed_report.eq(None::<String>),
                    collector_state::failing_since.eq(None::<NaiveDateTime>),
                    next,
                    collector_state::updated_at.eq(at),
                ))
                .execute(&mut self.conn)?,
            RunOutcome::Failure(error, report) => diesel::update(target)
                .set((
                    collector_state::last_run_at.eq(at),
                    collector_state::last_error.eq(error),
                    collector_state::failed_report.eq(report.map(|r| r.to_string())),
                    next,
                    collector_state::updated_at.eq(at),
                ))
                .execute(&mut self.conn)
                .and_then(|_| {
                    // The first failure after a success starts the count; later ones keep it.
                    diesel::update(target.filter(collector_state::failing_since.is_null()))
                        .set(collector_state::failing_since.eq(at))
                        .execute(&mut self.conn)
                })?,
        };
        Ok(())
    }

    /// Records what the server made the collector do: the mode in use and the fallbacks.
    pub fn record_server(
        &mut self,
        collector: &str,
        mode: &str,
        fallbacks: &[String],
    ) -> Result<(), StoreError> {
        self.ensure_state_row(collector)?;
        let fallbacks = serde_json::to_string(fallbacks).expect("strings serialise to JSON");
        // NOTE: every pass reports this, and it rarely changes: an unchanged state writes
        // nothing, so an idle pass costs no write (and no fsync, with synchronous = FULL).
        diesel::update(collector_state::table.find(collector))
            .filter(
                collector_state::mode
                    .is_null()
                    .or(collector_state::mode.ne(mode))
                    .or(collector_state::fallbacks.is_null())
                    .or(collector_state::fallbacks.ne(&fallbacks)),
            )
            .set((
                collector_state::mode.eq(mode),
                collector_state::fallbacks.eq(&fallbacks),
            ))
            .execute(&mut self.conn)?;
        Ok(())
    }
}
