//! Record statuses: the stages of the workflow and the text each is stored as.
//!
//! Only `new` is fixed; the other names come from the config's `[workflow]` (seed 001 lets
//! each installation name them), and the `[unknown-customer]` fallback may set a status of
//! its own. So a stored status is text, and [`StatusNames::stage`] is the one place that
//! says which stage a text means.

/// Status of a freshly stored record.
pub const NEW: &str = "new";

/// Status of a freshly created tech card.
pub const TECH_CARD_NEW: &str = "new";

/// Where a record is in the workflow new -> in progress -> resolved -> accepted | rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    New,
    InProgress,
    Resolved,
    Accepted,
    Rejected,
    /// A status outside the workflow: the unknown-customer fallback's, or a name an
    /// older config used.
    Outside,
}

/// The configured names of the workflow's statuses (`[workflow]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusNames {
    pub in_progress: String,
    pub resolved: String,
    pub accepted: String,
    pub rejected: String,
}

impl Default for StatusNames {
    fn default() -> Self {
        StatusNames {
            in_progress: "in-progress".into(),
            resolved: "resolved".into(),
            accepted: "accepted".into(),
            rejected: "rejected".into(),
        }
    }
}

impl StatusNames {
    /// The stage a stored status stands for.
    pub fn stage(&self, status: &str) -> Stage {
        [
            (NEW, Stage::New),
            (self.in_progress.as_str(), Stage::InProgress),
            (self.resolved.as_str(), Stage::Resolved),
            (self.accepted.as_str(), Stage::Accepted),
            (self.rejected.as_str(), Stage::Rejected),
        ]
        .into_iter()
        .find(|(name, _)| *name == status)
        .map_or(Stage::Outside, |(_, stage)| stage)
    }

    /// The text a stage is stored as (`None` for [`Stage::Outside`], which has many).
    pub fn text(&self, stage: Stage) -> Option<&str> {
        match stage {
            Stage::New => Some(NEW),
            Stage::InProgress => Some(&self.in_progress),
            Stage::Resolved => Some(&self.resolved),
            Stage::Accepted => Some(&self.accepted),
            Stage::Rejected => Some(&self.rejected),
            Stage::Outside => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_names_map_to_stages_and_back() {
        let names = StatusNames {
            resolved: "已解决".into(),
            ..StatusNames::default()
        };
        for stage in [
            Stage::New,
            Stage::InProgress,
            Stage::Resolved,
            Stage::Accepted,
            Stage::Rejected,
        ] {
            assert_eq!(names.stage(names.text(stage).unwrap()), stage);
        }
        assert_eq!(names.stage("已解决"), Stage::Resolved);
        assert_eq!(names.stage("resolved"), Stage::Outside);
        assert_eq!(names.stage("customer-unknown"), Stage::Outside);
    }
}
