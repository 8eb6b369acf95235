//! Writing: a batch of decoded messages committed in one transaction.

use crate::store::AnyConnection;
use diesel::prelude::*;

use std::collections::HashMap;

use super::insert::{
    IdCache, RecordRows, add_event, copy_quarantined_source, insert_ledger_rows, insert_record,
    stage_record,
};
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
    /// process can insert between the ledger look-up and the inserts after it, and no
    /// savepoint per message is needed. Nothing is visible (and the caller must acknowledge
    /// nothing) until this returns `Ok`.
    ///
    /// What it costs per batch rather than per message: one ledger query for every item
    /// ([`Ledger::load`]), and the rows that point at the new records (lines, tech cards,
    /// events, sources) and the ledger rows in a few multi-row INSERTs per table
    /// ([`RecordRows`]); only each record's own row, which the others need the id of, is
    /// inserted on its own.
    pub fn commit_batch(
        &mut self,
        collector: &str,
        queue: &str,
        items: &[Incoming],
    ) -> Result<Vec<Committed>, StoreError> {
        let ids = &mut self.ids;
        let rules = &self.notify;
        let result = self.conn.write_transaction(|conn| {
            let fingerprints: Vec<String> = items
                .iter()
                .map(|item| item.envelope.fingerprint.to_string())
                .collect();
            let mut ledger = Ledger::load(conn, collector, items, &fingerprints)?;
            let actor = format!("collector:{collector}");
            let mut batch = Batch {
                collector,
                queue,
                actor: &actor,
                records: RecordRows::default(),
                ledger_rows: Vec::with_capacity(items.len()),
            };
            let committed = items
                .iter()
                .zip(&fingerprints)
                .map(|(item, fingerprint)| {
                    commit_one(conn, ids, rules, &mut ledger, &mut batch, item, fingerprint)
                })
                .collect::<QueryResult<Vec<_>>>()?;
            batch.records.flush(conn)?;
            insert_ledger_rows(conn, &batch.ledger_rows)?;
            QueryResult::Ok(committed)
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
    id: i64,
    collector: String,
    source_key: String,
    message_id: Option<String>,
    fingerprint: String,
    record_id: Option<i64>,
    quarantine_id: Option<i64>,
}

/// An earlier copy of a message's content, as its ledger row says.
struct Copy {
    message_id: Option<String>,
    record_id: Option<i64>,
    quarantine_id: Option<i64>,
}

/// What the ledger knows about one batch's messages, looked up once for the whole batch and
/// kept up to date as the batch commits (a batch may hold the same content twice).
struct Ledger {
    /// The record each of this collector's positions produced (`None`: quarantined), for
    /// the batch's positions that were seen before.
    positions: HashMap<String, Option<i64>>,
    /// Earlier copies by fingerprint, oldest first.
    copies: HashMap<String, Vec<Copy>>,
}

/// Items per ledger query: each brings two bound values, well within SQLite's limit of
/// 32,766 per statement.
const LEDGER_QUERY_ITEMS: usize = 1000;

impl Ledger {
    /// One query (per [`LEDGER_QUERY_ITEMS`]) for both keys of every item: the same position
    /// seen before (another process got there first, or a pass died between its commit and
    /// the acknowledgement), or the same content under another position (a copy delivered
    /// twice).
    fn load(
        conn: &mut AnyConnection,
        collector: &str,
        items: &[Incoming],
        fingerprints: &[String],
    ) -> QueryResult<Ledger> {
        let mut rows = Vec::new();
        for (items, fingerprints) in items
            .chunks(LEDGER_QUERY_ITEMS)
            .zip(fingerprints.chunks(LEDGER_QUERY_ITEMS))
        {
            let keys: Vec<&str> = items.iter().map(|i| i.source_key.as_str()).collect();
            rows.extend(
                ledger::table
                    .filter(
                        ledger::collector
                            .eq(collector)
                            .and(ledger::source_key.eq_any(&keys))
                            .or(ledger::fingerprint.eq_any(fingerprints)),
                    )
                    .select(KnownMessage::as_select())
                    .load::<KnownMessage>(conn)?,
            );
        }
        // NOTE: oldest first, so the first copy found is the first one stored; two chunks
        // may both find a row.
        rows.sort_by_key(|row| row.id);
        rows.dedup_by_key(|row| row.id);
        let mut ledger = Ledger {
            positions: HashMap::new(),
            copies: HashMap::new(),
        };
        for row in rows {
            if row.collector == collector {
                ledger
                    .positions
                    .entry(row.source_key)
                    .or_insert(row.record_id);
            }
            ledger
                .copies
                .entry(row.fingerprint)
                .or_default()
                .push(Copy {
                    message_id: row.message_id,
                    record_id: row.record_id,
                    quarantine_id: row.quarantine_id,
                });
        }
        Ok(ledger)
    }

    /// Notes the ledger row about to be written for a message of this batch.
    fn add(&mut self, row: &NewLedgerEntry) {
        self.positions
            .entry(row.source_key.clone())
            .or_insert(row.record_id);
        self.copies
            .entry(row.fingerprint.clone())
            .or_default()
            .push(Copy {
                message_id: row.message_id.clone(),
                record_id: row.record_id,
                quarantine_id: row.quarantine_id,
            });
    }
}

/// What one batch's transaction writes at its end, and what every message of it shares.
struct Batch<'a> {
    collector: &'a str,
    queue: &'a str,
    actor: &'a str,
    records: RecordRows,
    ledger_rows: Vec<NewLedgerEntry>,
}

fn commit_one<'a>(
    conn: &mut AnyConnection,
    ids: &mut IdCache,
    rules: &NotifyRules,
    ledger: &mut Ledger,
    batch: &mut Batch<'a>,
    item: &'a Incoming,
    fingerprint: &'a str,
) -> QueryResult<Committed> {
    let collector = batch.collector;
    if let Some(&record_id) = ledger.positions.get(&item.source_key) {
        return Ok(Committed::Duplicate { record_id });
    }
    let first_copy = ledger.copies.get(fingerprint).and_then(|copies| {
        copies
            .iter()
            .find(|c| c.message_id.as_deref() == item.envelope.message_id.as_deref())
            .map(|c| (c.record_id, c.quarantine_id))
    });
    let (outcome, record_id, quarantine_id, committed) = match (first_copy, &item.record) {
        (Some((record_id, quarantine_id)), _) => (
            OUTCOME_DUPLICATE,
            record_id,
            quarantine_id,
            Committed::Duplicate { record_id },
        ),
        (None, Ok(record)) => {
            let actor = batch.actor;
            let id = stage_record(
                conn,
                ids,
                collector,
                batch.queue,
                record,
                actor,
                &mut batch.records,
            )?;
            batch.records.add_source(id, &item.raw);
            outbox::queue_for(conn, rules, id, Trigger::Created, actor)?;
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
                    fingerprint,
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
    let row = NewLedgerEntry {
        collector: collector.to_string(),
        source_key: item.source_key.clone(),
        message_id: item.envelope.message_id.clone(),
        fingerprint: fingerprint.to_string(),
        outcome,
        record_id,
        quarantine_id,
        created_at: now(),
    };
    ledger.add(&row);
    batch.ledger_rows.push(row);
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
        let result = self.conn.write_transaction(|conn| {
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
        self.conn.write_transaction(|conn| {
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
