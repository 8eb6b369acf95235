//! `POST /api/v1/intake/{collector}`: a website posts the JSON it would have attached to its
//! e-mail, and gets its success flag back (seeds 002 and 000).
//!
//! The checks come in a fixed order, so a caller learns nothing it may not know: the token
//! (401), the collector and its `[collector.http]` (404, whatever the valid token), the
//! token's scope (403), the size (413: `Content-Length` first, then the body as it streams,
//! never read past `max-body`). Then the body is decoded and mapped as the collector's
//! e-mail attachment would be (`ingest::prepare_body`) and committed through the store's
//! record path in one transaction (`Store::commit_intake`), which also decides, under unique
//! constraints, whether it duplicates an earlier request (same Idempotency-Key, or no key
//! and the same body).

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Serialize;
use tracing::{info, warn};
use utoipa::ToSchema;

use super::{ApiError, Caller, ErrorBody, ErrorDetail};
use crate::config::HttpIntake;
use crate::domain::Need;
use crate::ingest::{Mapped, prepare_body};
use crate::store::{Incoming, IntakeOutcome, IntakeRequest, Unusable};
use crate::web::{AppState, WebError};

/// The header that makes a retried request safe.
const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The longest Idempotency-Key taken (a UUID is 36 characters).
const MAX_KEY_LEN: usize = 255;

/// `201`, or `200` for a duplicate: the website's success flag.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntakeAccepted {
    /// Always `accepted`.
    pub status: &'static str,
    /// The record's id (`records show ID`, `/records/ID`).
    pub id: i64,
    /// The record's number (service requests); null for leads and orders.
    pub number: Option<String>,
    /// True when this request repeats one already stored: nothing new was stored.
    pub duplicate: bool,
}

/// `422`: the body is not a JSON object, or does not map with the collector's format; it is
/// kept in the quarantine (`quarantine show ID --raw`, `quarantine retry ID`).
#[derive(Debug, Serialize, ToSchema)]
pub struct IntakeQuarantined {
    /// Always `quarantined`.
    pub status: &'static str,
    pub reason: String,
    pub quarantine_id: i64,
    /// True when this request repeats one already quarantined.
    pub duplicate: bool,
    /// The error every API error carries, code `quarantined`.
    pub error: ErrorDetail,
}

/// Posts a website form to a collector: the body is the JSON the website would attach to
/// its e-mail.
#[utoipa::path(
    post,
    path = "/api/v1/intake/{collector}",
    params(
        ("collector" = String, Path, description = "A collector with a [collector.http] table"),
        ("Idempotency-Key" = Option<String>, Header,
            description = "Repeating a key repeats the first answer; without one, a byte-identical body does"),
    ),
    request_body(
        content = Object,
        content_type = "application/json",
        description = "The form's JSON; its charset from Content-Type (e.g. `application/json; charset=windows-1251`), else a BOM, UTF-8 or the collector's default-charset"
    ),
    responses(
        (status = 201, description = "Stored as a new record", body = IntakeAccepted),
        (status = 200, description = "A duplicate: the first request's record", body = IntakeAccepted),
        (status = 422, description = "Quarantined: not a JSON object, or it does not map", body = IntakeQuarantined),
        (status = 400, description = "An unusable Idempotency-Key", body = ErrorBody),
        (status = 401, description = "No token, or an unknown or revoked one", body = ErrorBody),
        (status = 403, description = "The token is not this collector's intake token", body = ErrorBody),
        (status = 404, description = "No such collector, or it takes nothing over HTTP", body = ErrorBody),
        (status = 413, description = "The body is over the collector's max-body", body = ErrorBody),
    ),
    security(("token" = [])),
    tag = "intake"
)]
pub(super) async fn post_intake(
    caller: Caller,
    State(state): State<AppState>,
    Path(collector): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let config = state.config();
    let Some((found, limits)) = config
        .collector(&collector)
        .and_then(|c| c.http.map(|http| (c, http)))
    else {
        return Err(ApiError::NotFound(format!(
            "no collector `{collector}` takes forms over HTTP"
        )));
    };
    caller.require(Need::Intake {
        collector: &collector,
    })?;
    let body = read_body(&headers, body, limits).await?;
    let key = idempotency_key(&headers)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);

    let (rules, format) = (found.rules.clone(), found.format.clone());
    let (body, prepared) = {
        let content_type = content_type.clone();
        tokio::task::spawn_blocking(move || {
            let prepared = prepare_body(&body, content_type.as_deref(), &rules, &format);
            (body, prepared)
        })
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?
    };
    let record = match prepared.mapped {
        Mapped::Accept(record) => Ok(record),
        Mapped::Quarantine(reason) | Mapped::Skip(reason) => Err(Unusable { reason }),
    };
    let source_key = match &key {
        Some(key) => format!("http:key:{key}"),
        None => format!("http:sha256:{}", prepared.envelope.fingerprint),
    };
    let request = IntakeRequest {
        token: caller.token.clone(),
        idempotency_key: key,
        content_type,
        incoming: Incoming {
            source_key,
            envelope: prepared.envelope,
            raw: body,
            record,
        },
    };
    let queue = found.queue.clone();
    let name = collector.clone();
    let outcome = state
        .store(move |store| store.commit_intake(&name, &queue, &request))
        .await?;
    Ok(answer(&collector, &caller.token, outcome))
}

/// The `Idempotency-Key` header: visible ASCII, at most [`MAX_KEY_LEN`] characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = value.to_str().map(str::trim).unwrap_or_default();
    let printable = key.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    if key.is_empty() || key.len() > MAX_KEY_LEN || !printable {
        return Err(ApiError::BadRequest(format!(
            "Idempotency-Key must be 1 to {MAX_KEY_LEN} printable ASCII characters"
        )));
    }
    Ok(Some(key.to_string()))
}

/// The body, refused as soon as it is known to be over `max-body`: by its `Content-Length`
/// before a byte is read, else while it streams in.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limits: HttpIntake,
) -> Result<Vec<u8>, ApiError> {
    let limit = limits.max_body;
    let too_large = || ApiError::PayloadTooLarge {
        limit: usize::try_from(limit).unwrap_or(usize::MAX),
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(declared.map_or(0, |l| l as usize));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::BadRequest(format!("cannot read the request body: {e}")))?;
        if (bytes.len() + chunk.len()) as u64 > limit {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// 201 for a new record, 200 for a duplicate of one, 422 for a quarantined request.
fn answer(collector: &str, token: &str, outcome: IntakeOutcome) -> Response {
    match outcome {
        IntakeOutcome::Accepted {
            record_id,
            number,
            duplicate,
        } => {
            info!(
                collector,
                token, record_id, duplicate, "HTTP intake accepted"
            );
            let status = if duplicate {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            let body = IntakeAccepted {
                status: "accepted",
                id: record_id,
                number,
                duplicate,
            };
            (status, Json(body)).into_response()
        }
        IntakeOutcome::Quarantined {
            quarantine_id,
            reason,
            duplicate,
        } => {
            warn!(collector, token, quarantine_id, %reason, duplicate, "HTTP intake quarantined");
            let body = IntakeQuarantined {
                status: "quarantined",
                error: ErrorDetail {
                    code: "quarantined",
                    message: reason.clone(),
                },
                reason,
                quarantine_id,
                duplicate,
            };
            (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
        }
    }
}
