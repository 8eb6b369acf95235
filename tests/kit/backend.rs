//! The storage backend as a test parameter: the same scenario runs on SQLite (a file in the
//! sandbox) and on PostgreSQL (a fresh database on the shared test server), so a behaviour
//! the store promises is checked on both, not assumed from one.
//!
//! [`on_both_backends!`] turns a scenario `fn name(backend: Backend)` into a module `name`
//! with the tests `sqlite` and `postgres` (`cargo test --test integration name::postgres`).

use std::fs;

use super::postgres::{Postgres, TestDatabase};
use super::sandbox::Sandbox;

/// Where a sandbox stores its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The `[storage] url` line [`Sandbox::write_config`] writes.
const SQLITE_URL_LINE: &str = "url = \"sqlite://data/mailintake.db\"\n";

impl Backend {
    /// Points the config [`Sandbox::write_config`] wrote at this backend (see
    /// [`Backend::install_in_place_of`]).
    pub fn install(self, sandbox: &Sandbox) -> Option<TestDatabase> {
        self.install_in_place_of(sandbox, SQLITE_URL_LINE)
    }

    /// Points the sandbox's config at this backend. SQLite keeps `sqlite_url_line` (the
    /// config's `url = "sqlite://..."` line, newline included); PostgreSQL puts a fresh
    /// database on the shared server in its place, its password in a file beside the
    /// config (`password-file`), so every command the sandbox runs finds it without an
    /// environment. Returns the PostgreSQL database.
    pub fn install_in_place_of(
        self,
        sandbox: &Sandbox,
        sqlite_url_line: &str,
    ) -> Option<TestDatabase> {
        let Backend::Postgres = self else {
            return None;
        };
        let server = Postgres::shared();
        let db = server.fresh_database();
        // NOTE: the test server's databases sort text bytewise (`initdb --locale C.UTF-8`),
        // as SQLite does; a production cluster is usually made with the system's language
        // (`en_US.UTF-8`: "adam" before "Zoe"). This one sorts that way, so an ORDER BY a
        // name that SQLite and PostgreSQL answer differently fails here, not in production.
        let name = db.url.rsplit('/').next().unwrap();
        server.psql("postgres", &format!("DROP DATABASE {name}"));
        server.psql(
            "postgres",
            &format!(
                "CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
            ),
        );
        fs::write(sandbox.path("db-password"), format!("{}\n", db.password)).unwrap();
        let path = sandbox.path("collectors.toml");
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains(sqlite_url_line), "{text}");
        let storage = format!(
            "url = \"{}\"\npassword-file = \"db-password\"\nsslmode = \"disable\"\n",
            db.url
        );
        fs::write(&path, text.replacen(sqlite_url_line, &storage, 1)).unwrap();
        Some(db)
    }
}

/// `on_both_backends!(scenario, ...)`: for each `fn scenario(backend: Backend)`, a module
/// `scenario` with a test per backend.
macro_rules! on_both_backends {
    ($($scenario:ident),+ $(,)?) => {
        $(
            mod $scenario {
                use crate::kit::backend::Backend;

                #[test]
                fn sqlite() {
                    super::$scenario(Backend::Sqlite)
                }

                #[test]
                fn postgres() {
                    super::$scenario(Backend::Postgres)
                }
            }
        )+
    };
}
pub(crate) use on_both_backends;
