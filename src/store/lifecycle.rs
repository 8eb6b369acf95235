//! After intake: triage of pending service requests, status changes, and the history
//! event each change leaves (seed 000's 服务指派, seed 001's accept/reject).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{record_events, records};
use super::write::{add_event, now};
use super::{Store, StoreError};
use crate::map::declarative::{ServiceRequest, Target};

/// How a pending request is classified (受信 / 咨询 / 投诉).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Triage {
    Fault,
    Consult,
    Complaint,
}

impl Triage {
    pub fn parse(text: &str) -> Option<Triage> {
        match text {
            "fault" => Some(Triage::Fault),
            "consult" => Some(Triage::Consult),
            "complaint" => Some(Triage::Complaint),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Triage::Fault => "fault",
            Triage::Consult => "consult",
            Triage::Complaint => "complaint",
        }
    }
}

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

/// Sets one service field by its config name (`--set elevator-no=3`).
fn set_field(service: &mut ServiceRequest, target: Target, value: String) -> Result<(), String> {
    let slot = match target {
        Target::SubType => &mut service.sub_type,
        Target::Source => &mut service.source,
        Target::Owner => &mut service.owner,
        Target::Contact => &mut service.contact,
        Target::ContactPhone => &mut service.contact_phone,
        Target::Gender => &mut service.gender,
        Target::Region => &mut service.region,
        Target::Site => &mut service.site,
        Target::Building => &mut service.building,
        Target::Address => &mut service.address,
        Target::Content => &mut service.content,
        Target::Identity => &mut service.identity,
        Target::ElevatorNo => &mut service.elevator_no,
        Target::CustomerId => &mut service.customer_id,
        other => {
            return Err(format!(
                "`{}` cannot be set on a service request",
                other.name()
            ));
        }
    };
    *slot = Some(value);
    Ok(())
}

impl Store {
    fn service_of(&mut self, id: i64) -> Result<(ServiceRequest, Option<String>), StoreError> {
        let (service, description): (Option<String>, Option<String>) = records::table
            .find(id)
            .select((records::service, records::description))
            .first(&mut self.conn)
            .optional()?
            .ok_or(StoreError::NoRecord(id))?;
        let service = service
            .and_then(|json| serde_json::from_str(&json).ok())
            .ok_or_else(|| StoreError::Refused {
                id,
                message: "is not a service request".into(),
            })?;
        Ok((service, description))
    }

    /// Classifies a pending request. The content follows the seed's rule: a complaint gets
    /// identity + ":" + description, the others the description. `sets` then complete
    /// fields the hotline knows (branch, elevator number, ...). One history event each.
    pub fn triage(
        &mut self,
        id: i64,
        outcome: Triage,
        sets: &[(Target, String)],
        actor: &str,
    ) -> Result<(), StoreError> {
        let (mut service, description) = self.service_of(id)?;
        if service.request_type != "pending" {
            return Err(StoreError::Refused {
                id,
                message: format!("is a {} request, not pending triage", service.request_type),
            });
        }
        service.request_type = outcome.as_str().to_string();
        let description = description.unwrap_or_default();
        service.content = Some(match (outcome, service.identity.as_deref()) {
            (Triage::Complaint, Some(identity)) => format!("{identity}:{description}"),
            _ => description,
        });
        for (target, value) in sets {
            set_field(&mut service, *target, value.clone())
                .map_err(|message| StoreError::Refused { id, message })?;
        }
        self.conn.immediate_transaction(|conn| {
            diesel::update(records::table.find(id))
                .set((
                    records::request_type.eq(&service.request_type),
                    records::service.eq(serde_json::to_string(&service).unwrap_or_default()),
                    records::updated_at.eq(now()),
                ))
                .execute(conn)?;
            add_event(
                conn,
                id,
                actor,
                "triaged",
                Some(&format!("as {}", outcome.as_str())),
            )?;
            for (target, value) in sets {
                add_event(
                    conn,
                    id,
                    actor,
                    "field set",
                    Some(&format!("{} = {value}", target.name())),
                )?;
            }
            QueryResult::Ok(())
        })?;
        Ok(())
    }

    /// Moves a record to `status`, keeping `result` when given; `event` names the change in
    /// the history (e.g. `resolved`, `rejected`) with `detail`.
    pub fn change_status(
        &mut self,
        id: i64,
        status: &str,
        result: Option<&str>,
        event: &str,
        detail: Option<&str>,
        actor: &str,
    ) -> Result<String, StoreError> {
        let old: String = records::table
            .find(id)
            .select(records::status)
            .first(&mut self.conn)
            .optional()?
            .ok_or(StoreError::NoRecord(id))?;
        self.conn.immediate_transaction(|conn| {
            diesel::update(records::table.find(id))
                .set((records::status.eq(status), records::updated_at.eq(now())))
                .execute(conn)?;
            if let Some(result) = result {
                diesel::update(records::table.find(id))
                    .set(records::result.eq(result))
                    .execute(conn)?;
            }
            let change = format!("{old} -> {status}");
            let detail = match detail {
                Some(d) => format!("{change}: {d}"),
                None => change,
            };
            add_event(conn, id, actor, event, Some(&detail))
        })?;
        Ok(old)
    }

    /// Ids of service requests for the triage list, oldest first.
    pub fn triage_ids(&mut self, filter: &TriageFilter) -> Result<Vec<i64>, StoreError> {
        let triaged = record_events::table
            .filter(record_events::event.eq("triaged"))
            .select(record_events::record_id);
        let mut query = records::table
            .select(records::id)
            .filter(records::service.is_not_null())
            .order(records::id.asc())
            .into_boxed();
        query = match filter.state {
            TriageState::Unprocessed => query.filter(records::request_type.eq("pending")),
            TriageState::Processed => query.filter(records::id.eq_any(triaged)),
            TriageState::All => query.filter(
                records::request_type.eq("pending").or(records::id.eq_any(
                    record_events::table
                        .filter(record_events::event.eq("triaged"))
                        .select(record_events::record_id),
                )),
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
