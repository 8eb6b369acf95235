//! Source stage: where messages come from and how they are acknowledged.

pub mod imap;
pub mod maildir;

/// Errors reading a mailbox.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path} is not a Maildir (it needs new/ and cur/ folders)")]
    NotAMaildir { path: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}
