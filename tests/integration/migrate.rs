//! `mailintake migrate` (issue 8): applies the pending migrations of the configured backend
//! once, says when there were none, and is safe to run twice at once on one database.

use std::process::Stdio;

use crate::kit::backend::{Backend, on_both_backends};
use crate::kit::postgres::Postgres;
use crate::kit::sandbox::{Sandbox, repo};

on_both_backends!(migrate_applies_each_migration_once_then_finds_none);

/// The migration folders this tree has for `backend` (`migrations/sqlite` or `postgres`).
fn migration_names(backend: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo().join("migrations").join(backend))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A sandbox with one empty Maildir collector, stored on `backend`.
fn sandbox_on(backend: Backend) -> (Sandbox, Option<crate::kit::postgres::TestDatabase>) {
    let sandbox = Sandbox::new();
    sandbox.maildir("inbox");
    sandbox.write_config(&[("orders", "inbox")], "");
    let db = backend.install(&sandbox);
    (sandbox, db)
}

/// The migration names in `stdout`'s "applied migration NAME" lines, in order.
fn applied(stdout: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|line| line.split_once(": applied migration "))
        .map(|(_, name)| name.to_string())
        .collect()
}

fn migrate_applies_each_migration_once_then_finds_none(backend: Backend) {
    let (sandbox, _db) = sandbox_on(backend);
    let folder = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let names = migration_names(folder);
    let first = sandbox.run(&["migrate"]);
    assert!(first.status.success(), "{first:?}");
    assert_eq!(applied(&first.stdout), names);

    let again = sandbox.run(&["migrate"]);
    assert!(again.status.success(), "{again:?}");
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(
        text.trim_end().ends_with(&format!(
            ": schema is up to date ({} migrations)",
            names.len()
        )),
        "{text}"
    );
    assert!(applied(&again.stdout).is_empty());
    // The schema is usable: a collect pass stores into it without migrating again.
    sandbox.collect();
}

#[test]
fn two_migrate_runs_at_once_on_one_fresh_postgres_database_apply_each_migration_once() {
    let (sandbox, db) = sandbox_on(Backend::Postgres);
    let db = db.unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            sandbox
                .command(&["migrate"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut all = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        all.extend(applied(&out.stdout));
    }
    all.sort();
    assert_eq!(all, migration_names("postgres"), "each applied by one run");
    let name = db.url.rsplit('/').next().unwrap();
    let rows = Postgres::shared().psql(name, "SELECT count(*) FROM __diesel_schema_migrations");
    assert_eq!(rows, migration_names("postgres").len().to_string());
}
