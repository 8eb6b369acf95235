//! `mailintake db copy` (issue 8): an installation built through the product on SQLite goes
//! to a real PostgreSQL and back into a new SQLite file with every row of every table, raw
//! bytes included; the PostgreSQL copy serves the same records and its sequences continue
//! after the copied ids; a non-empty target is refused unless `--force`.
//!
//! The tables are compared through SQLite's own catalogue (every table it lists, every
//! column, as `quote()` text: blobs as hex), so a table the copy forgot fails the test.
//! NOTE: PostgreSQL keeps times to the microsecond, SQLite the nanoseconds the clock gave:
//! TIMESTAMP columns are compared to the microsecond, everything else exactly.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use chrono::{NaiveDateTime, SubsecRound};
use diesel::prelude::*;
use diesel::sql_types::{Integer, Text};
use diesel::sqlite::SqliteConnection;
use serde_json::Value;

use crate::kit::mail::order_message;
use crate::kit::postgres::{Postgres, TestDatabase};
use crate::kit::sandbox::{Sandbox, failure_text, run_bare, shipped_demo};
use crate::kit::web::{Served, add_user};

/// The variable `--to-password-env` / `--from-password-env` and `[storage] password-env`
/// name in these tests.
const PASSWORD_VAR: &str = "MAILINTAKE_TEST_COPY_PASSWORD";

/// The README's demo (both sample mailboxes, their notifications queued, one message
/// quarantined, one skipped) with HTTP intake on `site-orders`, then a triage, a status
/// change, a user with a session, an API token and a record posted over HTTP.
fn installation() -> Sandbox {
    let sandbox = shipped_demo(|config| {
        config
            .replace("# send-timeout-secs = 30", "send-timeout-secs = 0")
            .replace("# [collector.http]", "[collector.http]")
    });
    let collected = sandbox.run(&["collect"]);
    assert!(collected.status.success(), "{}", text(&collected));
    let triage = sandbox.json(&["records", "triage-list", "--json"]);
    let id = triage[0]["id"]
        .as_u64()
        .expect("a request to triage")
        .to_string();
    for args in [
        vec!["records", "triage", &id, "--as", "fault", "--actor", "desk"],
        vec!["records", "start", &id, "--actor", "desk"],
    ] {
        let out = sandbox.run(&args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
    }
    add_user(&sandbox, "ann", "admin", &[], "correct horse battery");
    let intake = sandbox.run(&[
        "tokens",
        "add",
        "--name",
        "shop",
        "--collector",
        "site-orders",
    ]);
    assert!(intake.status.success(), "{}", text(&intake));
    let token = String::from_utf8(intake.stdout).unwrap().trim().to_string();
    assert!(
        sandbox
            .run(&["tokens", "add", "--name", "reader", "--scope", "read"])
            .status
            .success()
    );
    let served = Served::start(&sandbox);
    let mut client = served.client();
    assert_eq!(
        client.log_in("ann", "correct horse battery").status,
        303,
        "logged in"
    );
    let body = r#"{"Тема": "Заказ №900", "Телефон": "+7 925 642 42-90", "Описание": "через сайт",
        "Товары": [{"Номенклатура": "Ролап", "Количество": 1, "Цена": 500, "Сумма": 500}]}"#;
    let bearer = format!("Bearer {token}");
    let posted = client.send(
        "POST",
        "/api/v1/intake/site-orders",
        &[
            ("Authorization", bearer.as_str()),
            ("Content-Type", "application/json; charset=utf-8"),
        ],
        body.as_bytes(),
    );
    assert!(posted.status < 300, "{} {}", posted.status, posted.body);
    sandbox
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `mailintake db copy ARGS...` without a config, from `dir`, with the test password in
/// [`PASSWORD_VAR`] and `PGPASSWORD` when given.
fn db_copy(dir: &Path, args: &[&str], pgpassword: Option<&str>) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_mailintake"));
    command
        .args(["db", "copy"])
        .args(args)
        .current_dir(dir)
        .env_remove("MAILINTAKE_CONFIG")
        .env_remove("PGPASSWORD")
        .env("MAILINTAKE_LOG", "warn");
    if let Some(password) = pgpassword {
        command
            .env(PASSWORD_VAR, password)
            .env("PGPASSWORD", password);
    }
    command.output().unwrap()
}

/// `db copy`'s arguments from the installation's file (run in its folder) to `db`, with
/// the password from [`PASSWORD_VAR`], and `more`.
fn installation_to<'a>(db: &'a TestDatabase, more: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--from", "sqlite://mailintake.db", "--to", &db.url];
    args.extend(["--to-password-env", PASSWORD_VAR, "--sslmode", "disable"]);
    args.extend_from_slice(more);
    args
}

/// The `TABLE  N rows` lines of a copy's output.
fn counts(output: &Output) -> BTreeMap<String, u64> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words[..] {
                [table, rows, "rows"] => Some((table.to_string(), rows.parse().unwrap())),
                _ => None,
            }
        })
        .collect()
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct ColumnInfo {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    r#type: String,
    #[diesel(sql_type = Integer)]
    pk: i32,
}

#[derive(QueryableByName)]
struct Quoted {
    #[diesel(sql_type = Text)]
    value: String,
}

/// Every table of the SQLite file (diesel's migration log left out: it says when each
/// migration ran; the collectors' leases and the daemons alive too: the running daemons' state, which
/// `db copy` leaves behind), each column's values in primary-key order as SQLite's `quote()` text,
/// TIMESTAMP values cut to the microsecond.
fn dump(file: &Path) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let mut conn = SqliteConnection::establish(&file.to_string_lossy()).unwrap();
    let tables: Vec<Name> = diesel::sql_query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name NOT IN ('__diesel_schema_migrations', 'collector_leases', 'daemons') ORDER BY name",
    )
    .load(&mut conn)
    .unwrap();
    let mut dump = BTreeMap::new();
    for Name { name: table } in tables {
        let columns: Vec<ColumnInfo> = diesel::sql_query(format!(
            "SELECT name, type, pk FROM pragma_table_info('{table}')"
        ))
        .load(&mut conn)
        .unwrap();
        let mut key: Vec<&ColumnInfo> = columns.iter().filter(|c| c.pk > 0).collect();
        key.sort_by_key(|c| c.pk);
        let order = key
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let mut values = BTreeMap::new();
        for column in &columns {
            let quoted: Vec<Quoted> = diesel::sql_query(format!(
                "SELECT quote({}) AS value FROM {table} ORDER BY {order}",
                column.name
            ))
            .load(&mut conn)
            .unwrap();
            let timestamp = column.r#type.eq_ignore_ascii_case("TIMESTAMP");
            let texts = quoted
                .into_iter()
                .map(|q| {
                    if timestamp {
                        to_microsecond(&q.value)
                    } else {
                        q.value
                    }
                })
                .collect();
            values.insert(column.name.clone(), texts);
        }
        dump.insert(table, values);
    }
    dump
}

/// A quoted SQLite time (`'2026-11-29 10:00:00.123456789'`) at PostgreSQL's resolution.
fn to_microsecond(quoted: &str) -> String {
    if quoted == "NULL" {
        return quoted.into();
    }
    let text = quoted.trim_matches('\'');
    let at = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
        .unwrap_or_else(|e| panic!("{quoted}: {e}"));
    at.trunc_subsecs(6)
        .format("%Y-%m-%d %H:%M:%S%.6f")
        .to_string()
}

/// A sandbox of the installation's config storing in the PostgreSQL database `db`.
fn stored_in(installation: &Sandbox, db: &TestDatabase) -> Sandbox {
    let sandbox = Sandbox::new();
    crate::kit::sandbox::copy_tree(&installation.path("samples"), &sandbox.path("samples"));
    let config = std::fs::read_to_string(installation.path("collectors.toml"))
        .unwrap()
        .replace(
            "url = \"sqlite://samples/demo-state/mailintake.db\"",
            &format!(
                "url = \"{}\"\npassword-env = \"{PASSWORD_VAR}\"\nsslmode = \"disable\"",
                db.url
            ),
        );
    assert!(config.contains(&db.url), "the shipped [storage] url moved");
    std::fs::write(sandbox.path("collectors.toml"), config).unwrap();
    sandbox
}

/// `args` on `sandbox` with the test password in [`PASSWORD_VAR`], expecting success.
fn json_with_password(sandbox: &Sandbox, db: &TestDatabase, args: &[&str]) -> Value {
    let out = sandbox
        .command(args)
        .env(PASSWORD_VAR, &db.password)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `records list --json` with its times cut to the microsecond (see the module's NOTE).
fn listed(records: Value) -> Value {
    let mut records = records;
    for record in records.as_array_mut().unwrap() {
        for (key, value) in record.as_object_mut().unwrap() {
            if let (true, Some(at)) = (key.ends_with("_at"), value.as_str()) {
                let at = chrono::DateTime::parse_from_rfc3339(at).unwrap();
                *value = at.trunc_subsecs(6).to_rfc3339().into();
            }
        }
    }
    records
}

#[test]
fn db_copy_round_trip_sqlite_postgres_sqlite_keeps_every_row() {
    let home = installation();
    let original = home.path("samples/demo-state/mailintake.db");
    // A record whose updated_at is older than its latest event (as a hand repair or an
    // old restore may leave it): the history trigger must not move it during the copy.
    let mut conn = SqliteConnection::establish(&original.to_string_lossy()).unwrap();
    let lowered = diesel::sql_query(
        "UPDATE records SET updated_at = created_at WHERE id = \
         (SELECT record_id FROM record_events WHERE event <> 'created' ORDER BY id LIMIT 1)",
    )
    .execute(&mut conn)
    .unwrap();
    assert_eq!(lowered, 1);
    drop(conn);
    let before = dump(&original);
    for table in [
        "records",
        "record_lines",
        "record_events",
        "record_sources",
        "quarantine",
        "ledger",
        "notifications",
        "collector_state",
        "users",
        "sessions",
        "api_tokens",
        "http_intake",
        "http_intake_bodies",
        "skipped_messages",
        "counterparties",
        "contacts",
    ] {
        let rows = before[table].values().next().map_or(0, Vec::len);
        assert!(rows > 0, "the installation has no {table} row to copy");
    }

    let db = Postgres::shared().fresh_database();
    let to_postgres = db_copy(
        &home.path("samples/demo-state"),
        &installation_to(&db, &[]),
        Some(&db.password),
    );
    assert!(to_postgres.status.success(), "{}", text(&to_postgres));
    assert!(!text(&to_postgres).contains(&db.password));
    let copied = counts(&to_postgres);
    for (table, columns) in &before {
        let rows = columns.values().next().map_or(0, Vec::len) as u64;
        assert_eq!(
            copied.get(table),
            Some(&rows),
            "{table}: {}",
            text(&to_postgres)
        );
    }

    // Back, with the password from libpq's own PGPASSWORD.
    let back = home.path("back/copy.db");
    let to_sqlite = db_copy(
        home.path("").as_path(),
        &[
            "--from",
            &db.url,
            "--to",
            "sqlite://back/copy.db",
            "--sslmode",
            "disable",
        ],
        Some(&db.password),
    );
    assert!(to_sqlite.status.success(), "{}", text(&to_sqlite));
    assert_eq!(counts(&to_sqlite), copied);
    let after = dump(&back);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );
    for (table, columns) in &before {
        for (column, values) in columns {
            assert!(
                after[table][column] == *values,
                "{table}.{column} differs after the round trip:\n{values:?}\n{:?}",
                after[table][column]
            );
        }
    }

    // The PostgreSQL copy serves the same records.
    let postgres = stored_in(&home, &db);
    assert_eq!(
        listed(json_with_password(
            &postgres,
            &db,
            &["records", "list", "--json"]
        )),
        listed(home.json(&["records", "list", "--json"]))
    );
}

#[test]
fn db_copy_refuses_a_non_empty_target_unless_forced_and_sequences_continue() {
    let home = installation();
    let db = Postgres::shared().fresh_database();
    let dir = home.path("samples/demo-state");
    let args = installation_to(&db, &[]);
    let first = db_copy(&dir, &args, Some(&db.password));
    assert!(first.status.success(), "{}", text(&first));

    let again = db_copy(&dir, &args, Some(&db.password));
    let refusal = failure_text(again);
    assert!(
        refusal.contains(&format!("the target {}", db.url))
            && refusal.contains("is not empty (")
            && refusal.contains(" rows in ")
            && refusal.contains("use --force"),
        "{refusal}"
    );

    let forced = db_copy(
        &dir,
        &installation_to(&db, &["--force"]),
        Some(&db.password),
    );
    assert!(forced.status.success(), "{}", text(&forced));
    assert_eq!(counts(&forced), counts(&first), "replaced, not added to");

    // A new message stored in PostgreSQL gets an id after the copied ones.
    let postgres = stored_in(&home, &db);
    let copied = json_with_password(&postgres, &db, &["records", "list", "--json"]);
    let highest = copied
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .max()
        .unwrap();
    postgres.deliver(
        "samples/demo-state/maildir",
        "1800000000.M9P9.mx.example",
        &order_message(9001, "7709745454", 1),
    );
    json_with_password(&postgres, &db, &["collect", "--json"]);
    let stored = json_with_password(&postgres, &db, &["records", "list", "--json"]);
    let new: Vec<u64> = stored
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .filter(|id| *id > highest)
        .collect();
    assert_eq!(new, vec![highest + 1], "{stored:#}");
}

#[test]
fn db_copy_needs_no_config_and_names_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let missing = db_copy(
        dir.path(),
        &["--from", "sqlite://nothing.db", "--to", "sqlite://new.db"],
        None,
    );
    let error = failure_text(missing);
    assert!(
        error.contains("the source sqlite://") && error.contains("nothing.db does not exist"),
        "{error}"
    );
    assert!(!dir.path().join("nothing.db").exists());
    let password = run_bare(&[
        "db",
        "copy",
        "--from",
        "postgres://u:secret@h/db",
        "--to",
        "sqlite://x.db",
    ]);
    let error = failure_text(password);
    assert!(
        error.contains("--from: passwords are never written in the URL"),
        "{error}"
    );
    assert!(!error.contains("secret"), "{error}");
}
