//! Writing: a batch of decoded messages committed in one transaction.

use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;

use super::insert::{IdCache, add_event, copy_quarantined_source, insert_record, insert_source};
// NOTE: re-exported for `state.rs`, which takes the clock from here.
pub(super) use super::insert::now;
use super::rows::{NewLedgerEntry, NewQuarantine};
use super::schema::{ledger, quarantine};
use super::{Store, StoreError};
use crate::decode::Envelope;
use crate::domain::EventKind;
use crate::mapping::Record;
use crate::notify::outbox;
use crate::notify::rules::{NotifyRules, Trigger};

/// Ledger outcomes, as stored.
pub(super) const OUTCOME_ACCEPTED: &str = "accepted";
pub(super) const OUTCOME_QUARANTINED: &str = "quarantined";
pub(super) const OUTCOME_DUPLICATE: &str = "duplicate";

/// Quarantine entry states.
pub(super) const QUARANTINE_OPEN: &str = "open";
pub(super) const QUARANTINE_RELEASED: &str = "released";
/// An entry an admin looked at and set aside (the review page's dismiss): kept, not listed
/// as open.
pub(super) const QUARANTINE_DISMISSED: &str = "dismissed";

/// A message for us, ready to commit (a skipped message never becomes one).
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The message's position in its mailbox (Maildir unique name, or UIDVALIDITY:UID).
    pub source_key: String,
    pub envelope: Envelope,
    /// The message's bytes (only its headers for one too large to read), moved in from the
    /// fetch: kept with its record, or in the quarantine entry.
    pub raw: Vec<u8>,
    /// The record to store, or why the message is quarantined instead.
    pub record: Result<Box<Record>, Unusable>,
}

/// Why a message for us could not be made into a record (it is kept whole, with this).
#[derive(Debug, Clone)]
pub struct Unusable {
    pub reason: String,
}

/// What the commit did with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    Created(i64),
    Quarantined(i64),
    /// Seen before (same position, or same content); nothing new was stored. `record_id`
    /// is the record the first copy produced, if it produced one.
    Duplicate {
        record_id: Option<i64>,
    },
}

impl Committed {
    /// The record this message produced, now or as an earlier copy. The source acknowledges
    /// a message that has one, and sets aside one that has none (it was quarantined).
    pub fn record_id(&self) -> Option<i64> {
        match *self {
            Committed::Created(id) => Some(id),
            Committed::Quarantined(_) => None,
            Committed::Duplicate { record_id } => record_id,
        }
    }
}

impl Store {
    /// Commits `items` (all from one collector, routed to `queue`) in one transaction.
    ///
    /// The transaction is IMMEDIATE: it holds SQLite's write lock from its start, so no other
    /// process can insert between a ledger check and the insert after it, and no savepoint
    /// per message is needed. Nothing is visible (and the caller must acknowledge nothing)
    /// until this returns `Ok`.
    pub fn commit_batch(
        &mut self,
        collector: &str,
        queue: &str,
        items: &[Incoming],
    ) -> Result<Vec<Committed>, StoreError> {
        let ids = &mut self.ids;
        let rules = &self.notify;
        let result = self.conn.immediate_transaction(|conn| {
            items
                .iter()
                .map(|item| commit_one(conn, ids, rules, collector, queue, item))
                .collect::<QueryResult<Vec<_>>>()
        });
        if result.is_err() {
            ids.clear();
        }
        Ok(result?)
    }
}

/// A ledger row that matches an incoming message by position or by content.
#[derive(Queryable, Selectable)]
#[diesel(table_name = ledger)]
struct KnownMessage {
    collector: String,
    source_key: String,
    message_id: Option<String>,
    record_id: Option<i64>,
    quarantine_id: Option<i64>,
}

fn commit_one(
    conn: &mut SqliteConnection,
    ids: &mut IdCache,
    rules: &NotifyRules,
    collector: &str,
    queue: &str,
    item: &Incoming,
) -> QueryResult<Committed> {
    // One query for both keys: the same position seen before (another process got there
    // first, or a pass died between its commit and the acknowledgement), or the same
    // content under another position (a copy delivered twice).
    let fingerprint = item.envelope.fingerprint.to_string();
    let known: Vec<KnownMessage> = ledger::table
        .filter(
            ledger::collector
                .eq(collector)
                .and(ledger::source_key.eq(&item.source_key))
                .or(ledger::fingerprint.eq(&fingerprint)),
        )
        .select(KnownMessage::as_select())
        .load(conn)?;
    if let Some(same_position) = known
        .iter()
        .find(|k| k.collector == collector && k.source_key == item.source_key)
    {
        return Ok(Committed::Duplicate {
            record_id: same_position.record_id,
        });
    }
    let first_copy = known
        .into_iter()
        .find(|k| k.message_id.as_deref() == item.envelope.message_id.as_deref())
        .map(|k| (k.record_id, k.quarantine_id));
    let (outcome, record_id, quarantine_id, committed) = match (first_copy, &item.record) {
        (Some((record_id, quarantine_id)), _) => (
            OUTCOME_DUPLICATE,
            record_id,
            quarantine_id,
            Committed::Duplicate { record_id },
        ),
        (None, Ok(record)) => {
            let actor = format!("collector:{collector}");
            let id = insert_record(conn, ids, collector, queue, record, &actor)?;
            insert_source(conn, id, &item.raw)?;
            outbox::queue_for(conn, rules, id, Trigger::Created, &actor)?;
            (OUTCOME_ACCEPTED, Some(id), None, Committed::Created(id))
        }
        (None, Err(Unusable { reason })) => {
            let at = now();
            let id = diesel::insert_into(quarantine::table)
                .values(NewQuarantine {
                    collector,
                    source_key: &item.source_key,
                    message_id: item.envelope.message_id.as_deref(),
                    subject: item.envelope.subject.as_deref(),
                    fingerprint: &fingerprint,
                    reason,
                    raw: &item.raw,
                    status: QUARANTINE_OPEN,
                    created_at: at,
                    updated_at: at,
                })
                .returning(quarantine::id)
                .get_result(conn)?;
            (
                OUTCOME_QUARANTINED,
                None,
                Some(id),
                Committed::Quarantined(id),
            )
        }
    };
    diesel::insert_into(ledger::table)
        .values(NewLedgerEntry {
            collector,
            source_key: &item.source_key,
            message_id: item.envelope.message_id.as_deref(),
            fingerprint: &fingerprint,
            outcome,
            record_id,
            quarantine_id,
            created_at: now(),
        })
        .execute(conn)?;
    Ok(committed)
}

impl Store {
    /// Turns an open quarantine entry into a record (after a config fix made it decodable):
    /// the entry is marked released and every ledger row that pointed at it now points at
    /// the record, so the message is acknowledged on the next pass. The record keeps the
    /// entry's bytes as its source.
    pub fn release_quarantine(
        &mut self,
        quarantine_id: i64,
        queue: &str,
        record: &Record,
        actor: &str,
    ) -> Result<i64, StoreError> {
        let ids = &mut self.ids;
        let rules = &self.notify;
        let result = self.conn.immediate_transaction(|conn| {
            let collector: String = quarantine::table
                .find(quarantine_id)
                .select(quarantine::collector)
                .first(conn)?;
            let record_id = insert_record(conn, ids, &collector, queue, record, actor)?;
            copy_quarantined_source(conn, quarantine_id, record_id)?;
            add_event(
                conn,
                record_id,
                actor,
                EventKind::Released,
                Some(&format!("from quarantine entry {quarantine_id}")),
            )?;
            outbox::queue_for(conn, rules, record_id, Trigger::Created, actor)?;
            diesel::update(quarantine::table.find(quarantine_id))
                .set((
                    quarantine::status.eq(QUARANTINE_RELEASED),
                    quarantine::record_id.eq(record_id),
                    quarantine::updated_at.eq(now()),
                ))
                .execute(conn)?;
            diesel::update(ledger::table.filter(ledger::quarantine_id.eq(quarantine_id)))
                .set((
                    ledger::record_id.eq(record_id),
                    ledger::outcome.eq(OUTCOME_ACCEPTED),
                ))
                .execute(conn)?;
            QueryResult::Ok(record_id)
        });
        if result.is_err() {
            ids.clear();
        }
        Ok(result?)
    }

    /// Records a new reason for a quarantine entry that still does not decode.
    pub fn update_quarantine_reason(
        &mut self,
        quarantine_id: i64,
        reason: &str,
    ) -> Result<(), StoreError> {
        diesel::update(quarantine::table.find(quarantine_id))
            .set((
                quarantine::reason.eq(reason),
                quarantine::updated_at.eq(now()),
            ))
            .execute(&mut self.conn)?;
        Ok(())
    }

    /// Marks an open quarantine entry dismissed; its bytes and reason stay. An entry that is
    /// not open (released, or dismissed already) is refused.
    pub fn dismiss_quarantine(&mut self, quarantine_id: i64) -> Result<(), StoreError> {
        self.conn.immediate_transaction(|conn| {
            let status: String = quarantine::table
                .find(quarantine_id)
                .select(quarantine::status)
                .first(conn)
                .optional()?
                .ok_or(StoreError::NoQuarantineEntry(quarantine_id))?;
            if status != QUARANTINE_OPEN {
                return Err(StoreError::QuarantineNotOpen {
                    id: quarantine_id,
                    status,
                });
            }
            diesel::update(quarantine::table.find(quarantine_id))
                .set((
                    quarantine::status.eq(QUARANTINE_DISMISSED),
                    quarantine::updated_at.eq(now()),
                ))
                .execute(conn)?;
            Ok(())
        })
    }
}
