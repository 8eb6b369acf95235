//! The integration tests' kit: one of each helper, shared by every test module (and, for
//! the mail generator, the Dovecot harness and the daemon wrapper, by the benches, which
//! include those files with `#[path]`).
//!
//! - [`sandbox`]: a temp folder with a config, Maildirs and a database, and the binary run
//!   against it;
//! - [`mail`]: the order-mail generator;
//! - [`process`]: the daemon wrapper and `wait_until`;
//! - [`dovecot`]: a real Dovecot IMAP server per test;
//! - [`smtp`]: a real SMTP server (aiosmtpd) per test, and the messages it received.

pub mod dovecot;
pub mod mail;
pub mod process;
pub mod sandbox;
pub mod smtp;
