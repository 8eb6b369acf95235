//! Logins, sessions, CSRF tokens and the login rate limit.
//!
//! A session is a random token in an `HttpOnly`, `SameSite=Lax` cookie (`Secure` with
//! `[http] secure-cookies`); the store keeps only its SHA-256, with the CSRF token every form
//! of that session must send back. The login form itself, before any session exists, carries
//! a token that must match a short-lived cookie of its own (a double submit). Passwords are
//! argon2id PHC strings, hashed and checked on the blocking pool.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::phc::PasswordHash;
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use askama::Template;
use axum::extract::{Form, FromRequestParts, Query, State};
use axum::http::header::{COOKIE, LOCATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{AppState, Lang, WebError, encode_component};
use crate::store::User;

/// The session cookie's name.
const SESSION_COOKIE: &str = "mailintake_session";
/// The login form's own CSRF cookie (there is no session yet to hold the token).
const LOGIN_CSRF_COOKIE: &str = "mailintake_login";
/// How long a login lasts.
const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Failed logins for one user name before further attempts are refused for a while.
const MAX_FAILURES: u32 = 5;
/// How long failures count, and how long a refused name stays refused.
const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Hashes a password for the store (argon2id with a fresh salt).
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    Ok(Argon2::default()
        .hash_password(password.as_bytes())?
        .to_string())
}

/// Whether `password` matches a stored hash (false for a hash that does not parse).
fn password_matches(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// 32 random bytes as hex: session and CSRF tokens.
pub(super) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Compares tokens in time independent of where they differ.
fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The value of cookie `name` in a request's `Cookie` headers.
pub(super) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then(|| value.to_string())
        })
}

/// Where to go after logging in: only a path on this site, never `//host` or `/\host`
/// (which browsers read as another site): no open redirect.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(next)
            if next.starts_with('/')
                && !next.starts_with("//")
                && !next.starts_with("/\\")
                && !next.chars().any(char::is_control) =>
        {
            next
        }
        _ => "/",
    }
}

/// Failed logins per user name, kept in memory (a restart forgets them).
#[derive(Default)]
pub(super) struct LoginLimiter {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginLimiter {
    fn key(name: &str) -> String {
        name.trim().to_lowercase()
    }

    /// Whether `name` has failed too often lately.
    fn refused(&self, name: &str) -> bool {
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures
            .get(&Self::key(name))
            .is_some_and(|(count, first)| {
                *count >= MAX_FAILURES && first.elapsed() < FAILURE_WINDOW
            })
    }

    fn failed(&self, name: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let entry = failures
            .entry(Self::key(name))
            .or_insert((0, Instant::now()));
        if entry.1.elapsed() >= FAILURE_WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    fn succeeded(&self, name: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.remove(&Self::key(name));
    }
}

/// The logged-in user of a request, with their session's CSRF token. A request without a
/// live session is sent to the login page (which brings it back afterwards).
pub struct CurrentUser {
    pub user: User,
    pub csrf: String,
    token_hash: String,
}

impl CurrentUser {
    /// Refuses a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, submitted: Option<&str>) -> Result<(), WebError> {
        match submitted {
            Some(token) if same_token(token, &self.csrf) => Ok(()),
            _ => Err(WebError::Csrf),
        }
    }
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<CurrentUser, Response> {
        if let Some(token) = cookie(&parts.headers, SESSION_COOKIE) {
            let hash = token_hash(&token);
            let lookup = hash.clone();
            let session = state
                .store(move |store| store.session(&lookup))
                .await
                .map_err(IntoResponse::into_response)?;
            if let Some(session) = session {
                return Ok(CurrentUser {
                    user: session.user,
                    csrf: session.csrf,
                    token_hash: hash,
                });
            }
        }
        let here = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        Err(redirect(&format!("/login?next={}", encode_component(here))))
    }
}

/// A 303 to `to` (a path on this site).
fn redirect(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(to) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    lang: Lang,
    user: Option<&'a User>,
    csrf: &'a str,
    next: &'a str,
    error: Option<&'static str>,
}

#[derive(Deserialize)]
pub(super) struct NextQuery {
    next: Option<String>,
}

/// Renders the login page, with `status`, a CSRF token and its cookie.
fn login_page(
    state: &AppState,
    lang: Lang,
    status: StatusCode,
    csrf: &str,
    next: &str,
    error: Option<&'static str>,
) -> Result<Response, WebError> {
    let page = LoginPage {
        lang,
        user: None,
        csrf,
        next,
        error,
    };
    let cookie = format!(
        "{LOGIN_CSRF_COOKIE}={csrf}; Path=/login; HttpOnly; SameSite=Strict; Max-Age=3600{}",
        secure(state)
    );
    let mut response = (status, Html(page.render()?)).into_response();
    response
        .headers_mut()
        .append(SET_COOKIE, header_value(&cookie)?);
    Ok(response)
}

fn secure(state: &AppState) -> &'static str {
    if state.config().http.secure_cookies {
        "; Secure"
    } else {
        ""
    }
}

fn header_value(text: &str) -> Result<HeaderValue, WebError> {
    HeaderValue::from_str(text).map_err(|e| WebError::Internal(e.to_string()))
}

/// `GET /login`.
pub(super) async fn login_form(
    State(state): State<AppState>,
    lang: Lang,
    headers: HeaderMap,
    Query(query): Query<NextQuery>,
) -> Result<Response, WebError> {
    let csrf = cookie(&headers, LOGIN_CSRF_COOKIE)
        .filter(|t| t.len() == 64)
        .unwrap_or_else(random_token);
    let next = safe_next(query.next.as_deref());
    login_page(&state, lang, StatusCode::OK, &csrf, next, None)
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    username: String,
    password: String,
    csrf: Option<String>,
    next: Option<String>,
}

/// `POST /login`: 403 without the form's token, 429 for a name that failed too often,
/// 401 for a wrong name or password, else a session and a redirect to `next`.
pub(super) async fn login(
    State(state): State<AppState>,
    lang: Lang,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, WebError> {
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE);
    match (&expected, &form.csrf) {
        (Some(expected), Some(sent)) if same_token(expected, sent) => {}
        _ => return Err(WebError::Csrf),
    }
    let csrf = expected.unwrap_or_default();
    let next = safe_next(form.next.as_deref()).to_string();
    if state.inner.limiter.refused(&form.username) {
        return login_page(
            &state,
            lang,
            StatusCode::TOO_MANY_REQUESTS,
            &csrf,
            &next,
            Some("login-too-many"),
        );
    }
    let name = form.username.clone();
    let password = form.password;
    let user = state.store(move |store| store.active_user(&name)).await?;
    let user = match user {
        Some((user, hash)) => {
            tokio::task::spawn_blocking(move || password_matches(&password, &hash).then_some(user))
                .await
                .map_err(|e| WebError::Internal(e.to_string()))?
        }
        None => None,
    };
    let Some(user) = user else {
        state.inner.limiter.failed(&form.username);
        return login_page(
            &state,
            lang,
            StatusCode::UNAUTHORIZED,
            &csrf,
            &next,
            Some("login-failed"),
        );
    };
    state.inner.limiter.succeeded(&form.username);
    let token = random_token();
    let hash = token_hash(&token);
    let expires = crate::store::now()
        + chrono::Duration::from_std(SESSION_LIFETIME).expect("the lifetime fits");
    let session_csrf = random_token();
    state
        .store(move |store| store.create_session(&hash, user.id, &session_csrf, expires))
        .await?;
    let mut response = redirect(&next);
    let headers = response.headers_mut();
    headers.append(
        SET_COOKIE,
        header_value(&format!(
            "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
            SESSION_LIFETIME.as_secs(),
            secure(&state)
        ))?,
    );
    headers.append(
        SET_COOKIE,
        header_value(&format!("{LOGIN_CSRF_COOKIE}=; Path=/login; Max-Age=0"))?,
    );
    Ok(response)
}

/// A form that carries nothing but its CSRF token.
#[derive(Deserialize)]
pub(super) struct CsrfForm {
    pub(super) csrf: Option<String>,
}

/// `POST /logout`: ends the session.
pub(super) async fn logout(
    State(state): State<AppState>,
    current: CurrentUser,
    Form(form): Form<CsrfForm>,
) -> Result<Response, WebError> {
    current.check_csrf(form.csrf.as_deref())?;
    let hash = current.token_hash.clone();
    state.store(move |store| store.end_session(&hash)).await?;
    let mut response = redirect("/login");
    response.headers_mut().append(
        SET_COOKIE,
        header_value(&format!("{SESSION_COOKIE}=; Path=/; Max-Age=0"))?,
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_on_this_site_are_followed_after_login() {
        assert_eq!(
            safe_next(Some("/queues/triage?phone=1")),
            "/queues/triage?phone=1"
        );
        for hostile in [
            "//evil.test/",
            "/\\evil.test",
            "https://evil.test/",
            "evil",
            "/\r\nx",
        ] {
            assert_eq!(safe_next(Some(hostile)), "/", "{hostile:?}");
        }
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn a_password_checks_against_its_hash_only() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(password_matches("correct horse", &hash));
        assert!(!password_matches("correct horsf", &hash));
        assert!(!password_matches("correct horse", "not a hash"));
    }

    #[test]
    fn the_limiter_refuses_a_name_after_repeated_failures_until_success_clears_it() {
        let limiter = LoginLimiter::default();
        for _ in 0..MAX_FAILURES {
            assert!(!limiter.refused("Alice"));
            limiter.failed("alice");
        }
        assert!(limiter.refused("ALICE"));
        assert!(!limiter.refused("bob"));
        limiter.succeeded("alice");
        assert!(!limiter.refused("alice"));
    }
}
