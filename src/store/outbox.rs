//! The `notifications` table's rows: one insert for every writer, which queued notifications
//! are due, who is sending them, and what became of each attempt. The rules decide what to
//! write and write it through [`insert_notification`] inside the record's transaction
//! (`crate::notify::outbox`, which also reads the log back); the dispatcher
//! (`crate::notify::dispatch`) claims and marks rows through the functions here.
//!
//! A claim and its attempt count are written in one IMMEDIATE transaction, so two
//! dispatchers (the daemon, and a CLI command sending before it exits) never take the same
//! row: a claimed row is held (`claimed_until`) until it is marked, or until the claim runs
//! out after a crash mid-send. A row that was sent but not marked before such a crash is sent
//! again then, with the same `Message-ID`, so the copy is recognisable.

use crate::store::AnyConnection;
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::insert::{add_event, now};
use super::rows::{Cell, to_json};
use super::schema::notifications;
use super::{Store, StoreError, on_backend};
use crate::domain::EventKind;

/// The actor of the history events delivery writes.
const ACTOR: &str = "mailintake";

/// The stored statuses (the contract: exactly these three).
pub const QUEUED: &str = "queued";
pub const SENT: &str = "sent";
pub const FAILED: &str = "failed";

/// A notification to write into the outbox (what a rule produced, rendered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotification<'a> {
    pub record_id: i64,
    pub rule: &'a str,
    /// `email` or `sms`.
    pub channel: &'a str,
    /// Resolved addresses (for sms, the gateway addresses).
    pub recipients: &'a [String],
    pub subject: &'a str,
    pub body: &'a str,
}

/// A queued notification taken by a dispatcher to send now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub id: i64,
    pub record_id: i64,
    pub rule: String,
    pub recipients: Vec<String>,
    pub subject: String,
    pub body: String,
    /// Attempts so far, this one included.
    pub attempts: i32,
}

/// Which queued notifications a claim takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Those whose backoff has run out (`next_attempt_at <= now`).
    ByBackoff,
    /// Every queued one not held by another dispatcher (`notifications send`).
    IgnoringBackoff,
}

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt<'a> {
    /// The server accepted the message; its reply.
    Sent { reply: &'a str },
    /// It failed; tried again at `retry_at`, or given up (`failed`) when `None`.
    Failed {
        error: &'a str,
        retry_at: Option<NaiveDateTime>,
    },
}

/// Writes notification `new`, due at once, and returns its id: `queued`, or `failed` with
/// `failure` when it can never be sent (no recipient resolved). Inside the caller's
/// transaction.
pub(crate) fn insert_notification(
    conn: &mut AnyConnection,
    new: &NewNotification<'_>,
    failure: Option<&str>,
) -> QueryResult<i64> {
    let at = now();
    let row = (
        notifications::record_id.eq(new.record_id),
        notifications::rule.eq(new.rule),
        notifications::channel.eq(new.channel),
        notifications::recipients.eq(to_json(&new.recipients)?),
        notifications::subject.eq(new.subject),
        notifications::body.eq(new.body),
        notifications::status.eq(if failure.is_some() { FAILED } else { QUEUED }),
        notifications::attempts.eq(0),
        notifications::last_error.eq(failure),
        notifications::next_attempt_at.eq(at),
        notifications::created_at.eq(at),
    );
    on_backend!(conn, c => diesel::insert_into(notifications::table)
        .values(row)
        .returning(notifications::id)
        .get_result(c))
}

/// The recipients stored with notification `id` (a JSON array of addresses).
pub(crate) fn stored_recipients(id: i64, stored: &str) -> Result<Vec<String>, StoreError> {
    Cell::new("notifications", id, "recipients").json(stored)
}

#[derive(Queryable)]
struct ClaimRow {
    id: i64,
    record_id: i64,
    rule: String,
    recipients: String,
    subject: String,
    body: String,
    attempts: i32,
}

impl Store {
    /// Writes a queued notification, due at once; returns its id. The rules write theirs in
    /// the record's own transaction; this stand-alone insert serves tests and tools.
    pub fn queue_notification(&mut self, new: &NewNotification<'_>) -> Result<i64, StoreError> {
        Ok(insert_notification(&mut self.conn, new, None)?)
    }

    /// Takes up to `limit` due notifications (oldest due first) for this dispatcher until
    /// `hold_until`, counting the attempt. Rows held by another dispatcher are left alone.
    pub fn claim_notifications(
        &mut self,
        due: Due,
        limit: i64,
        hold_until: NaiveDateTime,
    ) -> Result<Vec<Claimed>, StoreError> {
        let at = now();
        // A notification waiting out its backoff is due only when asked for all queued ones.
        let due_by = match due {
            Due::ByBackoff => at,
            // NOTE: a date both backends store and compare as dates (SQLite keeps text).
            Due::IgnoringBackoff => chrono::NaiveDate::from_ymd_opt(9999, 12, 31)
                .and_then(|day| day.and_hms_opt(0, 0, 0))
                .expect("a valid date"),
        };
        // NOTE: a claim is its own short transaction without the store's write lock; on
        // PostgreSQL the rows are locked as they are chosen, and rows another daemon's
        // dispatcher is claiming right now are skipped rather than waited for (SQLite has
        // one writer at a time anyway).
        let rows: Vec<ClaimRow> = self.conn.row_transaction(|conn| {
            macro_rules! due_ids {
                () => {
                    notifications::table
                        .filter(notifications::status.eq(QUEUED))
                        .filter(
                            notifications::claimed_until
                                .is_null()
                                .or(notifications::claimed_until.le(at)),
                        )
                        .filter(notifications::next_attempt_at.le(due_by))
                        .order((
                            notifications::next_attempt_at.asc(),
                            notifications::id.asc(),
                        ))
                        .limit(limit)
                        .select(notifications::id)
                };
            }
            let ids: Vec<i64> = match conn {
                AnyConnection::Postgres(c) => due_ids!().for_update().skip_locked().load(c)?,
                AnyConnection::Sqlite(c) => due_ids!().load(c)?,
            };
            diesel::update(notifications::table.filter(notifications::id.eq_any(&ids)))
                .set((
                    notifications::attempts.eq(notifications::attempts + 1),
                    notifications::claimed_until.eq(hold_until),
                ))
                .execute(conn)?;
            notifications::table
                .filter(notifications::id.eq_any(&ids))
                .order((
                    notifications::next_attempt_at.asc(),
                    notifications::id.asc(),
                ))
                .select((
                    notifications::id,
                    notifications::record_id,
                    notifications::rule,
                    notifications::recipients,
                    notifications::subject,
                    notifications::body,
                    notifications::attempts,
                ))
                .load(conn)
        })?;
        rows.into_iter()
            .map(|row| {
                let recipients = stored_recipients(row.id, &row.recipients)?;
                Ok(Claimed {
                    id: row.id,
                    record_id: row.record_id,
                    rule: row.rule,
                    recipients,
                    subject: row.subject,
                    body: row.body,
                    attempts: row.attempts,
                })
            })
            .collect()
    }

    /// Records what became of a claimed notification's attempt and releases the claim; a
    /// sent or given-up notification leaves an event in its record's history
    /// (`notification sent: RULE -> TO`).
    pub fn mark_notification(
        &mut self,
        claimed: &Claimed,
        attempt: &Attempt<'_>,
    ) -> Result<(), StoreError> {
        let at = now();
        let row = notifications::table.find(claimed.id);
        let to = claimed.recipients.join(", ");
        self.conn.write_transaction(|conn| {
            match attempt {
                Attempt::Sent { reply } => {
                    diesel::update(row)
                        .set((
                            notifications::status.eq(SENT),
                            notifications::sent_at.eq(at),
                            notifications::server_reply.eq(*reply),
                            notifications::claimed_until.eq(None::<NaiveDateTime>),
                        ))
                        .execute(conn)?;
                    let detail = format!("{} -> {to} (notification {})", claimed.rule, claimed.id);
                    add_event(
                        conn,
                        claimed.record_id,
                        ACTOR,
                        EventKind::NotificationSent,
                        Some(&detail),
                    )?;
                }
                Attempt::Failed { error, retry_at } => {
                    diesel::update(row)
                        .set((
                            notifications::status.eq(if retry_at.is_some() {
                                QUEUED
                            } else {
                                FAILED
                            }),
                            notifications::last_error.eq(*error),
                            notifications::server_reply.eq(*error),
                            notifications::next_attempt_at.eq(retry_at.unwrap_or(at)),
                            notifications::claimed_until.eq(None::<NaiveDateTime>),
                        ))
                        .execute(conn)?;
                    if retry_at.is_none() {
                        let detail = format!(
                            "{} -> {to}: {error} (notification {})",
                            claimed.rule, claimed.id
                        );
                        add_event(
                            conn,
                            claimed.record_id,
                            ACTOR,
                            EventKind::NotificationFailed,
                            Some(&detail),
                        )?;
                    }
                }
            }
            Ok(())
        })
    }

    /// Gives a claimed notification back untried (the dispatcher stopped, or its deadline
    /// came, before sending it): its attempt is not counted.
    pub fn release_notification(&mut self, claimed: &Claimed) -> Result<(), StoreError> {
        diesel::update(notifications::table.find(claimed.id))
            .set((
                notifications::attempts.eq(notifications::attempts - 1),
                notifications::claimed_until.eq(None::<NaiveDateTime>),
            ))
            .execute(&mut self.conn)?;
        Ok(())
    }

    /// How many notifications are queued (sent neither yet nor given up): the outbox depth
    /// `/metrics` reports.
    pub fn queued_notifications(&mut self) -> Result<i64, StoreError> {
        Ok(notifications::table
            .filter(notifications::status.eq(QUEUED))
            .count()
            .get_result(&mut self.conn)?)
    }

    /// When the daemon's dispatcher should look again: the earliest backoff end of a free
    /// queued notification, or the earliest end of a claim (possibly early: a claimed row
    /// may still be in backoff then, and is simply not taken). `None`: nothing is queued.
    pub fn next_notification_due(&mut self) -> Result<Option<NaiveDateTime>, StoreError> {
        use diesel::dsl::min;
        let at = now();
        let queued = || notifications::table.filter(notifications::status.eq(QUEUED));
        let free: Option<NaiveDateTime> = queued()
            .filter(
                notifications::claimed_until
                    .is_null()
                    .or(notifications::claimed_until.le(at)),
            )
            .select(min(notifications::next_attempt_at))
            .first(&mut self.conn)?;
        let held: Option<NaiveDateTime> = queued()
            .filter(notifications::claimed_until.gt(at))
            .select(min(notifications::claimed_until))
            .first(&mut self.conn)?;
        Ok(free.into_iter().chain(held).min())
    }
}
