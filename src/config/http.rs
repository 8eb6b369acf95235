//! `[http]`: where the review page (`src/web/`) listens and how its cookies are marked.

use std::net::SocketAddr;

use serde::Deserialize;
use toml::Spanned;

use super::error::{ConfigError, ErrorSite};

/// Where the review page listens when `[http] listen` is not given: loopback only, so a
/// fresh install shows nothing to the network until the admin says so.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// The review page's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// Whether `mailintake run` serves the page beside the collectors.
    pub enabled: bool,
    /// The address and port to listen on.
    pub listen: SocketAddr,
    /// Whether the session cookie is marked `Secure` (served over TLS, e.g. behind a proxy).
    pub secure_cookies: bool,
}

impl Default for HttpSettings {
    fn default() -> HttpSettings {
        HttpSettings {
            enabled: true,
            listen: DEFAULT_LISTEN.parse().expect("the default address parses"),
            secure_cookies: false,
        }
    }
}

/// `[http]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawHttp {
    /// Whether `mailintake run` serves the review page. Default: true.
    enabled: Option<bool>,
    /// `ADDRESS:PORT` to listen on. Default: `127.0.0.1:8080`.
    listen: Option<Spanned<String>>,
    /// Mark the session cookie `Secure`. Default: false.
    secure_cookies: Option<bool>,
}

impl RawHttp {
    pub(super) fn validate(&self, site: &ErrorSite<'_>) -> Result<HttpSettings, ConfigError> {
        let defaults = HttpSettings::default();
        let listen = match &self.listen {
            Some(listen) => listen.get_ref().trim().parse().map_err(|_| {
                site.at(
                    listen.span(),
                    "http.listen",
                    format!(
                        "`{}` is not ADDRESS:PORT (e.g. {DEFAULT_LISTEN} or [::1]:8080)",
                        listen.get_ref()
                    ),
                )
            })?,
            None => defaults.listen,
        };
        Ok(HttpSettings {
            enabled: self.enabled.unwrap_or(defaults.enabled),
            listen,
            secure_cookies: self.secure_cookies.unwrap_or(defaults.secure_cookies),
        })
    }
}
