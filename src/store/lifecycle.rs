//! After intake: triage of pending service requests, status changes, and the history
//! event each change leaves (seed 000's 服务指派, seed 001's accept/reject). The rules are
//! [`crate::domain::workflow`]'s; this file reads, asks and writes in one transaction.

use crate::store::AnyConnection;
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::insert::{add_event, now};
use super::rows::{Cell, to_json};
use super::schema::{record_events, records};
use super::{Store, StoreError};
use crate::domain::workflow::{self, Refusal, StatusChange};
use crate::domain::{EventKind, RequestType, StatusNames, Triage};
use crate::mapping::declarative::{ServiceRequest, Target};
use crate::notify::outbox;
use crate::notify::rules::Trigger;

/// Which requests the triage list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TriageState {
    /// Still pending (the seed's default, 未处理).
    #[default]
    Unprocessed,
    /// Already classified.
    Processed,
    All,
}

/// Filters of the triage list (seed 000: time range, status, phone).
#[derive(Debug, Clone, Default)]
pub struct TriageFilter {
    pub state: TriageState,
    pub since: Option<NaiveDateTime>,
    pub until: Option<NaiveDateTime>,
    pub phone_digits: Option<String>,
}

/// Reads a record's service request and description, inside the caller's transaction.
fn service_of(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<(ServiceRequest, Option<String>), StoreError> {
    let (service, description): (Option<String>, Option<String>) = records::table
        .find(id)
        .select((records::service, records::description))
        .first(conn)
        .optional()?
        .ok_or(StoreError::NoRecord(id))?;
    let service = service.ok_or(StoreError::Refused {
        id,
        reason: Refusal::NotServiceRequest,
    })?;
    let service = Cell::new("records", id, "service").json(&service)?;
    Ok((service, description))
}

impl Store {
    /// Classifies a pending request, or corrects an earlier triage, as [`workflow::triage`]
    /// decides, with one history event for the triage (`as complaint (was fault)` for a
    /// correction; the first decision stays in the history) and one per field set. The
    /// request is read and written in one transaction, so two people triaging at once cannot
    /// both succeed.
    pub fn triage(
        &mut self,
        id: i64,
        outcome: Triage,
        sets: &[(Target, String)],
        actor: &str,
    ) -> Result<(), StoreError> {
        let rules = &self.notify;
        self.conn.write_transaction(|conn| {
            let (before, description) = service_of(conn, id)?;
            let triaged_before = diesel::select(diesel::dsl::exists(
                record_events::table
                    .filter(record_events::record_id.eq(id))
                    .filter(record_events::event.eq(EventKind::Triaged.as_str())),
            ))
            .get_result::<bool>(conn)?;
            let service = workflow::triage(
                &before,
                description.as_deref(),
                outcome,
                sets,
                triaged_before,
            )
            .map_err(|reason| StoreError::Refused { id, reason })?;
            diesel::update(records::table.find(id))
                .set((
                    records::request_type.eq(service.request_type.as_str()),
                    records::service.eq(to_json(&service)?),
                    records::updated_at.eq(now()),
                ))
                .execute(conn)?;
            add_event(
                conn,
                id,
                actor,
                EventKind::Triaged,
                Some(&match before.request_type {
                    RequestType::Pending => format!("as {}", outcome.as_str()),
                    was => format!("as {} (was {was})", outcome.as_str()),
                }),
            )?;
            for (target, value) in sets {
                add_event(
                    conn,
                    id,
                    actor,
                    EventKind::FieldSet,
                    Some(&format!("{} = {value}", target.name())),
                )?;
            }
            outbox::queue_firing(conn, rules, id, Trigger::Triaged, actor, triaged_before)?;
            Ok(())
        })
    }

    /// Applies a status change if the workflow allows it from the record's current status
    /// (read in the same transaction that writes the new one); returns the new status.
    pub fn change_status(
        &mut self,
        id: i64,
        names: &StatusNames,
        change: StatusChange<'_>,
        actor: &str,
    ) -> Result<String, StoreError> {
        let rules = &self.notify;
        self.conn.write_transaction(|conn| {
            let old: String = records::table
                .find(id)
                .select(records::status)
                .first(conn)
                .optional()?
                .ok_or(StoreError::NoRecord(id))?;
            let decided = workflow::change_status(names, &old, change)
                .map_err(|reason| StoreError::Refused { id, reason })?;
            diesel::update(records::table.find(id))
                .set((
                    records::status.eq(decided.status),
                    records::updated_at.eq(now()),
                ))
                .execute(conn)?;
            if let Some(result) = decided.result {
                diesel::update(records::table.find(id))
                    .set(records::result.eq(result))
                    .execute(conn)?;
            }
            add_event(conn, id, actor, decided.event, Some(&decided.detail))?;
            outbox::queue_for(conn, rules, id, Trigger::Status, actor)?;
            Ok(decided.status.to_string())
        })
    }

    /// Ids of service requests for the triage list, oldest first.
    pub fn triage_ids(&mut self, filter: &TriageFilter) -> Result<Vec<i64>, StoreError> {
        let triaged = || {
            record_events::table
                .filter(record_events::event.eq(EventKind::Triaged.as_str()))
                .select(record_events::record_id)
        };
        let pending = RequestType::Pending.as_str();
        let mut query = records::table
            .select(records::id)
            .filter(records::service.is_not_null())
            .order(records::id.asc())
            .into_boxed();
        query = match filter.state {
            TriageState::Unprocessed => query.filter(records::request_type.eq(pending)),
            TriageState::Processed => query.filter(records::id.eq_any(triaged())),
            TriageState::All => query.filter(
                records::request_type
                    .eq(pending)
                    .or(records::id.eq_any(triaged())),
            ),
        };
        if let Some(since) = filter.since {
            query = query.filter(records::created_at.ge(since));
        }
        if let Some(until) = filter.until {
            query = query.filter(records::created_at.lt(until));
        }
        if let Some(digits) = &filter.phone_digits {
            query = query.filter(records::phone_digits.like(format!("%{digits}")));
        }
        Ok(query.load(&mut self.conn)?)
    }

    /// Records of the contacts with this phone (seed 004's customer look-up). A number
    /// given with a country code (`+86 138...`) finds the contact stored without it, and
    /// the reverse.
    pub fn contact_record_ids(&mut self, digits: &str) -> Result<Vec<i64>, StoreError> {
        use super::schema::contacts;
        const SHORTEST: usize = 7;
        let suffixes: Vec<&str> = (0..digits.len().saturating_sub(SHORTEST - 1))
            .map(|i| &digits[i..])
            .collect();
        let contacts: Vec<i64> = contacts::table
            .filter(
                contacts::phone_digits
                    .eq_any(&suffixes)
                    .or(contacts::phone_digits.like(format!("%{digits}"))),
            )
            .select(contacts::id)
            .load(&mut self.conn)?;
        Ok(records::table
            .filter(records::contact_id.eq_any(contacts))
            .order(records::id.asc())
            .select(records::id)
            .load(&mut self.conn)?)
    }
}
