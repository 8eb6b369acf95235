//! HTTP intake (issue 11): one posted request committed exactly once.
//!
//! A request is stored as a message is: its record with lines, tech cards, history and
//! notification outbox rows (or its quarantine entry), in one transaction. What the ledger
//! does for messages, the `http_intake` table does for requests, in the same transaction: a
//! request whose Idempotency-Key the collector has seen, or one without a key whose body
//! (SHA-256, byte for byte) it has accepted before, is a duplicate and gets the first
//! request's record or quarantine entry. Unique constraints enforce it (see the migration),
//! not a look-up alone, so two writers on two connections cannot both store one request.

use crate::store::{AnyConnection, on_backend};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::insert::{IdCache, RecordRows, now, stage_record};
use super::rows::NewQuarantine;
use super::schema::{http_intake, http_intake_bodies, quarantine, records};
use super::write::{Incoming, QUARANTINE_OPEN, Unusable};
use super::{Store, StoreError};
use crate::domain::intake;
use crate::notify::outbox;
use crate::notify::rules::{NotifyRules, Trigger};

/// One posted request, decoded and mapped, ready to commit.
#[derive(Debug, Clone)]
pub struct IntakeRequest {
    /// The name of the token that posted it (history, and the `http_intake` row).
    pub token: String,
    pub idempotency_key: Option<String>,
    /// The `Content-Type` as sent: its charset decodes the body again on a retry.
    pub content_type: Option<String>,
    /// The body as a message: `source_key` names the request in the quarantine, `raw` is the
    /// body byte for byte, the fingerprint its SHA-256.
    pub incoming: Incoming,
}

/// What became of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntakeOutcome {
    /// Stored as this record, now or by the first request it duplicates (then also when that
    /// one was quarantined and has since been released as this record).
    Accepted {
        record_id: i64,
        number: Option<String>,
        duplicate: bool,
    },
    /// Kept in the quarantine, now or by the first request it duplicates.
    Quarantined {
        quarantine_id: i64,
        reason: String,
        duplicate: bool,
    },
}

/// Where a quarantine entry came from when it came over HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntakeOrigin {
    pub token: String,
    pub content_type: Option<String>,
}

#[derive(Insertable)]
#[diesel(table_name = http_intake, treat_none_as_default_value = false)]
struct NewIntake<'a> {
    collector: &'a str,
    token: &'a str,
    idempotency_key: Option<&'a str>,
    body_sha256: &'a str,
    content_type: Option<&'a str>,
    record_id: Option<i64>,
    quarantine_id: Option<i64>,
    created_at: chrono::NaiveDateTime,
}

impl Store {
    /// Commits `request`, posted to `collector` (routed to `queue`), in one IMMEDIATE
    /// transaction, or finds the request it duplicates.
    pub fn commit_intake(
        &mut self,
        collector: &str,
        queue: &str,
        request: &IntakeRequest,
    ) -> Result<IntakeOutcome, StoreError> {
        let ids = &mut self.ids;
        let rules = &self.notify;
        let mut retried = false;
        loop {
            let result = self.conn.write_transaction(|conn| {
                commit_request(conn, ids, rules, collector, queue, request)
            });
            match result {
                Ok(outcome) => return Ok(outcome),
                // NOTE: another connection stored the same key or body between the look-up
                // and the insert (several daemons on PostgreSQL; SQLite's write lock
                // serialises writers already): the second attempt finds the first request.
                Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _))
                    if !retried =>
                {
                    ids.clear();
                    retried = true;
                }
                Err(e) => {
                    ids.clear();
                    return Err(e.into());
                }
            }
        }
    }

    /// The HTTP request quarantine entry `quarantine_id` was made from; none for a message.
    pub fn intake_origin(
        &mut self,
        quarantine_id: i64,
    ) -> Result<Option<IntakeOrigin>, StoreError> {
        let found = http_intake::table
            .filter(http_intake::quarantine_id.eq(quarantine_id))
            .select((http_intake::token, http_intake::content_type))
            .first::<(String, Option<String>)>(&mut self.conn)
            .optional()?;
        Ok(found.map(|(token, content_type)| IntakeOrigin {
            token,
            content_type,
        }))
    }
}

fn commit_request(
    conn: &mut AnyConnection,
    ids: &mut IdCache,
    rules: &NotifyRules,
    collector: &str,
    queue: &str,
    request: &IntakeRequest,
) -> QueryResult<IntakeOutcome> {
    let body_sha256 = request.incoming.envelope.fingerprint.to_string();
    let key = request.idempotency_key.as_deref();
    // NOTE: `get_result`, not `first`, on this path run per request: see
    // `counterparty_by_inn` in insert.rs.
    let first = match key {
        Some(key) => http_intake::table
            .filter(http_intake::collector.eq(collector))
            .filter(http_intake::idempotency_key.eq(key))
            .select((http_intake::record_id, http_intake::quarantine_id))
            .get_result::<(Option<i64>, Option<i64>)>(conn)
            .optional()?,
        None => http_intake_bodies::table
            .inner_join(http_intake::table)
            .filter(http_intake_bodies::collector.eq(collector))
            .filter(http_intake_bodies::body_sha256.eq(&body_sha256))
            .select((http_intake::record_id, http_intake::quarantine_id))
            .get_result::<(Option<i64>, Option<i64>)>(conn)
            .optional()?,
    };
    if let Some((record_id, quarantine_id)) = first {
        return duplicate_of(conn, record_id, quarantine_id);
    }

    let incoming = &request.incoming;
    let (record_id, quarantine_id, outcome) = match &incoming.record {
        Ok(record) => {
            let actor = crate::domain::api_actor(&request.token);
            let mut rows = RecordRows::default();
            let id = stage_record(conn, ids, collector, queue, record, &actor, &mut rows)?;
            // stage_record words its `created` event for a message; this one came over HTTP.
            rows.reword_created(
                id,
                intake::created_over_http_detail(record, &request.token, key),
            );
            rows.add_source(id, &incoming.raw);
            rows.flush(conn)?;
            outbox::queue_for(conn, rules, id, Trigger::Created, &actor)?;
            let outcome = IntakeOutcome::Accepted {
                record_id: id,
                number: number_of(conn, id)?,
                duplicate: false,
            };
            (Some(id), None, outcome)
        }
        Err(Unusable { reason }) => {
            let at = now();
            let id = diesel::insert_into(quarantine::table)
                .values(NewQuarantine {
                    collector,
                    source_key: &incoming.source_key,
                    message_id: None,
                    subject: None,
                    fingerprint: &body_sha256,
                    reason,
                    raw: &incoming.raw,
                    status: QUARANTINE_OPEN,
                    created_at: at,
                    updated_at: at,
                })
                .returning(quarantine::id)
                .get_result::<i64>(conn)?;
            let outcome = IntakeOutcome::Quarantined {
                quarantine_id: id,
                reason: reason.clone(),
                duplicate: false,
            };
            (None, Some(id), outcome)
        }
    };
    let intake_id: i64 = diesel::insert_into(http_intake::table)
        .values(NewIntake {
            collector,
            token: &request.token,
            idempotency_key: key,
            body_sha256: &body_sha256,
            content_type: request.content_type.as_deref(),
            record_id,
            quarantine_id,
            created_at: now(),
        })
        .returning(http_intake::id)
        .get_result(conn)?;
    let claim = diesel::insert_into(http_intake_bodies::table).values((
        http_intake_bodies::collector.eq(collector),
        http_intake_bodies::body_sha256.eq(&body_sha256),
        http_intake_bodies::intake_id.eq(intake_id),
    ));
    if key.is_some() {
        // A keyed request is new by its key alone; it claims its body only if no request
        // has, so that a later copy without a key is its duplicate.
        on_backend!(conn, c => claim.on_conflict_do_nothing().execute(c))?;
    } else {
        claim.execute(conn)?;
    }
    Ok(outcome)
}

/// The answer to a duplicate of the request that made `record_id` or `quarantine_id`: its
/// record, also when its quarantine entry has since been released as one.
fn duplicate_of(
    conn: &mut AnyConnection,
    record_id: Option<i64>,
    quarantine_id: Option<i64>,
) -> QueryResult<IntakeOutcome> {
    let record_id = match (record_id, quarantine_id) {
        (Some(record_id), _) => record_id,
        (None, Some(quarantine_id)) => {
            let (released, reason): (Option<i64>, String) = quarantine::table
                .find(quarantine_id)
                .select((quarantine::record_id, quarantine::reason))
                .get_result(conn)?;
            let Some(record_id) = released else {
                return Ok(IntakeOutcome::Quarantined {
                    quarantine_id,
                    reason,
                    duplicate: true,
                });
            };
            record_id
        }
        // NOTE: a CHECK constraint gives every row one of the two.
        (None, None) => return Err(DieselError::NotFound),
    };
    Ok(IntakeOutcome::Accepted {
        record_id,
        number: number_of(conn, record_id)?,
        duplicate: true,
    })
}

fn number_of(conn: &mut AnyConnection, record_id: i64) -> QueryResult<Option<String>> {
    records::table
        .find(record_id)
        .select(records::number)
        .get_result(conn)
}

#[cfg(test)]
mod tests {
    use diesel::prelude::*;
    use diesel::result::{DatabaseErrorKind, Error as DieselError};

    use super::*;
    use crate::store::tests::store_with_a_lead;

    fn row<'a>(key: Option<&'a str>, record_id: i64) -> NewIntake<'a> {
        NewIntake {
            collector: "c",
            token: "t",
            idempotency_key: key,
            body_sha256: "ab",
            content_type: None,
            record_id: Some(record_id),
            quarantine_id: None,
            created_at: now(),
        }
    }

    fn unique_violation(result: QueryResult<usize>) -> bool {
        matches!(
            result,
            Err(DieselError::DatabaseError(
                DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }

    /// What a second daemon would hit if it skipped the look-up: the constraints themselves
    /// refuse a second request under one key, and a second claim of one body.
    #[test]
    fn the_database_refuses_a_key_or_a_body_claim_twice() {
        let (_dir, mut store, id) = store_with_a_lead();
        let conn = &mut store.conn;
        let insert = |conn: &mut AnyConnection, key| {
            diesel::insert_into(http_intake::table)
                .values(row(key, id))
                .execute(conn)
        };
        insert(conn, Some("k")).unwrap();
        assert!(unique_violation(insert(conn, Some("k"))));
        // Requests without a key are told apart by their body, not here.
        insert(conn, None).unwrap();
        insert(conn, None).unwrap();
        let claim = |conn: &mut AnyConnection| {
            diesel::insert_into(http_intake_bodies::table)
                .values((
                    http_intake_bodies::collector.eq("c"),
                    http_intake_bodies::body_sha256.eq("ab"),
                    http_intake_bodies::intake_id.eq(1_i64),
                ))
                .execute(conn)
        };
        claim(conn).unwrap();
        assert!(unique_violation(claim(conn)));
        let neither = diesel::insert_into(http_intake::table)
            .values(NewIntake {
                record_id: None,
                ..row(Some("other"), id)
            })
            .execute(conn);
        assert!(
            neither.is_err(),
            "a row with neither a record nor a quarantine entry"
        );
    }
}
