//! Notifications: the rules that queue them in the outbox (the `notifications` table, written
//! in the transaction of the change that triggers them), and their delivery.
//!
//! - [`smtp`]: one notification as one e-mail (headers that cannot be broken, a stable
//!   `Message-ID`, `Auto-Submitted`), handed to the server by lettre;
//! - [`dispatch`]: claims due rows, sends them, retries with backoff, marks them `sent` or
//!   `failed`; run by the daemon, by the CLI before it exits, and by `notifications send`.

pub mod dispatch;
pub mod smtp;
