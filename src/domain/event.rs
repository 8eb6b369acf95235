//! History events: what a record's history says happened (`records show`).

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// The kind of a history event, stored as text in `record_events.event`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// Stored from a message.
    Created,
    /// Stored from a quarantine entry after a config fix.
    Released,
    /// A pending request classified.
    Triaged,
    /// A field completed during triage (`--set`).
    FieldSet,
    /// Work started.
    StatusChanged,
    Resolved,
    Accepted,
    Rejected,
    /// A `[[notify]]` rule fired: a notification waits in the outbox.
    NotificationQueued,
    /// A notification about the record was delivered to the SMTP server.
    NotificationSent,
    /// A notification was given up: nobody could be addressed (e.g. no enabled gm in the
    /// branch), or its attempts were exhausted, or the server refused it.
    NotificationFailed,
    /// A failed notification queued again (`notifications retry`).
    NotificationRetried,
}

impl EventKind {
    const ALL: [EventKind; 12] = [
        EventKind::Created,
        EventKind::Released,
        EventKind::Triaged,
        EventKind::FieldSet,
        EventKind::StatusChanged,
        EventKind::Resolved,
        EventKind::Accepted,
        EventKind::Rejected,
        EventKind::NotificationQueued,
        EventKind::NotificationSent,
        EventKind::NotificationFailed,
        EventKind::NotificationRetried,
    ];

    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Created => "created",
            EventKind::Released => "released",
            EventKind::Triaged => "triaged",
            EventKind::FieldSet => "field set",
            EventKind::StatusChanged => "status changed",
            EventKind::Resolved => "resolved",
            EventKind::Accepted => "accepted",
            EventKind::Rejected => "rejected",
            EventKind::NotificationQueued => "notification queued",
            EventKind::NotificationSent => "notification sent",
            EventKind::NotificationFailed => "notification failed",
            EventKind::NotificationRetried => "notification retried",
        }
    }
}

/// A stored text that names no event kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a history event")]
pub struct UnknownEvent(pub String);

impl FromStr for EventKind {
    type Err = UnknownEvent;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        EventKind::ALL
            .into_iter()
            .find(|e| e.as_str() == text)
            .ok_or_else(|| UnknownEvent(text.to_string()))
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl Serialize for EventKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_text_round_trips() {
        for kind in EventKind::ALL {
            assert_eq!(kind.as_str().parse::<EventKind>(), Ok(kind));
        }
        assert_eq!("field set".parse::<EventKind>(), Ok(EventKind::FieldSet));
        assert!("deleted".parse::<EventKind>().is_err());
    }
}
