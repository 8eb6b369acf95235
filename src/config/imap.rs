//! `[collector.imap]`: an IMAP mailbox, its TLS mode and the password, given by reference.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::endpoint::Endpoint;
use super::error::{ConfigError, ErrorSite};
use super::keyword::Choice;
use crate::source::imap::{ImapConfig, TlsMode, add_ca_file};

/// `[collector.imap]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawImap {
    /// Server host name or IP address. Required.
    pub(super) host: Spanned<String>,
    /// TCP port. Default: 993 with implicit TLS, 143 otherwise.
    port: Option<Spanned<i64>>,
    /// `implicit`, `starttls` or `none`. Default: `implicit`.
    tls: Option<Spanned<Choice<TlsMode>>>,
    /// Lets `tls = "none"` reach a host that is not loopback. Default: false.
    #[serde(default)]
    allow_insecure: bool,
    /// Login name. Required.
    username: Spanned<String>,
    /// Never accepted: only here to say why it is refused.
    password: Option<Spanned<toml::Value>>,
    /// Environment variable holding the password. One of this or `password-file` is required.
    password_env: Option<Spanned<String>>,
    /// File holding the password (e.g. a systemd credential); relative to the config's folder.
    password_file: Option<Spanned<String>>,
    /// Folder to read. Default: `INBOX`.
    mailbox: Option<Spanned<String>>,
    /// Extra CA certificates (PEM) trusted besides the system ones. Default: none.
    ca_file: Option<Spanned<String>>,
    /// Limit in seconds for one IMAP command (1..3600). Default: 60.
    timeout_secs: Option<Spanned<i64>>,
}

/// Folder names go into IMAP commands: refuse what could break out of a quoted string.
pub(super) fn check_folder(
    site: &ErrorSite<'_>,
    value: &Spanned<String>,
    key: &str,
) -> Result<String, ConfigError> {
    let name = value.get_ref().trim();
    if name.is_empty()
        || name
            .chars()
            .any(|c| c.is_control() || c == '"' || c == '\\')
    {
        return Err(site.at(
            value.span(),
            key,
            "a folder name must be non-empty, without quotes, backslashes or control characters",
        ));
    }
    Ok(name.to_string())
}

impl RawImap {
    fn endpoint(&self) -> Endpoint<'_> {
        Endpoint {
            section: "collector.imap",
            host: &self.host,
            tls: self.tls.as_ref(),
            allow_insecure: self.allow_insecure,
            password: self.password.as_ref(),
            password_env: self.password_env.as_ref(),
            password_file: self.password_file.as_ref(),
        }
    }

    /// Checks the mailbox; relative paths resolve against `base`, the config's folder.
    pub(super) fn validate(
        &self,
        site: &ErrorSite<'_>,
        base: &Path,
    ) -> Result<ImapConfig, ConfigError> {
        let (host, tls) = self
            .endpoint()
            .host_and_tls(site, TlsMode::Implicit, "the password")?;
        let port = match &self.port {
            Some(p) => site.number_in(p, 1.., "collector.imap.port", "not a TCP port")?,
            None if tls == TlsMode::Implicit => 993,
            None => 143,
        };
        let password = self.endpoint().password(site, base)?.ok_or_else(|| {
            site.at(
                self.username.span(),
                "collector.imap",
                "the IMAP login needs password-env or password-file",
            )
        })?;
        let timeout_secs = match &self.timeout_secs {
            Some(t) => site.number_in(
                t,
                1..=3600,
                "collector.imap.timeout-secs",
                "must be between 1 and 3600",
            )?,
            None => 60,
        };
        Ok(ImapConfig {
            host,
            port,
            tls,
            username: self.username.get_ref().clone(),
            password,
            mailbox: match &self.mailbox {
                Some(m) => check_folder(site, m, "collector.imap.mailbox")?,
                None => "INBOX".to_string(),
            },
            ca_file: self.ca_file.as_ref().map(|f| base.join(f.get_ref())),
            timeout: Duration::from_secs(timeout_secs),
        })
    }

    /// Checks, without a network, what `config` (validated from `self`) refers to: the
    /// `ca-file` holds PEM certificates, and the password can be read now. Errors name the
    /// key and the collector; the password itself is dropped at once.
    pub(super) fn probe(
        &self,
        site: &ErrorSite<'_>,
        config: &ImapConfig,
        collector: &str,
    ) -> Result<(), ConfigError> {
        if let (Some(path), Some(value)) = (&config.ca_file, &self.ca_file) {
            add_ca_file(&mut rustls::RootCertStore::empty(), path).map_err(|e| {
                site.at(
                    value.span(),
                    "collector.imap.ca-file",
                    format!("collector `{collector}`: {e}"),
                )
            })?;
        }
        let (span, key) = match (&self.password_env, &self.password_file) {
            (Some(var), _) => (var.span(), "collector.imap.password-env"),
            (None, Some(file)) => (file.span(), "collector.imap.password-file"),
            (None, None) => return Ok(()),
        };
        match config.password.read() {
            Ok(_) => Ok(()),
            Err(e) => Err(site.at(span, key, format!("collector `{collector}`: {e}"))),
        }
    }
}
