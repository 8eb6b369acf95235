//! `[smtp]`: the server notifications are delivered through (issue 9's contract keys).
//!
//! NOTE: delivery's own reading of the section, so the dispatcher can be run and tested
//! while the notification rules' settings (`[sms]`, `[[notify]]`) are built beside it; when
//! both land, one `[smtp]` reader feeds [`SmtpTransportSettings`].

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::error::{ConfigError, ErrorSite};
use super::keyword::{Choice, pick};
use crate::notify::smtp::{RetryDelays, SmtpTransportSettings};
use crate::source::imap::{Secret, TlsMode};

/// `[smtp]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawSmtp {
    /// Server host name or IP address. Required.
    host: Spanned<String>,
    /// TCP port. Default: 465 for implicit, 587 for starttls, 25 for none.
    port: Option<Spanned<i64>>,
    /// `implicit`, `starttls` or `none`. Default: `starttls`.
    tls: Option<Spanned<Choice<TlsMode>>>,
    /// Lets `tls = "none"` reach a host that is not loopback. Default: false.
    #[serde(default)]
    allow_insecure: bool,
    /// The sender: `Name <address>` or an address. Required.
    from: Spanned<String>,
    /// Login name. Default: no AUTH.
    username: Option<Spanned<String>>,
    /// Never accepted: only here to say why it is refused.
    password: Option<Spanned<toml::Value>>,
    /// Environment variable holding the password (with `username`).
    password_env: Option<Spanned<String>>,
    /// File holding the password; relative to the config's folder.
    password_file: Option<Spanned<String>>,
    /// Extra CA certificates (PEM) trusted besides the system ones. Default: none.
    ca_file: Option<Spanned<String>>,
    /// Attempts before a notification is `failed` (1..=100). Default: 10.
    max_attempts: Option<Spanned<i64>>,
    /// How long a CLI command may spend sending before it exits (0..=3600). Default: 30.
    send_timeout_secs: Option<Spanned<i64>>,
}

impl RawSmtp {
    /// Checks the section; relative paths resolve against `base`, the config's folder.
    pub(super) fn validate(
        &self,
        site: &ErrorSite<'_>,
        base: &Path,
    ) -> Result<SmtpTransportSettings, ConfigError> {
        if let Some(password) = &self.password {
            return Err(site.at(
                password.span(),
                "smtp.password",
                "passwords are never written in the config; use password-env = \"VAR\" or password-file = \"PATH\"",
            ));
        }
        let host = self.host.get_ref().trim().to_string();
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(site.at(self.host.span(), "smtp.host", "not a host name"));
        }
        let tls = match &self.tls {
            Some(t) => pick(site, t, "smtp.tls", "TLS mode")?,
            None => TlsMode::Starttls,
        };
        if let (TlsMode::None, Some(t)) = (tls, &self.tls) {
            let local = host == "localhost"
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if !(local || self.allow_insecure) {
                return Err(site.at(
                    t.span(),
                    "smtp.tls",
                    format!("tls = \"none\" sends mail (and any password) in clear to `{host}`; allowed only for a loopback host or with allow-insecure = true"),
                ));
            }
        }
        let port = match &self.port {
            Some(p) => site.number_in(p, 1.., "smtp.port", "not a TCP port")?,
            None => match tls {
                TlsMode::Implicit => 465,
                TlsMode::Starttls => 587,
                TlsMode::None => 25,
            },
        };
        if let Err(e) = self.from.get_ref().parse::<lettre::message::Mailbox>() {
            return Err(site.at(
                self.from.span(),
                "smtp.from",
                format!("not a mailbox (`Name <address>` or `address`): {e}"),
            ));
        }
        let password = match (&self.password_env, &self.password_file) {
            (None, None) => None,
            (Some(var), None) => Some(Secret::Env(var.get_ref().clone())),
            (None, Some(file)) => Some(Secret::File(base.join(file.get_ref()))),
            (Some(var), Some(_)) => {
                return Err(site.at(
                    var.span(),
                    "smtp.password-env",
                    "give password-env or password-file, not both",
                ));
            }
        };
        if let (Some(user), None) = (&self.username, &password) {
            return Err(site.at(
                user.span(),
                "smtp.username",
                "a login needs password-env or password-file",
            ));
        }
        let max_attempts = match &self.max_attempts {
            Some(n) => site.number_in(n, 1..=100, "smtp.max-attempts", "must be 1 to 100")?,
            None => 10,
        };
        let send_timeout_secs = match &self.send_timeout_secs {
            Some(n) => {
                site.number_in(n, 0..=3600, "smtp.send-timeout-secs", "must be 0 to 3600")?
            }
            None => 30,
        };
        Ok(SmtpTransportSettings {
            host,
            port,
            tls,
            from: self.from.get_ref().trim().to_string(),
            username: self.username.as_ref().map(|u| u.get_ref().clone()),
            password,
            ca_file: self.ca_file.as_ref().map(|f| base.join(f.get_ref())),
            max_attempts,
            send_timeout: Duration::from_secs(send_timeout_secs),
            retry: RetryDelays::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use crate::config::Config;
    use crate::source::imap::{Secret, TlsMode};

    fn load(smtp: &str) -> Result<Config, String> {
        Config::from_toml(
            Path::new("/etc/mi/collectors.toml"),
            &format!("[smtp]\n{smtp}"),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_follow_the_tls_mode_and_paths_resolve_against_the_folder() {
        let config = load(
            "host = \"smtp.example.com\"\nfrom = \"EMES <emes@example.com>\"\nusername = \"emes\"\npassword-file = \"smtp.pw\"\nca-file = \"ca.pem\"\n",
        )
        .unwrap();
        let smtp = config.smtp.unwrap();
        assert_eq!((smtp.tls, smtp.port), (TlsMode::Starttls, 587));
        assert_eq!(
            (smtp.max_attempts, smtp.send_timeout),
            (10, Duration::from_secs(30))
        );
        assert_eq!(
            smtp.password,
            Some(Secret::File(PathBuf::from("/etc/mi/smtp.pw")))
        );
        assert_eq!(smtp.ca_file, Some(PathBuf::from("/etc/mi/ca.pem")));
        let implicit = load("host = \"h\"\nfrom = \"a@b.test\"\ntls = \"implicit\"\n").unwrap();
        assert_eq!(implicit.smtp.unwrap().port, 465);
        let none = load("host = \"127.0.0.1\"\nfrom = \"a@b.test\"\ntls = \"none\"\n").unwrap();
        assert_eq!(none.smtp.unwrap().port, 25);
        assert!(
            load("host = \"h\"\nfrom = \"a@b.test\"\n")
                .unwrap()
                .smtp
                .is_some()
        );
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let cases = [
            (
                "host = \"mx.example.com\"\nfrom = \"a@b.test\"\ntls = \"none\"\n",
                "/etc/mi/collectors.toml:4:7: smtp.tls: tls = \"none\" sends mail",
            ),
            (
                "host = \"h\"\nfrom = \"a@b.test\"\nusername = \"u\"\npassword = \"secret\"\n",
                "/etc/mi/collectors.toml:5:12: smtp.password: passwords are never written",
            ),
            (
                "host = \"h\"\nfrom = \"a@b.test\"\nusername = \"u\"\n",
                "/etc/mi/collectors.toml:4:12: smtp.username: a login needs password-env",
            ),
            (
                "host = \"h\"\nfrom = \"not a mailbox\"\n",
                "/etc/mi/collectors.toml:3:8: smtp.from: not a mailbox",
            ),
            (
                "host = \"h\"\nfrom = \"a@b.test\"\nmax-attempts = 0\n",
                "/etc/mi/collectors.toml:4:16: smtp.max-attempts: must be 1 to 100",
            ),
            (
                "host = \"h\"\nfrom = \"a@b.test\"\nsend-timeout = 3\n",
                "/etc/mi/collectors.toml:4:1: send-timeout: unknown field `send-timeout`",
            ),
        ];
        for (text, want) in cases {
            let error = load(text).unwrap_err();
            assert!(error.starts_with(want), "{error}\nwanted: {want}");
        }
    }
}
