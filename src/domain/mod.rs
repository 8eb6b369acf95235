//! Domain: the values a record is made of, parsed once at the mapping boundary, and the
//! business rules, as pure functions over them (no I/O, unit-tested without a database).
//!
//! Values: [`Inn`], [`Phone`], [`RequestType`], record statuses ([`status`]) and history
//! events ([`EventKind`]), each mapped to its stored text in its own file. Rules: what a
//! new record starts with ([`intake`]: status, counterparty, number, tech cards) and what
//! may happen to it afterwards ([`workflow`]: triage, status changes). The store asks these
//! functions and persists their answers inside its transactions.

pub mod access;
pub mod event;
pub mod inn;
pub mod intake;
pub mod phone;
pub mod request_type;
pub mod role;
pub mod status;
pub mod workflow;

pub use access::{Need, TokenScope, api_actor};
pub use event::EventKind;
pub use inn::Inn;
pub use intake::UnknownCustomer;
pub use phone::{Phone, phone_digits};
pub use request_type::{RequestType, Triage};
pub use role::Role;
pub use status::{Stage, StatusNames};
pub use workflow::{Refusal, StatusChange};
