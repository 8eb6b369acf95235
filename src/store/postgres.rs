//! PostgreSQL (issue 8), groundwork: the store itself still runs on SQLite only.
//!
//! `migrations/postgres/` mirrors `migrations/sqlite/` folder for folder (same names, same
//! tables, columns, nullability and constraints in PostgreSQL's dialect); the integration test
//! `postgres::postgres_migrations_build_the_same_schema_as_sqlite` compares the two catalogues
//! on real servers, so a SQLite migration without its twin fails the build's tests.

use diesel_migrations::{EmbeddedMigrations, embed_migrations};

/// The PostgreSQL schema, embedded in the binary like the SQLite one.
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
