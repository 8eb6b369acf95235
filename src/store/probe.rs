//! Whether the configured database answers (`mailintake check`), on either backend, without
//! creating or migrating anything: a check must not change what it checks.

use std::path::Path;

use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel::sqlite::SqliteConnection;

use super::StoreError;
use super::url::StorageUrl;

/// What the database said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The SQLite file is not there yet; the first command that stores creates it.
    NotCreatedYet,
    /// It answered a query; the text says what it is (e.g. `PostgreSQL 15.18`).
    Answers(String),
}

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = Text)]
    version: String,
}

/// Asks the database at `url` a query that reads it (for PostgreSQL with the password its
/// `[storage]` names).
pub fn answers(url: &StorageUrl) -> Result<Answer, StoreError> {
    match url {
        StorageUrl::Sqlite(path) => sqlite_answers(path, url),
        StorageUrl::Postgres(_) => {
            let mut conn = super::connect(url)?;
            let version: Version =
                diesel::sql_query("SELECT current_setting('server_version') AS version")
                    .get_result(&mut conn)?;
            Ok(Answer::Answers(format!("PostgreSQL {}", version.version)))
        }
    }
}

fn sqlite_answers(path: &Path, url: &StorageUrl) -> Result<Answer, StoreError> {
    // NOTE: opening a missing file would create it; the daemon creates and migrates it.
    if !path.exists() {
        return Ok(Answer::NotCreatedYet);
    }
    let mut conn =
        SqliteConnection::establish(&path.to_string_lossy()).map_err(|e| connect_error(url, e))?;
    // Reads page 1, so a file that is not a database fails here.
    let version: Version = diesel::sql_query(
        "SELECT sqlite_version() || ', ' || count(*) || ' tables' AS version FROM sqlite_master WHERE type = 'table'",
    )
    .get_result(&mut conn)?;
    Ok(Answer::Answers(format!("SQLite {}", version.version)))
}

fn connect_error(url: &StorageUrl, source: diesel::ConnectionError) -> StoreError {
    StoreError::Connect {
        url: url.to_string(),
        source,
    }
}
