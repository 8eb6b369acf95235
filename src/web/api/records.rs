//! `/api/v1/records`: seed 001's helpdesk reads calls (a page of records with the filters of
//! `records list`, or one record with its history and contacts) and acts on them (triage; start,
//! resolve, accept, reject). The acts go through the same functions as the record page's forms
//! (`web/actions.rs`), which call the store's workflow as `mailintake records` does; the
//! history names the token (`api:NAME`).
//!
//! Paging is a keyset walk, so a page never repeats or skips a record when others arrive
//! meanwhile: by id (oldest first) for a listing, and by (updated, id) with `updated-since`,
//! where a record that changes again while a poller pages moves behind the cursor and is
//! seen once more, with its change.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, NaiveDateTime};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::cursor::Cursor;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::responses::{Acted, RecordId, TokenRefused};
use super::{ApiError, Caller, ErrorBody};
use crate::domain::Need;
use crate::store::{PageOrder, PagePosition, RecordFilter, RecordWithHistory, StoredRecord};
use crate::web::actions::{change_record_status, triage_record};
use crate::web::records::{given, kind_filter, phone_filter, time_filter};
use crate::web::{AppState, WebError};

/// Records a page holds unless `per-page` says otherwise.
const DEFAULT_PER_PAGE: i64 = 100;
/// The most a page holds, whatever `per-page` asks: a page stays a bounded answer.
const MAX_PER_PAGE: i64 = 500;

/// The filters of `GET /api/v1/records`, as given (a cursor carries them to the next page).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct Filters {
    queue: Option<String>,
    kind: Option<String>,
    status: Option<String>,
    phone: Option<String>,
    since: Option<String>,
    updated_since: Option<String>,
}

/// The query of `GET /api/v1/records`; an unknown parameter is a 400, so a misspelt filter
/// never silently widens the answer.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
#[into_params(parameter_in = Query, rename_all = "kebab-case")]
pub(super) struct RecordsQuery {
    /// Only this queue's records.
    queue: Option<String>,
    /// `lead`, `order` or `service-request`.
    kind: Option<String>,
    /// A stored status (the `[workflow]` names, e.g. `new`).
    status: Option<String>,
    /// Phone digits (5 or more): numbers ending with them.
    phone: Option<String>,
    /// Stored at or after this time: RFC 3339 (`2026-11-29T10:00:00Z`), or the server's
    /// local `YYYY-MM-DD[THH:MM[:SS]]` as `records list --since` reads it.
    since: Option<String>,
    /// Changed (any history event) at or after this time, in the same forms as `since`;
    /// pages then run least recently changed first. Pollers pass the newest `updated_at`
    /// they have seen.
    updated_since: Option<String>,
    /// Records per page: default 100, at most 500.
    per_page: Option<i64>,
    /// The `next` of the page before; it carries the filters and the page size, so it may
    /// come alone.
    cursor: Option<String>,
}

impl RecordsQuery {
    fn filters(&self) -> Filters {
        Filters {
            queue: self.queue.clone(),
            kind: self.kind.clone(),
            status: self.status.clone(),
            phone: self.phone.clone(),
            since: self.since.clone(),
            updated_since: self.updated_since.clone(),
        }
    }
}

/// One page of records.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct RecordPage {
    /// As `records list --json` prints them.
    records: Vec<StoredRecord>,
    /// The cursor of the next page (`?cursor=...`), or null on the last page.
    next: Option<String>,
}

/// A time filter: RFC 3339 (what the API hands out), else the local forms of the CLI.
fn api_time(field: &Option<String>) -> Result<Option<NaiveDateTime>, WebError> {
    match given(field).map(DateTime::parse_from_rfc3339) {
        Some(Ok(at)) => Ok(Some(at.naive_utc())),
        _ => time_filter(field),
    }
}

impl Filters {
    fn store_filter(&self) -> Result<RecordFilter, WebError> {
        Ok(RecordFilter {
            queue: given(&self.queue).map(str::to_string),
            kind: kind_filter(&self.kind)?,
            status: given(&self.status).map(str::to_string),
            phone_digits: phone_filter(&self.phone)?,
            since: api_time(&self.since)?,
            updated_since: api_time(&self.updated_since)?,
            ..RecordFilter::default()
        })
    }

    fn order(&self) -> PageOrder {
        match given(&self.updated_since) {
            Some(_) => PageOrder::Updated,
            None => PageOrder::Id,
        }
    }
}

/// List records, a page at a time
#[utoipa::path(
    get,
    path = "/api/v1/records",
    tag = "records",
    params(RecordsQuery),
    security(("token" = [])),
    responses(
        (status = 200, description = "A page of records", body = RecordPage),
        (status = 400, description = "A filter, `per-page` or cursor that does not parse", body = ErrorBody),
        TokenRefused,
    )
)]
pub(super) async fn list_records(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<RecordsQuery>,
) -> Result<Json<RecordPage>, ApiError> {
    caller.require(Need::Read)?;
    let given_filters = query.filters();
    let (filters, order, after, first_per_page) = match &query.cursor {
        None => {
            let order = given_filters.order();
            (given_filters, order, None, None)
        }
        Some(text) => {
            let cursor = Cursor::<Filters>::decode(text)?;
            if given_filters != Filters::default() && given_filters != cursor.filters {
                return Err(ApiError::BadRequest(
                    "cursor: it carries its filters; send it alone or with the same filters"
                        .to_string(),
                ));
            }
            (
                cursor.filters,
                cursor.order,
                Some(cursor.after),
                Some(cursor.per_page),
            )
        }
    };
    let per_page = match query.per_page.or(first_per_page) {
        None => DEFAULT_PER_PAGE,
        Some(n) if n >= 1 => n.min(MAX_PER_PAGE),
        Some(n) => return Err(ApiError::BadRequest(format!("per-page: {n} (1 or more)"))),
    };
    let filter = filters.store_filter()?;
    let mut records = state
        .store(move |s| s.records_page(&filter, order, after.as_ref(), per_page + 1))
        .await?;
    let more = records.len() as i64 > per_page;
    records.truncate(per_page as usize);
    let next = match records.last() {
        Some(last) if more => Some(
            Cursor {
                filters,
                order,
                per_page,
                after: PagePosition::after(last, order),
            }
            .encode(),
        ),
        _ => None,
    };
    Ok(Json(RecordPage { records, next }))
}

/// The caller as a record's history names it: `api:` and the token's name.
fn actor(caller: &Caller) -> String {
    crate::domain::api_actor(&caller.token)
}

/// Record `id` with its history, or a 404.
async fn with_history(state: &AppState, id: i64) -> Result<RecordWithHistory, ApiError> {
    state
        .store(move |s| s.record_with_history(id))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no record {id}")))
}

/// One record: fields, lines, tech cards and history (`records show --json`)
#[utoipa::path(
    get,
    path = "/api/v1/records/{id}",
    tag = "records",
    params(RecordId),
    security(("token" = [])),
    responses(
        (status = 200, description = "The record with its history, oldest event first", body = RecordWithHistory),
        (status = 400, description = "An id that is not a number", body = ErrorBody),
        TokenRefused,
        (status = 404, description = "No such record", body = ErrorBody),
    )
)]
pub(super) async fn show_record(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<RecordWithHistory>, ApiError> {
    caller.require(Need::Read)?;
    Ok(Json(with_history(&state, id).await?))
}

/// What `records triage` takes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TriageBody {
    /// `fault`, `consult` or `complaint`.
    #[serde(rename = "as")]
    #[schema(rename = "as")]
    outcome: String,
    /// Fields to complete, as `records triage --set FIELD=VALUE` (e.g. `branch`, `site`,
    /// `elevator-no`); empty values are left alone.
    #[serde(default)]
    set: BTreeMap<String, String>,
}

/// Triage a service request awaiting it
#[utoipa::path(
    post,
    path = "/api/v1/records/{id}/triage",
    tag = "records",
    params(RecordId),
    request_body = TriageBody,
    security(("token" = [])),
    responses(
        Acted,
        (status = 400, description = "A body that does not parse, an unknown outcome or field", body = ErrorBody),
        TokenRefused,
    )
)]
pub(super) async fn triage(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<TriageBody>,
) -> Result<Json<RecordWithHistory>, ApiError> {
    caller.require(Need::Write)?;
    triage_record(&state, id, &body.outcome, body.set, actor(&caller)).await?;
    Ok(Json(with_history(&state, id).await?))
}

/// What `records start|resolve|accept|reject` take.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct StatusBody {
    /// `start`, `resolve`, `accept` or `reject`.
    change: String,
    /// The solution: required with `resolve`, refused otherwise.
    result: Option<String>,
    /// Why the customer rejects the solution: required with `reject`, refused otherwise.
    reason: Option<String>,
}

impl StatusBody {
    /// The text the change carries; a result or reason given to the wrong change is a 400
    /// rather than dropped.
    fn text(&self) -> Result<&str, ApiError> {
        let misplaced = |field: &str| {
            ApiError::BadRequest(format!("{field}: not taken by change `{}`", self.change))
        };
        if self.result.is_some() && self.change != "resolve" {
            return Err(misplaced("result"));
        }
        if self.reason.is_some() && self.change != "reject" {
            return Err(misplaced("reason"));
        }
        Ok(self
            .result
            .as_deref()
            .or(self.reason.as_deref())
            .unwrap_or(""))
    }
}

/// Move a record through the workflow: start, resolve, accept or reject (seed 001)
#[utoipa::path(
    post,
    path = "/api/v1/records/{id}/status",
    tag = "records",
    params(RecordId),
    request_body = StatusBody,
    security(("token" = [])),
    responses(
        Acted,
        (status = 400, description = "A body that does not parse, an unknown change, a missing result or reason", body = ErrorBody),
        TokenRefused,
    )
)]
pub(super) async fn change_status(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<StatusBody>,
) -> Result<Json<RecordWithHistory>, ApiError> {
    caller.require(Need::Write)?;
    let text = body.text()?;
    change_record_status(&state, id, &body.change, text, actor(&caller)).await?;
    Ok(Json(with_history(&state, id).await?))
}
