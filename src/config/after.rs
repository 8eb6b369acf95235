//! `[collector.after]`: what happens in the mailbox to a message once it is stored.

use serde::Deserialize;
use toml::Spanned;

use super::error::{ConfigError, ErrorSite};
use super::imap::check_folder;
use super::keyword::{Choice, pick};
use crate::source::imap::{AfterAction, AfterPolicy};

/// `[collector.after]` as written (IMAP collectors only).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawAfter {
    /// `seen`, `move` or `delete`. Default: `seen`.
    action: Option<Spanned<Choice<ActionName>>>,
    /// Folder for `action = "move"` (created if missing). Required with `move`.
    move_to: Option<Spanned<String>>,
    /// Expunge processed messages older than this many days (at least 1). Default: never.
    delete_after_days: Option<Spanned<i64>>,
    /// Folder quarantined messages are moved to. Default: flagged in place.
    quarantine_move_to: Option<Spanned<String>>,
}

/// The words `action` takes; `move` gets its folder from `move-to`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ActionName {
    Seen,
    Move,
    Delete,
}

impl RawAfter {
    /// Checks the policy; anything but the default needs an IMAP collector (`is_imap`).
    pub(super) fn validate(
        &self,
        site: &ErrorSite<'_>,
        is_imap: bool,
    ) -> Result<AfterPolicy, ConfigError> {
        let name = match &self.action {
            Some(a) => pick(site, a, "collector.after.action", "action")?,
            None => ActionName::Seen,
        };
        let action_span = self.action.as_ref().map_or(0..0, Spanned::span);
        let action = match (name, &self.move_to) {
            (ActionName::Seen, _) => AfterAction::Seen,
            (ActionName::Delete, _) => AfterAction::Delete,
            (ActionName::Move, Some(folder)) => {
                AfterAction::Move(check_folder(site, folder, "collector.after.move-to")?)
            }
            (ActionName::Move, None) => {
                return Err(site.at(
                    action_span.clone(),
                    "collector.after.action",
                    "action = \"move\" needs move-to = \"FOLDER\"",
                ));
            }
        };
        let delete_after_days = self
            .delete_after_days
            .as_ref()
            .map(|d| {
                site.number_in(
                    d,
                    1..,
                    "collector.after.delete-after-days",
                    "must be a whole number of days, at least 1",
                )
            })
            .transpose()?;
        let quarantine_move_to = self
            .quarantine_move_to
            .as_ref()
            .map(|f| check_folder(site, f, "collector.after.quarantine-move-to"))
            .transpose()?;
        let policy = AfterPolicy {
            action,
            delete_after_days,
            quarantine_move_to,
        };
        if !is_imap && policy != AfterPolicy::default() {
            return Err(site.at(action_span, "collector.after", "Maildir collectors only mark messages seen; [collector.after] options need an IMAP collector"));
        }
        Ok(policy)
    }
}
