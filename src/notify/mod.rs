//! Notify stage: who is told of what happens to a record, the outbox that tells them, and
//! the delivery.
//!
//! [`rules`] (pure) decides which `[[notify]]` rules fire for an event on a record and
//! renders their subject, body and recipients, header-safe; [`outbox`] writes what fired as
//! `queued` rows of the `notifications` table inside the transaction that made the change,
//! with a history event each, and reads the log back; [`people`] is the directory that
//! `directory:ROLE` recipients are looked up in; [`settings`] holds `[smtp]` as the
//! delivery side takes it; [`text`] is what payload text may become in a header or a body.
//!
//! - [`smtp`]: one notification as one e-mail (headers that cannot be broken, a stable
//!   `Message-ID`, `Auto-Submitted`), handed to the server by lettre;
//! - [`dispatch`]: claims due rows, sends them, retries with backoff, marks them `sent` or
//!   `failed`; run by the daemon, by the CLI before it exits, and by `notifications send`.

pub mod dispatch;
pub mod outbox;
pub mod people;
pub mod recipients;
pub mod rules;
pub mod settings;
pub mod smtp;
pub mod text;
