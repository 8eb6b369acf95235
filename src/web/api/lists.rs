//! The API's other read paths: the notification log (`notifications list`), the quarantine
//! (`quarantine list`) and the collectors' state (`collectors status`), each the JSON its
//! command prints with `--json`, read through the same functions as the command and the
//! review page.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use super::extract::ApiQuery;
use super::responses::TokenRefused;
use super::{ApiError, Caller, ErrorBody};
use crate::cli::{StatusRow, states_and_damage, status_rows};
use crate::domain::Need;
use crate::notify::outbox::Notification;
use crate::store::QuarantineEntry;
use crate::web::log::notification_filter;
use crate::web::{AppState, WebError};

/// The filters of `notifications list`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct NotificationsQuery {
    /// Created at or after this local date (`YYYY-MM-DD`) or date-time.
    since: Option<String>,
    /// Created before this local date or date-time.
    until: Option<String>,
    /// `email` or `sms`.
    channel: Option<String>,
    /// `queued`, `sent` or `failed`.
    status: Option<String>,
    /// Only this record's.
    record: Option<i64>,
}

/// The notification log, oldest first
#[utoipa::path(
    get,
    path = "/api/v1/notifications",
    tag = "notifications",
    params(NotificationsQuery),
    security(("token" = [])),
    responses(
        (status = 200, description = "As `notifications list --json`", body = [Notification]),
        (status = 400, description = "A filter that does not parse", body = ErrorBody),
        TokenRefused,
    )
)]
pub(super) async fn notifications(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<NotificationsQuery>,
) -> Result<Json<Vec<Notification>>, ApiError> {
    caller.require(Need::Read)?;
    let mut filter =
        notification_filter(&query.since, &query.until, &query.channel, &query.status)?;
    filter.record_id = query.record;
    Ok(Json(state.store(move |s| s.notifications(&filter)).await?))
}

/// The query of `GET /api/v1/quarantine`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct QuarantineQuery {
    /// Include released and dismissed entries (`quarantine list --all`).
    all: Option<bool>,
}

/// Quarantined messages (open ones unless `all=true`), oldest first, without their bytes
#[utoipa::path(
    get,
    path = "/api/v1/quarantine",
    tag = "quarantine",
    params(QuarantineQuery),
    security(("token" = [])),
    responses(
        (status = 200, description = "As `quarantine list --json`", body = [QuarantineEntry]),
        (status = 400, description = "`all` is not true or false", body = ErrorBody),
        TokenRefused,
    )
)]
pub(super) async fn quarantine(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<QuarantineQuery>,
) -> Result<Json<Vec<QuarantineEntry>>, ApiError> {
    caller.require(Need::Read)?;
    let all = query.all.unwrap_or(false);
    Ok(Json(state.store(move |s| s.quarantine_entries(all)).await?))
}

/// Every configured collector's state (`collectors status --json`)
#[utoipa::path(
    get,
    path = "/api/v1/collectors",
    tag = "collectors",
    security(("token" = [])),
    responses(
        (status = 200, description = "One entry per collector, in the config file's order", body = [StatusRow]),
        TokenRefused,
    )
)]
pub(super) async fn collectors(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.require(Need::Read)?;
    let for_states = state.clone();
    let observed = tokio::task::spawn_blocking(move || {
        states_and_damage(for_states.config()).map_err(|e| WebError::Internal(format!("{e:#}")))
    })
    .await
    .map_err(|e| WebError::Internal(e.to_string()))??;
    let rows = status_rows(state.config(), &observed);
    Ok(Json(rows).into_response())
}
