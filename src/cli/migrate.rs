//! `mailintake migrate`: applies the database schema's pending migrations now, rather than
//! on the first command or daemon start that opens the store (which migrates too). For an
//! upgrade done by hand, or a PostgreSQL database prepared before its daemons start.
//!
//! Safe beside other `migrate` runs and starting daemons: SQLite migrates under its write
//! lock, PostgreSQL under a session advisory lock (`store::run_migrations`), so each
//! migration is applied once and the others find nothing pending.

use anyhow::{Context, Result, anyhow};
use diesel::backend::Backend;
use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel::sqlite::Sqlite;

use crate::config::Config;
use crate::store::{self, POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS, StorageUrl};

/// Applies what is pending; prints each migration applied, or that the schema was current.
pub(super) fn run(config: &Config) -> Result<()> {
    let url = &config.storage;
    let applied = store::migrate(url).with_context(|| format!("storage {url}"))?;
    let known = match url {
        StorageUrl::Sqlite(_) => names::<Sqlite>(&SQLITE_MIGRATIONS)?,
        StorageUrl::Postgres(_) => names::<Pg>(&POSTGRES_MIGRATIONS)?,
    };
    if applied.is_empty() {
        println!(
            "storage {url}: schema is up to date ({} migrations)",
            known.len()
        );
    }
    for version in applied {
        // The folder name says what a migration does; the version alone does not.
        let name = known
            .iter()
            .find(|(v, _)| *v == version)
            .map_or(version.as_str(), |(_, name)| name.as_str());
        println!("storage {url}: applied migration {name}");
    }
    Ok(())
}

/// The `(version, folder name)` of every migration this build carries for a backend.
fn names<DB: Backend>(source: &impl MigrationSource<DB>) -> Result<Vec<(String, String)>> {
    Ok(source
        .migrations()
        .map_err(|e| anyhow!(e))?
        .iter()
        .map(|m| (m.name().version().to_string(), m.name().to_string()))
        .collect())
}
