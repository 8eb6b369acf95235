//! An IMAP connection over async-imap, with TLS by rustls (certificates always verified):
//! log in, select, and the few UID commands a collector needs.
//!
//! Every command runs under a timeout (async-imap has none), and only the fetch items the
//! strict parser handles well are requested: `UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[]`,
//! and the partial `BODY.PEEK[]<0.N>` for a too-large message's headers.

use std::fmt;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_imap::{Client, Session};
use futures::TryStreamExt;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::features::{Features, PROCESSED_KEYWORD};
use super::idle::{self, Wake};
use super::server::Server;
use super::{ImapConfig, ImapError, TlsMode};

/// What an IMAP session runs over: TCP, or TLS over TCP.
pub trait ImapIo: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug> ImapIo for T {}

pub(super) type ImapSession = Session<Box<dyn ImapIo>>;

/// Runs `fut` with the command timeout; `command` names it in errors.
pub(super) async fn timed<T>(
    timeout: Duration,
    command: &'static str,
    fut: impl Future<Output = Result<T, async_imap::error::Error>>,
) -> Result<T, ImapError> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(result) => result.map_err(|source| ImapError::Command { command, source }),
        Err(_) => Err(ImapError::Timeout(command)),
    }
}

/// The system's trusted CA certificates, read from disk once per process (every pass and
/// every IDLE reconnect builds a TLS config).
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: std::sync::OnceLock<Vec<CertificateDer<'static>>> = std::sync::OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

/// Adds the certificates of a PEM `ca-file` to `roots`; the error says what is wrong with
/// the file. Also what `mailintake check` runs, so a bad file is found before a connection.
pub fn add_ca_file(roots: &mut rustls::RootCertStore, ca_file: &Path) -> Result<(), String> {
    let certs = CertificateDer::pem_file_iter(ca_file)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read ca-file {}: {e}", ca_file.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "ca-file {} holds no certificate",
            ca_file.display()
        ));
    }
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| format!("ca-file {}: {e}", ca_file.display()))?;
    }
    Ok(())
}

/// TLS settings: the system's roots plus the configured CA file; the ring provider explicitly,
/// so a second provider elsewhere in the tree cannot make rustls panic.
fn tls_connector(config: &ImapConfig) -> Result<TlsConnector, ImapError> {
    let tls_error = |message: String| ImapError::Tls {
        host: config.host.clone(),
        message,
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in system_roots() {
        let _ = roots.add(cert.clone());
    }
    if let Some(ca_file) = &config.ca_file {
        add_ca_file(&mut roots, ca_file).map_err(tls_error)?;
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| tls_error(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(tls)))
}

async fn start_tls(config: &ImapConfig, tcp: TcpStream) -> Result<Box<dyn ImapIo>, ImapError> {
    let name = ServerName::try_from(config.host.clone()).map_err(|e| ImapError::Tls {
        host: config.host.clone(),
        message: e.to_string(),
    })?;
    let stream = tokio::time::timeout(config.timeout, tls_connector(config)?.connect(name, tcp))
        .await
        .map_err(|_| ImapError::Timeout("TLS handshake"))?
        .map_err(|e| ImapError::Tls {
            host: config.host.clone(),
            message: e.to_string(),
        })?;
    Ok(Box::new(stream))
}

async fn read_greeting<T: ImapIo>(
    client: &mut Client<T>,
    timeout: Duration,
) -> Result<(), ImapError> {
    // NOTE: async-imap does not read the greeting itself; after STARTTLS there is none.
    match tokio::time::timeout(timeout, client.read_response()).await {
        Ok(Ok(Some(_))) => Ok(()),
        Ok(Ok(None)) => Err(ImapError::NoGreeting),
        Ok(Err(source)) => Err(ImapError::Command {
            command: "greeting",
            source: source.into(),
        }),
        Err(_) => Err(ImapError::Timeout("greeting")),
    }
}

/// Connects and logs in.
pub(super) async fn login(config: &ImapConfig) -> Result<ImapSession, ImapError> {
    let password = config.password.read().map_err(ImapError::Secret)?;
    let tcp = tokio::time::timeout(
        config.timeout,
        TcpStream::connect((config.host.as_str(), config.port)),
    )
    .await
    .map_err(|_| ImapError::Timeout("connect"))?
    .map_err(|source| ImapError::Connect {
        host: config.host.clone(),
        port: config.port,
        source,
    })?;
    let _ = tcp.set_nodelay(true);
    let client = match config.tls {
        TlsMode::Implicit => {
            let mut client = Client::new(start_tls(config, tcp).await?);
            read_greeting(&mut client, config.timeout).await?;
            client
        }
        TlsMode::None => {
            let mut client = Client::new(Box::new(tcp) as Box<dyn ImapIo>);
            read_greeting(&mut client, config.timeout).await?;
            client
        }
        TlsMode::Starttls => {
            let mut plain = Client::new(tcp);
            read_greeting(&mut plain, config.timeout).await?;
            timed(
                config.timeout,
                "STARTTLS",
                plain.run_command_and_check_ok("STARTTLS", None),
            )
            .await?;
            Client::new(start_tls(config, plain.into_inner()).await?)
        }
    };
    match tokio::time::timeout(config.timeout, client.login(&config.username, &password)).await {
        Ok(Ok(session)) => Ok(session),
        Ok(Err((e, _))) => Err(ImapError::Login {
            username: config.username.clone(),
            message: e.to_string(),
        }),
        Err(_) => Err(ImapError::Timeout("LOGIN")),
    }
}

/// A logged-in connection with the collector's mailbox selected.
pub struct Connection {
    server: Server,
    pub uidvalidity: u32,
}

/// Compresses sorted UIDs into an IMAP set (`1:3,7,9:10`).
pub fn uid_set(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end + 1 {
            i += 1;
            end = uids[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

impl Connection {
    /// Connects, logs in and selects the configured mailbox (its name resolved against the
    /// server's namespace, like every folder name).
    pub async fn open(config: &ImapConfig) -> Result<Connection, ImapError> {
        let mut server = Server::login(config).await?;
        let name = server.resolve(&config.mailbox);
        let mailbox = timed(config.timeout, "SELECT", server.session.select(&name)).await?;
        let uidvalidity = mailbox
            .uid_validity
            .ok_or_else(|| ImapError::NoUidValidity(config.mailbox.clone()))?;
        Ok(Connection {
            server,
            uidvalidity,
        })
    }

    /// What the server offers that changes what the collector does.
    pub fn features(&self) -> Features {
        self.server.features
    }

    /// Tries IDLE here to learn whether it pushes ([`Server::try_idle`]); returns whether new
    /// mail was announced meanwhile.
    pub async fn try_idle(&mut self) -> Result<bool, ImapError> {
        self.server.try_idle().await
    }

    /// UIDs matching `query` (trusted text only: it is sent as is), ascending.
    pub async fn search(&mut self, query: &str) -> Result<Vec<u32>, ImapError> {
        let found = timed(
            self.server.timeout,
            "UID SEARCH",
            self.server.session.uid_search(query),
        )
        .await?;
        let mut uids: Vec<u32> = found.into_iter().collect();
        // NOTE: async-imap returns the UIDs as an unordered set.
        uids.sort_unstable();
        Ok(uids)
    }

    /// The raw bytes of these messages, without setting `\Seen`.
    pub async fn fetch(&mut self, uids: &[u32]) -> Result<Vec<(u32, Vec<u8>)>, ImapError> {
        self.fetch_each(
            uids,
            "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])",
            |f| f.body().map(<[u8]>::to_vec),
        )
        .await
    }

    /// The size of each of these messages (`RFC822.SIZE`), without fetching any of them.
    pub async fn sizes(&mut self, uids: &[u32]) -> Result<Vec<(u32, u32)>, ImapError> {
        self.fetch_each(uids, "(UID RFC822.SIZE)", |f| f.size).await
    }

    /// The first `bytes` bytes of each of these messages (a partial `BODY.PEEK[]<0.N>`),
    /// without setting `\Seen`: enough for the headers of one too large to fetch whole.
    pub async fn fetch_start(
        &mut self,
        uids: &[u32],
        bytes: usize,
    ) -> Result<Vec<(u32, Vec<u8>)>, ImapError> {
        let items = format!("(UID BODY.PEEK[]<0.{bytes}>)");
        self.fetch_each(uids, &items, |f| f.body().map(<[u8]>::to_vec))
            .await
    }

    /// `UID FETCH` of `items` for these messages, taking what `take` wants from each response
    /// as it arrives (so a response's buffer is freed before the next is read), by UID
    /// ascending, once per UID.
    async fn fetch_each<T>(
        &mut self,
        uids: &[u32],
        items: &str,
        take: impl Fn(&async_imap::types::Fetch) -> Option<T>,
    ) -> Result<Vec<(u32, T)>, ImapError> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let set = uid_set(uids);
        let timeout = self.server.timeout;
        let fetches = async {
            let stream = self.server.session.uid_fetch(&set, items).await?;
            // NOTE: the stream borrows the session; drain it before the next command.
            stream
                .try_filter_map(|f| {
                    let taken = f.uid.zip(take(&f));
                    async move { Ok(taken) }
                })
                .try_collect::<Vec<_>>()
                .await
        };
        let mut taken = timed(timeout, "UID FETCH", fetches).await?;
        taken.sort_unstable_by_key(|(uid, _)| *uid);
        taken.dedup_by_key(|(uid, _)| *uid);
        Ok(taken)
    }

    /// Adds flags (e.g. `\Seen`) to these messages.
    pub async fn add_flags(&mut self, uids: &[u32], flags: &str) -> Result<(), ImapError> {
        if uids.is_empty() {
            return Ok(());
        }
        let set = uid_set(uids);
        let query = format!("+FLAGS.SILENT ({flags})");
        let store = async {
            let stream = self.server.session.uid_store(&set, &query).await?;
            let _: Vec<_> = stream.try_collect().await?;
            Ok(())
        };
        timed(self.server.timeout, "UID STORE", store).await
    }

    /// Takes these messages (and only these) out of the mailbox: `\Deleted` and
    /// `UID EXPUNGE` with UIDPLUS. Without it, `\Seen` and [`PROCESSED_KEYWORD`] instead: a
    /// bare EXPUNGE would also remove what other clients marked `\Deleted`.
    pub async fn delete(&mut self, uids: &[u32]) -> Result<(), ImapError> {
        if uids.is_empty() {
            return Ok(());
        }
        if !self.server.features.uidplus {
            return self
                .add_flags(uids, &format!("\\Seen {PROCESSED_KEYWORD}"))
                .await;
        }
        self.add_flags(uids, "\\Deleted").await?;
        let set = uid_set(uids);
        let expunge = async {
            let stream = self.server.session.uid_expunge(&set).await?;
            let _: Vec<_> = stream.try_collect().await?;
            Ok(())
        };
        timed(self.server.timeout, "UID EXPUNGE", expunge).await
    }

    /// Moves these messages to the folder written `folder` in the config (resolved, and
    /// created if missing): `UID MOVE`, or `UID COPY` and [`Connection::delete`].
    pub async fn move_to(&mut self, uids: &[u32], folder: &str) -> Result<(), ImapError> {
        if uids.is_empty() {
            return Ok(());
        }
        let folder = self.server.ensure_folder(folder).await?;
        let set = uid_set(uids);
        let timeout = self.server.timeout;
        if self.server.features.move_ {
            timed(
                timeout,
                "UID MOVE",
                self.server.session.uid_mv(&set, &folder),
            )
            .await
        } else {
            timed(
                timeout,
                "UID COPY",
                self.server.session.uid_copy(&set, &folder),
            )
            .await?;
            self.delete(uids).await
        }
    }

    /// Logs out politely (errors ignored: the work is done).
    pub async fn logout(self) {
        self.server.logout().await;
    }

    /// Forgets what the server announced so far (new mail, others' flag changes): a search
    /// sent after this sees all of it.
    pub(super) fn forget_announcements(&mut self) {
        while self.server.session.unsolicited_responses.try_recv().is_ok() {}
    }

    /// Waits with IDLE on this connection ([`idle::idle_on`]) and hands it back.
    pub(super) async fn idle(
        self,
        until: tokio::time::Instant,
        interrupt: impl Future<Output = ()>,
    ) -> Result<(Connection, Wake), ImapError> {
        let mut connection = self;
        let (server, wake) = connection
            .server
            .with_session(|session, timeout| idle::idle_on(session, timeout, until, interrupt))
            .await?;
        connection.server = server;
        Ok((connection, wake))
    }
}

#[cfg(test)]
mod tests {
    use super::uid_set;

    #[test]
    fn uid_sets_are_compressed_into_ranges() {
        assert_eq!(uid_set(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(uid_set(&[5]), "5");
        assert_eq!(uid_set(&[]), "");
    }
}
