//! Store stage: records, the exactly-once ledger and the quarantine, in SQL via diesel.
//!
//! SQLite is the default backend (a file, created and migrated on first use); PostgreSQL
//! serves several daemons sharing the work. Queries are written once, against
//! [`AnyConnection`] (see `backend.rs`); each backend has its own migrations.

mod backend;
mod copy;
mod insert;
mod intake;
mod integrity;
mod lease;
mod lifecycle;
mod outbox;
mod postgres;
mod probe;
mod read;
mod revisions;
mod rows;
pub mod schema;
mod skipped;
mod state;
#[cfg(test)]
mod tests;
mod tokens;
mod url;
mod users;
mod write;

use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::domain::UnknownCustomer;
use crate::notify::rules::NotifyRules;
pub(crate) use backend::on_backend;
pub use backend::{AnyConnection, MultiBackend};
pub use copy::{CopiedTable, CopyError, End, copy_database};
pub(crate) use insert::{add_event, now};
pub use intake::{IntakeOrigin, IntakeOutcome, IntakeRequest};
pub use integrity::{damage_note, open_checked};
pub use lease::{Acquisition, Lease, LeaseHolder};
pub use lifecycle::{TriageFilter, TriageState};
pub use outbox::{Attempt, Claimed, Due, FAILED, NewNotification, QUEUED, SENT};
pub(crate) use outbox::{insert_notification, stored_recipients};
pub use postgres::{POSTGRES_MIGRATIONS, connect_postgres};
pub use probe::{Answer, answers};
pub(crate) use read::as_utc;
pub use read::{
    LedgerEntry, PageOrder, PagePosition, QuarantineEntry, RecordEvent, RecordFilter,
    RecordWithHistory, StoredRecord,
};
pub use revisions::Revision;
pub use state::{CollectorState, RunOutcome};
pub use tokens::ApiToken;
pub use url::{PostgresUrl, SslMode, StorageUrl, StorageUrlError};
pub use users::{Session, User};
pub use write::{Committed, Incoming, Unusable};

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// How long a writer waits for another process's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// WAL pages after which a commit copies the WAL into the database file (SQLite's default is
/// 1,000, about 4 MB). Each copy costs two fsyncs (the WAL's, then the file's) on top of the
/// commit's own: at 1,000 a backlog's batches of a few MB checkpointed after nearly every
/// commit, and those fsyncs were half the time a batch spent waiting. At 8,192 (32 MB of
/// WAL) they come every several batches; the copying itself costs the same, and the WAL
/// file grows to about this size while the daemon runs. Durability is the commit's WAL
/// fsync (`synchronous = FULL`), which this does not change.
const CHECKPOINT_PAGES: u32 = 8192;

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the database folder {path}: {source}")]
    CreateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the database {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: diesel::ConnectionError,
    },
    /// The PostgreSQL password could not be read (the message names the variable or file,
    /// never the value).
    #[error("cannot open the database {url}: the password: {message}")]
    Password { url: String, message: String },
    #[error("cannot migrate the database {url}: {message}")]
    Migrate { url: String, message: String },
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("no record {0}")]
    NoRecord(i64),
    #[error("no quarantine entry {0}")]
    NoQuarantineEntry(i64),
    #[error("quarantine entry {id} is {status}, not open")]
    QuarantineNotOpen { id: i64, status: String },
    #[error("there is already a user called `{0}`")]
    UserExists(String),
    #[error("there is already a live token called `{0}` (revoke it first, or pick another name)")]
    TokenExists(String),
    /// The workflow does not allow the change asked for.
    #[error("record {id}: {reason}")]
    Refused {
        id: i64,
        reason: crate::domain::Refusal,
    },
    /// The configured path no longer names the file the connection writes into (deleted or
    /// replaced while open): what was committed is not where anyone will look for it.
    #[error(
        "the {what} of {path} was deleted or replaced while open: the batch went into a file that is gone; nothing was acknowledged, and the next attempt opens the configured path again"
    )]
    Moved { path: String, what: &'static str },
    /// SQLite found the file corrupt (here, or in another store of this process).
    #[error(
        "the database {path} is damaged ({reason}): acknowledgements stopped for every collector; repair or restore it, then restart mailintake"
    )]
    Damaged { path: String, reason: String },
    /// Stored data that does not read back (e.g. a JSON column that does not parse).
    #[error("{table} row {id}: column `{column}` is unreadable: {message}")]
    Corrupt {
        table: &'static str,
        id: i64,
        column: &'static str,
        message: String,
    },
}

/// Why migrating failed: the migration itself, or the transaction around it.
#[derive(Debug, thiserror::Error)]
enum MigrationFailure {
    #[error("{0}")]
    Migration(Box<dyn std::error::Error + Send + Sync>),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

fn is_locked(error: &dyn std::fmt::Display) -> bool {
    let text = error.to_string();
    text.contains("database is locked") || text.contains("database is busy")
}

/// Runs `attempt` again, for up to [`BUSY_TIMEOUT`], while SQLite answers that the file is
/// locked without asking the busy handler: switching a fresh file to WAL, or migrating it,
/// while another process does the same.
fn retry_while_locked<T, E: std::fmt::Display>(
    mut attempt: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match attempt() {
            Err(e) if is_locked(&e) && std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// SQLite's per-connection settings.
fn configure_sqlite(conn: &mut SqliteConnection) -> QueryResult<()> {
    // NOTE: WAL lets readers (the CLI) work while the daemon writes; busy_timeout makes a
    // second writer wait instead of failing with "database is locked"; synchronous = FULL
    // fsyncs the WAL at every commit, so nothing acknowledged after a commit can vanish in
    // a power loss (see `integrity.rs`); SQLite leaves foreign keys off unless asked, per
    // connection; temp_store = MEMORY keeps the statement journals of a batch's multi-row
    // INSERTs (`insert.rs`) in memory rather than in temporary files written to disk;
    // wal_autocheckpoint: see [`CHECKPOINT_PAGES`].
    conn.batch_execute(&format!(
        "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES};",
        BUSY_TIMEOUT.as_millis()
    ))
}

/// The key of the PostgreSQL session lock held while migrating (another constant than the
/// write lock's), so daemons starting at once migrate one after another.
const MIGRATION_LOCK_KEY: i64 = 0x6d69_6d69_6772_6174;

/// Applies the pending migrations of the connection's backend, one process at a time;
/// returns the versions applied (none when the schema was current).
fn run_migrations(conn: &mut AnyConnection) -> Result<Vec<String>, MigrationFailure> {
    let applied = match conn {
        // NOTE: two processes opening a fresh file at once would both see the migrations
        // as pending; taking the write lock first makes the second wait and then find none.
        AnyConnection::Sqlite(c) => c.immediate_transaction(|c| {
            c.run_pending_migrations(SQLITE_MIGRATIONS)
                .map(|versions| versions.iter().map(ToString::to_string).collect())
                .map_err(MigrationFailure::Migration)
        })?,
        // NOTE: a session lock, not a transaction's: diesel runs each migration in its own
        // transaction, and the lock must cover the look at what is pending as well.
        AnyConnection::Postgres(c) => {
            c.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))?;
            let result = c
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|versions| versions.iter().map(ToString::to_string).collect())
                .map_err(MigrationFailure::Migration);
            c.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))?;
            result?
        }
    };
    Ok(applied)
}

/// Opens a connection to `url` with the backend's per-connection settings, without
/// migrating (`mailintake db copy` and the store migrate on their own terms).
pub fn connect(url: &StorageUrl) -> Result<AnyConnection, StoreError> {
    let connect_error = |source| StoreError::Connect {
        url: url.to_string(),
        source,
    };
    match url {
        StorageUrl::Sqlite(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                    path: dir.display().to_string(),
                    source,
                })?;
            }
            let mut conn =
                SqliteConnection::establish(&path.to_string_lossy()).map_err(connect_error)?;
            retry_while_locked(|| configure_sqlite(&mut conn))?;
            Ok(AnyConnection::Sqlite(conn))
        }
        StorageUrl::Postgres(pg) => {
            let password = pg
                .password
                .as_ref()
                .map(crate::secret::Secret::read)
                .transpose()
                .map_err(|message| StoreError::Password {
                    url: url.to_string(),
                    message,
                })?;
            let conn: PgConnection =
                connect_postgres(pg, password.as_deref()).map_err(connect_error)?;
            Ok(AnyConnection::Postgres(conn))
        }
    }
}

/// Applies the pending migrations to the database at `url` (creating a SQLite file), and
/// returns the versions applied: `mailintake migrate`.
pub fn migrate(url: &StorageUrl) -> Result<Vec<String>, StoreError> {
    let mut conn = connect(url)?;
    migrate_connection(&mut conn, url)
}

fn migrate_connection(
    conn: &mut AnyConnection,
    url: &StorageUrl,
) -> Result<Vec<String>, StoreError> {
    retry_while_locked(|| run_migrations(conn)).map_err(|failure| match failure {
        MigrationFailure::Database(e) => StoreError::Query(e),
        other => StoreError::Migrate {
            url: url.to_string(),
            message: other.to_string(),
        },
    })
}

/// An open database.
pub struct Store {
    conn: AnyConnection,
    ids: insert::IdCache,
    /// The files the connection opened, checked before acknowledging (SQLite only).
    home: Option<integrity::Home>,
    /// The `[[notify]]` rules whose notifications each change writes in its transaction.
    notify: Arc<NotifyRules>,
    /// Where the connection goes, for [`Store::heal`].
    url: StorageUrl,
}

impl Store {
    /// Sets what records naming an unknown customer get (from the config).
    pub fn set_unknown_customer(&mut self, policy: Option<UnknownCustomer>) {
        self.ids.unknown_customer = policy;
    }

    /// The connection, for the notify stage's outbox and directory (`crate::notify`), which
    /// write inside the store's transactions and read their own tables.
    pub(crate) fn connection(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }

    /// Sets the `[[notify]]` rules (from the config): from now on each record stored,
    /// triaged or moved to another status queues what they say, in the same transaction.
    pub fn set_notify_rules(&mut self, rules: Arc<NotifyRules>) {
        self.notify = rules;
    }

    /// Opens (creating and migrating if needed) the database at `url`.
    ///
    /// A SQLite file found damaged on the way raises the damage alarm (see `integrity.rs`).
    pub fn open(url: &StorageUrl) -> Result<Store, StoreError> {
        let opened = connect(url).and_then(|mut conn| {
            migrate_connection(&mut conn, url)?;
            Ok(conn)
        });
        let conn = match (opened, url) {
            (Ok(conn), _) => conn,
            (Err(e), StorageUrl::Sqlite(path)) => {
                integrity::alarm_on_damage(path, &e);
                return Err(e);
            }
            (Err(e), StorageUrl::Postgres(_)) => return Err(e),
        };
        Ok(Store {
            conn,
            ids: insert::IdCache::default(),
            home: match url {
                StorageUrl::Sqlite(path) => Some(integrity::Home::of(path)),
                StorageUrl::Postgres(_) => None,
            },
            notify: Arc::default(),
            url: url.clone(),
        })
    }

    /// After an error: if the connection to a PostgreSQL server is gone (the server
    /// restarted, the network dropped it), opens a new one, so a long-lived store (the review
    /// page's, the notification dispatcher's) works again from the next call. Returns
    /// whether it reconnected. A SQLite connection is never lost this way.
    pub fn heal(&mut self) -> bool {
        if !self.conn.is_postgres() || self.conn.batch_execute("SELECT 1").is_ok() {
            return false;
        }
        match connect(&self.url) {
            Ok(conn) => {
                tracing::info!(database = %self.url, "reconnected to the database");
                self.conn = conn;
                self.ids.clear();
                true
            }
            Err(e) => {
                tracing::warn!(database = %self.url, error = %e, "cannot reconnect to the database yet");
                false
            }
        }
    }
}
