//! What a server's extensions make a collector do there, decided once from CAPABILITY, so
//! the pass, `collectors status` and `collectors probe` say the same thing.
//!
//! - Moving: `UID MOVE` (RFC 6851) when offered; else `UID COPY`, then `\Deleted` and
//!   `UID EXPUNGE` of exactly those UIDs (UIDPLUS, RFC 4315).
//! - Deleting (`action = "delete"`, `delete-after-days`, a COPY's original): `UID EXPUNGE`
//!   with UIDPLUS. Without it we never send a bare `EXPUNGE`, which also removes whatever
//!   another client has marked `\Deleted`: the messages get `\Seen` and
//!   [`PROCESSED_KEYWORD`] instead, and stay.
//! - Waiting: IDLE when offered and asked for; else the schedule alone. An IDLE that only
//!   polls (Courier's default: it re-reads the folder every 60 s) is no push at all, and
//!   CAPABILITY cannot tell it apart: only the IDLE continuation line does (see
//!   [`idle_only_polls`]), so a collector that wants IDLE tries it once per connection.

use serde::Serialize;

use super::settings::{AfterAction, AfterPolicy};

/// The keyword a processed message gets where it cannot be expunged safely (no UIDPLUS).
pub const PROCESSED_KEYWORD: &str = "$MailintakeProcessed";

/// The mode shown when `mode = "idle"` meets a server without IDLE.
pub const NO_IDLE_MODE: &str = "schedule (no IDLE on server)";

/// The mode shown when `mode = "idle"` meets a server whose IDLE only polls.
pub const POLLING_IDLE_MODE: &str = "schedule (IDLE on server only polls)";

/// Whether an IDLE continuation line (`+ ...`, the text after the `+`) announces an IDLE
/// that only polls.
///
/// NOTE: Courier-IMAP answers `+ entering ENHANCED idle mode` when it watches the folder
/// (`IMAP_ENHANCEDIDLE=1` with FAM) and `+ entering idle mode` when it only re-reads it every
/// `IMAP_IDLE_TIMEOUT` (60) seconds (its default, and always outside a selected folder).
/// Other servers' texts (`idling`, `IDLE accepted, awaiting DONE command.`) mean push.
pub fn idle_only_polls(continuation: &str) -> bool {
    continuation
        .trim()
        .eq_ignore_ascii_case("entering idle mode")
}

/// The extensions that change what a collector does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Features {
    #[serde(rename = "move")]
    pub move_: bool,
    pub uidplus: bool,
    pub idle: bool,
    /// The server's IDLE only polls (found by trying IDLE, not from CAPABILITY).
    pub idle_polls: bool,
    pub namespace: bool,
}

impl Features {
    /// From the CAPABILITY list (atoms, any case).
    pub fn from_capabilities<'a>(capabilities: impl IntoIterator<Item = &'a str>) -> Features {
        let mut features = Features::default();
        for capability in capabilities {
            match capability.to_ascii_uppercase().as_str() {
                "MOVE" => features.move_ = true,
                "UIDPLUS" => features.uidplus = true,
                "IDLE" => features.idle = true,
                "NAMESPACE" => features.namespace = true,
                _ => {}
            }
        }
        features
    }

    /// How a stored message is taken out of the mailbox by expunging, in words.
    fn removal(&self) -> String {
        if self.uidplus {
            "\\Deleted and UID EXPUNGE of exactly those UIDs".into()
        } else {
            format!("\\Seen and {PROCESSED_KEYWORD}, left in place (no UIDPLUS)")
        }
    }

    /// How moving to a folder is done here, in words.
    fn moving(&self) -> String {
        if self.move_ {
            "UID MOVE".into()
        } else {
            format!("UID COPY, then {}", self.removal())
        }
    }

    /// What acknowledging a stored message does on this server, in words.
    pub fn acknowledging(&self, action: &AfterAction) -> String {
        match action {
            AfterAction::Seen => "\\Seen".into(),
            AfterAction::Move(_) => self.moving(),
            AfterAction::Delete => self.removal(),
        }
    }

    /// What setting aside a quarantined message does here, in words.
    pub fn setting_aside(&self, after: &AfterPolicy) -> String {
        match &after.quarantine_move_to {
            Some(_) => self.moving(),
            None => format!("keyword {}", super::QUARANTINE_KEYWORD),
        }
    }

    /// The ways `after` is carried out differently here than the config asks, one sentence
    /// each: what the log says once and `collectors status` shows.
    pub fn fallbacks(&self, after: &AfterPolicy) -> Vec<String> {
        if self.uidplus {
            return Vec::new();
        }
        let mut expunging = Vec::new();
        match after.action {
            AfterAction::Delete => expunging.push("action = \"delete\""),
            AfterAction::Move(_) if !self.move_ => expunging.push("action = \"move\" (COPY)"),
            _ => {}
        }
        if after.quarantine_move_to.is_some() && !self.move_ {
            expunging.push("quarantine-move-to (COPY)");
        }
        if after.delete_after_days.is_some() {
            expunging.push("delete-after-days");
        }
        if expunging.is_empty() {
            return Vec::new();
        }
        vec![format!(
            "no UIDPLUS on server: {} mark messages \\Seen and {PROCESSED_KEYWORD} instead of expunging them (a bare EXPUNGE would also remove what other clients marked \\Deleted)",
            expunging.join(", ")
        )]
    }

    /// The mode in use: `idle` and `poll` as configured, or [`NO_IDLE_MODE`] /
    /// [`POLLING_IDLE_MODE`] when the server cannot push.
    pub fn mode(&self, idle_configured: bool) -> &'static str {
        match (idle_configured, self.idle, self.idle_polls) {
            (true, true, false) => "idle",
            (true, true, true) => POLLING_IDLE_MODE,
            (true, false, _) => NO_IDLE_MODE,
            (false, _, _) => "poll",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_couriers_plain_idle_continuation_means_polling() {
        assert!(idle_only_polls("entering idle mode"));
        assert!(idle_only_polls(" Entering IDLE mode "));
        for push in [
            "entering ENHANCED idle mode",
            "idling",
            "IDLE accepted, awaiting DONE command.",
            "",
        ] {
            assert!(!idle_only_polls(push), "{push}");
        }
    }

    fn after(action: AfterAction) -> AfterPolicy {
        AfterPolicy {
            action,
            ..AfterPolicy::default()
        }
    }

    #[test]
    fn courier_copies_and_expunges_by_uid_and_a_server_without_uidplus_falls_back() {
        let courier =
            Features::from_capabilities("IMAP4rev1 UIDPLUS CHILDREN NAMESPACE IDLE".split(' '));
        let moving = after(AfterAction::Move("Processed".into()));
        assert_eq!(
            courier.acknowledging(&moving.action),
            "UID COPY, then \\Deleted and UID EXPUNGE of exactly those UIDs"
        );
        assert!(courier.fallbacks(&moving).is_empty());
        assert_eq!(courier.mode(true), "idle");

        let bare = Features::from_capabilities(["IMAP4rev1"]);
        assert_eq!(
            bare.acknowledging(&AfterAction::Delete),
            "\\Seen and $MailintakeProcessed, left in place (no UIDPLUS)"
        );
        assert_eq!(bare.mode(true), NO_IDLE_MODE);
        assert_eq!(bare.mode(false), "poll");
        let notes = bare.fallbacks(&AfterPolicy {
            delete_after_days: Some(30),
            ..moving.clone()
        });
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].starts_with(
                "no UIDPLUS on server: action = \"move\" (COPY), delete-after-days mark"
            ),
            "{notes:?}"
        );
        assert!(bare.fallbacks(&after(AfterAction::Seen)).is_empty());

        let polling = Features {
            idle_polls: true,
            ..courier
        };
        assert_eq!(polling.mode(true), POLLING_IDLE_MODE);
        assert_eq!(polling.mode(false), "poll");

        // MOVE needs no expunge: only deleting falls back.
        let move_only = Features::from_capabilities(["MOVE"]);
        assert!(move_only.fallbacks(&moving).is_empty());
        assert_eq!(move_only.fallbacks(&after(AfterAction::Delete)).len(), 1);
    }
}
