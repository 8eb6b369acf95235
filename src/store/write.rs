//! Writing: a batch of decoded messages committed in one transaction.

use std::collections::HashMap;

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use diesel::upsert::excluded;

use super::schema::{
    contacts, counterparties, ledger, quarantine, record_events, record_lines, records, tech_cards,
};
use super::{STATUS_NEW, Store, StoreError};
use crate::decode::Envelope;
use crate::map::{Record, phone_digits};

/// Ledger outcomes, as stored.
pub(super) const OUTCOME_ACCEPTED: &str = "accepted";
pub(super) const OUTCOME_QUARANTINED: &str = "quarantined";
pub(super) const OUTCOME_DUPLICATE: &str = "duplicate";

/// Quarantine entry states.
pub(super) const QUARANTINE_OPEN: &str = "open";
pub(super) const QUARANTINE_RELEASED: &str = "released";

/// Tech card state when created.
const TECH_CARD_NEW: &str = "new";

/// A message for us, ready to commit (a skipped message never becomes one).
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The message's position in its mailbox (Maildir unique name, or UIDVALIDITY:UID).
    pub source_key: String,
    pub envelope: Envelope,
    /// The record to store, or why the message is quarantined instead.
    pub record: Result<Box<Record>, Unusable>,
}

/// A message for us that could not be made into a record: kept whole, with the reason.
#[derive(Debug, Clone)]
pub struct Unusable {
    pub reason: String,
    pub raw: Vec<u8>,
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

pub(super) fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

/// Counterparty ids by INN and contact ids by phone digits, learnt from the database, and
/// the unknown-customer policy the writers apply.
///
/// Rows are never deleted, so a cached id stays right, unless the transaction that created
/// it rolled back: the writers clear the cache then.
#[derive(Debug, Default)]
pub(super) struct IdCache {
    counterparties: HashMap<String, i64>,
    contacts: HashMap<String, i64>,
    pub(super) unknown_customer: Option<UnknownCustomer>,
}

/// What a record gets when it names a customer id that matches no counterparty
/// (seed 001's "Kundennr. / Status Kunde unbekannt").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCustomer {
    /// Customer number (INN) of the fallback counterparty; created if missing.
    pub counterparty: String,
    /// Status given to such records instead of `new`.
    pub status: String,
}

impl IdCache {
    pub(super) fn clear(&mut self) {
        self.counterparties.clear();
        self.contacts.clear();
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
        let result = self.conn.immediate_transaction(|conn| {
            items
                .iter()
                .map(|item| commit_one(conn, ids, collector, queue, item))
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
            (OUTCOME_ACCEPTED, Some(id), None, Committed::Created(id))
        }
        (None, Err(Unusable { reason, raw })) => {
            let at = now();
            let id = diesel::insert_into(quarantine::table)
                .values((
                    quarantine::collector.eq(collector),
                    quarantine::source_key.eq(&item.source_key),
                    quarantine::message_id.eq(item.envelope.message_id.as_deref()),
                    quarantine::subject.eq(item.envelope.subject.as_deref()),
                    quarantine::fingerprint.eq(&fingerprint),
                    quarantine::reason.eq(reason),
                    quarantine::raw.eq(raw.as_slice()),
                    quarantine::status.eq(QUARANTINE_OPEN),
                    quarantine::created_at.eq(at),
                    quarantine::updated_at.eq(at),
                ))
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
        .values((
            ledger::collector.eq(collector),
            ledger::source_key.eq(&item.source_key),
            ledger::message_id.eq(item.envelope.message_id.as_deref()),
            ledger::fingerprint.eq(&fingerprint),
            ledger::outcome.eq(outcome),
            ledger::record_id.eq(record_id),
            ledger::quarantine_id.eq(quarantine_id),
            ledger::created_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(committed)
}

fn find_or_create_counterparty(
    conn: &mut SqliteConnection,
    ids: &mut IdCache,
    inn: &str,
) -> QueryResult<i64> {
    if let Some(id) = ids.counterparties.get(inn) {
        return Ok(*id);
    }
    let found = counterparties::table
        .filter(counterparties::inn.eq(inn))
        .select(counterparties::id)
        .first(conn)
        .optional()?;
    let id = match found {
        Some(id) => id,
        None => diesel::insert_into(counterparties::table)
            .values((
                counterparties::inn.eq(inn),
                counterparties::created_at.eq(now()),
            ))
            .returning(counterparties::id)
            .get_result(conn)?,
    };
    ids.counterparties.insert(inn.to_string(), id);
    Ok(id)
}

fn find_or_create_contact(
    conn: &mut SqliteConnection,
    ids: &mut IdCache,
    digits: &str,
    record: &Record,
) -> QueryResult<i64> {
    if let Some(id) = ids.contacts.get(digits) {
        return Ok(*id);
    }
    // One statement: insert, or on a known number touch nothing and hand back its id.
    let id = diesel::insert_into(contacts::table)
        .values((
            contacts::phone_digits.eq(digits),
            contacts::name.eq(record.contact_name.as_deref()),
            contacts::email.eq(record.email.as_deref()),
            contacts::created_at.eq(now()),
        ))
        .on_conflict(contacts::phone_digits)
        .do_update()
        .set(contacts::phone_digits.eq(excluded(contacts::phone_digits)))
        .returning(contacts::id)
        .get_result(conn)?;
    ids.contacts.insert(digits.to_string(), id);
    Ok(id)
}

/// Inserts a record with its lines, extra works, tech cards and `created` event.
pub(super) fn insert_record(
    conn: &mut SqliteConnection,
    ids: &mut IdCache,
    collector: &str,
    queue: &str,
    record: &Record,
    actor: &str,
) -> QueryResult<i64> {
    let at = now();
    let mut status = STATUS_NEW.to_string();
    let customer_id = record
        .service
        .as_ref()
        .and_then(|s| s.customer_id.as_deref());
    let counterparty_id = match customer_id {
        Some(customer) => {
            let known: Option<i64> = counterparties::table
                .filter(counterparties::inn.eq(customer))
                .select(counterparties::id)
                .first(conn)
                .optional()?;
            match (known, ids.unknown_customer.clone()) {
                (Some(id), _) => Some(id),
                (None, Some(fallback)) => {
                    status = fallback.status;
                    Some(find_or_create_counterparty(
                        conn,
                        ids,
                        &fallback.counterparty,
                    )?)
                }
                (None, None) => None,
            }
        }
        None => record
            .valid_inn()
            .map(|inn| find_or_create_counterparty(conn, ids, inn.as_str()))
            .transpose()?,
    };
    let digits = record.phone.as_deref().and_then(phone_digits);
    let contact_id = digits
        .as_deref()
        .map(|d| find_or_create_contact(conn, ids, d, record))
        .transpose()?;
    let to_json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    let record_id: i64 = diesel::insert_into(records::table)
        .values((
            (
                records::queue.eq(queue),
                records::collector.eq(collector),
                records::kind.eq(record.kind.as_str()),
                records::status.eq(&status),
                records::title.eq(record.title.as_deref()),
                records::record_date.eq(record.date),
                records::description.eq(record.description.as_deref()),
                records::inn.eq(record.inn.as_deref()),
                records::inn_valid.eq(record.inn_valid),
                records::phone.eq(record.phone.as_deref()),
                records::phone_digits.eq(digits.as_deref()),
                records::email.eq(record.email.as_deref()),
            ),
            (
                records::contact_name.eq(record.contact_name.as_deref()),
                records::counterparty_id.eq(counterparty_id),
                records::contact_id.eq(contact_id),
                records::layout_files.eq(to_json(&record.layout_files)),
                records::message_id.eq(record.source.message_id.as_deref()),
                records::subject.eq(record.source.subject.as_deref()),
                records::order_ref.eq(record.source.order_ref.as_deref()),
                records::attachment_name.eq(record.source.attachment_name.as_deref()),
                records::charset.eq(&record.source.charset),
                records::warnings.eq(to_json(&record.warnings)),
                records::payload.eq(&record.payload),
                records::created_at.eq(at),
                records::updated_at.eq(at),
            ),
        ))
        .returning(records::id)
        .get_result(conn)?;
    if let Some(service) = &record.service {
        let number = next_number(conn, &service.number_prefix)?;
        diesel::update(records::table.find(record_id))
            .set((
                records::number.eq(&number),
                records::request_type.eq(&service.request_type),
                records::service.eq(serde_json::to_string(service).unwrap_or_default()),
            ))
            .execute(conn)?;
    }

    // NOTE: one row per statement: diesel keeps single-row inserts as prepared statements,
    // while a multi-row insert is new SQL, prepared again, for every row count.
    let mut cards = 0;
    for (position, line) in (1..).zip(&record.lines) {
        diesel::insert_into(record_lines::table)
            .values((
                record_lines::record_id.eq(record_id),
                record_lines::position.eq(position),
                record_lines::item.eq(line.item.as_deref()),
                record_lines::machine_code.eq(line.machine_code.as_deref()),
                record_lines::resolution.eq(line.resolution.as_deref()),
                record_lines::material.eq(line.material.as_deref()),
                record_lines::material_code.eq(line.material_code.as_deref()),
                record_lines::width.eq(line.width),
                record_lines::height.eq(line.height),
                record_lines::quantity.eq(line.quantity),
                record_lines::price.eq(line.price),
                record_lines::amount.eq(line.amount),
                record_lines::is_service.eq(line.is_service),
                record_lines::extra_work
                    .eq(serde_json::to_string(&line.extra_work).unwrap_or_else(|_| "[]".into())),
            ))
            .execute(conn)?;
        if !line.is_service {
            diesel::insert_into(tech_cards::table)
                .values((
                    tech_cards::record_id.eq(record_id),
                    tech_cards::line_position.eq(position),
                    tech_cards::status.eq(TECH_CARD_NEW),
                    tech_cards::created_at.eq(at),
                ))
                .execute(conn)?;
            cards += 1;
        }
    }
    let detail = format!(
        "{} from {} ({} lines, {cards} tech cards)",
        record.kind.as_str(),
        record
            .source
            .message_id
            .as_deref()
            .unwrap_or("a message without Message-ID"),
        record.lines.len(),
    );
    add_event(conn, record_id, actor, "created", Some(&detail))?;
    Ok(record_id)
}

/// The next service request number: prefix, local date, and a per-day sequence
/// (`SR202611230001`). Runs inside the write transaction, so numbers never collide.
fn next_number(conn: &mut SqliteConnection, prefix: &str) -> QueryResult<String> {
    let day = format!("{prefix}{}", chrono::Local::now().format("%Y%m%d"));
    let taken: i64 = records::table
        .filter(records::number.like(format!("{day}%")))
        .count()
        .get_result(conn)?;
    Ok(format!("{day}{:04}", taken + 1))
}

pub(super) fn add_event(
    conn: &mut SqliteConnection,
    record_id: i64,
    actor: &str,
    event: &str,
    detail: Option<&str>,
) -> QueryResult<()> {
    diesel::insert_into(record_events::table)
        .values((
            record_events::record_id.eq(record_id),
            record_events::at.eq(now()),
            record_events::actor.eq(actor),
            record_events::event.eq(event),
            record_events::detail.eq(detail),
        ))
        .execute(conn)?;
    Ok(())
}

impl Store {
    /// Turns an open quarantine entry into a record (after a config fix made it decodable):
    /// the entry is marked released and every ledger row that pointed at it now points at
    /// the record, so the message is acknowledged on the next pass.
    pub fn release_quarantine(
        &mut self,
        quarantine_id: i64,
        queue: &str,
        record: &Record,
        actor: &str,
    ) -> Result<i64, StoreError> {
        let ids = &mut self.ids;
        let result = self.conn.immediate_transaction(|conn| {
            let collector: String = quarantine::table
                .find(quarantine_id)
                .select(quarantine::collector)
                .first(conn)?;
            let record_id = insert_record(conn, ids, &collector, queue, record, actor)?;
            add_event(
                conn,
                record_id,
                actor,
                "released",
                Some(&format!("from quarantine entry {quarantine_id}")),
            )?;
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
}
