//! Service request types: the seed's 咨询 / 受信 / 投诉, and "awaiting triage" (服务指派).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The type of a service request, as stored (`records.request_type` and the service JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestType {
    /// 咨询; what a format without a `type` field gives.
    #[default]
    Consult,
    /// 受信: a fault report.
    Fault,
    /// 投诉.
    Complaint,
    /// Not classified yet: waits in the triage list.
    Pending,
}

impl RequestType {
    const ALL: [RequestType; 4] = [
        RequestType::Consult,
        RequestType::Fault,
        RequestType::Complaint,
        RequestType::Pending,
    ];

    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestType::Consult => "consult",
            RequestType::Fault => "fault",
            RequestType::Complaint => "complaint",
            RequestType::Pending => "pending",
        }
    }
}

/// A text that names no request type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not one of consult, fault, complaint, pending")]
pub struct UnknownRequestType(pub String);

impl FromStr for RequestType {
    type Err = UnknownRequestType;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        RequestType::ALL
            .into_iter()
            .find(|t| t.as_str() == text)
            .ok_or_else(|| UnknownRequestType(text.to_string()))
    }
}

impl fmt::Display for RequestType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// What triage classifies a pending request as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Triage {
    Fault,
    Consult,
    Complaint,
}

impl Triage {
    pub fn parse(text: &str) -> Option<Triage> {
        match text.parse() {
            Ok(RequestType::Fault) => Some(Triage::Fault),
            Ok(RequestType::Consult) => Some(Triage::Consult),
            Ok(RequestType::Complaint) => Some(Triage::Complaint),
            Ok(RequestType::Pending) | Err(_) => None,
        }
    }

    /// The type the request gets.
    pub fn request_type(self) -> RequestType {
        match self {
            Triage::Fault => RequestType::Fault,
            Triage::Consult => RequestType::Consult,
            Triage::Complaint => RequestType::Complaint,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.request_type().as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_text_round_trips_and_matches_the_json() {
        for t in RequestType::ALL {
            assert_eq!(t.as_str().parse::<RequestType>(), Ok(t));
            assert_eq!(
                serde_json::to_string(&t).unwrap(),
                format!("\"{}\"", t.as_str())
            );
        }
        assert_eq!(
            "urgent".parse::<RequestType>().unwrap_err().to_string(),
            "`urgent` is not one of consult, fault, complaint, pending"
        );
    }

    #[test]
    fn triage_outcomes_exclude_pending() {
        assert_eq!(Triage::parse("complaint"), Some(Triage::Complaint));
        assert_eq!(Triage::parse("pending"), None);
        assert_eq!(Triage::Fault.as_str(), "fault");
    }
}
