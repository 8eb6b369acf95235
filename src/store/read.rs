//! Reading: records with their lines, the ledger, the quarantine.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use super::schema::{ledger, quarantine, record_events, record_lines, records, tech_cards};
use super::write::QUARANTINE_OPEN;
use super::{Store, StoreError};
use crate::map::declarative::ServiceRequest;
use crate::map::{ExtraWork, OrderLine, Record, RecordKind, SourceInfo};

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
    pub limit: Option<i64>,
}

/// A tech card of a stored order line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TechCard {
    /// Position of the goods line (1-based).
    pub line: i32,
    pub status: String,
}

/// A record as stored: the decoded record plus where it lives.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredRecord {
    pub id: i64,
    pub queue: String,
    pub collector: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub counterparty_id: Option<i64>,
    pub contact_id: Option<i64>,
    pub tech_cards: Vec<TechCard>,
    /// The solution text, once resolved.
    pub result: Option<String>,
    #[serde(flatten)]
    pub record: Record,
}

/// One entry of a record's history.
#[derive(Debug, Clone, PartialEq, Serialize, Queryable)]
pub struct RecordEvent {
    #[serde(skip)]
    pub record_id: i64,
    #[serde(serialize_with = "as_utc")]
    pub at: NaiveDateTime,
    pub actor: String,
    pub event: String,
    pub detail: Option<String>,
}

/// A quarantined message.
#[derive(Debug, Clone, PartialEq, Serialize, Queryable)]
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

fn as_utc<S: serde::Serializer>(at: &NaiveDateTime, s: S) -> Result<S::Ok, S::Error> {
    at.and_utc().serialize(s)
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = records)]
struct RecordRow {
    id: i64,
    queue: String,
    collector: String,
    kind: String,
    status: String,
    title: Option<String>,
    record_date: Option<NaiveDateTime>,
    description: Option<String>,
    inn: Option<String>,
    inn_valid: bool,
    phone: Option<String>,
    email: Option<String>,
    contact_name: Option<String>,
    counterparty_id: Option<i64>,
    contact_id: Option<i64>,
    layout_files: String,
    message_id: Option<String>,
    subject: Option<String>,
    order_ref: Option<String>,
    attachment_name: Option<String>,
    charset: String,
    warnings: String,
    payload: String,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    number: Option<String>,
    service: Option<String>,
    result: Option<String>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = record_lines)]
struct LineRow {
    record_id: i64,
    item: Option<String>,
    machine_code: Option<String>,
    resolution: Option<String>,
    material: Option<String>,
    material_code: Option<String>,
    width: Option<f64>,
    height: Option<f64>,
    quantity: Option<f64>,
    price: Option<f64>,
    amount: Option<f64>,
    is_service: bool,
    extra_work: String,
}

fn json_list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
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
        let mut query = records::table
            .select(RecordRow::as_select())
            .order(records::id.asc())
            .into_boxed();
        if let Some(queue) = &filter.queue {
            query = query.filter(records::queue.eq(queue.clone()));
        }
        if let Some(kind) = filter.kind {
            query = query.filter(records::kind.eq(kind.as_str()));
        }
        if let Some(status) = &filter.status {
            query = query.filter(records::status.eq(status.clone()));
        }
        if let Some(digits) = &filter.phone_digits {
            query = query.filter(records::phone_digits.like(format!("%{digits}")));
        }
        if let Some(since) = filter.since {
            query = query.filter(records::created_at.ge(since));
        }
        if let Some(limit) = filter.limit {
            query = query.limit(limit);
        }
        let rows = query.load(&mut self.conn)?;
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

    /// One record by id.
    pub fn record(&mut self, id: i64) -> Result<Option<StoredRecord>, StoreError> {
        let rows = records::table
            .find(id)
            .select(RecordRow::as_select())
            .load(&mut self.conn)?;
        Ok(self.assemble(rows)?.pop())
    }

    /// The history of a record, oldest first.
    pub fn record_events(&mut self, record_id: i64) -> Result<Vec<RecordEvent>, StoreError> {
        Ok(record_events::table
            .filter(record_events::record_id.eq(record_id))
            .order(record_events::id.asc())
            .select((
                record_events::record_id,
                record_events::at,
                record_events::actor,
                record_events::event,
                record_events::detail,
            ))
            .load(&mut self.conn)?)
    }

    /// Loads lines (with their works) and tech cards for `rows` in two queries.
    fn assemble(&mut self, rows: Vec<RecordRow>) -> Result<Vec<StoredRecord>, StoreError> {
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let mut lines: HashMap<i64, Vec<OrderLine>> = HashMap::new();
        let mut cards: HashMap<i64, Vec<TechCard>> = HashMap::new();
        for chunk in ids.chunks(500) {
            for l in record_lines::table
                .filter(record_lines::record_id.eq_any(chunk))
                .order((record_lines::record_id, record_lines::position))
                .select(LineRow::as_select())
                .load(&mut self.conn)?
            {
                lines.entry(l.record_id).or_default().push(OrderLine {
                    extra_work: serde_json::from_str::<Vec<ExtraWork>>(&l.extra_work)
                        .unwrap_or_default(),
                    item: l.item,
                    machine_code: l.machine_code,
                    resolution: l.resolution,
                    material: l.material,
                    material_code: l.material_code,
                    width: l.width,
                    height: l.height,
                    quantity: l.quantity,
                    price: l.price,
                    amount: l.amount,
                    is_service: l.is_service,
                });
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
        Ok(rows
            .into_iter()
            .map(|row| StoredRecord {
                id: row.id,
                tech_cards: cards.remove(&row.id).unwrap_or_default(),
                result: row.result,
                record: Record {
                    kind: RecordKind::parse(&row.kind).unwrap_or(RecordKind::Lead),
                    title: row.title,
                    date: row.record_date,
                    description: row.description,
                    inn: row.inn,
                    inn_valid: row.inn_valid,
                    phone: row.phone,
                    email: row.email,
                    contact_name: row.contact_name,
                    layout_files: json_list(&row.layout_files),
                    lines: lines.remove(&row.id).unwrap_or_default(),
                    source: SourceInfo {
                        message_id: row.message_id,
                        subject: row.subject,
                        order_ref: row.order_ref,
                        attachment_name: row.attachment_name,
                        charset: row.charset,
                    },
                    warnings: json_list(&row.warnings),
                    payload: row.payload,
                    service: row.service.as_deref().and_then(|json| {
                        let mut service: ServiceRequest = serde_json::from_str(json).ok()?;
                        service.number = row.number.clone();
                        Some(service)
                    }),
                },
                queue: row.queue,
                collector: row.collector,
                status: row.status,
                created_at: row.created_at.and_utc(),
                updated_at: row.updated_at.and_utc(),
                counterparty_id: row.counterparty_id,
                contact_id: row.contact_id,
            })
            .collect())
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
