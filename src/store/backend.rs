//! The two databases behind one connection type: SQLite (the embedded default) and
//! PostgreSQL (several daemons sharing the work).
//!
//! Queries are written once against [`AnyConnection`], diesel's `MultiConnection`. What that
//! does not cover (`ON CONFLICT`, `FOR UPDATE SKIP LOCKED`, SQLite's `BEGIN IMMEDIATE`) is
//! written once too and compiled for each inner connection by [`on_backend!`].

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::prelude::*;

/// A connection to either database.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

/// Runs `$body` with `$c` bound to the inner connection, compiled once per backend: for
/// the diesel features `MultiConnection` does not carry (`on_conflict`, `skip_locked`), and
/// for statements run per record or per notification: through `MultiConnection` diesel
/// builds a statement's SQL again at every run (a record's 30-column insert: 5% of the
/// writer's time), on the inner connection it stays prepared.
macro_rules! on_backend {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::store::AnyConnection::Postgres($c) => $body,
            $crate::store::AnyConnection::Sqlite($c) => $body,
        }
    };
}
pub(crate) use on_backend;

/// The key of the PostgreSQL advisory lock every write transaction takes (any constant
/// shared by all daemons; this one spells "mailintk").
const WRITE_LOCK_KEY: i64 = 0x6d61_696c_696e_746b;

/// Whether a PostgreSQL transaction takes the store's write lock.
#[derive(Clone, Copy, PartialEq, Eq)]
enum WriteLock {
    Take,
    Leave,
}

impl AnyConnection {
    /// Runs `body` in a transaction that holds the database's write lock from its first
    /// statement, so writers run one after another, as the store's logic assumes: the
    /// ledger looked up for a batch stays true until its commit, a service request's daily
    /// number is counted without a race.
    ///
    /// SQLite: `BEGIN IMMEDIATE` (another process waits in the busy timeout). PostgreSQL:
    /// `BEGIN` and a transaction-level advisory lock, released by the commit or rollback;
    /// readers, leases and notification claims do not take it. The database's unique
    /// constraints stand behind the lock: a write that slips past it (a second daemon on
    /// the same mailbox by mistake) fails rather than doubles a record.
    pub fn write_transaction<T, E, F>(&mut self, body: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E>,
        E: From<diesel::result::Error>,
    {
        self.begin(WriteLock::Take)?;
        self.finish_transaction(body)
    }

    /// Runs `body` in a transaction without the PostgreSQL write lock: claims and leases,
    /// which lock only the rows they change. (SQLite still begins it `IMMEDIATE`: a
    /// transaction that reads and then writes would otherwise fail with "database is
    /// locked" when another process wrote in between, instead of waiting.)
    pub fn row_transaction<T, E, F>(&mut self, body: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E>,
        E: From<diesel::result::Error>,
    {
        self.begin(WriteLock::Leave)?;
        self.finish_transaction(body)
    }

    fn begin(&mut self, lock: WriteLock) -> QueryResult<()> {
        match self {
            AnyConnection::Sqlite(c) => {
                AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")
            }
            AnyConnection::Postgres(c) => {
                AnsiTransactionManager::begin_transaction(c)?;
                if lock == WriteLock::Leave {
                    return Ok(());
                }
                c.batch_execute(&format!("SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})"))
                    .inspect_err(|_| {
                        let _ = AnsiTransactionManager::rollback_transaction(c);
                    })
            }
        }
    }

    /// Runs `body` in the transaction just begun; commits on `Ok`, rolls back on `Err`
    /// (keeping `body`'s error, as diesel's own `transaction` does).
    fn finish_transaction<T, E, F>(&mut self, body: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E>,
        E: From<diesel::result::Error>,
    {
        match body(self) {
            Ok(value) => {
                <Self as Connection>::TransactionManager::commit_transaction(self)?;
                Ok(value)
            }
            Err(error) => {
                match <Self as Connection>::TransactionManager::rollback_transaction(self) {
                    Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(error),
                    Err(rollback) => Err(rollback.into()),
                }
            }
        }
    }

    /// Whether this is a PostgreSQL connection.
    pub fn is_postgres(&self) -> bool {
        matches!(self, AnyConnection::Postgres(_))
    }
}
