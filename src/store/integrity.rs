//! Whether a commit can be trusted enough to acknowledge its messages.
//!
//! Acknowledging makes the mailbox forget a message for good (`\Seen`, moved, deleted), so a
//! commit that answered `Ok` is not reason enough: the pass asks
//! [`Store::confirm_committed`] first, and acknowledges nothing if it fails. Three things can
//! make an `Ok` worthless:
//!
//! - **Power loss.** Every connection runs `synchronous = FULL` (`mod.rs`): in WAL mode the
//!   commit fsyncs the WAL before it returns, so what was committed survives an OS crash.
//!   (`NORMAL` syncs only at checkpoints: the last commits could vanish after their messages
//!   were acknowledged.)
//! - **The file went away.** SQLite keeps writing into a database (or WAL) file that was
//!   deleted or replaced under it: the commit succeeds into a file nobody will open again.
//!   The store remembers which files (device and inode) it opened, its [`Home`], and after
//!   each commit checks that the configured path still names them; otherwise the pass fails
//!   with [`StoreError::Moved`] and the collector reopens the path (the ledger makes
//!   re-reading safe).
//! - **The file is damaged.** An error that means corruption (SQLITE_CORRUPT,
//!   SQLITE_NOTADB) raises an alarm for that database, process-wide: every store on that
//!   file refuses to confirm from then on, so every collector stops acknowledging at once.
//!   The alarm is logged and also written next to the database (`<file>.damaged`), because
//!   `collectors status` must be able to say why when the database itself cannot be read.
//!   [`Store::quick_check`] at start-up refuses a damaged database and clears the note of a
//!   repaired one. The alarm stays raised until the process restarts.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use diesel::prelude::*;
use diesel::sql_types::Text;
use tracing::error;

use super::{StorageUrl, Store, StoreError};

/// How many lines of `quick_check` findings an error quotes.
const FINDINGS_QUOTED: usize = 5;

/// Which file a path named when it was looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    fn of(path: &Path) -> Option<FileId> {
        let meta = std::fs::metadata(path).ok()?;
        Some(FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }
}

/// The database file and WAL a connection opened, as the configured path named them then.
#[derive(Debug)]
pub(super) struct Home {
    path: PathBuf,
    wal_path: PathBuf,
    db: Option<FileId>,
    wal: Option<FileId>,
}

impl Home {
    /// Notes the files `path` names now; call it right after the connection opened them.
    // NOTE: SQLite gives no safe way to ask which inode its descriptor holds, so the path is
    // looked at just after opening: a file swapped in that instant goes unnoticed once.
    pub(super) fn of(path: &Path) -> Home {
        let mut wal_path = OsString::from(path.as_os_str());
        wal_path.push("-wal");
        let wal_path = PathBuf::from(wal_path);
        Home {
            db: FileId::of(path),
            wal: FileId::of(&wal_path),
            path: path.to_path_buf(),
            wal_path,
        }
    }

    /// Checks that the path still names the files the connection writes into.
    fn confirm(&mut self) -> Result<(), StoreError> {
        let moved = |what: &'static str| StoreError::Moved {
            path: self.path.display().to_string(),
            what,
        };
        if self.db.is_none() || FileId::of(&self.path) != self.db {
            return Err(moved("database file"));
        }
        let wal = FileId::of(&self.wal_path);
        match self.wal {
            // NOTE: the WAL exists while a connection is open in WAL mode; if it was not
            // there at opening, the first commit created it.
            None => self.wal = wal,
            Some(_) if wal != self.wal => return Err(moved("write-ahead log")),
            Some(_) => {}
        }
        Ok(())
    }
}

/// Databases found damaged in this process, by path, with the reason.
static ALARMS: Mutex<Option<HashMap<PathBuf, String>>> = Mutex::new(None);

fn alarm(path: &Path) -> Option<String> {
    let alarms = ALARMS.lock().unwrap_or_else(PoisonError::into_inner);
    alarms.as_ref()?.get(path).cloned()
}

/// Where the damage of the database at `path` is noted for other processes.
fn note_path(path: &Path) -> PathBuf {
    let mut note = OsString::from(path.as_os_str());
    note.push(".damaged");
    PathBuf::from(note)
}

/// Raises the alarm for the database at `path` (once: the first reason stays).
fn raise(path: &Path, reason: &str) {
    let mut alarms = ALARMS.lock().unwrap_or_else(PoisonError::into_inner);
    let alarms = alarms.get_or_insert_with(HashMap::new);
    if alarms.contains_key(path) {
        return;
    }
    alarms.insert(path.to_path_buf(), reason.to_string());
    error!(
        database = %path.display(),
        %reason,
        "the database is damaged: every collector stops acknowledging until it is repaired and the daemon restarted"
    );
    let note = format!(
        "{}: the database is damaged ({reason}); acknowledgements stopped until it is repaired and mailintake restarted\n",
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    if let Err(e) = std::fs::write(note_path(path), note) {
        error!(database = %path.display(), error = %e, "cannot write the damage note");
    }
}

/// The damage noted for the database at `url` (by this or another process), if any: what
/// `collectors status` shows.
pub fn damage_note(url: &StorageUrl) -> Option<String> {
    let StorageUrl::Sqlite(path) = url else {
        return None;
    };
    let note = std::fs::read_to_string(note_path(path)).ok()?;
    Some(note.trim().to_string())
}

/// Whether SQLite's message means the file is corrupt (SQLITE_CORRUPT: "database disk image
/// is malformed", "malformed database schema ...") or not a database at all (SQLITE_NOTADB).
// NOTE: diesel passes on SQLite's message but not its result code, and the crate forbids
// the unsafe code that would ask for it; these texts are fixed in SQLite's sqlite3ErrStr.
fn means_damage(message: &str) -> bool {
    message.contains("malformed") || message.contains("file is not a database")
}

impl StoreError {
    /// Whether this error says the database file is damaged.
    pub fn is_damage(&self) -> bool {
        match self {
            StoreError::Damaged { .. } => true,
            StoreError::Query(diesel::result::Error::DatabaseError(_, info)) => {
                means_damage(info.message())
            }
            StoreError::Connect { source, .. } => means_damage(&source.to_string()),
            StoreError::Migrate { message, .. } => means_damage(message),
            _ => false,
        }
    }
}

/// Raises the alarm for the database at `path` if `error` means it is damaged.
pub(super) fn alarm_on_damage(path: &Path, error: &StoreError) {
    if error.is_damage() {
        raise(path, &error.to_string());
    }
}

/// One row of `PRAGMA quick_check`.
#[derive(QueryableByName)]
struct Finding {
    #[diesel(sql_type = Text)]
    quick_check: String,
}

impl Store {
    /// The gate before acknowledging: the committed batch is durable (`synchronous = FULL`),
    /// in the file the store was configured with, and no store in this process has found that
    /// file damaged.
    pub fn confirm_committed(&mut self) -> Result<(), StoreError> {
        let Some(home) = &mut self.home else {
            return Ok(());
        };
        if let Some(reason) = alarm(&home.path) {
            return Err(damaged(&home.path, reason));
        }
        home.confirm()
    }

    /// If `error` means the database is damaged, raises the alarm for it: every store on
    /// the file refuses [`confirm_committed`](Store::confirm_committed) from then on.
    pub fn alarm_on_damage(&self, error: &StoreError) {
        if let Some(home) = &self.home {
            alarm_on_damage(&home.path, error);
        }
    }

    /// Runs `PRAGMA quick_check` (at start-up: it reads the whole file). A damaged database
    /// is refused and the alarm raised; a sound one clears an old damage note.
    /// PostgreSQL keeps its own checksums and WAL: nothing to check here.
    pub fn quick_check(&mut self) -> Result<(), StoreError> {
        let Some(path) = self.home.as_ref().map(|home| home.path.clone()) else {
            return Ok(());
        };
        let findings = diesel::sql_query("PRAGMA quick_check")
            .load::<Finding>(&mut self.conn)
            .map_err(StoreError::from)
            .inspect_err(|e| self.alarm_on_damage(e))?;
        let findings: Vec<String> = findings
            .into_iter()
            .map(|f| f.quick_check)
            .filter(|f| f != "ok")
            .collect();
        if findings.is_empty() {
            // NOTE: a note left by a run before this one; the file has since been repaired.
            let _ = std::fs::remove_file(note_path(&path));
            return Ok(());
        }
        let mut reason = findings[..findings.len().min(FINDINGS_QUOTED)].join("; ");
        if findings.len() > FINDINGS_QUOTED {
            reason.push_str(&format!("; and {} more", findings.len() - FINDINGS_QUOTED));
        }
        raise(&path, &reason);
        Err(damaged(&path, reason))
    }
}

fn damaged(path: &Path, reason: String) -> StoreError {
    StoreError::Damaged {
        path: path.display().to_string(),
        reason,
    }
}

/// Opens the database at `url` and runs [`Store::quick_check`]: what a process that is about
/// to acknowledge messages does first.
pub fn open_checked(url: &StorageUrl) -> Result<Store, StoreError> {
    let mut store = Store::open(url)?;
    store.quick_check()?;
    Ok(store)
}

#[cfg(test)]
mod tests {
    use std::io::{Seek, SeekFrom, Write};

    use super::*;

    fn open(dir: &Path) -> (StorageUrl, Store) {
        let url = StorageUrl::Sqlite(dir.join("t.db"));
        let store = Store::open(&url).unwrap();
        (url, store)
    }

    fn moved(result: Result<(), StoreError>) -> &'static str {
        match result {
            Err(StoreError::Moved { what, .. }) => what,
            other => panic!("expected a moved file, got {other:?}"),
        }
    }

    #[test]
    fn a_database_file_deleted_or_replaced_while_open_is_not_confirmed() {
        let dir = tempfile::tempdir().unwrap();
        let (url, mut store) = open(dir.path());
        store.confirm_committed().unwrap();
        std::fs::remove_file(dir.path().join("t.db")).unwrap();
        assert_eq!(moved(store.confirm_committed()), "database file");
        drop(store);

        // Reopening creates the configured file again; then it is swapped for a copy.
        let (_, mut store) = open(dir.path());
        store.confirm_committed().unwrap();
        std::fs::copy(dir.path().join("t.db"), dir.path().join("copy.db")).unwrap();
        std::fs::rename(dir.path().join("copy.db"), dir.path().join("t.db")).unwrap();
        assert_eq!(moved(store.confirm_committed()), "database file");
        assert!(damage_note(&url).is_none(), "a moved file is not damage");
    }

    #[test]
    fn a_write_ahead_log_deleted_while_open_is_not_confirmed() {
        let dir = tempfile::tempdir().unwrap();
        let (_, mut store) = open(dir.path());
        store
            .record_run("c", super::super::RunOutcome::Failure("x", None), None)
            .unwrap();
        store.confirm_committed().unwrap();
        std::fs::remove_file(dir.path().join("t.db-wal")).unwrap();
        assert_eq!(moved(store.confirm_committed()), "write-ahead log");
    }

    /// Overwrites every page but the first (the header and the schema) with garbage, after
    /// the WAL was checkpointed into the file.
    fn garbage_after_the_first_page(path: &Path) {
        let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        let len = file.metadata().unwrap().len();
        assert!(len > 4096 * 2, "a database of several pages: {len}");
        file.seek(SeekFrom::Start(4096)).unwrap();
        file.write_all(&vec![0x5a; usize::try_from(len).unwrap() - 4096])
            .unwrap();
    }

    #[test]
    fn a_damaged_database_is_refused_noted_and_stops_every_store_on_it() {
        let dir = tempfile::tempdir().unwrap();
        let (url, mut store) = open(dir.path());
        store.quick_check().unwrap();
        drop(store);
        let (_, mut other) = open(dir.path());
        garbage_after_the_first_page(&dir.path().join("t.db"));

        let error = open_checked(&url)
            .err()
            .expect("a damaged database is refused");
        assert!(error.is_damage(), "{error}");
        let note = damage_note(&url).expect("the damage is noted next to the file");
        assert!(note.contains("the database is damaged"), "{note}");
        // A store opened before the damage was found stops confirming too.
        match other.confirm_committed() {
            Err(StoreError::Damaged { reason, .. }) => assert!(note.contains(&reason), "{note}"),
            result => panic!("expected the alarm, got {result:?}"),
        }
    }

    #[test]
    fn a_sound_database_passes_quick_check_and_loses_an_old_note() {
        let dir = tempfile::tempdir().unwrap();
        let url = StorageUrl::Sqlite(dir.path().join("t.db"));
        std::fs::write(dir.path().join("t.db.damaged"), "old\n").unwrap();
        assert_eq!(damage_note(&url).as_deref(), Some("old"));
        open_checked(&url).unwrap().confirm_committed().unwrap();
        assert!(damage_note(&url).is_none());
    }
}
