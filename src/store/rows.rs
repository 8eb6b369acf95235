//! Row shapes of the record tables, for diesel: what is inserted and what is read back.
//!
//! JSON columns (`layout_files`, `warnings`, `service`, `extra_work`) are text to SQLite.
//! A value that does not serialize fails the write, and stored text that does not parse
//! fails the read with [`StoreError::Corrupt`] naming the row and column: an empty list in
//! its place would hide the damage.

use std::borrow::Cow;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StoreError;
use super::schema::{
    ledger, quarantine, record_events, record_lines, record_sources, records, tech_cards,
};

/// JSON text of `value`, or the write fails (inside the transaction, which rolls back).
pub(super) fn to_json<T: Serialize + ?Sized>(value: &T) -> QueryResult<String> {
    serde_json::to_string(value).map_err(|e| diesel::result::Error::SerializationError(e.into()))
}

/// Where a stored value lives, for [`StoreError::Corrupt`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Cell {
    pub table: &'static str,
    pub id: i64,
    pub column: &'static str,
}

impl Cell {
    pub(super) fn new(table: &'static str, id: i64, column: &'static str) -> Cell {
        Cell { table, id, column }
    }

    pub(super) fn corrupt(self, message: impl ToString) -> StoreError {
        StoreError::Corrupt {
            table: self.table,
            id: self.id,
            column: self.column,
            message: message.to_string(),
        }
    }

    /// Parses the JSON stored here.
    pub(super) fn json<T: DeserializeOwned>(self, text: &str) -> Result<T, StoreError> {
        serde_json::from_str(text).map_err(|e| self.corrupt(e))
    }

    /// Parses the text stored here with `FromStr`.
    pub(super) fn parse<T>(self, text: &str) -> Result<T, StoreError>
    where
        T: std::str::FromStr,
        T::Err: ToString,
    {
        text.parse().map_err(|e: T::Err| self.corrupt(e))
    }
}

/// A new `records` row.
#[derive(Insertable)]
#[diesel(table_name = records, treat_none_as_default_value = false)]
pub(super) struct NewRecord<'a> {
    pub queue: &'a str,
    pub collector: &'a str,
    pub kind: &'a str,
    pub status: &'a str,
    pub title: Option<&'a str>,
    pub record_date: Option<NaiveDateTime>,
    pub description: Option<&'a str>,
    pub inn: Option<&'a str>,
    pub inn_valid: bool,
    pub phone: Option<&'a str>,
    pub phone_digits: Option<&'a str>,
    pub email: Option<&'a str>,
    pub contact_name: Option<&'a str>,
    pub counterparty_id: Option<i64>,
    pub contact_id: Option<i64>,
    pub layout_files: String,
    pub message_id: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub order_ref: Option<&'a str>,
    pub attachment_name: Option<&'a str>,
    pub charset: &'a str,
    pub warnings: String,
    pub payload: &'a str,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub number: Option<String>,
    pub request_type: Option<&'a str>,
    pub service: Option<String>,
    pub format: Option<&'a str>,
}

/// A new `record_lines` row. Owned, like every row a batch gathers: diesel keeps an INSERT of
/// a fixed-size array of rows prepared only when the rows borrow nothing.
#[derive(Insertable)]
#[diesel(table_name = record_lines, treat_none_as_default_value = false)]
pub(super) struct NewLine {
    pub record_id: i64,
    pub position: i32,
    pub item: Option<String>,
    pub machine_code: Option<String>,
    pub resolution: Option<String>,
    pub material: Option<String>,
    pub material_code: Option<String>,
    pub width: Option<f64>,
    pub height: Option<f64>,
    pub quantity: Option<f64>,
    pub price: Option<f64>,
    pub amount: Option<f64>,
    pub is_service: bool,
    pub extra_work: String,
}

/// A new `tech_cards` row.
#[derive(Insertable)]
#[diesel(table_name = tech_cards)]
pub(super) struct NewTechCard<'a> {
    pub record_id: i64,
    pub line_position: i32,
    pub status: &'a str,
    pub created_at: NaiveDateTime,
}

/// A new `record_events` row.
#[derive(Insertable)]
#[diesel(table_name = record_events, treat_none_as_default_value = false)]
pub(super) struct NewEvent<'a> {
    pub record_id: i64,
    pub at: NaiveDateTime,
    /// Owned in a batch's rows (see [`NewLine`]), borrowed otherwise.
    pub actor: Cow<'a, str>,
    pub event: &'static str,
    pub detail: Option<Cow<'a, str>>,
}

/// A new `record_sources` row (owned: see [`NewLine`]).
#[derive(Insertable)]
#[diesel(table_name = record_sources)]
pub(super) struct NewSource {
    pub record_id: i64,
    pub raw: Vec<u8>,
}

/// A new `quarantine` row.
#[derive(Insertable)]
#[diesel(table_name = quarantine, treat_none_as_default_value = false)]
pub(super) struct NewQuarantine<'a> {
    pub collector: &'a str,
    pub source_key: &'a str,
    pub message_id: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub fingerprint: &'a str,
    pub reason: &'a str,
    pub raw: &'a [u8],
    pub status: &'a str,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A new `ledger` row (owned: see [`NewLine`]).
#[derive(Insertable)]
#[diesel(table_name = ledger, treat_none_as_default_value = false)]
pub(super) struct NewLedgerEntry {
    pub collector: String,
    pub source_key: String,
    pub message_id: Option<String>,
    pub fingerprint: String,
    pub outcome: &'static str,
    pub record_id: Option<i64>,
    pub quarantine_id: Option<i64>,
    pub created_at: NaiveDateTime,
}

/// A `records` row as read.
#[derive(Queryable, Selectable)]
#[diesel(table_name = records)]
pub(super) struct RecordRow {
    pub id: i64,
    pub queue: String,
    pub collector: String,
    pub kind: String,
    pub status: String,
    pub title: Option<String>,
    pub record_date: Option<NaiveDateTime>,
    pub description: Option<String>,
    pub inn: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub contact_name: Option<String>,
    pub counterparty_id: Option<i64>,
    pub contact_id: Option<i64>,
    pub layout_files: String,
    pub message_id: Option<String>,
    pub subject: Option<String>,
    pub order_ref: Option<String>,
    pub attachment_name: Option<String>,
    pub charset: String,
    pub warnings: String,
    pub payload: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub number: Option<String>,
    pub service: Option<String>,
    pub result: Option<String>,
    pub format: Option<String>,
}

/// A `record_lines` row as read.
#[derive(Queryable, Selectable)]
#[diesel(table_name = record_lines)]
pub(super) struct LineRow {
    pub id: i64,
    pub record_id: i64,
    pub item: Option<String>,
    pub machine_code: Option<String>,
    pub resolution: Option<String>,
    pub material: Option<String>,
    pub material_code: Option<String>,
    pub width: Option<f64>,
    pub height: Option<f64>,
    pub quantity: Option<f64>,
    pub price: Option<f64>,
    pub amount: Option<f64>,
    pub is_service: bool,
    pub extra_work: String,
}

/// A `record_events` row as read.
#[derive(Queryable, Selectable)]
#[diesel(table_name = record_events)]
pub(super) struct EventRow {
    pub id: i64,
    pub record_id: i64,
    pub at: NaiveDateTime,
    pub actor: String,
    pub event: String,
    pub detail: Option<String>,
}
