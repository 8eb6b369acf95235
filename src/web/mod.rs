//! The review page: managers work their queues in a browser (issue 10).
//!
//! Server-rendered HTML (askama templates under `templates/`, escaped by their `.html`
//! extension) over axum on the daemon's tokio runtime. [`router`] builds the app from an
//! [`AppState`]; [`serve`] runs it on a listener the caller bound until the shutdown token
//! it is given is cancelled, so `mailintake run` (beside the collectors), `mailintake serve`
//! and the tests (port 0) start it the same way.
//!
//! `auth.rs` holds logins, sessions, CSRF and the login rate limit; `i18n.rs` the language
//! catalogues (`i18n/*.toml`); `api/` the JSON API for other systems (bearer tokens); `pages.rs` the start page; `records.rs` the queue and record pages; `actions.rs` the forms that change a record; `log.rs` the notification log; `quarantine.rs` the quarantine; `collectors.rs` the collectors' state; `security.rs` the
//! headers every response carries. Storage calls are blocking diesel: they run on the
//! blocking pool through [`AppState::store`], against one connection shared under a mutex.
//! `health.rs` (`/healthz`) and `metrics.rs` (`/metrics`, and the request counter on every
//! route) are for machines: no login, no token (the server listens on loopback by default).
//! `calendar/` serves each queue as an iCalendar feed to a calendar token in the query.

mod actions;
pub mod api;
mod auth;
mod calendar;
mod collectors;
mod health;
mod i18n;
mod log;
mod metrics;
mod pages;
mod quarantine;
mod records;
mod security;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::ingest::{RetryError, Shutdown};
use crate::notify::outbox::NotifyError;
use crate::store::{Store, StoreError};

pub use api::ApiSecret;
pub use auth::hash_password;
pub use i18n::Lang;

/// What every handler shares: the configuration and the store.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    store: Mutex<Store>,
    limiter: auth::LoginLimiter,
}

impl AppState {
    /// The state for `config`, with the store it names opened (and migrated).
    pub fn new(config: Config) -> anyhow::Result<AppState> {
        // Before the collectors start, so their first pass is counted.
        crate::metrics::install();
        let store = crate::cli::open_store(&config)?;
        Ok(AppState {
            inner: Arc::new(Inner {
                config,
                store: Mutex::new(store),
                limiter: auth::LoginLimiter::default(),
            }),
        })
    }

    fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Runs `work` with the store on the blocking pool.
    async fn store<T: Send + 'static, E: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Store) -> Result<T, E> + Send + 'static,
    ) -> Result<T, WebError>
    where
        WebError: From<E>,
    {
        let state = self.clone();
        tokio::task::spawn_blocking(move || {
            // NOTE: a panic while holding the lock poisons it; the connection itself is
            // still usable (diesel rolls back an unfinished transaction), so carry on.
            let mut store = state
                .inner
                .store
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let result = work(&mut store);
            if result.is_err() {
                store.heal();
            }
            result
        })
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?
        .map_err(WebError::from)
    }
}

/// The review page's routes, with the security headers on every response.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(pages::home))
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/queues/{name}", get(records::queue_page))
        .route("/records/{id}", get(records::record_page))
        .route("/records/{id}/eml", get(records::source))
        .route("/records/{id}/triage", post(actions::triage))
        .route("/records/{id}/status", post(actions::change_status))
        .route("/records/{id}/notify", post(actions::notify))
        .route("/notifications", get(log::notifications_page))
        .route("/collectors", get(collectors::page))
        .route("/collectors/{name}/collect", post(collectors::collect_now))
        .route("/quarantine", get(quarantine::list))
        .route("/quarantine/{id}", get(quarantine::entry))
        .route("/quarantine/{id}/raw", get(quarantine::raw))
        .route("/quarantine/{id}/retry", post(quarantine::retry))
        .route("/quarantine/{id}/dismiss", post(quarantine::dismiss))
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(metrics::render))
        .route("/calendars/{file}", get(calendar::feed))
        .merge(api::routes())
        .method_not_allowed_fallback(api::method_not_allowed)
        .fallback(api::not_found)
        .layer(axum::middleware::from_fn(i18n::remember_lang))
        .layer(axum::middleware::from_fn(security::headers))
        // NOTE: last, so it wraps every route above and sees the status the client gets.
        .layer(axum::middleware::from_fn(metrics::count))
        .with_state(state)
}

/// Serves the review page on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// Percent-encodes a path for a query value.
pub(super) fn encode_component(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Why a request failed: the one place errors become HTTP responses.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// A filter or form value that does not parse.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A form without the right CSRF token.
    #[error("the form's security token is missing or stale; reload the page")]
    Csrf,
    /// Something the user's role or queues do not allow.
    #[error("not allowed")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A quarantine entry that cannot be retried.
    #[error(transparent)]
    Retry(#[from] RetryError),
    /// A manual notification the rules refuse.
    #[error(transparent)]
    Notify(#[from] NotifyError),
    /// A collector another daemon runs: a pass here would race it for the same mailbox.
    #[error("collector `{collector}` is run by the daemon at {host}:{pid}")]
    HeldElsewhere {
        collector: String,
        host: String,
        pid: i64,
    },
    #[error("{0}")]
    Internal(String),
    #[error("cannot render the page: {0}")]
    Render(#[from] askama::Error),
}

impl WebError {
    /// The HTTP status this failure answers with (the review page and the API agree).
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Csrf | WebError::Forbidden => StatusCode::FORBIDDEN,
            WebError::NotFound
            | WebError::Store(StoreError::NoRecord(_) | StoreError::NoQuarantineEntry(_))
            | WebError::Retry(RetryError::Store(StoreError::NoQuarantineEntry(_))) => {
                StatusCode::NOT_FOUND
            }
            // The workflow or the rules refuse the change: the record is not in a state for it.
            WebError::Store(StoreError::Refused { .. } | StoreError::QuarantineNotOpen { .. })
            | WebError::Retry(
                RetryError::AlreadyReleased { .. }
                | RetryError::TooLarge { .. }
                | RetryError::UnknownCollector { .. },
            )
            | WebError::Notify(
                NotifyError::NoRule(_)
                | NotifyError::NotManual { .. }
                | NotifyError::DoesNotApply { .. },
            )
            | WebError::HeldElsewhere { .. } => StatusCode::CONFLICT,
            WebError::Store(_)
            | WebError::Retry(_)
            | WebError::Notify(_)
            | WebError::Internal(_)
            | WebError::Render(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %self, "review page request failed");
        }
        // NOTE: plain HTML built from constant text only (the status line); nothing from the
        // request or the store reaches it.
        let line = format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        );
        (
            status,
            Html(format!(
                "<!doctype html><title>{line}</title><h1>{line}</h1><p><a href=\"/\">mailintake</a></p>"
            )),
        )
            .into_response()
    }
}
