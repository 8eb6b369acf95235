//! Review-page roles (seed 004's agent groups): what a user may see.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// A review-page user's role, as stored (`users.role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sees every queue, the quarantine and the collectors.
    Admin,
    /// Sees only the queues they are a member of.
    Manager,
}

impl Role {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Manager => "manager",
        }
    }

    /// Whether a user with this role and these queue memberships may see `queue`.
    pub fn sees_queue(self, memberships: &[String], queue: &str) -> bool {
        self == Role::Admin || memberships.iter().any(|q| q == queue)
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Role, String> {
        match text {
            "admin" => Ok(Role::Admin),
            "manager" => Ok(Role::Manager),
            other => Err(format!("unknown role `{other}` (admin or manager)")),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Role;

    #[test]
    fn managers_see_only_their_queues_and_admins_all() {
        let member = vec!["triage".to_string()];
        assert!(Role::Manager.sees_queue(&member, "triage"));
        assert!(!Role::Manager.sees_queue(&member, "orders"));
        assert!(Role::Admin.sees_queue(&[], "orders"));
    }

    #[test]
    fn stored_text_reads_back() {
        for role in [Role::Admin, Role::Manager] {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("root".parse::<Role>().is_err());
    }
}
