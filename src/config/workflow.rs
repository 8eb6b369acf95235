//! `[workflow]` and `[unknown-customer]`: how an installation names its record statuses
//! (seed 001 lets each one name them), and which status a record gets when its customer is
//! unknown.

use serde::Deserialize;

use crate::domain::StatusNames;

/// Status names of the record workflow: new -> in progress -> resolved -> accepted |
/// rejected. `[workflow]` is read straight into this: every key is optional.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Workflow {
    /// Status set by `records start`. Default: `in-progress`.
    pub in_progress: String,
    /// Status set by `records resolve`. Default: `resolved`.
    pub resolved: String,
    /// Status set by `records accept`. Default: `accepted`.
    pub accepted: String,
    /// Status set by `records reject`. Default: `rejected`.
    pub rejected: String,
    /// Statuses in which a record's result may be told to the customer (seed 001's
    /// "Ergebnis für Kunden sichtbar"): `contacts show`, the hotline's view of a caller's
    /// requests, prints the result only then. Default: the resolved, accepted and rejected
    /// statuses as named above.
    pub visible_to_customer: Option<Vec<String>>,
}

impl Default for Workflow {
    fn default() -> Self {
        Workflow {
            in_progress: "in-progress".into(),
            resolved: "resolved".into(),
            accepted: "accepted".into(),
            rejected: "rejected".into(),
            visible_to_customer: None,
        }
    }
}

impl Workflow {
    /// The four configured status names, as the workflow rules take them.
    pub fn status_names(&self) -> StatusNames {
        StatusNames {
            in_progress: self.in_progress.clone(),
            resolved: self.resolved.clone(),
            accepted: self.accepted.clone(),
            rejected: self.rejected.clone(),
        }
    }

    /// Whether a record in `status` may show its result to the customer; before that, a
    /// customer-facing view says only that the request is being worked on.
    pub fn result_visible_to_customer(&self, status: &str) -> bool {
        match &self.visible_to_customer {
            Some(statuses) => statuses.iter().any(|s| s == status),
            None => [&self.resolved, &self.accepted, &self.rejected]
                .iter()
                .any(|s| *s == status),
        }
    }
}

/// `[unknown-customer]` as written; the store's `UnknownCustomer` once read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawUnknownCustomer {
    /// Customer number (INN) of the fallback counterparty; created if missing. Required.
    pub(super) counterparty: String,
    /// Status such records get instead of `new`. Required.
    pub(super) status: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_workflow_keys_keep_their_defaults() {
        let workflow: Workflow =
            toml::from_str("resolved = \"已解决\"\nvisible-to-customer = [\"已解决\"]").unwrap();
        assert_eq!(workflow.resolved, "已解决");
        assert_eq!(workflow.in_progress, "in-progress");
        assert!(workflow.result_visible_to_customer("已解决"));
        assert!(!workflow.result_visible_to_customer("rejected"));
    }

    #[test]
    fn by_default_the_renamed_finished_statuses_show_their_result() {
        let workflow: Workflow = toml::from_str("resolved = \"已解决\"").unwrap();
        assert!(workflow.result_visible_to_customer("已解决"));
        assert!(!workflow.result_visible_to_customer("resolved"));
        assert!(workflow.result_visible_to_customer("accepted"));
    }

    #[test]
    fn by_default_only_finished_records_show_their_result() {
        let workflow = Workflow::default();
        assert!(!workflow.result_visible_to_customer("new"));
        assert!(!workflow.result_visible_to_customer("in-progress"));
        for status in ["resolved", "accepted", "rejected"] {
            assert!(workflow.result_visible_to_customer(status), "{status}");
        }
    }
}
