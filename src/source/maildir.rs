//! A local Maildir, as an MTA (Postfix, Exim, Dovecot LDA) delivers into.
//!
//! Unseen messages are those in `new/` and those in `cur/` without the `S` flag. A message's
//! identity is its unique name (the file name before `:2,`), which survives the move from
//! `new/` to `cur/`. Acknowledging marks it seen the Maildir way: moved to `cur/` with `S`
//! added to its flags. Dotfiles are ignored, as the Maildir convention says.
//!
//! File names are bytes, not text. A unique name that is not UTF-8 gets a ledger key with
//! each stray byte written `/xHH` ([`position_key`]): lossless, and never another file's key,
//! since no file name holds a `/`. Renames use the real name's bytes and never replace a
//! file (`renameat2` with `RENAME_NOREPLACE`): two names that once shared a lossy key and
//! overwrote each other in `cur/` lost an order from the mailbox and the database.
//!
//! Setting aside a quarantined message leaves it where it is, unseen in `new/` (or `cur/`),
//! for a person to find with a mail client. Each pass lists it again, finds its position in
//! the ledger, and neither reads nor counts it: a quarantined message is read once, as over
//! IMAP. (Marking it would mean renaming it, and a Maildir keyword flag is a Dovecot
//! extension other readers do not know.)
//!
//! A message's size is its file's length, known from metadata before the file is opened, so
//! a message above the collector's `max-message-size` is never read whole: only its headers,
//! in chunks up to the blank line that ends them. Maildir files are complete when they
//! appear in `new/` (delivery writes into `tmp/` and renames), so the size does not change
//! between the check and the read.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::io::{ErrorKind, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::{CWD, RenameFlags, renameat_with};

use tracing::{debug, warn};

use super::{HEADER_LIMIT, Mailbox, ReadBatch, SourceError, blocking, header_end, header_section};

/// A Maildir folder.
#[derive(Debug, Clone)]
pub struct Maildir {
    root: PathBuf,
}

/// One message file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaildirEntry {
    /// The ledger key of the unique name ([`position_key`]): stable across new/ -> cur/ and
    /// flag changes.
    pub key: String,
    pub path: PathBuf,
    /// The unique name as the file system spells it, for the rename.
    unique: OsString,
    flags: Vec<u8>,
}

/// Splits `unique:2,FLAGS` into the unique name and the flags.
fn split_name(name: &[u8]) -> (&[u8], &[u8]) {
    match name.windows(3).rposition(|w| w == b":2,") {
        Some(at) => (&name[..at], &name[at + 3..]),
        None => (name, b""),
    }
}

/// The ledger key of a unique name: the name itself when it is UTF-8 (the keys ledgers hold
/// already), else each byte outside valid UTF-8 written `/xHH`.
pub fn position_key(unique: &[u8]) -> String {
    let mut key = String::with_capacity(unique.len());
    for chunk in unique.utf8_chunks() {
        key.push_str(chunk.valid());
        for byte in chunk.invalid() {
            let _ = write!(key, "/x{byte:02X}");
        }
    }
    key
}

/// Renames `from` to `to` unless `to` exists. Where the file system has no
/// `RENAME_NOREPLACE`, a hard link and an unlink do the same (a crash between them leaves
/// two names of one file, which the next attempt resolves).
fn rename_no_replace(from: &Path, to: &Path) -> std::io::Result<()> {
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => return Ok(()),
        Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {}
        Err(e) if e == rustix::io::Errno::EXIST && same_file(from, to) => {}
        Err(e) => return Err(e.into()),
    }
    match fs::hard_link(from, to) {
        Err(e) if !(e.kind() == ErrorKind::AlreadyExists && same_file(from, to)) => Err(e),
        _ => fs::remove_file(from),
    }
}

/// Whether both paths name one file (a rename half done by link and unlink).
fn same_file(a: &Path, b: &Path) -> bool {
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> SourceError + '_ {
    move |source| SourceError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl Maildir {
    /// Opens the Maildir at `root`; it must have `new/` and `cur/`.
    pub fn open(root: &Path) -> Result<Maildir, SourceError> {
        if !root.join("new").is_dir() || !root.join("cur").is_dir() {
            return Err(SourceError::NotAMaildir {
                path: root.display().to_string(),
            });
        }
        Ok(Maildir {
            root: root.to_path_buf(),
        })
    }

    /// Opens the Maildir at `root` and lists `new/` and `cur/` once: what `mailintake check`
    /// can know about it without reading mail.
    pub fn probe(root: &Path) -> Result<(), SourceError> {
        let maildir = Maildir::open(root)?;
        for folder in ["new", "cur"] {
            let dir = maildir.root.join(folder);
            fs::read_dir(&dir).map_err(io_error(&dir))?;
        }
        Ok(())
    }

    /// Unseen messages, ordered by unique name (delivery time, for standard names).
    pub fn unseen(&self) -> Result<Vec<MaildirEntry>, SourceError> {
        let mut entries = Vec::new();
        for folder in ["new", "cur"] {
            let dir = self.root.join(folder);
            for item in fs::read_dir(&dir).map_err(io_error(&dir))? {
                let item = item.map_err(io_error(&dir))?;
                let name = item.file_name();
                let name = name.as_bytes();
                if name.starts_with(b".") || !item.file_type().map_err(io_error(&dir))?.is_file() {
                    continue;
                }
                let (unique, flags) = split_name(name);
                if folder == "cur" && flags.contains(&b'S') {
                    continue;
                }
                entries.push(MaildirEntry {
                    key: position_key(unique),
                    path: item.path(),
                    unique: OsString::from_vec(unique.to_vec()),
                    flags: flags.to_vec(),
                });
            }
        }
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(entries)
    }

    /// The message's bytes; `None` when another program moved it away meanwhile.
    pub fn read(&self, entry: &MaildirEntry) -> Result<Option<Vec<u8>>, SourceError> {
        match fs::read(&entry.path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&entry.path)(e)),
        }
    }

    /// The message's size from its file's metadata, without reading it; `None` when another
    /// program moved it away meanwhile.
    pub fn size(&self, entry: &MaildirEntry) -> Result<Option<u64>, SourceError> {
        match fs::metadata(&entry.path) {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&entry.path)(e)),
        }
    }

    /// The message's header section, read in chunks until the blank line that ends it (or
    /// [`HEADER_LIMIT`] bytes); `None` when another program moved it away meanwhile.
    pub fn read_headers(&self, entry: &MaildirEntry) -> Result<Option<Vec<u8>>, SourceError> {
        const CHUNK: usize = 8 * 1024;
        let mut file = match fs::File::open(&entry.path) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(&entry.path)(e)),
        };
        let mut start = Vec::with_capacity(CHUNK);
        while start.len() < HEADER_LIMIT && header_end(&start).is_none() {
            let want = CHUNK.min(HEADER_LIMIT - start.len());
            let read = (&mut file)
                .take(want as u64)
                .read_to_end(&mut start)
                .map_err(io_error(&entry.path))?;
            if read == 0 {
                break;
            }
        }
        Ok(Some(header_section(start)))
    }

    /// Marks the message seen: moved to `cur/` with the `S` flag (flags kept sorted), never
    /// over another file.
    pub fn mark_seen(&self, entry: &MaildirEntry) -> Result<(), SourceError> {
        let mut name = entry.unique.clone().into_vec();
        let mut flags: Vec<u8> = entry.flags.iter().copied().chain([b'S']).collect();
        flags.sort_unstable();
        flags.dedup();
        name.extend_from_slice(b":2,");
        name.extend_from_slice(&flags);
        let target = self.root.join("cur").join(OsString::from_vec(name));
        rename_no_replace(&entry.path, &target).map_err(io_error(&entry.path))
    }
}

/// Reads each entry with `read`, leaving out the ones that vanished.
fn read_each(
    entries: &[MaildirEntry],
    read: impl Fn(&MaildirEntry) -> Result<Option<Vec<u8>>, SourceError>,
) -> Result<ReadBatch<MaildirEntry>, SourceError> {
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        match read(entry)? {
            Some(bytes) => out.push((entry.clone(), bytes)),
            None => debug!(key = %entry.key, "message vanished before it was read"),
        }
    }
    Ok(out)
}

impl Mailbox for Maildir {
    type Position = MaildirEntry;

    fn key(&self, entry: &MaildirEntry) -> String {
        entry.key.clone()
    }

    async fn list_new(
        &mut self,
        _resume: Option<super::Checkpoint>,
    ) -> Result<Vec<MaildirEntry>, SourceError> {
        blocking(|| self.unseen())
    }

    async fn sizes(&mut self, entries: &[MaildirEntry]) -> Result<Vec<Option<u64>>, SourceError> {
        blocking(|| entries.iter().map(|entry| self.size(entry)).collect())
    }

    async fn read_headers(
        &mut self,
        entries: &[MaildirEntry],
    ) -> Result<ReadBatch<MaildirEntry>, SourceError> {
        blocking(|| read_each(entries, |entry| Maildir::read_headers(self, entry)))
    }

    async fn read(
        &mut self,
        entries: &[MaildirEntry],
    ) -> Result<ReadBatch<MaildirEntry>, SourceError> {
        blocking(|| read_each(entries, |entry| Maildir::read(self, entry)))
    }

    /// Marks stored messages seen. A failure is logged, not returned: the message is stored
    /// already, and the next pass finds it in the ledger and acknowledges it then.
    async fn acknowledge(&mut self, entries: &[MaildirEntry]) -> Result<(), SourceError> {
        blocking(|| {
            for entry in entries {
                if let Err(e) = self.mark_seen(entry) {
                    warn!(key = %entry.key, error = %e, "could not mark the message seen");
                }
            }
        });
        Ok(())
    }

    /// Leaves quarantined messages untouched (see the module doc).
    async fn set_aside(&mut self, _entries: &[MaildirEntry]) -> Result<(), SourceError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maildir() -> (tempfile::TempDir, Maildir) {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["new", "cur", "tmp"] {
            fs::create_dir(dir.path().join(sub)).unwrap();
        }
        let md = Maildir::open(dir.path()).unwrap();
        (dir, md)
    }

    #[test]
    fn unseen_lists_new_and_unflagged_cur_but_not_seen_or_dotfiles() {
        let (dir, md) = maildir();
        for name in [
            "new/2.M1",
            "new/.keep",
            "cur/1.M1:2,",
            "cur/3.M1:2,S",
            "cur/4.M1:2,FS",
            "cur/5.M1:2,F",
            "tmp/6.M1",
        ] {
            fs::write(dir.path().join(name), b"x").unwrap();
        }
        let keys: Vec<String> = md.unseen().unwrap().into_iter().map(|e| e.key).collect();
        assert_eq!(keys, ["1.M1", "2.M1", "5.M1"]);
    }

    #[test]
    fn mark_seen_moves_to_cur_keeping_flags() {
        let (dir, md) = maildir();
        fs::write(dir.path().join("new/2.M1"), b"x").unwrap();
        fs::write(dir.path().join("cur/5.M1:2,F"), b"y").unwrap();
        for entry in md.unseen().unwrap() {
            md.mark_seen(&entry).unwrap();
        }
        assert!(dir.path().join("cur/2.M1:2,S").is_file());
        assert!(dir.path().join("cur/5.M1:2,FS").is_file());
        assert!(md.unseen().unwrap().is_empty());
    }

    #[test]
    fn keys_keep_utf8_names_and_escape_stray_bytes_losslessly() {
        assert_eq!(position_key("1.M1P7.хост".as_bytes()), "1.M1P7.хост");
        assert_eq!(position_key(b"1.M%FF.host"), "1.M%FF.host");
        assert_eq!(position_key(b"1.M\xff.host"), "1.M/xFF.host");
        assert_eq!(position_key(b"1.M\xfe\xd0.host"), "1.M/xFE/xD0.host");
    }

    /// Issue 15: both names once had the key `1.M\u{fffd}.host`, and the second rename
    /// replaced the first file in cur/.
    #[test]
    fn names_differing_only_in_invalid_utf8_stay_two_messages() {
        let (dir, md) = maildir();
        let names: [&[u8]; 2] = [b"1.M\xff.host", b"1.M\xfe.host"];
        for (n, name) in names.iter().enumerate() {
            let path = dir
                .path()
                .join("new")
                .join(OsString::from_vec(name.to_vec()));
            fs::write(path, format!("message {n}")).unwrap();
        }
        let entries = md.unseen().unwrap();
        let keys: Vec<&str> = entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["1.M/xFE.host", "1.M/xFF.host"]);
        for entry in &entries {
            md.mark_seen(entry).unwrap();
        }
        for (n, name) in names.iter().enumerate() {
            let mut seen = name.to_vec();
            seen.extend_from_slice(b":2,S");
            let path = dir.path().join("cur").join(OsString::from_vec(seen));
            assert_eq!(fs::read_to_string(path).unwrap(), format!("message {n}"));
        }
    }

    #[test]
    fn mark_seen_never_replaces_another_file() {
        let (dir, md) = maildir();
        fs::write(dir.path().join("new/7.M1"), b"new copy").unwrap();
        fs::write(dir.path().join("cur/7.M1:2,S"), b"earlier message").unwrap();
        let entry = md.unseen().unwrap().remove(0);
        assert!(md.mark_seen(&entry).is_err());
        assert_eq!(fs::read(dir.path().join("new/7.M1")).unwrap(), b"new copy");
        assert_eq!(
            fs::read(dir.path().join("cur/7.M1:2,S")).unwrap(),
            b"earlier message"
        );
    }

    #[test]
    fn a_rename_half_done_by_link_and_unlink_is_finished() {
        let (dir, md) = maildir();
        fs::write(dir.path().join("new/8.M1"), b"x").unwrap();
        fs::hard_link(dir.path().join("new/8.M1"), dir.path().join("cur/8.M1:2,S")).unwrap();
        let entry = md.unseen().unwrap().remove(0);
        md.mark_seen(&entry).unwrap();
        assert!(!dir.path().join("new/8.M1").exists());
        assert!(dir.path().join("cur/8.M1:2,S").is_file());
    }

    #[test]
    fn a_folder_without_new_and_cur_is_not_a_maildir() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            Maildir::open(dir.path()),
            Err(SourceError::NotAMaildir { .. })
        ));
    }
}
