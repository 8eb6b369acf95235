//! The integration tests' kit: one of each helper, shared by every test module (and, for
//! the mail generator, the IMAP servers and the daemon wrapper, by the benches, which
//! include those files with `#[path]`).
//!
//! - [`backend`]: SQLite or PostgreSQL as a test parameter ([`backend::on_both_backends`]);
//! - [`sandbox`]: a temp folder with a config, Maildirs and a database, and the binary run
//!   against it;
//! - [`mail`]: the order-mail generator;
//! - [`hostile`]: hostile mail for the standing hostile-input check, from the same seeded generator;
//! - [`process`]: the daemon wrapper and `wait_until`;
//! - [`imap_server`]: what the real IMAP servers share (a trait, a small IMAP client);
//! - [`dovecot`]: a real Dovecot IMAP server per test;
//! - [`courier`]: a real Courier IMAP server per test;
//! - [`postgres`]: a real PostgreSQL server per test process, a fresh database per test;
//! - [`smtp`]: a real SMTP server (aiosmtpd) per test, and the messages it received;
//! - [`web`]: the review page on port 0 and a cookie-keeping HTTP client;
//! - [`browser`]: headless Chromium over WebDriver for the review page, and screenshots.

pub mod backend;
pub mod browser;
pub mod courier;
pub mod dovecot;
pub mod hostile;
pub mod imap_server;
pub mod mail;
pub mod postgres;
pub mod process;
pub mod sandbox;
pub mod smtp;
pub mod web;
