//! What an API token lets its holder do (issue 11): the scopes other systems are given.

use std::fmt;

/// A token's scope, as stored (`api_tokens.scope`, with `target` for the scoped kinds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenScope {
    /// A website posting its forms to one collector's HTTP intake, and nothing else.
    Intake { collector: String },
    /// A system that reads records, the notification log, the quarantine and collectors.
    Read,
    /// A system that also triages records and moves them through the workflow.
    Write,
    /// A calendar client subscribed to one queue's feed.
    Calendar { queue: String },
}

/// What an operation needs of the caller's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need<'a> {
    Read,
    Write,
    Intake { collector: &'a str },
    Calendar { queue: &'a str },
}

impl TokenScope {
    /// The stored scope word.
    pub fn kind(&self) -> &'static str {
        match self {
            TokenScope::Intake { .. } => "intake",
            TokenScope::Read => "read",
            TokenScope::Write => "write",
            TokenScope::Calendar { .. } => "calendar",
        }
    }

    /// The collector or queue a scoped token is limited to.
    pub fn target(&self) -> Option<&str> {
        match self {
            TokenScope::Intake { collector } => Some(collector),
            TokenScope::Calendar { queue } => Some(queue),
            TokenScope::Read | TokenScope::Write => None,
        }
    }

    /// The scope read back from its stored columns.
    pub fn from_stored(kind: &str, target: Option<String>) -> Result<TokenScope, String> {
        match (kind, target) {
            ("read", None) => Ok(TokenScope::Read),
            ("write", None) => Ok(TokenScope::Write),
            ("intake", Some(collector)) => Ok(TokenScope::Intake { collector }),
            ("calendar", Some(queue)) => Ok(TokenScope::Calendar { queue }),
            (kind, target) => Err(format!("unknown token scope `{kind}` (target {target:?})")),
        }
    }

    /// Whether this token may do what `need` asks. Write implies read; a read or write token
    /// also reads every queue's calendar; intake and calendar tokens do only their one thing,
    /// so a token leaked from a website's configuration reads nothing.
    pub fn allows(&self, need: Need<'_>) -> bool {
        match (self, need) {
            (TokenScope::Read | TokenScope::Write, Need::Read | Need::Calendar { .. }) => true,
            (TokenScope::Write, Need::Write) => true,
            (TokenScope::Intake { collector }, Need::Intake { collector: wanted }) => {
                collector == wanted
            }
            (TokenScope::Calendar { queue }, Need::Calendar { queue: wanted }) => queue == wanted,
            _ => false,
        }
    }
}

/// How a record's history names a change made with an API token: `api:` and the token's name.
pub fn api_actor(token: &str) -> String {
    format!("api:{token}")
}

impl fmt::Display for TokenScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.target() {
            Some(target) => write!(f, "{} {target}", self.kind()),
            None => f.write_str(self.kind()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Need, TokenScope};

    #[test]
    fn each_scope_allows_only_its_own_operations() {
        let intake = TokenScope::Intake {
            collector: "shop".into(),
        };
        assert!(intake.allows(Need::Intake { collector: "shop" }));
        assert!(!intake.allows(Need::Intake { collector: "other" }));
        assert!(!intake.allows(Need::Read));
        assert!(!intake.allows(Need::Calendar { queue: "shop" }));

        assert!(TokenScope::Read.allows(Need::Read));
        assert!(!TokenScope::Read.allows(Need::Write));
        assert!(!TokenScope::Read.allows(Need::Intake { collector: "shop" }));
        assert!(TokenScope::Write.allows(Need::Read));
        assert!(TokenScope::Write.allows(Need::Write));

        let calendar = TokenScope::Calendar {
            queue: "orders".into(),
        };
        assert!(calendar.allows(Need::Calendar { queue: "orders" }));
        assert!(!calendar.allows(Need::Calendar { queue: "leads" }));
        assert!(!calendar.allows(Need::Read));
        assert!(TokenScope::Read.allows(Need::Calendar { queue: "leads" }));
    }

    #[test]
    fn stored_columns_round_trip() {
        for scope in [
            TokenScope::Read,
            TokenScope::Write,
            TokenScope::Intake {
                collector: "shop".into(),
            },
            TokenScope::Calendar {
                queue: "orders".into(),
            },
        ] {
            let back = TokenScope::from_stored(scope.kind(), scope.target().map(String::from));
            assert_eq!(back, Ok(scope));
        }
        assert!(TokenScope::from_stored("read", Some("x".into())).is_err());
        assert!(TokenScope::from_stored("admin", None).is_err());
    }
}
