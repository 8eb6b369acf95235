//! PostgreSQL groundwork (issue 8): the embedded PostgreSQL migrations on a real server agree
//! with the SQLite ones, and the test server goes away with its test process.
//!
//! The schema check reads each backend's own catalogue (SQLite's `sqlite_master` and
//! `pragma_*` functions, PostgreSQL's `information_schema` and `pg_index`) into one shape and
//! compares: the same tables, columns of compatible types with the same nullability, the same
//! primary keys, unique constraints, indexes (partial ones with the same predicate), foreign
//! keys, the number of CHECK constraints and the triggers' names. A SQLite migration added
//! without its PostgreSQL twin fails it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Integer, Nullable, Text};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::MigrationHarness;
use mailintake::store::{POSTGRES_MIGRATIONS, StorageUrl, Store};

use crate::kit::postgres::{Postgres, PostgresOptions};
use crate::kit::process::{Daemon, wait_until};
use crate::kit::sandbox::{Sandbox, repo};
use crate::kit::web::{Client, logged_address};

/// The table diesel keeps its migration versions in: not part of the schema compared.
const DIESEL_TABLE: &str = "__diesel_schema_migrations";

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Column {
    /// The type as diesel's schema sees it: `bigint`, `integer`, `text`, `timestamp`,
    /// `boolean`, `double`, `binary`.
    kind: &'static str,
    not_null: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Index {
    unique: bool,
    columns: Vec<String>,
    /// A partial index's WHERE, lower-cased without parentheses or extra spaces.
    predicate: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ForeignKey {
    column: String,
    table: String,
    references: String,
    on_delete: String,
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Table {
    columns: BTreeMap<String, Column>,
    primary_key: Vec<String>,
    /// Unique constraints and indexes, primary keys left out (they are above).
    indexes: BTreeSet<Index>,
    foreign_keys: BTreeSet<ForeignKey>,
    /// How many CHECK constraints (their text differs between the dialects).
    checks: usize,
    /// The names of the triggers on the table.
    triggers: BTreeSet<String>,
}

type Schema = BTreeMap<String, Table>;

fn predicate(text: &str) -> String {
    text.replace(['(', ')'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

// --- SQLite ---

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct SqliteColumn {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    r#type: String,
    #[diesel(sql_type = Integer)]
    notnull: i32,
    #[diesel(sql_type = Integer)]
    pk: i32,
}

#[derive(QueryableByName)]
struct SqliteIndex {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Integer)]
    unique: i32,
    #[diesel(sql_type = Text)]
    origin: String,
    #[diesel(sql_type = Nullable<Text>)]
    sql: Option<String>,
}

#[derive(QueryableByName)]
struct SqliteForeignKey {
    #[diesel(sql_type = Text)]
    table: String,
    #[diesel(sql_type = Text)]
    from: String,
    #[diesel(sql_type = Text)]
    to: String,
    #[diesel(sql_type = Text)]
    on_delete: String,
}

/// SQLite's declared type as diesel maps it. NOTE: `INTEGER PRIMARY KEY` is the 64-bit
/// rowid (diesel `BigInt`); any other `INTEGER` column is an `Integer` (i32) in
/// `src/store/schema.rs`, and 64-bit columns are declared `BIGINT`.
fn sqlite_kind(table: &str, column: &SqliteColumn, rowid: bool) -> &'static str {
    match column.r#type.to_uppercase().as_str() {
        "INTEGER" if rowid => "bigint",
        "INTEGER" => "integer",
        "BIGINT" => "bigint",
        "TEXT" => "text",
        "TIMESTAMP" => "timestamp",
        "BOOLEAN" => "boolean",
        "DOUBLE PRECISION" => "double",
        "BLOB" => "binary",
        other => panic!(
            "{table}.{}: SQLite type `{other}` is not known to this test; add it with its PostgreSQL twin",
            column.name
        ),
    }
}

fn sqlite_schema(conn: &mut SqliteConnection) -> Schema {
    let tables: Vec<Name> = diesel::sql_query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .load(conn)
    .unwrap();
    let mut schema = Schema::new();
    for Name { name: table } in tables.into_iter().filter(|t| t.name != DIESEL_TABLE) {
        let mut t = Table::default();
        let columns: Vec<SqliteColumn> = diesel::sql_query(format!(
            "SELECT name, type, \"notnull\", pk FROM pragma_table_info('{table}') ORDER BY pk, cid"
        ))
        .load(conn)
        .unwrap();
        let pk_count = columns.iter().filter(|c| c.pk > 0).count();
        for column in &columns {
            let rowid = column.pk > 0 && pk_count == 1;
            let kind = sqlite_kind(&table, column, rowid);
            // NOTE: SQLite lets a non-INTEGER primary key hold NULL unless declared NOT NULL;
            // PostgreSQL never does. Every primary key here is NOT NULL anyway.
            let not_null = column.notnull != 0 || column.pk > 0;
            t.columns
                .insert(column.name.clone(), Column { kind, not_null });
            if column.pk > 0 {
                t.primary_key.push(column.name.clone());
            }
        }
        let indexes: Vec<SqliteIndex> = diesel::sql_query(format!(
            "SELECT l.name, l.\"unique\", l.origin, m.sql FROM pragma_index_list('{table}') l \
             LEFT JOIN sqlite_master m ON m.type = 'index' AND m.name = l.name"
        ))
        .load(conn)
        .unwrap();
        for index in indexes.into_iter().filter(|i| i.origin != "pk") {
            let columns: Vec<Name> = diesel::sql_query(format!(
                "SELECT name FROM pragma_index_info('{}') ORDER BY seqno",
                index.name
            ))
            .load(conn)
            .unwrap();
            let predicate = index.sql.as_deref().and_then(|sql| {
                let at = sql.to_uppercase().find(" WHERE ")?;
                Some(predicate(&sql[at + " WHERE ".len()..]))
            });
            t.indexes.insert(Index {
                unique: index.unique != 0,
                columns: columns.into_iter().map(|c| c.name).collect(),
                predicate,
            });
        }
        let keys: Vec<SqliteForeignKey> = diesel::sql_query(format!(
            "SELECT \"table\", \"from\", \"to\", on_delete FROM pragma_foreign_key_list('{table}')"
        ))
        .load(conn)
        .unwrap();
        for key in keys {
            t.foreign_keys.insert(ForeignKey {
                column: key.from,
                table: key.table,
                references: key.to,
                on_delete: key.on_delete.to_uppercase(),
            });
        }
        let definition: Vec<Name> = diesel::sql_query(format!(
            "SELECT sql AS name FROM sqlite_master WHERE type = 'table' AND name = '{table}'"
        ))
        .load(conn)
        .unwrap();
        t.checks = definition.first().map_or(0, |d| check_count(&d.name));
        let triggers: Vec<Name> = diesel::sql_query(format!(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = '{table}'"
        ))
        .load(conn)
        .unwrap();
        t.triggers = triggers.into_iter().map(|t| t.name).collect();
        schema.insert(table, t);
    }
    schema
}

/// The CHECK constraints in a SQLite `CREATE TABLE` (SQLite keeps them only in its text).
fn check_count(sql: &str) -> usize {
    let compact: String = sql
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_uppercase();
    compact
        .match_indices("CHECK(")
        .filter(|(at, _)| {
            !compact[..*at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
        .count()
}

// --- PostgreSQL ---

#[derive(QueryableByName)]
struct PgColumn {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    data_type: String,
    #[diesel(sql_type = Text)]
    is_nullable: String,
}

#[derive(QueryableByName)]
struct PgIndexColumn {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    index_name: String,
    #[diesel(sql_type = Bool)]
    is_unique: bool,
    #[diesel(sql_type = Bool)]
    is_primary: bool,
    #[diesel(sql_type = Nullable<Text>)]
    predicate: Option<String>,
    #[diesel(sql_type = Text)]
    column_name: String,
}

#[derive(QueryableByName)]
struct PgForeignKey {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    foreign_table: String,
    #[diesel(sql_type = Text)]
    foreign_column: String,
    #[diesel(sql_type = Text)]
    delete_rule: String,
}

#[derive(QueryableByName)]
struct PgCount {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    count: i64,
}

#[derive(QueryableByName)]
struct PgTrigger {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    name: String,
}

fn pg_kind(table: &str, column: &PgColumn) -> &'static str {
    match column.data_type.as_str() {
        "bigint" => "bigint",
        "integer" => "integer",
        "text" => "text",
        "timestamp without time zone" => "timestamp",
        "boolean" => "boolean",
        "double precision" => "double",
        "bytea" => "binary",
        other => panic!(
            "{table}.{}: PostgreSQL type `{other}` is not known to this test",
            column.column_name
        ),
    }
}

fn pg_schema(conn: &mut PgConnection) -> Schema {
    let mut schema = Schema::new();
    let columns: Vec<PgColumn> = diesel::sql_query(
        "SELECT c.table_name::text, c.column_name::text, c.data_type::text, c.is_nullable::text \
         FROM information_schema.columns c JOIN information_schema.tables t \
           ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
         WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' \
         ORDER BY c.table_name, c.ordinal_position",
    )
    .load(conn)
    .unwrap();
    for column in columns.iter().filter(|c| c.table_name != DIESEL_TABLE) {
        let kind = pg_kind(&column.table_name, column);
        schema
            .entry(column.table_name.clone())
            .or_default()
            .columns
            .insert(
                column.column_name.clone(),
                Column {
                    kind,
                    not_null: column.is_nullable == "NO",
                },
            );
    }
    // One row per indexed column, in the index's order.
    let index_columns: Vec<PgIndexColumn> = diesel::sql_query(
        "SELECT t.relname::text AS table_name, i.relname::text AS index_name, \
                x.indisunique AS is_unique, x.indisprimary AS is_primary, \
                pg_get_expr(x.indpred, x.indrelid) AS predicate, a.attname::text AS column_name \
         FROM pg_index x \
         JOIN pg_class i ON i.oid = x.indexrelid \
         JOIN pg_class t ON t.oid = x.indrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         CROSS JOIN LATERAL unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum \
         WHERE n.nspname = 'public' \
         ORDER BY t.relname, i.relname, k.ord",
    )
    .load(conn)
    .unwrap();
    let mut indexes: BTreeMap<(String, String), (Index, bool)> = BTreeMap::new();
    for row in index_columns
        .into_iter()
        .filter(|r| r.table_name != DIESEL_TABLE)
    {
        let (index, _) = indexes
            .entry((row.table_name, row.index_name))
            .or_insert_with(|| {
                (
                    Index {
                        unique: row.is_unique,
                        columns: Vec::new(),
                        predicate: row.predicate.as_deref().map(predicate),
                    },
                    row.is_primary,
                )
            });
        index.columns.push(row.column_name);
    }
    for ((table, _), (index, primary)) in indexes {
        let t = schema.entry(table).or_default();
        if primary {
            t.primary_key = index.columns;
        } else {
            t.indexes.insert(index);
        }
    }
    let keys: Vec<PgForeignKey> = diesel::sql_query(
        "SELECT k.table_name::text, k.column_name::text, u.table_name::text AS foreign_table, \
                u.column_name::text AS foreign_column, r.delete_rule::text \
         FROM information_schema.referential_constraints r \
         JOIN information_schema.key_column_usage k \
           ON k.constraint_schema = r.constraint_schema AND k.constraint_name = r.constraint_name \
         JOIN information_schema.constraint_column_usage u \
           ON u.constraint_schema = r.unique_constraint_schema \
          AND u.constraint_name = r.unique_constraint_name \
         WHERE r.constraint_schema = 'public'",
    )
    .load(conn)
    .unwrap();
    let checks: Vec<PgCount> = diesel::sql_query(
        "SELECT t.relname::text AS table_name, count(*) AS count FROM pg_constraint c \
         JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE c.contype = 'c' AND n.nspname = 'public' GROUP BY t.relname",
    )
    .load(conn)
    .unwrap();
    for check in checks {
        schema.entry(check.table_name).or_default().checks = check.count as usize;
    }
    let triggers: Vec<PgTrigger> = diesel::sql_query(
        "SELECT DISTINCT event_object_table::text AS table_name, trigger_name::text AS name \
         FROM information_schema.triggers WHERE trigger_schema = 'public'",
    )
    .load(conn)
    .unwrap();
    for trigger in triggers {
        schema
            .entry(trigger.table_name)
            .or_default()
            .triggers
            .insert(trigger.name);
    }
    for key in keys {
        schema
            .entry(key.table_name)
            .or_default()
            .foreign_keys
            .insert(ForeignKey {
                column: key.column_name,
                table: key.foreign_table,
                references: key.foreign_column,
                on_delete: key.delete_rule,
            });
    }
    schema
}

fn migration_folders(backend: &str) -> BTreeSet<String> {
    fs::read_dir(repo().join("migrations").join(backend))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn migrated_sqlite(dir: &Path) -> SqliteConnection {
    let path = dir.join("schema.db");
    drop(Store::open(&StorageUrl::Sqlite(path.clone())).expect("migrate a SQLite file"));
    SqliteConnection::establish(&path.to_string_lossy()).unwrap()
}

fn migrated_postgres() -> PgConnection {
    let server = Postgres::shared();
    let db = server.fresh_database();
    let mut conn = PgConnection::establish(&db.url_with_password)
        .unwrap_or_else(|e| panic!("connect to {}: {e}\n{}", db.url, server.log()));
    conn.run_pending_migrations(POSTGRES_MIGRATIONS)
        .expect("apply the PostgreSQL migrations");
    conn
}

#[test]
fn every_sqlite_migration_has_a_postgres_twin_of_the_same_name() {
    let sqlite = migration_folders("sqlite");
    let postgres = migration_folders("postgres");
    let missing: Vec<_> = sqlite.difference(&postgres).collect();
    let extra: Vec<_> = postgres.difference(&sqlite).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "migrations/postgres/ must mirror migrations/sqlite/: missing {missing:?}, without a SQLite twin {extra:?}"
    );
    for name in &postgres {
        for file in ["up.sql", "down.sql"] {
            let path = repo().join("migrations/postgres").join(name).join(file);
            assert!(path.is_file(), "{} is missing", path.display());
        }
    }
}

#[test]
fn postgres_migrations_build_the_same_schema_as_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let mut sqlite = migrated_sqlite(dir.path());
    let mut postgres = migrated_postgres();

    let applied = postgres.applied_migrations().unwrap();
    assert_eq!(
        applied.len(),
        migration_folders("sqlite").len(),
        "every embedded PostgreSQL migration ran"
    );

    let on_sqlite = sqlite_schema(&mut sqlite);
    let on_postgres = pg_schema(&mut postgres);
    assert!(
        on_sqlite.contains_key("records") && on_sqlite.contains_key("ledger"),
        "the SQLite catalogue was read: {:?}",
        on_sqlite.keys()
    );
    assert_eq!(
        on_sqlite.keys().collect::<Vec<_>>(),
        on_postgres.keys().collect::<Vec<_>>(),
        "the same tables"
    );
    let differences: Vec<String> = on_sqlite
        .iter()
        .flat_map(|(name, table)| differences(name, table, &on_postgres[name]))
        .collect();
    assert!(
        differences.is_empty(),
        "migrations/postgres/ differs from migrations/sqlite/:\n{}",
        differences.join("\n")
    );
}

/// What differs between a table on SQLite and its twin on PostgreSQL, one line each.
fn differences(name: &str, sqlite: &Table, postgres: &Table) -> Vec<String> {
    let mut found = Vec::new();
    let names: BTreeSet<&String> = sqlite
        .columns
        .keys()
        .chain(postgres.columns.keys())
        .collect();
    for column in names {
        let (on_sqlite, on_postgres) = (sqlite.columns.get(column), postgres.columns.get(column));
        if on_sqlite != on_postgres {
            found.push(format!(
                "{name}.{column}: SQLite {on_sqlite:?}, PostgreSQL {on_postgres:?}"
            ));
        }
    }
    if sqlite.primary_key != postgres.primary_key {
        found.push(format!(
            "{name}: primary key SQLite {:?}, PostgreSQL {:?}",
            sqlite.primary_key, postgres.primary_key
        ));
    }
    for index in sqlite.indexes.symmetric_difference(&postgres.indexes) {
        let side = if sqlite.indexes.contains(index) {
            "SQLite"
        } else {
            "PostgreSQL"
        };
        found.push(format!("{name}: only {side} has {index:?}"));
    }
    for key in sqlite
        .foreign_keys
        .symmetric_difference(&postgres.foreign_keys)
    {
        let side = if sqlite.foreign_keys.contains(key) {
            "SQLite"
        } else {
            "PostgreSQL"
        };
        found.push(format!("{name}: only {side} has {key:?}"));
    }
    if sqlite.checks != postgres.checks {
        found.push(format!(
            "{name}: {} CHECK constraints on SQLite, {} on PostgreSQL",
            sqlite.checks, postgres.checks
        ));
    }
    if sqlite.triggers != postgres.triggers {
        found.push(format!(
            "{name}: triggers SQLite {:?}, PostgreSQL {:?}",
            sqlite.triggers, postgres.triggers
        ));
    }
    found
}

#[test]
fn postgres_ledger_refuses_a_second_row_for_one_message_position() {
    let mut conn = migrated_postgres();
    let insert = "INSERT INTO ledger (collector, source_key, fingerprint, outcome, created_at) \
                  VALUES ('shop', '7:42', 'abc', 'stored', now())";
    diesel::sql_query(insert).execute(&mut conn).unwrap();
    let second = diesel::sql_query(insert).execute(&mut conn).unwrap_err();
    assert!(
        matches!(
            second,
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            )
        ),
        "{second:?}"
    );
}

#[derive(QueryableByName)]
struct Updated {
    #[diesel(sql_type = diesel::sql_types::Timestamp)]
    updated_at: chrono::NaiveDateTime,
}

#[test]
fn postgres_history_events_move_the_record_updated_at_as_on_sqlite() {
    let mut conn = migrated_postgres();
    diesel::sql_query(
        "INSERT INTO records (id, queue, collector, kind, status, inn_valid, layout_files, charset, \
         warnings, payload, created_at, updated_at) VALUES (1, 'q', 'c', 'lead', 'new', false, '[]', \
         'utf-8', '[]', '{}', '2026-01-01 10:00', '2026-01-01 10:00')",
    )
    .execute(&mut conn)
    .unwrap();
    let event = |at: &str, event: &str| {
        format!(
            "INSERT INTO record_events (record_id, at, actor, event) VALUES (1, '{at}', 'test', '{event}')"
        )
    };
    let updated = |conn: &mut PgConnection| {
        diesel::sql_query("SELECT updated_at FROM records WHERE id = 1")
            .get_result::<Updated>(conn)
            .unwrap()
            .updated_at
            .to_string()
    };
    diesel::sql_query(event("2026-01-02 10:00", "created"))
        .execute(&mut conn)
        .unwrap();
    assert_eq!(
        updated(&mut conn),
        "2026-01-01 10:00:00",
        "`created` is left out"
    );
    diesel::sql_query(event("2026-01-03 10:00", "status"))
        .execute(&mut conn)
        .unwrap();
    assert_eq!(updated(&mut conn), "2026-01-03 10:00:00");
    diesel::sql_query(event("2026-01-02 12:00", "note"))
        .execute(&mut conn)
        .unwrap();
    assert_eq!(
        updated(&mut conn),
        "2026-01-03 10:00:00",
        "never moves back"
    );
}

#[test]
fn postgres_migrations_revert_cleanly_and_apply_again() {
    let mut conn = migrated_postgres();
    conn.revert_all_migrations(POSTGRES_MIGRATIONS)
        .expect("every down.sql runs");
    let left = pg_schema(&mut conn);
    assert!(
        left.is_empty(),
        "tables left after reverting: {:?}",
        left.keys()
    );
    conn.run_pending_migrations(POSTGRES_MIGRATIONS)
        .expect("apply again");
    assert!(pg_schema(&mut conn).contains_key("records"));
}

/// A sandbox whose `[storage]` is `storage` (the `[storage]` table's lines) and one
/// empty Maildir collector.
fn sandbox_storing_in(storage: &str) -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.maildir("inbox");
    sandbox.write_config(&[("site-orders", "inbox")], "");
    let config = fs::read_to_string(sandbox.path("collectors.toml"))
        .unwrap()
        .replace("url = \"sqlite://data/mailintake.db\"\n", storage);
    fs::write(sandbox.path("collectors.toml"), config).unwrap();
    sandbox
}

pub(super) fn output_text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn check_says_whether_the_postgres_database_answers() {
    let server = Postgres::shared();
    let db = server.fresh_database();
    let sandbox = sandbox_storing_in(&format!(
        "url = \"{}\"\npassword-env = \"MAILINTAKE_TEST_DB_PASSWORD\"\nsslmode = \"disable\"\n",
        db.url
    ));

    let unset = sandbox.run(&["check"]);
    assert!(!unset.status.success());
    assert!(
        output_text(&unset).contains(
            "collectors.toml:3:16: storage.password-env: environment variable MAILINTAKE_TEST_DB_PASSWORD is not set"
        ),
        "{}",
        output_text(&unset)
    );

    let ok = sandbox
        .command(&["check"])
        .env("MAILINTAKE_TEST_DB_PASSWORD", &db.password)
        .output()
        .unwrap();
    let text = output_text(&ok);
    assert!(ok.status.success(), "{text}");
    assert!(
        text.contains(&format!("storage {}: answers (PostgreSQL ", db.url)),
        "{text}"
    );
    assert!(!text.contains(&db.password), "{text}");

    let wrong = sandbox
        .command(&["check"])
        .env("MAILINTAKE_TEST_DB_PASSWORD", "not-the-password")
        .output()
        .unwrap();
    let text = output_text(&wrong);
    assert!(!wrong.status.success(), "{text}");
    assert!(
        text.contains("the database does not answer")
            && text.contains("password authentication failed"),
        "{text}"
    );
    assert!(!text.contains("not-the-password"), "{text}");
}

#[test]
fn the_sample_mail_is_stored_in_postgres_as_in_sqlite() {
    let mail = repo().join("samples/maildir/new");
    let deliver_samples = |sandbox: &Sandbox| {
        for entry in fs::read_dir(&mail).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            sandbox.deliver("inbox", &name, &fs::read(entry.path()).unwrap());
        }
    };
    let sqlite = sandbox_storing_in("url = \"sqlite://data/mailintake.db\"\n");
    deliver_samples(&sqlite);
    let db = Postgres::shared().fresh_database();
    // No sslmode: the default verifies TLS when offered, and this server offers none.
    let postgres = sandbox_storing_in(&format!(
        "url = \"{}\"\npassword-env = \"MAILINTAKE_TEST_DB_PASSWORD\"\n",
        db.url
    ));
    deliver_samples(&postgres);
    for sandbox in [&sqlite, &postgres] {
        let out = sandbox
            .command(&["collect"])
            .env("MAILINTAKE_TEST_DB_PASSWORD", &db.password)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", output_text(&out));
    }
    let json = |sandbox: &Sandbox| {
        let out = sandbox
            .command(&["records", "list", "--json"])
            .env("MAILINTAKE_TEST_DB_PASSWORD", &db.password)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", output_text(&out));
        let mut list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        for record in list.as_array_mut().unwrap() {
            record
                .as_object_mut()
                .unwrap()
                .retain(|key, _| !key.ends_with("_at"));
        }
        list
    };
    let stored = json(&postgres);
    assert!(stored.as_array().unwrap().len() >= 3, "{stored:#}");
    assert_eq!(stored, json(&sqlite));
    // A second pass stores nothing again: the ledger answers on PostgreSQL too.
    let again = postgres
        .command(&["collect"])
        .env("MAILINTAKE_TEST_DB_PASSWORD", &db.password)
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", output_text(&again));
    assert_eq!(json(&postgres), stored);
}

/// `check` against `server` with these `[storage]` lines (after url and password-env).
fn check_with(server: &Postgres, storage: &str) -> (bool, String) {
    let db = server.fresh_database();
    let sandbox = sandbox_storing_in(&format!(
        "url = \"{}\"\npassword-env = \"MAILINTAKE_TEST_DB_PASSWORD\"\n{storage}",
        db.url
    ));
    let out = sandbox
        .command(&["check"])
        .env("MAILINTAKE_TEST_DB_PASSWORD", &db.password)
        .output()
        .unwrap();
    (out.status.success(), output_text(&out))
}

#[test]
fn tls_is_verified_whenever_the_server_offers_it() {
    let server = Postgres::start(PostgresOptions {
        tls: true,
        ..PostgresOptions::default()
    });
    // The default mode meets a TLS server whose CA it does not know: refused, not
    // downgraded to an unverified or clear-text connection.
    let (ok, text) = check_with(&server, "");
    assert!(!ok, "{text}");
    assert!(text.contains("certificate verify failed"), "{text}");
    assert!(!server.log().contains("SSL enabled"), "{}", server.log());

    // With the CA that signed the server's certificate: TLS, verified.
    let (ok, text) = check_with(
        &server,
        &format!("ca-file = \"{}\"\n", server.ca_file().display()),
    );
    assert!(ok, "{text}");
    assert!(
        server.log().lines().any(
            |line| line.contains("connection authorized: user=mailintake")
                && line.contains("SSL enabled")
        ),
        "{}",
        server.log()
    );

    // `prefer` takes the same connection without checking the certificate.
    let (ok, text) = check_with(&server, "sslmode = \"prefer\"\n");
    assert!(ok, "{text}");

    // A server offering no TLS: clear text by default, refused by verify-full.
    let plain = Postgres::shared();
    let (ok, text) = check_with(plain, "");
    assert!(ok, "{text}");
    let (ok, text) = check_with(plain, "sslmode = \"verify-full\"\n");
    assert!(!ok, "{text}");
    assert!(text.contains("server does not support SSL"), "{text}");
}

#[test]
fn the_review_page_answers_again_after_the_database_restarts() {
    let server = Postgres::start(PostgresOptions::default());
    let db = server.fresh_database();
    let sandbox = sandbox_storing_in(&format!(
        "url = \"{}\"\npassword-env = \"MAILINTAKE_TEST_DB_PASSWORD\"\n",
        db.url
    ));
    let log = sandbox.path("daemon.log");
    let mut daemon = Daemon::spawn(
        sandbox
            .command(&["serve"])
            .env("MAILINTAKE_TEST_DB_PASSWORD", &db.password)
            .env("MAILINTAKE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap()),
    );
    let mut client = Client::new(logged_address(&log).parse().unwrap());
    let healthz = |client: &mut Client| client.get("/healthz").status;
    wait_until(
        Duration::from_secs(30),
        Duration::from_millis(50),
        || match healthz(&mut client) {
            200 => Ok(()),
            other => Err(format!("healthz {other}")),
        },
    );

    server.restart();
    // The page's connection was cut: the first request may fail, later ones must not.
    wait_until(
        Duration::from_secs(30),
        Duration::from_millis(100),
        || match healthz(&mut client) {
            200 => Ok(()),
            other => Err(format!(
                "healthz {other}; log: {}",
                fs::read_to_string(&log).unwrap_or_default()
            )),
        },
    );
    assert!(
        fs::read_to_string(&log)
            .unwrap()
            .contains("reconnected to the database"),
        "{}",
        fs::read_to_string(&log).unwrap()
    );
    daemon.signal("TERM");
    assert!(daemon.wait(Duration::from_secs(20)).success());
}

#[test]
fn check_reads_a_sqlite_database_without_creating_it() {
    let sandbox = sandbox_storing_in("url = \"sqlite://data/mailintake.db\"\n");
    let fresh = sandbox.run(&["check"]);
    let text = output_text(&fresh);
    assert!(fresh.status.success(), "{text}");
    assert!(
        text.contains(": not created yet (created and migrated on first use)"),
        "{text}"
    );
    assert!(
        !sandbox.path("data/mailintake.db").exists(),
        "check created the file"
    );

    assert!(sandbox.run(&["collect"]).status.success());
    let migrated = sandbox.run(&["check"]);
    let text = output_text(&migrated);
    assert!(migrated.status.success(), "{text}");
    assert!(text.contains(": answers (SQLite 3."), "{text}");

    fs::write(sandbox.path("data/mailintake.db"), vec![b'x'; 8192]).unwrap();
    let damaged = sandbox.run(&["check"]);
    let text = output_text(&damaged);
    assert!(!damaged.status.success(), "{text}");
    assert!(
        text.contains("the database does not answer") && text.contains("not a database"),
        "{text}"
    );
}

/// Set in the child process of the test below.
const CHILD: &str = "MAILINTAKE_TEST_POSTGRES_CHILD";

/// Not a test on its own: the child process of the test below, which starts a server,
/// says where it is and waits to be killed.
#[test]
#[ignore = "run by server_is_stopped_when_its_test_process_is_killed"]
fn serve_until_killed() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let server = Postgres::start(PostgresOptions::default());
    println!(
        "postgres-harness {} {}",
        server.port(),
        server.folder().display()
    );
    std::thread::sleep(Duration::from_secs(120));
}

#[test]
fn server_is_stopped_when_its_test_process_is_killed() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "postgres::serve_until_killed",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (port, folder): (u16, PathBuf) = loop {
        let line = lines
            .next()
            .expect("the child said where its server is")
            .unwrap();
        if let Some((port, folder)) = line
            .strip_prefix("postgres-harness ")
            .and_then(|rest| rest.split_once(' '))
        {
            break (port.parse().unwrap(), folder.into());
        }
    };
    let answers = || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
    assert!(answers(), "the child's server listens on {port}");
    assert!(folder.join("data").is_dir());
    child.kill().unwrap();
    child.wait().unwrap();
    wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
        if answers() {
            Err(format!("the killed test's server still listens on {port}"))
        } else if folder.exists() {
            Err(format!("{} is still there", folder.display()))
        } else {
            Ok(())
        }
    });
}
