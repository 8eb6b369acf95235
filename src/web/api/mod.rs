//! The JSON API (issue 11): other systems talk to mailintake without e-mail.
//!
//! Every call carries `Authorization: Bearer TOKEN` (`mailintake tokens add`); [`Caller`]
//! resolves it to the token's scope and each handler states what it needs with
//! [`Caller::require`]. Handlers call the same store and workflow functions as the CLI and
//! the review page. Errors are JSON with a stable code ([`ApiError`]). The OpenAPI 3.1
//! document at `/api/openapi.json` is collected from the handlers' `#[utoipa::path]`
//! annotations by [`routes`], so a route cannot be served without being documented.

mod cursor;
mod error;
mod extract;
mod intake;
mod lists;
mod records;
mod responses;
mod token;

use std::sync::Arc;

use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::{ApiError, ErrorBody, ErrorDetail};
pub use token::ApiSecret;

use super::AppState;
use crate::domain::{Need, TokenScope};

/// Who is calling: the token's name (for the history and the log) and what it may do.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token: String,
    pub scope: TokenScope,
}

impl Caller {
    /// The caller holding `secret`, or [`ApiError::Unauthorized`] when it is unknown or
    /// revoked. Also used where a token arrives in the query (calendar feeds).
    pub async fn from_secret(state: &AppState, secret: &ApiSecret) -> Result<Caller, ApiError> {
        let hash = secret.hash();
        let token = state
            .store(move |store| store.token_by_hash(&hash))
            .await?
            .ok_or(ApiError::Unauthorized)?;
        Ok(Caller {
            token: token.name,
            scope: token.scope_value,
        })
    }

    /// Refuses with 403 unless this token's scope covers `need`.
    pub fn require(&self, need: Need<'_>) -> Result<(), ApiError> {
        if self.scope.allows(need) {
            return Ok(());
        }
        Err(ApiError::Forbidden(match need {
            Need::Read => "read records".to_string(),
            Need::Write => "change records".to_string(),
            Need::Intake { collector } => format!("post to collector {collector}"),
            Need::Calendar { queue } => format!("read the calendar of queue {queue}"),
        }))
    }
}

/// The secret of an `Authorization: Bearer ...` header.
fn bearer(headers: &HeaderMap) -> Option<ApiSecret> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, secret) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !secret.trim().is_empty())
        .then(|| ApiSecret::presented(secret))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let secret = bearer(&parts.headers).ok_or(ApiError::Unauthorized)?;
        Caller::from_secret(state, &secret).await
    }
}

/// The document's frame; the paths come from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "mailintake API",
        description = "HTTP intake of website forms, and reading and acting on the records mailintake made"
    ),
    modifiers(&BearerToken),
    components(schemas(ErrorBody, ErrorDetail))
)]
struct ApiDoc;

/// Declares the bearer token every `/api/v1` call carries.
struct BearerToken;

impl utoipa::Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The API's routes with `/api/openapi.json` describing them.
pub(super) fn routes() -> Router<AppState> {
    let (router, document) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(records::list_records))
        .routes(routes!(records::show_record))
        .routes(routes!(records::triage))
        .routes(routes!(records::change_status))
        .routes(routes!(lists::notifications))
        .routes(routes!(lists::quarantine))
        .routes(routes!(lists::collectors))
        .routes(routes!(intake::post_intake))
        .split_for_parts();
    let document = Arc::new(document);
    router.route(
        "/api/openapi.json",
        get(move || {
            let document = Arc::clone(&document);
            async move { Json(document.as_ref().clone()) }
        }),
    )
}

/// A path that exists without the method asked for: JSON under `/api/`, the plain status
/// elsewhere.
pub(super) async fn method_not_allowed(OriginalUri(uri): OriginalUri) -> Response {
    if uri.path().starts_with("/api/") {
        ApiError::MethodNotAllowed.into_response()
    } else {
        axum::http::StatusCode::METHOD_NOT_ALLOWED.into_response()
    }
}

/// An unknown path: JSON under `/api/`, the review page's not-found page elsewhere.
pub(super) async fn not_found(OriginalUri(uri): OriginalUri) -> Response {
    if uri.path().starts_with("/api/") {
        ApiError::NotFound(format!("no API route {}", uri.path())).into_response()
    } else {
        super::WebError::NotFound.into_response()
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue, header};

    use super::bearer;

    #[test]
    fn only_a_bearer_authorization_carries_a_token() {
        let mut headers = HeaderMap::new();
        assert!(bearer(&headers).is_none());
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert!(bearer(&headers).is_none());
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert!(bearer(&headers).is_none());
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer mit_x"),
        );
        assert_eq!(bearer(&headers).unwrap().expose(), "mit_x");
    }
}
