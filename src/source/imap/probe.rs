//! What a collector will find and do on its server, found out without changing anything:
//! what an admin runs (`mailintake collectors probe NAME`) before enabling a collector on an
//! unknown server. It logs in and lists; it never creates, selects for writing or stores.
//! For a collector that wants IDLE it opens the mailbox read-only (`EXAMINE`) and tries IDLE,
//! as only that shows whether the server's IDLE pushes or merely polls.

use serde::Serialize;

use super::ImapError;
use super::connection::timed;
use super::features::Features;
use super::server::{Presence, Server};
use super::settings::{AfterAction, AfterPolicy, ImapConfig};

/// One folder the collector uses, as the server will see it.
#[derive(Debug, Clone, Serialize)]
pub struct ProbedFolder {
    /// `mailbox`, `move-to` or `quarantine-move-to`.
    pub role: &'static str,
    /// As written in the config.
    pub written: String,
    /// Resolved against the server's namespace and delimiter (UTF-8).
    pub resolved: String,
    /// As sent to the server (modified UTF-7).
    pub server_name: String,
    /// `exists`, `missing`, `will be created` or `not selectable`.
    pub state: &'static str,
}

/// What a probe found.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    pub capabilities: Vec<String>,
    pub features: Features,
    /// The server's NAMESPACE answer, when it offers NAMESPACE.
    pub namespace: Option<String>,
    /// The personal namespace's prefix (UTF-8) that folder names are resolved under.
    pub personal_prefix: String,
    /// The hierarchy delimiter used (the personal namespace's, else `LIST "" ""`'s).
    pub delimiter: Option<String>,
    /// The delimiter `LIST "" ""` names.
    pub list_delimiter: Option<String>,
    pub folders: Vec<ProbedFolder>,
    /// What acknowledging a stored message does here.
    pub acknowledge: String,
    /// What setting aside a quarantined message does here.
    pub set_aside: String,
    /// What `delete-after-days` does here, when set.
    pub delete_after_days: Option<String>,
    /// The mode in use: `idle`, `poll`, `schedule (no IDLE on server)` or
    /// `schedule (IDLE on server only polls)`.
    pub mode: &'static str,
    /// How the collector falls back on this server, one sentence each.
    pub fallbacks: Vec<String>,
}

impl Probe {
    /// Whether the collector can run here: its mailbox exists, and its move targets exist or
    /// will be created.
    pub fn usable(&self) -> bool {
        self.folders
            .iter()
            .all(|f| matches!(f.state, "exists" | "will be created"))
    }
}

/// Logs in with `config` and finds out what a collector with `after` (and IDLE if
/// `idle_configured`) will do there.
pub async fn probe(
    config: &ImapConfig,
    after: &AfterPolicy,
    idle_configured: bool,
) -> Result<Probe, ImapError> {
    let mut server = Server::login(config).await?;
    let mut wanted = vec![("mailbox", config.mailbox.clone())];
    if let AfterAction::Move(folder) = &after.action {
        wanted.push(("move-to", folder.clone()));
    }
    if let Some(folder) = &after.quarantine_move_to {
        wanted.push(("quarantine-move-to", folder.clone()));
    }
    let mut folders = Vec::new();
    for (role, written) in wanted {
        let server_name = server.resolve(&written);
        let state = match (server.presence(&server_name).await?, role) {
            (Presence::Exists, _) => "exists",
            (Presence::NotSelectable, _) => "not selectable",
            (Presence::Missing, "mailbox") => "missing",
            (Presence::Missing, _) => "will be created",
        };
        folders.push(ProbedFolder {
            role,
            resolved: server.hierarchy.resolve(&written),
            written,
            server_name,
            state,
        });
    }
    let mailbox_there = folders.first().is_some_and(|f| f.state == "exists");
    if idle_configured && server.features.idle && mailbox_there {
        let name = folders[0].server_name.clone();
        timed(server.timeout, "EXAMINE", server.session.examine(&name)).await?;
        server.try_idle().await?;
    }
    let features = server.features;
    let probe = Probe {
        capabilities: server.capabilities.clone(),
        features,
        namespace: server.namespace.clone(),
        personal_prefix: server.hierarchy.prefix.clone(),
        delimiter: server.hierarchy.delimiter.map(String::from),
        list_delimiter: server.list_delimiter.map(String::from),
        folders,
        acknowledge: features.acknowledging(&after.action),
        set_aside: features.setting_aside(after),
        delete_after_days: after.delete_after_days.map(|days| {
            format!(
                "after {days} days: {}",
                features.acknowledging(&AfterAction::Delete)
            )
        }),
        mode: features.mode(idle_configured),
        fallbacks: features.fallbacks(after),
    };
    server.logout().await;
    Ok(probe)
}
