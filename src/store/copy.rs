//! `mailintake db copy`: one installation's database copied whole into another, SQLite to
//! PostgreSQL and back, ids and bytes kept.
//!
//! The rules, and why:
//! - The source is only read: opened without migrating, in one read transaction (a
//!   snapshot, so a daemon still writing to it cannot tear the copy), and refused unless its
//!   applied migrations are exactly this binary's: a row shape this binary does not know
//!   would be copied wrong or not at all.
//! - The target is migrated first (a SQLite file is created), then filled in ONE write
//!   transaction: a failure anywhere leaves it as it was. A target holding any row is
//!   refused, unless asked to replace its content, which is deleted in the same
//!   transaction, children before parents.
//! - Tables are copied parents first (the foreign keys hold at every statement), each in
//!   primary-key order, a chunk at a time: memory stays bounded by a chunk, whatever the
//!   size of the quarantine's raw messages.
//! - Ids are copied as they are; PostgreSQL's sequences are then moved past them, so the
//!   next record does not collide with a copied one.
//! - The history trigger (migration 120) raises `records.updated_at` when an event is
//!   inserted; copying the events fires it. The records' `updated_at` are set back to the
//!   source's afterwards, where they differ.
//! - Times: PostgreSQL keeps microseconds, SQLite the nanoseconds the clock gave. A copy to
//!   PostgreSQL drops the digits below the microsecond; everything else is copied exactly.

use std::collections::HashMap;

use chrono::{NaiveDateTime, SubsecRound};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;

use super::schema;
use super::url::StorageUrl;
use super::{AnyConnection, StoreError, on_backend};

/// Rows per chunk read from the source and inserted into the target.
const CHUNK: i64 = 500;
/// Rows per chunk for the tables that keep whole messages (up to the size limit each).
const BLOB_CHUNK: i64 = 16;

/// Which database of the copy an error comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Source,
    Target,
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            End::Source => "source",
            End::Target => "target",
        })
    }
}

/// Why a copy did not happen (the target is then as it was).
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// Opening or migrating failed (the store's error names the URL).
    #[error("the {end}: {source}")]
    Open {
        end: End,
        #[source]
        source: StoreError,
    },
    #[error("the source {url} does not exist")]
    NoSource { url: String },
    #[error("the source and the target are the same database ({url})")]
    SameDatabase { url: String },
    #[error("the {end} {url}: {source}")]
    Query {
        end: End,
        url: String,
        #[source]
        source: diesel::result::Error,
    },
    /// Its schema is not this binary's (older, newer, or not a mailintake database).
    #[error("the {end} {url}: {message}")]
    Schema {
        end: End,
        url: String,
        message: String,
    },
    /// The target holds rows and replacing them was not asked for.
    #[error("the target {url} is not empty ({rows} rows in {table})")]
    NotEmpty {
        url: String,
        table: &'static str,
        rows: i64,
    },
}

/// How many rows of a table were copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopiedTable {
    pub table: &'static str,
    pub rows: u64,
}

/// A failure inside the copy, before the URLs are put to it.
enum Failed {
    Query(End, diesel::result::Error),
    NotEmpty { table: &'static str, rows: i64 },
}

/// The target's errors come through `?` (the transaction's own begin and commit too).
impl From<diesel::result::Error> for Failed {
    fn from(error: diesel::result::Error) -> Failed {
        Failed::Query(End::Target, error)
    }
}

fn read_failed(error: diesel::result::Error) -> Failed {
    Failed::Query(End::Source, error)
}

/// The table's key after `$last`, the last row copied: keyset paging, so each chunk is an
/// index look-up however far the copy has come.
macro_rules! after {
    ($t:ident, $last:expr, $a:ident) => {
        schema::$t::$a.gt($last.$a.clone())
    };
    ($t:ident, $last:expr, $a:ident, $b:ident) => {
        schema::$t::$a.gt($last.$a.clone()).or(schema::$t::$a
            .eq($last.$a.clone())
            .and(schema::$t::$b.gt($last.$b.clone())))
    };
}

/// For each table: a row type holding every column, and its copy, count and delete; then
/// [`TABLES`], in the order given (parents before children).
macro_rules! tables {
    ($($t:ident ($($key:ident),+) per $chunk:ident { $($column:ident: $type:ty),+ $(,)? })+) => {
        $(mod $t {
            use super::*;

            #[derive(Queryable, Selectable, Insertable)]
            #[diesel(table_name = schema::$t, treat_none_as_default_value = false)]
            pub(super) struct Row {
                $(pub(super) $column: $type,)+
            }

            pub(super) fn copy(from: &mut AnyConnection, to: &mut AnyConnection) -> Result<u64, Failed> {
                let mut copied = 0;
                let mut last: Option<Row> = None;
                loop {
                    let mut query = schema::$t::table.select(Row::as_select()).into_boxed();
                    if let Some(last) = &last {
                        query = query.filter(after!($t, last, $($key),+));
                    }
                    $(query = query.then_order_by(schema::$t::$key.asc());)+
                    let rows: Vec<Row> = query.limit($chunk).load(from).map_err(read_failed)?;
                    if rows.is_empty() {
                        return Ok(copied);
                    }
                    on_backend!(&mut *to, c => diesel::insert_into(schema::$t::table).values(&rows).execute(c))?;
                    copied += rows.len() as u64;
                    last = rows.into_iter().last();
                }
            }

            pub(super) fn count(conn: &mut AnyConnection) -> QueryResult<i64> {
                schema::$t::table.count().get_result(conn)
            }

            pub(super) fn delete(conn: &mut AnyConnection) -> QueryResult<usize> {
                diesel::delete(schema::$t::table).execute(conn)
            }
        })+

        /// Every table of the schema, parents before children.
        const TABLES: &[Table] = &[$(Table {
            name: stringify!($t),
            copy: $t::copy,
            count: $t::count,
            delete: $t::delete,
        }),+];
    };
}

/// One table's operations, as [`tables!`] makes them.
struct Table {
    name: &'static str,
    copy: fn(&mut AnyConnection, &mut AnyConnection) -> Result<u64, Failed>,
    count: fn(&mut AnyConnection) -> QueryResult<i64>,
    delete: fn(&mut AnyConnection) -> QueryResult<usize>,
}

type Time = NaiveDateTime;
type MaybeText = Option<String>;

// NOTE: a table added to `schema.rs` must be added here too; the unit test
// `copy_knows_every_table_of_the_schema` compares this list with a migrated database.
tables! {
    counterparties (id) per CHUNK { id: i64, inn: String, name: MaybeText, created_at: Time }
    contacts (id) per CHUNK { id: i64, phone_digits: String, name: MaybeText, email: MaybeText, created_at: Time }
    records (id) per CHUNK {
        id: i64, queue: String, collector: String, kind: String, status: String, title: MaybeText,
        record_date: Option<Time>, description: MaybeText, inn: MaybeText, inn_valid: bool, phone: MaybeText,
        phone_digits: MaybeText, email: MaybeText, contact_name: MaybeText, counterparty_id: Option<i64>,
        contact_id: Option<i64>, layout_files: String, message_id: MaybeText, subject: MaybeText,
        order_ref: MaybeText, attachment_name: MaybeText, charset: String, warnings: String,
        payload: String, created_at: Time, updated_at: Time, number: MaybeText,
        request_type: MaybeText, service: MaybeText, result: MaybeText, format: MaybeText,
    }
    record_lines (id) per CHUNK {
        id: i64, record_id: i64, position: i32, item: MaybeText, machine_code: MaybeText,
        resolution: MaybeText, material: MaybeText, material_code: MaybeText, width: Option<f64>,
        height: Option<f64>, quantity: Option<f64>, price: Option<f64>, amount: Option<f64>,
        is_service: bool, extra_work: String,
    }
    tech_cards (id) per CHUNK { id: i64, record_id: i64, line_position: i32, status: String, created_at: Time }
    record_events (id) per CHUNK { id: i64, record_id: i64, at: Time, actor: String, event: String, detail: MaybeText }
    record_sources (record_id) per BLOB_CHUNK { record_id: i64, raw: Vec<u8> }
    quarantine (id) per BLOB_CHUNK {
        id: i64, collector: String, source_key: String, message_id: MaybeText, subject: MaybeText,
        fingerprint: String, reason: String, raw: Vec<u8>, status: String,
        record_id: Option<i64>, created_at: Time, updated_at: Time,
    }
    ledger (id) per CHUNK {
        id: i64, collector: String, source_key: String, message_id: MaybeText, fingerprint: String,
        outcome: String, record_id: Option<i64>, quarantine_id: Option<i64>, created_at: Time,
    }
    collector_state (collector) per CHUNK {
        collector: String, uidvalidity: Option<i64>, last_uid: Option<i64>,
        last_run_at: Option<Time>, last_success_at: Option<Time>, last_error: MaybeText,
        last_report: MaybeText, next_run_at: Option<Time>, updated_at: Time, mode: MaybeText,
        fallbacks: MaybeText, failed_report: MaybeText, failing_since: Option<Time>,
    }
    notifications (id) per CHUNK {
        id: i64, record_id: i64, rule: String, channel: String, recipients: String,
        subject: String, body: String, status: String, attempts: i32, last_error: MaybeText,
        server_reply: MaybeText, next_attempt_at: Time, created_at: Time, sent_at: Option<Time>,
        claimed_until: Option<Time>,
    }
    people (id) per CHUNK {
        id: i64, name: String, branch: String, role: String, email: MaybeText, phone: MaybeText,
        enabled: bool, created_at: Time,
    }
    users (id) per CHUNK { id: i64, name: String, role: String, password_hash: String, disabled: bool, created_at: Time }
    user_queues (user_id, queue) per CHUNK { user_id: i64, queue: String }
    sessions (token_hash) per CHUNK { token_hash: String, user_id: i64, csrf: String, created_at: Time, expires_at: Time }
    api_tokens (id) per CHUNK {
        id: i64, name: String, scope: String, target: MaybeText, secret_hash: String,
        created_at: Time, revoked_at: Option<Time>,
    }
    skipped_messages (collector, source_key) per CHUNK { collector: String, source_key: String, rules: String, skipped_at: Time }
    http_intake (id) per CHUNK {
        id: i64, collector: String, token: String, idempotency_key: MaybeText, body_sha256: String,
        content_type: MaybeText, record_id: Option<i64>, quarantine_id: Option<i64>, created_at: Time,
    }
    http_intake_bodies (collector, body_sha256) per CHUNK { collector: String, body_sha256: String, intake_id: i64 }
}

/// Copies every table of the database at `from` into the database at `to` (created and
/// migrated first), ids kept, in one transaction on the target; with `replace`, the
/// target's rows are deleted first (otherwise a target holding any row is refused).
/// Returns the rows copied per table, parents first.
pub fn copy_database(
    from: &StorageUrl,
    to: &StorageUrl,
    replace: bool,
) -> Result<Vec<CopiedTable>, CopyError> {
    refuse_same_database(from, to)?;
    if let StorageUrl::Sqlite(path) = from
        && !path.exists()
    {
        // NOTE: opening a missing SQLite file creates it.
        return Err(CopyError::NoSource {
            url: from.to_string(),
        });
    }
    let mut source = super::connect(from).map_err(|source| CopyError::Open {
        end: End::Source,
        source,
    })?;
    check_schema(&mut source, End::Source, from)?;
    let mut target = super::connect(to)
        .and_then(|mut conn| super::migrate_connection(&mut conn, to).map(|_| conn))
        .map_err(|source| CopyError::Open {
            end: End::Target,
            source,
        })?;
    check_schema(&mut target, End::Target, to)?;

    let query = |end: End, source| CopyError::Query {
        end,
        url: match end {
            End::Source => from,
            End::Target => to,
        }
        .to_string(),
        source,
    };
    // A snapshot of the source for the whole copy (read only; dropped with the connection).
    let begin = if source.is_postgres() {
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
    } else {
        "BEGIN"
    };
    source
        .batch_execute(begin)
        .map_err(|e| query(End::Source, e))?;
    target
        .write_transaction(|target| copy_tables(&mut source, target, replace))
        .map_err(|failed| match failed {
            Failed::Query(end, source) => query(end, source),
            Failed::NotEmpty { table, rows } => CopyError::NotEmpty {
                url: to.to_string(),
                table,
                rows,
            },
        })
}

fn copy_tables(
    from: &mut AnyConnection,
    to: &mut AnyConnection,
    replace: bool,
) -> Result<Vec<CopiedTable>, Failed> {
    for table in TABLES.iter().rev() {
        if replace {
            (table.delete)(to)?;
        } else {
            let rows = (table.count)(to)?;
            if rows > 0 {
                return Err(Failed::NotEmpty {
                    table: table.name,
                    rows,
                });
            }
        }
    }
    let mut copied = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        copied.push(CopiedTable {
            table: table.name,
            rows: (table.copy)(from, to)?,
        });
    }
    restore_updated_at(from, to)?;
    if to.is_postgres() {
        move_sequences_past_ids(to)?;
    }
    Ok(copied)
}

/// Sets each record's `updated_at` back to the source's where the history trigger moved it
/// while the events were copied.
fn restore_updated_at(from: &mut AnyConnection, to: &mut AnyConnection) -> Result<(), Failed> {
    // NOTE: compared at the target's precision, or every record would differ on PostgreSQL.
    let precision = if to.is_postgres() { 6 } else { 9 };
    let mut after = i64::MIN;
    loop {
        let wanted: Vec<(i64, Time)> = schema::records::table
            .filter(schema::records::id.gt(after))
            .order(schema::records::id.asc())
            .select((schema::records::id, schema::records::updated_at))
            .limit(CHUNK)
            .load(from)
            .map_err(read_failed)?;
        let (Some(first), Some(last)) = (wanted.first(), wanted.last()) else {
            return Ok(());
        };
        let found: HashMap<i64, Time> = schema::records::table
            .filter(schema::records::id.between(first.0, last.0))
            .select((schema::records::id, schema::records::updated_at))
            .load(to)?
            .into_iter()
            .collect();
        for (id, at) in &wanted {
            let at = at.trunc_subsecs(precision);
            if found.get(id) != Some(&at) {
                diesel::update(schema::records::table.find(id))
                    .set(schema::records::updated_at.eq(at))
                    .execute(to)?;
            }
        }
        after = last.0;
    }
}

#[derive(QueryableByName)]
struct SerialColumn {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
}

/// PostgreSQL: each sequence behind a BIGSERIAL column moves past the largest id copied
/// (inserting explicit ids does not move it), found in the catalogue so no table is missed.
fn move_sequences_past_ids(to: &mut AnyConnection) -> QueryResult<()> {
    let serials: Vec<SerialColumn> = diesel::sql_query(
        "SELECT table_name::text AS table_name, column_name::text AS column_name \
         FROM information_schema.columns \
         WHERE table_schema = current_schema() AND column_default LIKE 'nextval(%'",
    )
    .load(to)?;
    for serial in serials {
        let quoted = |name: &str| format!("\"{}\"", name.replace('"', "\"\""));
        let literal = |name: &str| name.replace('\'', "''");
        to.batch_execute(&format!(
            "SELECT setval(pg_get_serial_sequence('{}', '{}'), COALESCE(MAX({}), 0) + 1, false) FROM {}",
            literal(&quoted(&serial.table_name)),
            literal(&serial.column_name),
            quoted(&serial.column_name),
            quoted(&serial.table_name),
        ))?;
    }
    Ok(())
}

/// Refuses copying a database onto itself (with `--force` it would be emptied first).
fn refuse_same_database(from: &StorageUrl, to: &StorageUrl) -> Result<(), CopyError> {
    let same = match (from, to) {
        (StorageUrl::Sqlite(a), StorageUrl::Sqlite(b)) => {
            a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
        }
        (StorageUrl::Postgres(a), StorageUrl::Postgres(b)) => {
            (&a.host, a.port, &a.database) == (&b.host, b.port, &b.database)
        }
        _ => false,
    };
    if same {
        return Err(CopyError::SameDatabase {
            url: to.to_string(),
        });
    }
    Ok(())
}

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = Text)]
    version: String,
}

/// The migration versions this binary embeds for the connection's backend.
fn known_versions(conn: &AnyConnection) -> Vec<String> {
    use diesel::migration::MigrationSource;
    let mut names: Vec<String> = match conn {
        AnyConnection::Sqlite(_) => {
            MigrationSource::<diesel::sqlite::Sqlite>::migrations(&super::SQLITE_MIGRATIONS)
                .map(|all| all.iter().map(|m| m.name().version().to_string()).collect())
        }
        AnyConnection::Postgres(_) => {
            MigrationSource::<diesel::pg::Pg>::migrations(&super::POSTGRES_MIGRATIONS)
                .map(|all| all.iter().map(|m| m.name().version().to_string()).collect())
        }
    }
    .unwrap_or_default();
    names.sort();
    names
}

/// Refuses a database whose applied migrations are not exactly this binary's.
fn check_schema(conn: &mut AnyConnection, end: End, url: &StorageUrl) -> Result<(), CopyError> {
    let schema = |message: String| CopyError::Schema {
        end,
        url: url.to_string(),
        message,
    };
    // NOTE: read by hand: diesel's `applied_migrations` creates its table when missing,
    // and the source is not to be changed.
    let applied: Vec<Version> =
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations ORDER BY version")
            .load(conn)
            .map_err(|e| schema(format!("not a mailintake database ({e})")))?;
    let applied: Vec<String> = applied.into_iter().map(|v| v.version).collect();
    let known = known_versions(conn);
    if applied == known {
        return Ok(());
    }
    let missing = known.iter().filter(|v| !applied.contains(v)).count();
    let unknown: Vec<&String> = applied.iter().filter(|v| !known.contains(v)).collect();
    Err(schema(if unknown.is_empty() {
        format!(
            "its schema is older than this mailintake's ({missing} migrations missing); upgrade it first (`mailintake migrate`, or run this version on it once)"
        )
    } else {
        format!(
            "its schema is newer than this mailintake's (migrations {} unknown); copy it with the version that wrote it",
            unknown
                .iter()
                .map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = Text)]
        name: String,
    }

    /// Tables deliberately not copied: which daemon holds a collector (`collector_leases`)
    /// and which daemons are alive (`daemons`) are the state of those running on the source; those on the target take their leases
    /// afresh.
    const NOT_COPIED: &[&str] = &["collector_leases", "daemons"];

    #[test]
    fn copy_knows_every_table_of_the_schema() {
        let dir = tempfile::tempdir().unwrap();
        let url = StorageUrl::Sqlite(dir.path().join("m.db"));
        super::super::migrate(&url).unwrap();
        let mut conn = super::super::connect(&url).unwrap();
        let names: Vec<Name> = diesel::sql_query(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             AND name <> '__diesel_schema_migrations' ORDER BY name",
        )
        .load(&mut conn)
        .unwrap();
        let mut schema: Vec<String> = names
            .into_iter()
            .map(|n| n.name)
            .filter(|name| !NOT_COPIED.contains(&name.as_str()))
            .collect();
        let mut copied: Vec<String> = TABLES.iter().map(|t| t.name.to_string()).collect();
        schema.sort();
        copied.sort();
        assert_eq!(copied, schema);
    }

    #[test]
    fn a_database_is_not_copied_onto_itself() {
        let url = StorageUrl::Sqlite("/tmp/x/../x/m.db".into());
        let error = copy_database(&url, &url, true).unwrap_err();
        assert!(matches!(error, CopyError::SameDatabase { .. }), "{error}");
    }

    #[test]
    fn a_missing_source_file_is_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let from = StorageUrl::Sqlite(dir.path().join("missing.db"));
        let to = StorageUrl::Sqlite(dir.path().join("to.db"));
        let error = copy_database(&from, &to, false).unwrap_err();
        assert!(matches!(error, CopyError::NoSource { .. }), "{error}");
        assert!(!dir.path().join("missing.db").exists());
    }
}
