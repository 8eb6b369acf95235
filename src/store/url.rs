//! Where the store lives: the `[storage] url` of the config, parsed.
//!
//! The store owns this type (it is what [`Store::open`](super::Store::open) takes); the config
//! only parses the text into it, so the store never needs to know the config.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where records are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageUrl {
    /// A SQLite database file (created and migrated on first use).
    Sqlite(PathBuf),
}

/// A storage URL this version cannot open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageUrlError {
    #[error("the SQLite URL has no file path (e.g. sqlite://mailintake.db)")]
    NoSqlitePath,
    #[error("PostgreSQL storage is not available in this version; use sqlite://FILE")]
    Postgres,
    #[error("unsupported storage URL `{0}`; expected sqlite://FILE")]
    Unsupported(String),
}

impl fmt::Display for StorageUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageUrl::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
        }
    }
}

impl StorageUrl {
    /// Parses `sqlite://PATH` (relative paths resolve against `base`, the config's folder).
    pub fn parse(url: &str, base: &Path) -> Result<StorageUrl, StorageUrlError> {
        if let Some(rest) = url.strip_prefix("sqlite://") {
            if rest.is_empty() {
                return Err(StorageUrlError::NoSqlitePath);
            }
            return Ok(StorageUrl::Sqlite(base.join(rest)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Err(StorageUrlError::Postgres);
        }
        Err(StorageUrlError::Unsupported(url.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths_resolve_against_the_base_and_others_are_refused() {
        let base = Path::new("/etc/mi");
        assert_eq!(
            StorageUrl::parse("sqlite://data/mi.db", base),
            Ok(StorageUrl::Sqlite(PathBuf::from("/etc/mi/data/mi.db")))
        );
        assert_eq!(
            StorageUrl::parse("sqlite:///var/lib/mi.db", base),
            Ok(StorageUrl::Sqlite(PathBuf::from("/var/lib/mi.db")))
        );
        assert_eq!(
            StorageUrl::parse("sqlite://", base),
            Err(StorageUrlError::NoSqlitePath)
        );
        assert_eq!(
            StorageUrl::parse("postgres://db/mi", base),
            Err(StorageUrlError::Postgres)
        );
        assert!(
            StorageUrl::parse("mysql://db", base)
                .unwrap_err()
                .to_string()
                .contains("`mysql://db`")
        );
    }
}
