//! The integration tests, one binary (as crates.io does): every module below is an area of
//! behaviour, and all of them share one kit (`tests/kit/`), so no helper is copied and none
//! is unused.
//!
//! They run the real `mailintake` binary on temp folders (real Maildirs and SQLite files)
//! and against a real Dovecot the tests start; `cargo test --test integration imap::` runs
//! one area.

#[path = "../kit/mod.rs"]
mod kit;

mod api;
mod backend_matrix;
mod calendar;
mod collect;
mod corpus;
mod courier;
mod courier_harness;
mod daemon;
mod db_copy;
mod dovecot_harness;
mod durable;
mod formats;
mod forms;
mod hostile;
mod imap;
mod imap_servers;
mod intake;
mod migrate;
mod notifications;
mod notify;
mod notify_e2e;
mod notify_safety;
mod observe;
mod parse_samples;
mod postgres;
mod record_source;
mod size_limits;
mod store_backends;
mod terminal;
mod tokens;
mod web;
mod web_browser;
mod work_sharing;
