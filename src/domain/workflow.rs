//! After intake: triage of pending service requests and status changes, decided without a
//! database. The store reads the current state, asks here, and writes the answer in the
//! same transaction.
//!
//! Statuses follow new -> in progress -> resolved -> accepted | rejected (seed 001): work
//! starts on a new, rejected or out-of-workflow record (the unknown-customer status); it is
//! resolved from any of those or while in progress, even again after a rejection; only a
//! resolved record awaits the customer's accept or reject; an accepted record is closed.

use super::{EventKind, RequestType, Stage, StatusNames, Triage};
use crate::mapping::declarative::{ServiceRequest, Target};

/// Why a change to a record is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("is not a service request")]
    NotServiceRequest,
    #[error("is a {0} request, not pending triage")]
    NotPending(RequestType),
    #[error("is triaged as {0} already")]
    SameTriage(RequestType),
    #[error("`{}` cannot be set on a service request", .0.name())]
    NotSettable(Target),
    #[error("cannot {action} it: its status is `{status}` ({why})")]
    Transition {
        action: &'static str,
        status: String,
        why: &'static str,
    },
}

/// Classifies a pending request, or corrects an earlier triage (`triaged_before`: the
/// history has one) by the same rules; a request whose type came from its form is not
/// triaged. The content follows the seed's rule: a complaint gets identity + ":" +
/// description, the others the description (the report's own text, so a correction starts
/// from what the customer wrote, not from the first triage's content). `sets` then complete
/// fields the hotline knows (branch, elevator number, ...).
pub fn triage(
    service: &ServiceRequest,
    description: Option<&str>,
    outcome: Triage,
    sets: &[(Target, String)],
    triaged_before: bool,
) -> Result<ServiceRequest, Refusal> {
    match service.request_type {
        RequestType::Pending => {}
        current if !triaged_before => return Err(Refusal::NotPending(current)),
        current if current == outcome.request_type() => {
            return Err(Refusal::SameTriage(current));
        }
        _ => {}
    }
    let mut service = service.clone();
    service.request_type = outcome.request_type();
    let description = description.unwrap_or_default();
    service.content = Some(match (outcome, service.identity.as_deref()) {
        (Triage::Complaint, Some(identity)) => format!("{identity}:{description}"),
        _ => description.to_string(),
    });
    for (target, value) in sets {
        *field_mut(&mut service, *target)? = Some(value.clone());
    }
    Ok(service)
}

/// The service field a `--set FIELD=VALUE` names.
fn field_mut(service: &mut ServiceRequest, target: Target) -> Result<&mut Option<String>, Refusal> {
    Ok(match target {
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
        Target::Branch => &mut service.branch,
        other => return Err(Refusal::NotSettable(other)),
    })
}

/// A status change someone asks for (`records start|resolve|accept|reject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChange<'a> {
    Start,
    /// Records the solution.
    Resolve {
        result: &'a str,
    },
    Accept,
    Reject {
        reason: &'a str,
    },
}

/// What an allowed status change writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusDecision<'a> {
    pub status: &'a str,
    /// The solution text to keep, when it changes.
    pub result: Option<&'a str>,
    pub event: EventKind,
    /// The history detail: `old -> new`, and the result or reason.
    pub detail: String,
}

/// Decides a status change of a record whose status is `current`.
pub fn change_status<'a>(
    names: &'a StatusNames,
    current: &str,
    change: StatusChange<'a>,
) -> Result<StatusDecision<'a>, Refusal> {
    let from = names.stage(current);
    let (action, to, event, note) = match change {
        StatusChange::Start => ("start", Stage::InProgress, EventKind::StatusChanged, None),
        StatusChange::Resolve { result } => (
            "resolve",
            Stage::Resolved,
            EventKind::Resolved,
            Some(result),
        ),
        StatusChange::Accept => ("accept", Stage::Accepted, EventKind::Accepted, None),
        StatusChange::Reject { reason } => {
            ("reject", Stage::Rejected, EventKind::Rejected, Some(reason))
        }
    };
    if let Some(why) = refusal(from, to) {
        return Err(Refusal::Transition {
            action,
            status: current.to_string(),
            why,
        });
    }
    let status = names.text(to).unwrap_or_default();
    let change_text = format!("{current} -> {status}");
    Ok(StatusDecision {
        status,
        result: match change {
            StatusChange::Resolve { result } => Some(result),
            _ => None,
        },
        event,
        detail: match note {
            Some(note) => format!("{change_text}: {note}"),
            None => change_text,
        },
    })
}

/// Why a record at stage `from` cannot move to `to`, or `None` when it can.
fn refusal(from: Stage, to: Stage) -> Option<&'static str> {
    use Stage::*;
    match (from, to) {
        (Accepted, _) => Some("an accepted record is closed"),
        (New | Rejected | Outside, InProgress | Resolved) | (InProgress, Resolved) => None,
        (Resolved, Accepted | Rejected) => None,
        (Resolved, _) => Some("the customer accepts or rejects the solution first"),
        (InProgress, InProgress) => Some("work has started already"),
        (_, Accepted | Rejected) => Some("only a resolved record awaits the customer's answer"),
        (_, New | Outside) => Some("a record does not go back to that status"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending() -> ServiceRequest {
        ServiceRequest {
            request_type: RequestType::Pending,
            identity: Some("物业".into()),
            ..ServiceRequest::default()
        }
    }

    #[test]
    fn a_complaint_gets_identity_and_description_the_others_the_description() {
        let complaint =
            triage(&pending(), Some("电梯困人"), Triage::Complaint, &[], false).unwrap();
        assert_eq!(complaint.request_type, RequestType::Complaint);
        assert_eq!(complaint.content.as_deref(), Some("物业:电梯困人"));
        let fault = triage(
            &pending(),
            Some("电梯困人"),
            Triage::Fault,
            &[(Target::ElevatorNo, "3号梯".into())],
            false,
        )
        .unwrap();
        assert_eq!(fault.content.as_deref(), Some("电梯困人"));
        assert_eq!(fault.elevator_no.as_deref(), Some("3号梯"));
    }

    #[test]
    fn only_pending_requests_are_triaged_and_only_service_fields_set() {
        let fault = triage(&pending(), None, Triage::Fault, &[], false).unwrap();
        assert_eq!(
            triage(&fault, None, Triage::Consult, &[], false),
            Err(Refusal::NotPending(RequestType::Fault)),
            "a type from the form is not triaged"
        );
        let err = triage(
            &pending(),
            None,
            Triage::Fault,
            &[(Target::Title, "x".into())],
            false,
        );
        assert_eq!(
            err.unwrap_err().to_string(),
            "`title` cannot be set on a service request"
        );
    }

    #[test]
    fn a_wrong_triage_is_corrected_by_the_same_rules() {
        let fault = triage(&pending(), Some("电梯困人"), Triage::Fault, &[], false).unwrap();
        let complaint = triage(&fault, Some("电梯困人"), Triage::Complaint, &[], true).unwrap();
        assert_eq!(complaint.request_type, RequestType::Complaint);
        assert_eq!(complaint.content.as_deref(), Some("物业:电梯困人"));
        let back = triage(&complaint, Some("电梯困人"), Triage::Consult, &[], true).unwrap();
        assert_eq!(back.content.as_deref(), Some("电梯困人"));
        assert_eq!(
            triage(&back, None, Triage::Consult, &[], true),
            Err(Refusal::SameTriage(RequestType::Consult))
        );
    }

    #[test]
    fn the_documented_workflow_is_allowed_with_configured_names() {
        let names = StatusNames {
            resolved: "已解决".into(),
            rejected: "未解决".into(),
            ..StatusNames::default()
        };
        let steps = [
            ("new", StatusChange::Start),
            ("in-progress", StatusChange::Resolve { result: "门锁" }),
            ("已解决", StatusChange::Reject { reason: "异响" }),
            ("未解决", StatusChange::Resolve { result: "门机" }),
            ("已解决", StatusChange::Accept),
            ("customer-unknown", StatusChange::Start),
            (
                "new",
                StatusChange::Resolve {
                    result: "电话解答"
                },
            ),
        ];
        for (current, change) in steps {
            assert!(
                change_status(&names, current, change).is_ok(),
                "{current} {change:?}"
            );
        }
        let rejected = change_status(&names, "已解决", StatusChange::Reject { reason: "异响" });
        assert_eq!(
            rejected,
            Ok(StatusDecision {
                status: "未解决",
                result: None,
                event: EventKind::Rejected,
                detail: "已解决 -> 未解决: 异响".into(),
            })
        );
        let resolved = change_status(&names, "new", StatusChange::Resolve { result: "x" });
        assert_eq!(resolved.unwrap().result, Some("x"));
    }

    #[test]
    fn changes_outside_the_workflow_are_refused_with_the_reason() {
        let names = StatusNames::default();
        let refused = |current: &str, change| change_status(&names, current, change).unwrap_err();
        assert_eq!(
            refused("new", StatusChange::Accept).to_string(),
            "cannot accept it: its status is `new` (only a resolved record awaits the customer's answer)"
        );
        assert_eq!(
            refused("accepted", StatusChange::Start).to_string(),
            "cannot start it: its status is `accepted` (an accepted record is closed)"
        );
        assert!(matches!(
            refused("resolved", StatusChange::Resolve { result: "again" }),
            Refusal::Transition { .. }
        ));
        assert!(matches!(
            refused("in-progress", StatusChange::Start),
            Refusal::Transition { .. }
        ));
        assert!(matches!(
            refused("customer-unknown", StatusChange::Reject { reason: "no" }),
            Refusal::Transition { .. }
        ));
    }
}
