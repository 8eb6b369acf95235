//! A logged-in session before a mailbox is selected: what the server offers (CAPABILITY),
//! how it names folders (NAMESPACE, `LIST "" ""`), and the folders a collector moves to,
//! found or created, with the server's own words when it refuses.

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use async_imap::types::{Capability, NameAttribute};
use futures::TryStreamExt;
use tracing::info;

use super::connection::{ImapSession, login, timed};
use super::features::{Features, idle_only_polls};
use super::folder::{Hierarchy, personal_namespace};
use super::raw::{self, RawReply, quoted};
use super::{ImapConfig, ImapError, utf7};

/// A logged-in connection and what it learnt about the server.
pub struct Server {
    pub(super) session: ImapSession,
    pub(super) timeout: Duration,
    /// CAPABILITY as the server lists it.
    pub capabilities: Vec<String>,
    pub features: Features,
    /// The NAMESPACE answer as the server wrote it, when it offers NAMESPACE.
    pub namespace: Option<String>,
    /// The delimiter `LIST "" ""` names.
    pub list_delimiter: Option<char>,
    /// How folder names resolve here.
    pub hierarchy: Hierarchy,
    /// Folders (server names) known to exist: each move target is looked up once per
    /// connection, not once per batch.
    ready: HashSet<String>,
}

/// Whether a folder is there to receive messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Exists,
    Missing,
    /// Listed, but `\Noselect` or `\NonExistent`: it cannot hold messages.
    NotSelectable,
}

fn capability_name(capability: &Capability) -> String {
    match capability {
        Capability::Imap4rev1 => "IMAP4rev1".into(),
        Capability::Auth(mechanism) => format!("AUTH={mechanism}"),
        Capability::Atom(atom) => atom.to_string(),
    }
}

impl Server {
    /// Connects, logs in, and reads CAPABILITY, NAMESPACE (if offered) and the delimiter.
    pub async fn login(config: &ImapConfig) -> Result<Server, ImapError> {
        let mut session = login(config).await?;
        let timeout = config.timeout;
        let listed = timed(timeout, "CAPABILITY", session.capabilities()).await?;
        let capabilities: Vec<String> = listed.iter().map(capability_name).collect();
        let features = Features::from_capabilities(capabilities.iter().map(String::as_str));
        let namespace = if features.namespace {
            let reply = raw_command(&mut session, timeout, "NAMESPACE", "NAMESPACE").await?;
            reply
                .untagged
                .into_iter()
                .find(|l| personal_namespace(l).is_some())
        } else {
            None
        };
        let list_delimiter = {
            let names = async {
                let stream = session.list(Some(""), Some("\"\"")).await?;
                stream.try_collect::<Vec<_>>().await
            };
            let names = timed(timeout, "LIST", names).await?;
            names
                .iter()
                .find_map(|n| n.delimiter())
                .and_then(|d| d.chars().next())
        };
        let personal = namespace.as_deref().and_then(personal_namespace).flatten();
        let hierarchy = Hierarchy {
            prefix: personal
                .as_ref()
                .map(|(prefix, _)| utf7::decode(prefix).unwrap_or_else(|_| prefix.clone()))
                .unwrap_or_default(),
            delimiter: personal.and_then(|(_, d)| d).or(list_delimiter),
        };
        Ok(Server {
            session,
            timeout,
            capabilities,
            features,
            namespace,
            list_delimiter,
            hierarchy,
            ready: HashSet::new(),
        })
    }

    /// The server's name, as sent (modified UTF-7), of a folder written `written` in the config.
    pub fn resolve(&self, written: &str) -> String {
        utf7::encode(&self.hierarchy.resolve(written))
    }

    /// Whether `name` (a server name, as sent) is there, by `LIST "" name`.
    pub async fn presence(&mut self, name: &str) -> Result<Presence, ImapError> {
        let pattern = quoted(name);
        let names = async {
            let stream = self.session.list(Some(""), Some(&pattern)).await?;
            stream.try_collect::<Vec<_>>().await
        };
        let names = timed(self.timeout, "LIST", names).await?;
        let inbox = name.eq_ignore_ascii_case("INBOX");
        let Some(found) = names
            .iter()
            .find(|n| n.name() == name || (inbox && n.name().eq_ignore_ascii_case("INBOX")))
        else {
            return Ok(Presence::Missing);
        };
        let unusable = found.attributes().iter().any(|a| {
            matches!(a, NameAttribute::NoSelect)
                || matches!(a, NameAttribute::Extension(e) if e.eq_ignore_ascii_case("\\NonExistent"))
        });
        Ok(if unusable {
            Presence::NotSelectable
        } else {
            Presence::Exists
        })
    }

    /// The server name of the folder written `written`, created first if it is missing. A
    /// refused CREATE (for any reason but ALREADYEXISTS), or a folder LIST still does not show
    /// afterwards, is an error with the server's words.
    pub async fn ensure_folder(&mut self, written: &str) -> Result<String, ImapError> {
        let name = self.resolve(written);
        if self.ready.contains(&name) {
            return Ok(name);
        }
        let refused = |reply: String| ImapError::FolderRefused {
            folder: name.clone(),
            written: written.to_string(),
            reply,
        };
        match self.presence(&name).await? {
            Presence::Exists => {}
            Presence::NotSelectable => {
                return Err(refused(
                    "LIST shows it as \\Noselect: it cannot hold messages".into(),
                ));
            }
            Presence::Missing => {
                let command = format!("CREATE {}", quoted(&name));
                let reply =
                    raw_command(&mut self.session, self.timeout, "CREATE", &command).await?;
                if !reply.is_ok() && !reply.has_code("ALREADYEXISTS") {
                    return Err(refused(reply.text));
                }
                if self.presence(&name).await? != Presence::Exists {
                    return Err(refused(format!(
                        "{}, but LIST does not show it afterwards",
                        reply.text
                    )));
                }
                info!(folder = %name, written, "created the folder");
            }
        }
        self.ready.insert(name.clone());
        Ok(name)
    }

    /// Tries IDLE on the selected mailbox and ends it at once, to learn from the server's
    /// continuation whether its IDLE pushes or only polls (see [`idle_only_polls`]); sets
    /// `features.idle_polls`. Returns whether the server announced new mail meanwhile
    /// (`* N EXISTS`), which a watcher must not miss. Nothing to do without IDLE.
    pub async fn try_idle(&mut self) -> Result<bool, ImapError> {
        if !self.features.idle {
            return Ok(false);
        }
        let trial = timed(self.timeout, "IDLE", async {
            raw::try_idle(&mut self.session).await.map_err(Into::into)
        })
        .await?;
        match &trial.continuation {
            Some(text) => self.features.idle_polls = idle_only_polls(text),
            // NOTE: a server that lists IDLE but refuses it cannot push either.
            None => self.features.idle = false,
        }
        Ok(trial.reply.untagged.iter().any(|line| {
            line.strip_prefix("* ")
                .and_then(|l| l.split(' ').nth(1))
                .is_some_and(|word| word.eq_ignore_ascii_case("EXISTS"))
        }))
    }

    /// Lends the session by value to `f` (with the command timeout) and takes back the one it
    /// returns: async-imap's IDLE handle owns the session it idles on. An error drops the
    /// connection.
    pub(super) async fn with_session<T, Fut>(
        self,
        f: impl FnOnce(ImapSession, Duration) -> Fut,
    ) -> Result<(Server, T), ImapError>
    where
        Fut: Future<Output = Result<(ImapSession, T), ImapError>>,
    {
        // NOTE: the session moves out and back in; the other fields stay where they are.
        let mut server = self;
        let (session, value) = f(server.session, server.timeout).await?;
        server.session = session;
        Ok((server, value))
    }

    /// Logs out politely (errors ignored: the work is done).
    pub async fn logout(mut self) {
        let _ = tokio::time::timeout(self.timeout, self.session.logout()).await;
    }
}

/// [`raw::command`] with the command timeout; `what` names it in errors.
async fn raw_command(
    session: &mut ImapSession,
    timeout: Duration,
    what: &'static str,
    command: &str,
) -> Result<RawReply, ImapError> {
    timed(timeout, what, async {
        raw::command(session, command).await.map_err(Into::into)
    })
    .await
}
