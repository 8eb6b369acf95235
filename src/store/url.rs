//! Where the store lives: the `[storage] url` of the config, parsed.
//!
//! The store owns this type (it is what [`Store::open`](super::Store::open) takes); the config
//! only parses the text into it, so the store never needs to know the config.
//!
//! A PostgreSQL URL names the server, the user and the database, nothing else: the password
//! comes from `[storage] password-env` / `password-file` (a URL is copied into logs, tickets
//! and shell histories), and TLS from `[storage] sslmode`, so one place says each thing.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::secret::Secret;

/// PostgreSQL's port when the URL gives none.
pub const DEFAULT_POSTGRES_PORT: u16 = 5432;

/// Where records are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageUrl {
    /// A SQLite database file (created and migrated on first use).
    Sqlite(PathBuf),
    /// A PostgreSQL database (`postgres://USER@HOST:PORT/DB`).
    Postgres(PostgresUrl),
}

/// A PostgreSQL database, as `postgres://USER@HOST:PORT/DB` and `[storage] sslmode` say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresUrl {
    pub user: String,
    /// A host name, an IP address, or (starting with `/`) the folder of the server's Unix
    /// socket, percent-encoded in the URL (`postgres://mi@%2Frun%2Fpostgresql/mi`).
    pub host: String,
    pub port: u16,
    pub database: String,
    pub sslmode: SslMode,
    /// Where the password is read when connecting (`[storage] password-env` /
    /// `password-file`); none when the server asks for none, or libpq finds it itself
    /// (`PGPASSWORD`, `~/.pgpass`).
    pub password: Option<Secret>,
    /// The CA certificates (PEM) the server's certificate is checked against
    /// (`[storage] ca-file`); default: `~/.postgresql/root.crt` when it exists, else the
    /// system's bundle.
    pub ca_file: Option<PathBuf>,
}

/// Whether TLS is used, and how far the server's certificate is checked: libpq's `sslmode`
/// words, and ours as the default.
/// NOTE: of libpq's own modes only `verify-ca` and `verify-full` check the certificate;
/// `prefer`, libpq's default, takes TLS when the server offers it but accepts any
/// certificate. Ours, `verify-if-offered`, verifies the certificate and the host name
/// whenever the server speaks TLS, and uses clear text only with a server that offers no
/// TLS at all (a local server, typically).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    #[default]
    VerifyIfOffered,
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    /// Every mode, the default first.
    pub const ALL: [SslMode; 7] = [
        SslMode::VerifyIfOffered,
        SslMode::Disable,
        SslMode::Allow,
        SslMode::Prefer,
        SslMode::Require,
        SslMode::VerifyCa,
        SslMode::VerifyFull,
    ];

    /// The word the config uses.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::VerifyIfOffered => "verify-if-offered",
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Whether the server's certificate is checked when TLS is used.
    pub fn verifies(self) -> bool {
        matches!(
            self,
            SslMode::VerifyIfOffered | SslMode::VerifyCa | SslMode::VerifyFull
        )
    }
}

/// A storage URL this version cannot open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageUrlError {
    #[error("the SQLite URL has no file path (e.g. sqlite://mailintake.db)")]
    NoSqlitePath,
    /// Said without the URL, which holds the password.
    #[error(
        "passwords are never written in the URL; use password-env = \"VAR\" or password-file = \"/run/credentials/...\" in [storage]"
    )]
    PostgresPassword,
    #[error("connection options go in [storage] (sslmode = \"...\"), not in the URL")]
    PostgresOptions,
    #[error("the PostgreSQL URL needs {0} (postgres://USER@HOST:PORT/DATABASE)")]
    PostgresMissing(&'static str),
    #[error("`{0}` is not a TCP port")]
    PostgresPort(String),
    /// Only the scheme is named: the rest of an unknown URL may carry a password.
    #[error(
        "unsupported storage URL scheme `{0}`; expected sqlite://FILE or postgres://USER@HOST/DB"
    )]
    Unsupported(String),
}

impl fmt::Display for StorageUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageUrl::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            StorageUrl::Postgres(pg) => write!(f, "{pg}"),
        }
    }
}

impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.replace('/', "%2F")
        };
        write!(
            f,
            "postgres://{}@{host}:{}/{}",
            self.user, self.port, self.database
        )
    }
}

impl StorageUrl {
    /// Parses `sqlite://PATH` (relative paths resolve against `base`, the config's folder) or
    /// `postgres://USER@HOST[:PORT]/DATABASE` (also `postgresql://`; `sslmode` is
    /// [`SslMode::Prefer`] until the config sets it).
    pub fn parse(url: &str, base: &Path) -> Result<StorageUrl, StorageUrlError> {
        if let Some(rest) = url.strip_prefix("sqlite://") {
            if rest.is_empty() {
                return Err(StorageUrlError::NoSqlitePath);
            }
            return Ok(StorageUrl::Sqlite(base.join(rest)));
        }
        if let Some(rest) = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
        {
            return PostgresUrl::parse(rest).map(StorageUrl::Postgres);
        }
        let scheme = url.split_once("://").map_or("(none)", |(scheme, _)| scheme);
        Err(StorageUrlError::Unsupported(scheme.to_string()))
    }
}

impl PostgresUrl {
    /// `USER@HOST[:PORT]/DATABASE`, the part after the scheme.
    fn parse(rest: &str) -> Result<PostgresUrl, StorageUrlError> {
        let (authority, database) = rest.split_once('/').unwrap_or((rest, ""));
        // NOTE: the password check comes first, so no later error can echo one.
        let (user, host_port) = authority
            .rsplit_once('@')
            .ok_or(StorageUrlError::PostgresMissing("a user"))?;
        if user.contains(':') {
            return Err(StorageUrlError::PostgresPassword);
        }
        if database.contains(['?', '#']) || host_port.contains(['?', '#']) {
            return Err(StorageUrlError::PostgresOptions);
        }
        let (host, port) = split_port(host_port)?;
        let part = |text: &str, what: &'static str| match percent_decode(text) {
            Some(value) if !value.is_empty() && !value.chars().any(char::is_control) => Ok(value),
            _ => Err(StorageUrlError::PostgresMissing(what)),
        };
        Ok(PostgresUrl {
            user: part(user, "a user")?,
            host: part(host, "a host")?,
            port,
            database: part(database, "a database name")?,
            sslmode: SslMode::default(),
            password: None,
            ca_file: None,
        })
    }
}

/// `HOST[:PORT]`, with `[v6 address]` brackets; the port defaults to 5432.
fn split_port(host_port: &str) -> Result<(&str, u16), StorageUrlError> {
    let (host, port) = match host_port.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6
                .split_once(']')
                .ok_or(StorageUrlError::PostgresMissing("a host"))?;
            (host, after.strip_prefix(':'))
        }
        None => match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        },
    };
    let port = match port {
        None => DEFAULT_POSTGRES_PORT,
        Some(text) => text
            .parse()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| StorageUrlError::PostgresPort(text.to_string()))?,
    };
    Ok((host, port))
}

/// `%XX` escapes decoded; `None` for a broken escape or bytes that are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn postgres(user: &str, host: &str, port: u16, database: &str) -> StorageUrl {
        StorageUrl::Postgres(PostgresUrl {
            user: user.into(),
            host: host.into(),
            port,
            database: database.into(),
            sslmode: SslMode::VerifyIfOffered,
            password: None,
            ca_file: None,
        })
    }

    #[test]
    fn sqlite_paths_resolve_against_the_base_and_others_are_refused() {
        let base = Path::new("/etc/mi");
        assert_eq!(
            StorageUrl::parse("sqlite://data/mi.db", base),
            Ok(StorageUrl::Sqlite(PathBuf::from("/etc/mi/data/mi.db")))
        );
        assert_eq!(
            StorageUrl::parse("sqlite:///var/lib/mi.db", base),
            Ok(StorageUrl::Sqlite(PathBuf::from("/var/lib/mi.db")))
        );
        assert_eq!(
            StorageUrl::parse("sqlite://", base),
            Err(StorageUrlError::NoSqlitePath)
        );
        let unknown = StorageUrl::parse("mysql://mi:s3cret@db/mi", base)
            .unwrap_err()
            .to_string();
        assert!(unknown.contains("scheme `mysql`"), "{unknown}");
        assert!(!unknown.contains("s3cret"), "{unknown}");
    }

    #[test]
    fn postgres_urls_name_user_host_port_and_database() {
        let base = Path::new("/etc/mi");
        let parse = |url| StorageUrl::parse(url, base);
        assert_eq!(
            parse("postgres://mi@db.example:6432/intake"),
            Ok(postgres("mi", "db.example", 6432, "intake"))
        );
        assert_eq!(
            parse("postgresql://mi@10.0.0.5/intake"),
            Ok(postgres("mi", "10.0.0.5", 5432, "intake"))
        );
        assert_eq!(
            parse("postgres://mi@[::1]:5433/intake"),
            Ok(postgres("mi", "::1", 5433, "intake"))
        );
        assert_eq!(
            parse("postgres://mi@%2Frun%2Fpostgresql/intake"),
            Ok(postgres("mi", "/run/postgresql", 5432, "intake"))
        );
        for url in [
            "postgres://mi@db.example:6432/intake",
            "postgres://mi@[::1]:5433/intake",
            "postgres://mi@%2Frun%2Fpostgresql:5432/intake",
        ] {
            assert_eq!(parse(url).unwrap().to_string(), url, "shown as written");
        }
    }

    #[test]
    fn postgres_urls_refuse_passwords_options_and_missing_parts() {
        let parse = |url| StorageUrl::parse(url, Path::new("/etc/mi")).unwrap_err();
        let refusal = parse("postgres://mi:hunter2@db/intake");
        assert_eq!(refusal, StorageUrlError::PostgresPassword);
        assert!(!refusal.to_string().contains("hunter2"));
        assert_eq!(
            parse("postgres://mi:hunter2@db:bad/intake"),
            StorageUrlError::PostgresPassword,
            "the password is refused before anything that would echo the URL"
        );
        assert_eq!(
            parse("postgres://mi@db/intake?sslmode=disable"),
            StorageUrlError::PostgresOptions
        );
        assert_eq!(
            parse("postgres://db/intake"),
            StorageUrlError::PostgresMissing("a user")
        );
        assert_eq!(
            parse("postgres://mi@db"),
            StorageUrlError::PostgresMissing("a database name")
        );
        assert_eq!(
            parse("postgres://mi@:5432/intake"),
            StorageUrlError::PostgresMissing("a host")
        );
        assert_eq!(
            parse("postgres://mi@db:0/intake"),
            StorageUrlError::PostgresPort("0".into())
        );
        assert_eq!(
            parse("postgres://mi@db:%zz/intake"),
            StorageUrlError::PostgresPort("%zz".into())
        );
        assert_eq!(
            parse("postgres://m%zzi@db/intake"),
            StorageUrlError::PostgresMissing("a user")
        );
    }
}
