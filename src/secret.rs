//! Passwords and other secrets, given in the config by reference (an environment variable,
//! a file such as a systemd credential), never inline, and read when they are needed.

use std::fmt;
use std::path::PathBuf;

/// A secret given by reference, never inline.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// The value of an environment variable.
    Env(String),
    /// The contents of a file (trailing newline removed), e.g. a systemd credential.
    File(PathBuf),
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Env(name) => write!(f, "Secret::Env({name})"),
            Secret::File(path) => write!(f, "Secret::File({})", path.display()),
        }
    }
}

impl Secret {
    /// Reads the secret now (at connect time, so a rotated credential is picked up).
    pub fn read(&self) -> Result<String, String> {
        match self {
            Secret::Env(name) => {
                std::env::var(name).map_err(|_| format!("environment variable {name} is not set"))
            }
            Secret::File(path) => std::fs::read_to_string(path)
                .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
                .map_err(|e| format!("cannot read password file {}: {e}", path.display())),
        }
    }
}
