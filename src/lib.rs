//! mailintake: website form e-mails become leads and orders, exactly once.
//!
//! The pipeline has one module per stage: [`source`] reads mailboxes, [`decode`] finds the
//! payload, [`map`] turns it into a typed [`map::Record`], [`store`] commits it with its ledger
//! row, and [`ingest`] ties them together for one collector pass. [`cli`] sits on top.
//! [`domain`] holds what map and store share: the typed values a record is made of (INN,
//! phone, request type, statuses, history events) and the business rules, as pure functions.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod decode;
pub mod domain;
pub mod ingest;
pub mod map;
pub mod source;
pub mod store;
