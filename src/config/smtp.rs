//! `[smtp]` (the server notifications go through) and `[sms]` (the e-mail-to-SMS gateway).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::endpoint::Endpoint;
use super::error::{ConfigError, ErrorSite};
use super::keyword::Choice;
use crate::mapping::template::Template;
use crate::notify::recipients::sms_address;
use crate::notify::settings::{
    DEFAULT_MAX_ATTEMPTS, DEFAULT_SEND_TIMEOUT, RetryDelays, SmtpAuth, SmtpSettings, TlsMode,
};

/// `[smtp]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawSmtp {
    /// Server host name or IP address. Required.
    host: Spanned<String>,
    /// TCP port. Default: 465 implicit, 587 starttls, 25 none.
    port: Option<Spanned<i64>>,
    /// `implicit`, `starttls` or `none`. Default: `starttls`.
    tls: Option<Spanned<Choice<TlsMode>>>,
    /// Lets `tls = "none"` reach a host that is not loopback. Default: false.
    #[serde(default)]
    allow_insecure: bool,
    /// The From of every notification (`"EMES <emes@example.com>"`). Required.
    from: Spanned<String>,
    /// Login name. Default: no login.
    username: Option<Spanned<String>>,
    /// Never accepted: only here to say why it is refused.
    password: Option<Spanned<toml::Value>>,
    /// Environment variable holding the password (with `username`).
    password_env: Option<Spanned<String>>,
    /// File holding the password (with `username`); relative to the config's folder.
    password_file: Option<Spanned<String>>,
    /// Extra CA certificates (PEM) trusted besides the system ones. Default: none.
    ca_file: Option<Spanned<String>>,
    /// Attempts before a notification is failed (1..1000). Default: 10.
    max_attempts: Option<Spanned<i64>>,
    /// How long a CLI command tries to send what it queued (0..3600 s). Default: 30.
    send_timeout_secs: Option<Spanned<i64>>,
}

/// `[sms]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawSms {
    /// The gateway address template over `{{digits}}`. Required in the section.
    gateway: Spanned<String>,
}

impl RawSmtp {
    fn endpoint(&self) -> Endpoint<'_> {
        Endpoint {
            section: "smtp",
            host: &self.host,
            tls: self.tls.as_ref(),
            allow_insecure: self.allow_insecure,
            password: self.password.as_ref(),
            password_env: self.password_env.as_ref(),
            password_file: self.password_file.as_ref(),
        }
    }

    /// Checks `[smtp]`; relative paths resolve against `base`, the config's folder.
    pub(super) fn validate(
        &self,
        site: &ErrorSite<'_>,
        base: &Path,
    ) -> Result<SmtpSettings, ConfigError> {
        let (host, tls) =
            self.endpoint()
                .host_and_tls(site, TlsMode::Starttls, "mail (and any password)")?;
        let port = match &self.port {
            Some(p) => site.number_in(p, 1.., "smtp.port", "not a TCP port")?,
            None => match tls {
                TlsMode::Implicit => 465,
                TlsMode::Starttls => 587,
                TlsMode::None => 25,
            },
        };
        let from = self.from.get_ref().trim().to_string();
        let mailbox = lettre::message::Mailbox::from_str(&from)
            .ok()
            .filter(|_| !from.chars().any(char::is_control))
            .ok_or_else(|| {
                site.at(
                    self.from.span(),
                    "smtp.from",
                    format!("`{from}` is not a mailbox; write \"Name <address>\" or an address"),
                )
            })?;
        Ok(SmtpSettings {
            host,
            port,
            tls,
            from_address: mailbox.email.to_string().to_lowercase(),
            from,
            auth: self.auth(site, base)?,
            ca_file: self.ca_file.as_ref().map(|f| base.join(f.get_ref())),
            max_attempts: match &self.max_attempts {
                Some(n) => site.number_in(
                    n,
                    1..=1000,
                    "smtp.max-attempts",
                    "must be between 1 and 1000",
                )?,
                None => DEFAULT_MAX_ATTEMPTS,
            },
            send_timeout: match &self.send_timeout_secs {
                Some(n) => Duration::from_secs(site.number_in(
                    n,
                    0..=3600,
                    "smtp.send-timeout-secs",
                    "must be between 0 and 3600",
                )?),
                None => DEFAULT_SEND_TIMEOUT,
            },
            retry: RetryDelays::default(),
        })
    }

    /// The login: a username with exactly one of password-env and password-file, or none.
    fn auth(&self, site: &ErrorSite<'_>, base: &Path) -> Result<Option<SmtpAuth>, ConfigError> {
        let password = self.endpoint().password(site, base)?;
        match (&self.username, password) {
            (Some(user), Some(password)) => Ok(Some(SmtpAuth {
                username: user.get_ref().clone(),
                password,
            })),
            (None, None) => Ok(None),
            (Some(user), None) => Err(site.at(
                user.span(),
                "smtp.username",
                "the SMTP login needs password-env or password-file",
            )),
            (None, Some(_)) => {
                let span = self
                    .password_env
                    .as_ref()
                    .or(self.password_file.as_ref())
                    .map_or(self.host.span(), Spanned::span);
                Err(site.at(span, "smtp.username", "a password needs a username"))
            }
        }
    }
}

impl RawSms {
    /// The gateway template: it may name `digits` only, and must make an address of them.
    pub(super) fn validate(&self, site: &ErrorSite<'_>) -> Result<Template, ConfigError> {
        let at = |message: String| site.at(self.gateway.span(), "sms.gateway", message);
        let template = Template::parse(self.gateway.get_ref()).map_err(|e| at(e.to_string()))?;
        if let Some(other) = template.fields().find(|f| *f != "digits") {
            return Err(at(format!(
                "the gateway may name only {{{{digits}}}}, not {{{{{other}}}}}"
            )));
        }
        if template.fields().next().is_none() || template.maps().next().is_some() {
            return Err(at(
                "the gateway must contain {{digits}} (and no map: filter), e.g. \"{{digits}}@sms.example.com\"".into(),
            ));
        }
        sms_address(Some(&template), "13800138000")
            .map_err(|e| at(format!("does not make an address: {e}")))?;
        Ok(template)
    }
}
