//! Inserting records with their lines, tech cards, `created` events and sources, inside the
//! caller's transaction: each record's row at once, the rows that point at it gathered per
//! batch and written in a few multi-row INSERTs ([`RecordRows`]). What the record starts with (status, counterparty, number, tech cards) is
//! decided by [`crate::domain::intake`]; this file looks up and writes.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::store::{AnyConnection, on_backend};
use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;

use super::rows::{NewEvent, NewLedgerEntry, NewLine, NewRecord, NewSource, NewTechCard, to_json};
use super::schema::{
    contacts, counterparties, ledger, quarantine, record_events, record_lines, record_sources,
    records, tech_cards,
};
use crate::domain::intake::{self, CounterpartyLink};
use crate::domain::{EventKind, UnknownCustomer, status};
use crate::mapping::Record;

/// The time stored with what happens now, to the microsecond: what PostgreSQL's
/// `TIMESTAMP` keeps, so both backends hold the same values (and `db copy` moves them
/// unchanged).
pub(crate) fn now() -> NaiveDateTime {
    use chrono::SubsecRound;
    Utc::now().naive_utc().trunc_subsecs(6)
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

impl IdCache {
    pub(super) fn clear(&mut self) {
        self.counterparties.clear();
        self.contacts.clear();
    }
}

/// The id `cache` holds for `key`, else the one `find` reads, else the one `create`
/// inserts (then cached).
///
/// NOTE: a look-up, then an insert when the key is new, rather than an upsert: diesel does
/// not cache an `ON CONFLICT ... DO UPDATE`, so SQLite compiled it again for every record,
/// while these two statements stay prepared. Safe without one: the callers run in the
/// store's write transaction, one writer at a time on either backend.
fn find_or_create(
    conn: &mut AnyConnection,
    cache: &mut HashMap<String, i64>,
    key: &str,
    find: impl FnOnce(&mut AnyConnection) -> QueryResult<Option<i64>>,
    create: impl FnOnce(&mut AnyConnection) -> QueryResult<i64>,
) -> QueryResult<i64> {
    if let Some(id) = cache.get(key) {
        return Ok(*id);
    }
    let id = match find(conn)? {
        Some(id) => id,
        None => create(conn)?,
    };
    cache.insert(key.to_string(), id);
    Ok(id)
}

/// The counterparty with this INN, if there is one.
// NOTE: look-ups by a unique key on a path run per record end in `get_result`, not `first`:
// `first` binds its `LIMIT 1` as a parameter, and SQLite (since 3.47) plans for a bound
// LIMIT's value, so it prepares the statement again every time the parameter is bound (15 µs
// each, a tenth of a record's cost with a notification rule). A unique key has one row
// anyway.
fn counterparty_by_inn(conn: &mut AnyConnection, inn: &str) -> QueryResult<Option<i64>> {
    on_backend!(conn, c => counterparties::table
        .filter(counterparties::inn.eq(inn))
        .select(counterparties::id)
        .get_result(c)
        .optional())
}

fn find_or_create_counterparty(
    conn: &mut AnyConnection,
    cache: &mut HashMap<String, i64>,
    inn: &str,
) -> QueryResult<i64> {
    find_or_create(
        conn,
        cache,
        inn,
        |conn| counterparty_by_inn(conn, inn),
        |conn| {
            let row = (
                counterparties::inn.eq(inn),
                counterparties::created_at.eq(now()),
            );
            on_backend!(conn, c => diesel::insert_into(counterparties::table)
                .values(row)
                .returning(counterparties::id)
                .get_result(c))
        },
    )
}

fn find_or_create_contact(
    conn: &mut AnyConnection,
    cache: &mut HashMap<String, i64>,
    digits: &str,
    record: &Record,
) -> QueryResult<i64> {
    find_or_create(
        conn,
        cache,
        digits,
        |conn| {
            on_backend!(conn, c => contacts::table
                .filter(contacts::phone_digits.eq(digits))
                .select(contacts::id)
                .get_result(c)
                .optional())
        },
        |conn| {
            let row = (
                contacts::phone_digits.eq(digits),
                contacts::name.eq(record.contact_name.as_deref()),
                contacts::email.eq(record.email.as_deref()),
                contacts::created_at.eq(now()),
            );
            on_backend!(conn, c => diesel::insert_into(contacts::table)
                .values(row)
                .returning(contacts::id)
                .get_result(c))
        },
    )
}

/// Inserts a record with its lines, extra works, tech cards and `created` event (and no
/// source: the caller adds it).
pub(super) fn insert_record(
    conn: &mut AnyConnection,
    ids: &mut IdCache,
    collector: &str,
    queue: &str,
    record: &Record,
    actor: &str,
) -> QueryResult<i64> {
    let mut rows = RecordRows::default();
    let id = stage_record(conn, ids, collector, queue, record, actor, &mut rows)?;
    rows.flush(conn)?;
    Ok(id)
}

/// Inserts a record's own row (its id is needed at once: for the rows that point at it, the
/// notifications and the caller) and adds its lines, tech cards and `created` event to
/// `rows`, which the caller flushes before its transaction ends.
pub(super) fn stage_record(
    conn: &mut AnyConnection,
    ids: &mut IdCache,
    collector: &str,
    queue: &str,
    record: &Record,
    actor: &str,
    rows: &mut RecordRows,
) -> QueryResult<i64> {
    let at = now();
    let decided = intake::intake(record, ids.unknown_customer.as_ref(), |customer| {
        counterparty_by_inn(conn, customer)
    })?;
    let counterparty_id = match decided.counterparty {
        Some(CounterpartyLink::Known(id)) => Some(id),
        Some(CounterpartyLink::FindOrCreate(key)) => Some(find_or_create_counterparty(
            conn,
            &mut ids.counterparties,
            key,
        )?),
        None => None,
    };
    let digits = record.phone.as_ref().and_then(|p| p.digits());
    let contact_id = digits
        .map(|d| find_or_create_contact(conn, &mut ids.contacts, d, record))
        .transpose()?;
    let number = match &record.service {
        Some(service) => Some(next_number(conn, &service.number_prefix)?),
        None => None,
    };
    let row = NewRecord {
        // NOTE: a format with its own `queue` routes the record there.
        queue: record.queue.as_deref().unwrap_or(queue),
        collector,
        kind: record.kind.as_str(),
        status: decided.status,
        title: record.title.as_deref(),
        record_date: record.date,
        description: record.description.as_deref(),
        inn: record.inn.as_ref().map(|i| i.as_str()),
        inn_valid: record.inn.as_ref().is_some_and(|i| i.is_valid()),
        phone: record.phone.as_ref().map(|p| p.as_str()),
        phone_digits: digits,
        email: record.email.as_deref(),
        contact_name: record.contact_name.as_deref(),
        counterparty_id,
        contact_id,
        layout_files: to_json(&record.layout_files)?,
        message_id: record.source.message_id.as_deref(),
        subject: record.source.subject.as_deref(),
        order_ref: record.source.order_ref.as_deref(),
        attachment_name: record.source.attachment_name.as_deref(),
        charset: &record.source.charset,
        warnings: to_json(&record.warnings)?,
        payload: &record.payload,
        created_at: at,
        updated_at: at,
        number,
        request_type: record.service.as_ref().map(|s| s.request_type.as_str()),
        service: record.service.as_ref().map(to_json).transpose()?,
        format: record.source.format.as_deref(),
    };
    let record_id: i64 = on_backend!(conn, c => diesel::insert_into(records::table)
        .values(&row)
        .returning(records::id)
        .get_result(c))?;

    let mut cards = 0;
    for (position, line) in (1..).zip(&record.lines) {
        rows.lines.push(NewLine {
            record_id,
            position,
            item: line.item.clone(),
            machine_code: line.machine_code.clone(),
            resolution: line.resolution.clone(),
            material: line.material.clone(),
            material_code: line.material_code.clone(),
            width: line.width,
            height: line.height,
            quantity: line.quantity,
            price: line.price,
            amount: line.amount,
            is_service: line.is_service,
            extra_work: to_json(&line.extra_work)?,
        });
        if intake::needs_tech_card(line) {
            rows.tech_cards.push(NewTechCard {
                record_id,
                line_position: position,
                status: status::TECH_CARD_NEW,
                created_at: at,
            });
            cards += 1;
        }
    }
    rows.events.push(NewEvent {
        record_id,
        at: now(),
        actor: Cow::Owned(actor.to_string()),
        event: EventKind::Created.as_str(),
        detail: Some(Cow::Owned(intake::created_detail(record, cards))),
    });
    Ok(record_id)
}

/// The next service request number. Runs inside the write transaction, so numbers never
/// collide.
// NOTE: a range of the unique index on `number` (the day's numbers are the day followed by
// four or more digits), not `LIKE 'day%'`: neither SQLite's case-insensitive LIKE nor one
// under PostgreSQL's non-C collations can use the index, and counting would read every
// record for each new request. Digit strings of one prefix compare the same bytewise and
// under ICU collations.
fn next_number(conn: &mut AnyConnection, prefix: &str) -> QueryResult<String> {
    let day = intake::number_day(prefix, chrono::Local::now().date_naive());
    let taken: i64 = records::table
        .filter(records::number.between(format!("{day}0"), format!("{day}9999999999")))
        .count()
        .get_result(conn)?;
    Ok(intake::service_number(&day, taken))
}

/// Adds one entry to a record's history.
pub(crate) fn add_event(
    conn: &mut AnyConnection,
    record_id: i64,
    actor: &str,
    event: EventKind,
    detail: Option<&str>,
) -> QueryResult<()> {
    let row = NewEvent {
        record_id,
        at: now(),
        actor: Cow::Borrowed(actor),
        event: event.as_str(),
        detail: detail.map(Cow::Borrowed),
    };
    on_backend!(conn, c => diesel::insert_into(record_events::table).values(&row).execute(c))?;
    Ok(())
}

/// How many rows one multi-row INSERT writes, and then a smaller one for what is left.
// NOTE: diesel keeps an INSERT of a fixed-size array of rows as one prepared statement, like
// a single row, while an INSERT of a Vec is new SQL, parsed again, for every length. So a
// batch's rows go out in chunks of these fixed sizes and the last few one by one: per row
// the statement's fixed cost (look-up, reset, VDBE start and halt) is paid once per chunk.
const CHUNK_ROWS: usize = 32;
const SMALL_CHUNK_ROWS: usize = 8;

/// Inserts `rows` into `table` in fixed-size multi-row INSERTs ([`CHUNK_ROWS`], then
/// [`SMALL_CHUNK_ROWS`], then one by one), in order: ids come out as row-by-row inserts
/// would give them.
macro_rules! insert_in_chunks {
    ($conn:expr, $table:expr, $rows:expr) => {{
        let rows: &[_] = $rows;
        let mut big = rows.chunks_exact(CHUNK_ROWS);
        for chunk in &mut big {
            let chunk: &[_; CHUNK_ROWS] = chunk.try_into().expect("an exact chunk");
            on_backend!(&mut *$conn, c => diesel::insert_into($table).values(chunk).execute(c))?;
        }
        let mut small = big.remainder().chunks_exact(SMALL_CHUNK_ROWS);
        for chunk in &mut small {
            let chunk: &[_; SMALL_CHUNK_ROWS] = chunk.try_into().expect("an exact chunk");
            on_backend!(&mut *$conn, c => diesel::insert_into($table).values(chunk).execute(c))?;
        }
        for row in small.remainder() {
            on_backend!(&mut *$conn, c => diesel::insert_into($table).values(row).execute(c))?;
        }
    }};
}

/// Inserts a batch's ledger rows, in order, after the records and quarantine entries they
/// point at.
pub(super) fn insert_ledger_rows(
    conn: &mut AnyConnection,
    rows: &[NewLedgerEntry],
) -> QueryResult<()> {
    insert_in_chunks!(conn, ledger::table, rows);
    Ok(())
}

/// Rows that point at records already inserted in this transaction, gathered so each table
/// gets a few multi-row INSERTs per batch instead of one statement per row.
///
/// Each table's rows keep the order in which they were staged, so their ids are the ones
/// inserting them one at a time would have given (ids are per table).
#[derive(Default)]
pub(super) struct RecordRows {
    lines: Vec<NewLine>,
    tech_cards: Vec<NewTechCard<'static>>,
    events: Vec<NewEvent<'static>>,
    sources: Vec<NewSource>,
}

impl RecordRows {
    /// Keeps the message record `record_id` was made from, byte for byte (the review page's
    /// `.eml` download): written in the same transaction, so a record never exists without
    /// its source. The HTTP intake of a later issue stores the request body here too.
    pub(super) fn add_source(&mut self, record_id: i64, raw: &[u8]) {
        self.sources.push(NewSource {
            record_id,
            raw: raw.to_vec(),
        });
    }

    /// Replaces the detail of the `created` event staged for `record_id`: a record that did
    /// not come from a message (HTTP intake) words its creation otherwise.
    pub(super) fn reword_created(&mut self, record_id: i64, detail: String) {
        let created = EventKind::Created.as_str();
        if let Some(event) = self
            .events
            .iter_mut()
            .find(|e| e.record_id == record_id && e.event == created)
        {
            event.detail = Some(Cow::Owned(detail));
        }
    }

    /// Inserts every staged row; call before the transaction commits.
    pub(super) fn flush(&mut self, conn: &mut AnyConnection) -> QueryResult<()> {
        insert_in_chunks!(conn, record_lines::table, &self.lines);
        insert_in_chunks!(conn, tech_cards::table, &self.tech_cards);
        insert_in_chunks!(conn, record_events::table, &self.events);
        insert_in_chunks!(conn, record_sources::table, &self.sources);
        self.lines.clear();
        self.tech_cards.clear();
        self.events.clear();
        self.sources.clear();
        Ok(())
    }
}

/// [`RecordRows::add_source`] for a record released from quarantine entry `quarantine_id`:
/// its kept bytes are copied inside SQLite, never loaded here.
pub(super) fn copy_quarantined_source(
    conn: &mut AnyConnection,
    quarantine_id: i64,
    record_id: i64,
) -> QueryResult<()> {
    use diesel::IntoSql;
    use diesel::sql_types::BigInt;
    let copied = diesel::insert_into(record_sources::table)
        .values(
            quarantine::table
                .find(quarantine_id)
                .select((record_id.into_sql::<BigInt>(), quarantine::raw)),
        )
        .into_columns((record_sources::record_id, record_sources::raw))
        .execute(conn)?;
    debug_assert_eq!(copied, 1, "quarantine entry {quarantine_id} exists");
    Ok(())
}
