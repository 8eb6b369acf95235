//! PostgreSQL: connecting (password by reference, TLS verified whenever the server offers
//! it) and the embedded migrations.
//!
//! `migrations/postgres/` mirrors `migrations/sqlite/` folder for folder (same names, same
//! tables, columns, nullability and constraints in PostgreSQL's dialect); the integration test
//! `postgres::postgres_migrations_build_the_same_schema_as_sqlite` compares the two catalogues
//! on real servers, so a SQLite migration without its twin fails the tests.

use std::path::{Path, PathBuf};

use diesel::Connection;
use diesel::pg::PgConnection;
use diesel_migrations::{EmbeddedMigrations, embed_migrations};

use super::url::{PostgresUrl, SslMode};

/// The PostgreSQL schema, embedded in the binary like the SQLite one.
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// How long connecting may take before libpq gives up (libpq waits forever by default).
const CONNECT_TIMEOUT_SECS: u32 = 10;

/// Where the CAs are looked for when the config names no `ca-file` and the user has no
/// `~/.postgresql/root.crt` (libpq's default): Debian's bundle of the system's CAs. Named
/// explicitly because the OpenSSL built into the binary does not know the system's folders.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// What libpq says when `sslmode=verify-full` meets a server without TLS.
const NO_TLS_ON_SERVER: &str = "server does not support SSL";

/// Connects to `url` as its user, with `password` (read from `[storage] password-env` /
/// `password-file` by the caller) when the server asks for one.
///
/// With `verify-if-offered` (the default) the connection is first tried as `verify-full`;
/// only a server that answers it offers no TLS is connected to again in clear text.
pub fn connect_postgres(
    url: &PostgresUrl,
    password: Option<&str>,
) -> Result<PgConnection, diesel::ConnectionError> {
    if url.sslmode != SslMode::VerifyIfOffered {
        return PgConnection::establish(&conninfo(url, url.sslmode.as_str(), password));
    }
    match PgConnection::establish(&conninfo(url, "verify-full", password)) {
        Err(diesel::ConnectionError::BadConnection(message))
            if message.contains(NO_TLS_ON_SERVER) =>
        {
            tracing::debug!(database = %url, "the server offers no TLS; connecting in clear text");
            PgConnection::establish(&conninfo(url, "disable", password))
        }
        other => other,
    }
}

/// The CA file handed to libpq for a mode that verifies certificates.
fn root_certificates(url: &PostgresUrl) -> Option<PathBuf> {
    if let Some(file) = &url.ca_file {
        return Some(file.clone());
    }
    let users_own = std::env::var_os("HOME")
        .map(|home| Path::new(&home).join(".postgresql/root.crt"))
        .filter(|file| file.exists());
    if users_own.is_some() {
        // NOTE: libpq reads it by default; naming it changes nothing.
        return None;
    }
    Some(PathBuf::from(SYSTEM_CA_BUNDLE)).filter(|file| file.exists())
}

/// libpq's `key='value'` connection string. NOTE: not a URL, so a password needs no
/// percent-encoding; it is never logged (libpq's errors do not repeat it).
fn conninfo(url: &PostgresUrl, sslmode: &str, password: Option<&str>) -> String {
    let port = url.port.to_string();
    let timeout = CONNECT_TIMEOUT_SECS.to_string();
    let mut pairs = vec![
        ("host", url.host.as_str()),
        ("port", &port),
        ("user", &url.user),
        ("dbname", &url.database),
        ("sslmode", sslmode),
        ("connect_timeout", &timeout),
        ("application_name", "mailintake"),
    ];
    let root = root_certificates(url).filter(|_| url.sslmode.verifies());
    let root = root.as_ref().map(|file| file.to_string_lossy());
    if let Some(root) = &root {
        pairs.push(("sslrootcert", root));
    }
    if let Some(password) = password {
        pairs.push(("password", password));
    }
    pairs
        .iter()
        .map(|(key, value)| {
            format!(
                "{key}='{}'",
                value.replace('\\', "\\\\").replace('\'', "\\'")
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conninfo_quotes_every_value() {
        let url = PostgresUrl {
            user: "o'brien".into(),
            host: "/run/postgresql".into(),
            port: 5433,
            database: "intake db".into(),
            sslmode: SslMode::VerifyFull,
            password: None,
            ca_file: Some(PathBuf::from("/etc/mi/db-ca.pem")),
        };
        assert_eq!(
            conninfo(&url, url.sslmode.as_str(), Some(r"pa\ss' word")),
            r"host='/run/postgresql' port='5433' user='o\'brien' dbname='intake db' sslmode='verify-full' connect_timeout='10' application_name='mailintake' sslrootcert='/etc/mi/db-ca.pem' password='pa\\ss\' word'"
        );
    }
}
