//! PostgreSQL (issue 8), groundwork: the store itself still runs on SQLite only; this is
//! what the PostgreSQL store will stand on, and what `mailintake check` uses today.
//!
//! `migrations/postgres/` mirrors `migrations/sqlite/` folder for folder (same names, same
//! tables, columns, nullability and constraints in PostgreSQL's dialect); the integration test
//! `postgres::postgres_migrations_build_the_same_schema_as_sqlite` compares the two catalogues
//! on real servers, so a SQLite migration without its twin fails the tests.

use diesel::Connection;
use diesel::pg::PgConnection;
use diesel_migrations::{EmbeddedMigrations, embed_migrations};

use super::url::PostgresUrl;

/// The PostgreSQL schema, embedded in the binary like the SQLite one.
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// How long connecting may take before libpq gives up (libpq waits forever by default).
const CONNECT_TIMEOUT_SECS: u32 = 10;

/// Connects to `url` as its user, with `password` (read from `[storage] password-env` /
/// `password-file` by the caller) when the server asks for one.
pub fn connect_postgres(
    url: &PostgresUrl,
    password: Option<&str>,
) -> Result<PgConnection, diesel::ConnectionError> {
    PgConnection::establish(&conninfo(url, password))
}

/// libpq's `key='value'` connection string. NOTE: not a URL, so a password needs no
/// percent-encoding; it is never logged (libpq's errors do not repeat it).
fn conninfo(url: &PostgresUrl, password: Option<&str>) -> String {
    let port = url.port.to_string();
    let timeout = CONNECT_TIMEOUT_SECS.to_string();
    let mut pairs = vec![
        ("host", url.host.as_str()),
        ("port", &port),
        ("user", &url.user),
        ("dbname", &url.database),
        ("sslmode", url.sslmode.as_str()),
        ("connect_timeout", &timeout),
        ("application_name", "mailintake"),
    ];
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
    use crate::store::url::SslMode;

    #[test]
    fn conninfo_quotes_every_value() {
        let url = PostgresUrl {
            user: "o'brien".into(),
            host: "/run/postgresql".into(),
            port: 5433,
            database: "intake db".into(),
            sslmode: SslMode::VerifyFull,
            password: None,
        };
        assert_eq!(
            conninfo(&url, Some(r"pa\ss' word")),
            r"host='/run/postgresql' port='5433' user='o\'brien' dbname='intake db' sslmode='verify-full' connect_timeout='10' application_name='mailintake' password='pa\\ss\' word'"
        );
    }
}
