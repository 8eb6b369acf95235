//! `[storage]`: where records are stored, and for PostgreSQL the password (by reference only,
//! as for IMAP and SMTP) and the TLS mode.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::collector::Probe;
use super::endpoint::Endpoint;
use super::error::{ConfigError, ErrorSite};
use super::keyword::{Choice, pick};
use crate::source::imap::add_ca_file;
use crate::store::{SslMode, StorageUrl};

/// `[storage]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawStorage {
    /// `sqlite://FILE` (relative to the config's folder) or `postgres://USER@HOST:PORT/DB`.
    /// Required in the section.
    url: Spanned<String>,
    /// Never accepted: only here to say why it is refused.
    password: Option<Spanned<toml::Value>>,
    /// PostgreSQL: environment variable holding the password. Default: none (the server
    /// asks for none, e.g. peer or certificate authentication).
    password_env: Option<Spanned<String>>,
    /// PostgreSQL: file holding the password; relative to the config's folder.
    password_file: Option<Spanned<String>>,
    /// PostgreSQL: `verify-if-offered` or libpq's sslmode, `disable` .. `verify-full`.
    /// Default: `verify-if-offered`.
    sslmode: Option<Spanned<Choice<SslMode>>>,
    /// PostgreSQL: PEM file of the CAs that sign the server's certificate; relative to the
    /// config's folder. Default: `~/.postgresql/root.crt` if present, else the system's CAs.
    ca_file: Option<Spanned<String>>,
    /// How long a daemon's hold on a collector lasts without renewal (seconds, 2..=3600).
    /// Default: [`DEFAULT_LEASE_SECS`].
    lease_secs: Option<Spanned<i64>>,
}

/// `[storage] lease-secs` when unset: a dead daemon's collectors are taken over within two
/// lease lengths, 30 s.
pub const DEFAULT_LEASE_SECS: u64 = 15;

/// `[storage]` checked: the URL (for PostgreSQL with the password's reference) and the
/// lease length.
pub(super) struct Storage {
    pub(super) url: StorageUrl,
    pub(super) lease: Duration,
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            url: StorageUrl::Sqlite(PathBuf::from("mailintake.db")),
            lease: Duration::from_secs(DEFAULT_LEASE_SECS),
        }
    }
}

impl RawStorage {
    fn endpoint(&self) -> Endpoint<'_> {
        Endpoint {
            section: "storage",
            host: &self.url,
            tls: None,
            allow_insecure: false,
            password: self.password.as_ref(),
            password_env: self.password_env.as_ref(),
            password_file: self.password_file.as_ref(),
        }
    }

    /// Checks the section; with [`Probe::Sources`] (`mailintake check`) the password must
    /// also be readable now. Relative paths resolve against `base`, the config's folder.
    pub(super) fn validate(
        &self,
        site: &ErrorSite<'_>,
        base: &Path,
        probe: &Probe,
    ) -> Result<Storage, ConfigError> {
        self.endpoint().refuse_inline_password(site)?;
        let mut url = StorageUrl::parse(self.url.get_ref(), base)
            .map_err(|e| site.at(self.url.span(), "storage.url", e.to_string()))?;
        let password = self.endpoint().password(site, base)?;
        match &mut url {
            StorageUrl::Postgres(pg) => {
                pg.password = password.clone();
                pg.ca_file = self.ca_file.as_ref().map(|file| base.join(file.get_ref()));
                if let Some(mode) = &self.sslmode {
                    pg.sslmode = pick(site, mode, "storage.sslmode", "sslmode")?;
                }
            }
            StorageUrl::Sqlite(_) => {
                let postgres_only = [
                    (
                        self.password_env.as_ref().map(Spanned::span),
                        "storage.password-env",
                    ),
                    (
                        self.password_file.as_ref().map(Spanned::span),
                        "storage.password-file",
                    ),
                    (self.sslmode.as_ref().map(Spanned::span), "storage.sslmode"),
                    (self.ca_file.as_ref().map(Spanned::span), "storage.ca-file"),
                ];
                if let Some((Some(span), key)) =
                    postgres_only.into_iter().find(|(s, _)| s.is_some())
                {
                    return Err(site.at(
                        span,
                        key,
                        "only a postgres:// storage URL takes this key",
                    ));
                }
            }
        }
        let reference = match (&self.password_env, &self.password_file) {
            (Some(var), _) => Some((var.span(), "storage.password-env")),
            (None, Some(file)) => Some((file.span(), "storage.password-file")),
            (None, None) => None,
        };
        if let (Probe::Sources, Some(secret), Some((span, key))) = (probe, &password, reference)
            && let Err(e) = secret.read()
        {
            return Err(site.at(span, key, e));
        }
        if let (Probe::Sources, Some(file), StorageUrl::Postgres(pg)) = (probe, &self.ca_file, &url)
            && let Some(path) = &pg.ca_file
        {
            add_ca_file(&mut rustls::RootCertStore::empty(), path)
                .map_err(|e| site.at(file.span(), "storage.ca-file", e.to_string()))?;
        }
        let lease = match &self.lease_secs {
            None => Duration::from_secs(DEFAULT_LEASE_SECS),
            Some(secs) if (2..=3600).contains(secs.get_ref()) => {
                Duration::from_secs(secs.get_ref().unsigned_abs())
            }
            Some(secs) => {
                return Err(site.at(
                    secs.span(),
                    "storage.lease-secs",
                    format!("{} is out of range; give 2 to 3600 seconds", secs.get_ref()),
                ));
            }
        };
        Ok(Storage { url, lease })
    }
}
