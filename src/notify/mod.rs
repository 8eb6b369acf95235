//! Notify stage: who is told of what happens to a record, and the outbox that tells them.
//!
//! [`rules`] (pure) decides which `[[notify]]` rules fire for an event on a record and
//! renders their subject, body and recipients, header-safe; [`outbox`] writes what fired as
//! `queued` rows of the `notifications` table inside the transaction that made the change,
//! with a history event each, and reads the log back; [`people`] is the directory that
//! `directory:ROLE` recipients are looked up in; [`settings`] holds `[smtp]` as the
//! delivery side takes it.

pub mod outbox;
pub mod people;
pub mod recipients;
pub mod rules;
pub mod settings;
