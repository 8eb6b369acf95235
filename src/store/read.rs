//! Reading: records with their lines, the ledger, the quarantine.

use std::collections::HashMap;

use crate::store::MultiBackend;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use super::rows::{Cell, EventRow, LineRow, RecordRow};
use super::schema::{
    ledger, quarantine, record_events, record_lines, record_sources, records, tech_cards,
};
use super::write::QUARANTINE_OPEN;
use super::{Store, StoreError};
use crate::domain::{EventKind, Inn, Phone, RequestType};
use crate::mapping::declarative::ServiceRequest;
use crate::mapping::{OrderLine, Record, RecordKind, SourceInfo};

/// What the ledger knows about one message position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerEntry {
    /// The record this message (or its first copy) produced.
    pub record_id: Option<i64>,
    /// The quarantine entry it went to instead.
    pub quarantine_id: Option<i64>,
}

/// Which records to list.
#[derive(Debug, Clone, Default)]
pub struct RecordFilter {
    pub queue: Option<String>,
    pub kind: Option<RecordKind>,
    pub status: Option<String>,
    /// Matches records whose phone digits end with these digits.
    pub phone_digits: Option<String>,
    /// Stored at or after this UTC time.
    pub since: Option<NaiveDateTime>,
    /// Stored before this UTC time.
    pub until: Option<NaiveDateTime>,
    /// Service requests of this type only.
    pub request_type: Option<RequestType>,
    /// Changed (a history event) at or after this UTC time.
    pub updated_since: Option<NaiveDateTime>,
    pub limit: Option<i64>,
    /// Skips this many matching records first (paging).
    pub offset: Option<i64>,
}

/// A tech card of a stored order line.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TechCard {
    /// Position of the goods line (1-based).
    pub line: i32,
    pub status: String,
}

/// A record as stored: the decoded record plus where it lives.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StoredRecord {
    pub id: i64,
    pub queue: String,
    pub collector: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    /// The time of its latest history event (its creation, a triage, a status change, a
    /// notification): what `updated-since` polls.
    pub updated_at: DateTime<Utc>,
    pub counterparty_id: Option<i64>,
    pub contact_id: Option<i64>,
    pub tech_cards: Vec<TechCard>,
    /// The solution text, once resolved.
    pub result: Option<String>,
    /// The decoded record's fields (kind, title, phone, lines, source, service, ...), at
    /// this level.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub record: Record,
}

/// A record with its history: `records show --json` and `GET /api/v1/records/{id}` (seed
/// 001's call data: the history and the contacts made, notifications included).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RecordWithHistory {
    #[serde(flatten)]
    pub record: StoredRecord,
    /// Oldest first.
    pub history: Vec<RecordEvent>,
}

/// One entry of a record's history.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RecordEvent {
    #[serde(skip)]
    pub record_id: i64,
    #[serde(serialize_with = "as_utc")]
    pub at: NaiveDateTime,
    /// Who: a user, an OS user, `api:TOKEN-NAME`, or the collector.
    pub actor: String,
    #[schema(value_type = String)]
    pub event: EventKind,
    pub detail: Option<String>,
}

impl TryFrom<EventRow> for RecordEvent {
    type Error = StoreError;

    fn try_from(row: EventRow) -> Result<Self, StoreError> {
        let cell = Cell::new("record_events", row.id, "event");
        Ok(RecordEvent {
            record_id: row.record_id,
            at: row.at,
            actor: row.actor,
            event: cell.parse(&row.event)?,
            detail: row.detail,
        })
    }
}

/// A quarantined message.
#[derive(Debug, Clone, PartialEq, Serialize, Queryable, ToSchema)]
pub struct QuarantineEntry {
    pub id: i64,
    pub collector: String,
    pub source_key: String,
    pub message_id: Option<String>,
    pub subject: Option<String>,
    pub fingerprint: String,
    pub reason: String,
    #[serde(skip)]
    pub raw: Vec<u8>,
    pub status: String,
    pub record_id: Option<i64>,
    #[serde(serialize_with = "as_utc")]
    pub created_at: NaiveDateTime,
    #[serde(serialize_with = "as_utc")]
    pub updated_at: NaiveDateTime,
}

/// A stored UTC time as JSON (`2026-11-23T10:00:00Z`).
pub(crate) fn as_utc<S: serde::Serializer>(at: &NaiveDateTime, s: S) -> Result<S::Ok, S::Error> {
    at.and_utc().serialize(s)
}

impl Store {
    /// Ledger entries of `collector` for the given message positions.
    pub fn ledger_entries(
        &mut self,
        collector: &str,
        source_keys: &[&str],
    ) -> Result<HashMap<String, LedgerEntry>, StoreError> {
        let mut found = HashMap::new();
        // NOTE: chunked to stay under SQLite's bound-parameter limit.
        for keys in source_keys.chunks(500) {
            let rows: Vec<(String, Option<i64>, Option<i64>)> = ledger::table
                .filter(ledger::collector.eq(collector))
                .filter(ledger::source_key.eq_any(keys))
                .select((ledger::source_key, ledger::record_id, ledger::quarantine_id))
                .load(&mut self.conn)?;
            found.extend(rows.into_iter().map(|(key, record_id, quarantine_id)| {
                (
                    key,
                    LedgerEntry {
                        record_id,
                        quarantine_id,
                    },
                )
            }));
        }
        Ok(found)
    }

    /// Records matching `filter`, oldest first.
    pub fn list_records(&mut self, filter: &RecordFilter) -> Result<Vec<StoredRecord>, StoreError> {
        let mut query = filtered(filter)
            .select(RecordRow::as_select())
            .order(records::id.asc());
        if let Some(limit) = filter.limit {
            query = query.limit(limit);
        }
        if let Some(offset) = filter.offset {
            // NOTE: SQLite needs a LIMIT for an OFFSET; -1 means none.
            query = query.limit(filter.limit.unwrap_or(-1)).offset(offset);
        }
        let rows = query.load(&mut self.conn)?;
        self.assemble(rows)
    }

    /// Up to `limit` records matching `filter` (its own limit and offset aside) that come
    /// after `after` in `order`: one page of a keyset walk, which neither skips nor repeats
    /// a record when others are inserted meanwhile (new records sort last in both orders).
    pub fn records_page(
        &mut self,
        filter: &RecordFilter,
        order: PageOrder,
        after: Option<&PagePosition>,
        limit: i64,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let mut query = filtered(filter).select(RecordRow::as_select());
        query = match order {
            PageOrder::Id => query.order(records::id.asc()),
            PageOrder::Updated => query.order((records::updated_at.asc(), records::id.asc())),
        };
        if let Some(after) = after {
            query = match (order, after.updated_at) {
                (PageOrder::Updated, Some(at)) => query.filter(
                    records::updated_at
                        .gt(at)
                        .or(records::updated_at.eq(at).and(records::id.gt(after.id))),
                ),
                _ => query.filter(records::id.gt(after.id)),
            };
        }
        let rows = query.limit(limit).load(&mut self.conn)?;
        self.assemble(rows)
    }

    /// These records, in the order of `ids`.
    pub fn records_by_ids(&mut self, ids: &[i64]) -> Result<Vec<StoredRecord>, StoreError> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let rows = records::table
                .filter(records::id.eq_any(chunk))
                .order(records::id.asc())
                .select(RecordRow::as_select())
                .load(&mut self.conn)?;
            found.extend(self.assemble(rows)?);
        }
        found.sort_by_key(|r| ids.iter().position(|id| *id == r.id));
        Ok(found)
    }

    /// One record by id with its history.
    pub fn record_with_history(
        &mut self,
        id: i64,
    ) -> Result<Option<RecordWithHistory>, StoreError> {
        let Some(record) = self.record(id)? else {
            return Ok(None);
        };
        let history = self.record_events(id)?;
        Ok(Some(RecordWithHistory { record, history }))
    }

    /// One record by id.
    pub fn record(&mut self, id: i64) -> Result<Option<StoredRecord>, StoreError> {
        let rows = records::table
            .find(id)
            .select(RecordRow::as_select())
            .load(&mut self.conn)?;
        Ok(self.assemble(rows)?.pop())
    }

    /// Whether record `record_id` kept the message it was made from (records created before
    /// sources were kept have none), without loading it.
    pub fn has_record_source(&mut self, record_id: i64) -> Result<bool, StoreError> {
        let found = diesel::select(diesel::dsl::exists(record_sources::table.find(record_id)))
            .get_result(&mut self.conn)?;
        Ok(found)
    }

    /// The message record `record_id` was made from, byte for byte, if it kept one.
    pub fn record_source(&mut self, record_id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        let raw = record_sources::table
            .find(record_id)
            .select(record_sources::raw)
            .first(&mut self.conn)
            .optional()?;
        Ok(raw)
    }

    /// The history of a record, oldest first.
    pub fn record_events(&mut self, record_id: i64) -> Result<Vec<RecordEvent>, StoreError> {
        record_events::table
            .filter(record_events::record_id.eq(record_id))
            .order(record_events::id.asc())
            .select(EventRow::as_select())
            .load(&mut self.conn)?
            .into_iter()
            .map(RecordEvent::try_from)
            .collect()
    }

    /// Loads lines (with their works) and tech cards for `rows` in two queries.
    fn assemble(&mut self, rows: Vec<RecordRow>) -> Result<Vec<StoredRecord>, StoreError> {
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let mut lines: HashMap<i64, Vec<OrderLine>> = HashMap::new();
        let mut cards: HashMap<i64, Vec<TechCard>> = HashMap::new();
        for chunk in ids.chunks(500) {
            for row in record_lines::table
                .filter(record_lines::record_id.eq_any(chunk))
                .order((record_lines::record_id, record_lines::position))
                .select(LineRow::as_select())
                .load(&mut self.conn)?
            {
                lines
                    .entry(row.record_id)
                    .or_default()
                    .push(order_line(row)?);
            }
            for (record_id, line, status) in tech_cards::table
                .filter(tech_cards::record_id.eq_any(chunk))
                .order((tech_cards::record_id, tech_cards::line_position))
                .select((
                    tech_cards::record_id,
                    tech_cards::line_position,
                    tech_cards::status,
                ))
                .load::<(i64, i32, String)>(&mut self.conn)?
            {
                cards
                    .entry(record_id)
                    .or_default()
                    .push(TechCard { line, status });
            }
        }
        rows.into_iter()
            .map(|row| {
                let lines = lines.remove(&row.id).unwrap_or_default();
                let tech_cards = cards.remove(&row.id).unwrap_or_default();
                stored_record(row, lines, tech_cards)
            })
            .collect()
    }

    /// Quarantine entries (open ones only unless `all`), oldest first, raw bytes included.
    pub fn quarantine_entries(&mut self, all: bool) -> Result<Vec<QuarantineEntry>, StoreError> {
        let mut query = quarantine::table.order(quarantine::id.asc()).into_boxed();
        if !all {
            query = query.filter(quarantine::status.eq(QUARANTINE_OPEN));
        }
        Ok(query.load(&mut self.conn)?)
    }

    /// One quarantine entry with its raw bytes.
    pub fn quarantine_entry(&mut self, id: i64) -> Result<QuarantineEntry, StoreError> {
        quarantine::table
            .find(id)
            .first(&mut self.conn)
            .optional()?
            .ok_or(StoreError::NoQuarantineEntry(id))
    }
}

/// Which order a page walk follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PageOrder {
    /// Oldest first, by id: a listing.
    Id,
    /// Least recently changed first, by (updated_at, id): polling for changes.
    Updated,
}

/// Where the previous page ended: its last record's id, and its `updated_at` in
/// [`PageOrder::Updated`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PagePosition {
    pub id: i64,
    pub updated_at: Option<NaiveDateTime>,
}

impl PagePosition {
    /// The position right after `record`.
    pub fn after(record: &StoredRecord, order: PageOrder) -> PagePosition {
        PagePosition {
            id: record.id,
            updated_at: (order == PageOrder::Updated).then(|| record.updated_at.naive_utc()),
        }
    }
}

/// The records `filter` selects (its limit and offset aside), unordered.
fn filtered(filter: &RecordFilter) -> records::BoxedQuery<'_, MultiBackend> {
    let mut query = records::table.into_boxed();
    if let Some(queue) = &filter.queue {
        query = query.filter(records::queue.eq(queue));
    }
    if let Some(kind) = filter.kind {
        query = query.filter(records::kind.eq(kind.as_str()));
    }
    if let Some(status) = &filter.status {
        query = query.filter(records::status.eq(status));
    }
    if let Some(digits) = &filter.phone_digits {
        query = query.filter(records::phone_digits.like(format!("%{digits}")));
    }
    if let Some(since) = filter.since {
        query = query.filter(records::created_at.ge(since));
    }
    if let Some(until) = filter.until {
        query = query.filter(records::created_at.lt(until));
    }
    if let Some(updated_since) = filter.updated_since {
        query = query.filter(records::updated_at.ge(updated_since));
    }
    if let Some(request_type) = filter.request_type {
        query = query.filter(records::request_type.eq(request_type.as_str()));
    }
    query
}

/// A goods line as read; its extra works are JSON.
fn order_line(row: LineRow) -> Result<OrderLine, StoreError> {
    let cell = Cell::new("record_lines", row.id, "extra_work");
    Ok(OrderLine {
        extra_work: cell.json(&row.extra_work)?,
        item: row.item,
        machine_code: row.machine_code,
        resolution: row.resolution,
        material: row.material,
        material_code: row.material_code,
        width: row.width,
        height: row.height,
        quantity: row.quantity,
        price: row.price,
        amount: row.amount,
        is_service: row.is_service,
    })
}

/// A record as read, with its lines and tech cards.
fn stored_record(
    row: RecordRow,
    lines: Vec<OrderLine>,
    tech_cards: Vec<TechCard>,
) -> Result<StoredRecord, StoreError> {
    let cell = |column| Cell::new("records", row.id, column);
    let kind = RecordKind::parse(&row.kind)
        .ok_or_else(|| cell("kind").corrupt(format!("`{}` is not a record kind", row.kind)))?;
    let service = match row.service.as_deref() {
        Some(json) => {
            let mut service: ServiceRequest = cell("service").json(json)?;
            service.number = row.number;
            Some(service)
        }
        None => None,
    };
    Ok(StoredRecord {
        id: row.id,
        tech_cards,
        result: row.result,
        record: Record {
            kind,
            title: row.title,
            date: row.record_date,
            description: row.description,
            inn: row.inn.map(Inn::parse),
            phone: row.phone.map(Phone::parse),
            email: row.email,
            contact_name: row.contact_name,
            layout_files: cell("layout_files").json(&row.layout_files)?,
            lines,
            source: SourceInfo {
                message_id: row.message_id,
                subject: row.subject,
                order_ref: row.order_ref,
                attachment_name: row.attachment_name,
                charset: row.charset,
                format: row.format,
            },
            warnings: cell("warnings").json(&row.warnings)?,
            payload: row.payload,
            service,
            queue: None,
        },
        queue: row.queue,
        collector: row.collector,
        status: row.status,
        created_at: row.created_at.and_utc(),
        updated_at: row.updated_at.and_utc(),
        counterparty_id: row.counterparty_id,
        contact_id: row.contact_id,
    })
}
