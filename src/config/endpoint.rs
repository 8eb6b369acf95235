//! The keys a server connection has wherever it is configured (`[collector.imap]`,
//! `[smtp]`): the host, the TLS mode with its clear-text guard, and the password, which is
//! only ever given by reference. One reading of them, so both sections refuse the same
//! things with the same words, naming `SECTION.KEY`.

use std::path::Path;

use toml::Spanned;

use super::error::{ConfigError, ErrorSite};
use super::keyword::{Choice, pick};
use crate::source::imap::{Secret, TlsMode};

/// A connection's keys as written, borrowed from the section that has them.
pub(super) struct Endpoint<'a> {
    /// The section's key prefix (`smtp`, `collector.imap`).
    pub(super) section: &'static str,
    pub(super) host: &'a Spanned<String>,
    pub(super) tls: Option<&'a Spanned<Choice<TlsMode>>>,
    pub(super) allow_insecure: bool,
    pub(super) password: Option<&'a Spanned<toml::Value>>,
    pub(super) password_env: Option<&'a Spanned<String>>,
    pub(super) password_file: Option<&'a Spanned<String>>,
}

impl Endpoint<'_> {
    fn key(&self, key: &str) -> String {
        format!("{}.{key}", self.section)
    }

    /// The host and the TLS mode (`default` when not given). `in_clear` says what
    /// `tls = "none"` would expose, for the refusal to a host that is not loopback.
    pub(super) fn host_and_tls(
        &self,
        site: &ErrorSite<'_>,
        default: TlsMode,
        in_clear: &str,
    ) -> Result<(String, TlsMode), ConfigError> {
        self.refuse_inline_password(site)?;
        let host = self.host.get_ref().trim().to_string();
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(site.at(self.host.span(), &self.key("host"), "not a host name"));
        }
        let tls = match self.tls {
            Some(t) => pick(site, t, &self.key("tls"), "TLS mode")?,
            None => default,
        };
        if let (TlsMode::None, Some(t)) = (tls, self.tls)
            && !is_loopback(&host)
            && !self.allow_insecure
        {
            return Err(site.at(
                t.span(),
                &self.key("tls"),
                format!("tls = \"none\" sends {in_clear} in clear to `{host}`; allowed only for a loopback host or with allow-insecure = true"),
            ));
        }
        Ok((host, tls))
    }

    /// A `password = ...` key is an error: passwords are only given by reference.
    pub(super) fn refuse_inline_password(&self, site: &ErrorSite<'_>) -> Result<(), ConfigError> {
        match self.password {
            Some(password) => Err(site.at(
                password.span(),
                &self.key("password"),
                "passwords are never written in the config; use password-env = \"VAR\" or password-file = \"/run/credentials/...\"",
            )),
            None => Ok(()),
        }
    }

    /// The password's reference: exactly one of password-env and password-file, or none.
    /// Relative files resolve against `base`, the config's folder.
    pub(super) fn password(
        &self,
        site: &ErrorSite<'_>,
        base: &Path,
    ) -> Result<Option<Secret>, ConfigError> {
        match (self.password_env, self.password_file) {
            (Some(var), None) => Ok(Some(Secret::Env(var.get_ref().clone()))),
            (None, Some(file)) => Ok(Some(Secret::File(base.join(file.get_ref())))),
            (Some(var), Some(_)) => Err(site.at(
                var.span(),
                &self.key("password-env"),
                "give password-env or password-file, not both",
            )),
            (None, None) => Ok(None),
        }
    }
}

/// Whether `host` is this machine (where a clear-text connection never leaves it).
fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
