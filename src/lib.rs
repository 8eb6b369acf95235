//! mailintake: website form e-mails become leads, orders and service requests, exactly once.
//!
//! # From a message's bytes to its stored record
//!
//! ```text
//!  collectors.toml ──> config ─────────────── each stage gets its part ──────────────┐
//!                                                                                    v
//!  source ──────────> decode ───────────> mapping ──────────> store ──────> source
//!  Mailbox::read      subject keyword,    payload format      one transaction:  acknowledge
//!  (IMAP, Maildir)    MIME attachment,    -> typed Record     record + ledger   (seen/move/
//!  positions, bytes   charset, envelope   (domain values)     row, or the       delete) or
//!                     -> Verdict          -> Mapped           quarantine        set aside
//!                                                             -> Committed
//!  └──────────────────────── ingest: one collector pass, batch by batch ─────────────┘
//!                     daemon: every collector on its schedule (cron, IDLE, backoff)
//!                     cli: parse, collect, run, records, quarantine, collectors, check
//! ```
//!
//! 1. [`source`] lists what is new in a mailbox and reads it in batches: a [`source::Mailbox`]
//!    per kind (`source/imap/`, `source/maildir.rs`); it later acknowledges or sets aside.
//! 2. [`decode`] (pure) finds out whether a message is for us (the subject keyword), which
//!    attachment holds the payload and in which charset, and fingerprints the message for the
//!    ledger: a [`decode::Verdict`].
//! 3. [`mapping`] (pure) turns the payload into a [`mapping::Record`] through the collector's
//!    format (the built-in order file, or a declarative `[[format]]` of templates), parsing
//!    its values into [`domain`] types (INN, phone, request type) on the way.
//! 4. [`store`] (diesel, SQLite) commits a batch in one transaction: each record with its
//!    ledger row, counterparty, contact, tech cards and first history event, or the raw
//!    message into the quarantine; only then is the mailbox acknowledged. The business rules
//!    it applies (workflow transitions, triage, numbering, the unknown-customer fallback)
//!    are decided by pure functions in [`domain`].
//! 5. [`ingest`] is the collector pass that runs 1–4 for one collector, the same loop for
//!    every source; [`daemon`] runs passes on schedules; [`cli`] is the command line.
//!    [`config`] reads `collectors.toml` into plain data; no stage imports it but the
//!    ones that assemble the others (ingest, daemon, cli).

pub mod cli;
pub mod config;
pub mod daemon;
pub mod decode;
pub mod domain;
pub mod ingest;
pub mod mapping;
pub mod metrics;
pub mod notify;
pub mod secret;
pub mod source;
pub mod store;
pub mod web;
