//! Retrying a quarantined message after a config fix: decode its kept bytes again with the
//! current config of the collector it came from, and release it as a record if it now
//! passes. A request body kept from the HTTP intake is decoded as a body again.
//! `quarantine retry` and the review page's retry button both come here.

use crate::config::Config;
use crate::store::{Store, StoreError};

use super::{Mapped, TOO_LARGE, prepare, prepare_body};

/// What a retry decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retried {
    /// Decoded and stored as this record.
    Accepted { record_id: i64 },
    /// Still undecodable, for this (recorded) reason.
    Quarantined { reason: String },
    /// Not for us after all (no keyword); the entry stays as it was.
    Skipped { reason: String },
}

/// Why an entry cannot be retried.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    #[error("quarantine entry {id} was already released as record {record_id}")]
    AlreadyReleased { id: i64, record_id: i64 },
    #[error(
        "quarantine entry {id} keeps only the headers of a message too large to read ({reason}); the message itself is still in the mailbox at {source_key}"
    )]
    TooLarge {
        id: i64,
        reason: String,
        source_key: String,
    },
    #[error(
        "quarantine entry {id} came from collector `{collector}`, which is no longer in {config}"
    )]
    UnknownCollector {
        id: i64,
        collector: String,
        config: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Decodes quarantine entry `id` again with `config`; `actor` goes into a new record's history.
pub fn retry_quarantined(
    config: &Config,
    store: &mut Store,
    id: i64,
    actor: &str,
) -> Result<Retried, RetryError> {
    let entry = store.quarantine_entry(id)?;
    if let Some(record_id) = entry.record_id {
        return Err(RetryError::AlreadyReleased { id, record_id });
    }
    if entry.reason.starts_with(TOO_LARGE) {
        return Err(RetryError::TooLarge {
            id,
            reason: entry.reason,
            source_key: entry.source_key,
        });
    }
    let collector =
        config
            .collector(&entry.collector)
            .ok_or_else(|| RetryError::UnknownCollector {
                id,
                collector: entry.collector.clone(),
                config: config.path.display().to_string(),
            })?;
    // A request body posted over HTTP is decoded as a body, with the charset it was sent
    // with; everything else is a message.
    let prepared = match store.intake_origin(id)? {
        Some(origin) => prepare_body(
            &entry.raw,
            origin.content_type.as_deref(),
            &collector.rules,
            &collector.format,
        ),
        None => prepare(&entry.raw, &collector.rules, &collector.format),
    };
    Ok(match prepared.mapped {
        Mapped::Accept(record) => Retried::Accepted {
            record_id: store.release_quarantine(id, &collector.queue, &record, actor)?,
        },
        Mapped::Quarantine(reason) => {
            store.update_quarantine_reason(id, &reason)?;
            Retried::Quarantined { reason }
        }
        Mapped::Skip(reason) => Retried::Skipped { reason },
    })
}
