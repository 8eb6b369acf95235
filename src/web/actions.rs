//! The record page's forms: triage (seed 000's 受信 / 咨询 / 投诉, completing fields the
//! report lacks), status changes (seed 001's start, resolve, accept, reject) and manual
//! notifications. Each checks the session's CSRF token and that the user sees the record's
//! queue, then calls the same store function as `mailintake records`, with the user's name
//! as the actor; the daemon's dispatcher sends what that queued. A change the workflow
//! refuses is a 409. The JSON API's triage and status routes (`api/records.rs`) come through
//! [`triage_record`] and [`change_record_status`] too, with the token as the actor.

use axum::extract::{Form, Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::auth::CurrentUser;
use super::{AppState, WebError};
use crate::domain::{StatusChange, Triage};
use crate::mapping::declarative::Target;

/// The fields the triage form lets a manager complete (seed 000: branch, site, elevator).
pub(super) const TRIAGE_FIELDS: [&str; 3] = ["branch", "site", "elevator-no"];

/// 404 unless record `id` exists in a queue the user sees (a form for another queue's
/// record learns nothing about it).
async fn visible(state: &AppState, current: &CurrentUser, id: i64) -> Result<(), WebError> {
    let record = state.store(move |s| s.record(id)).await?;
    let user = &current.user;
    match record {
        Some(record) if user.role.sees_queue(&user.queues, &record.queue) => Ok(()),
        _ => Err(WebError::NotFound),
    }
}

fn back_to(id: i64) -> Response {
    Redirect::to(&format!("/records/{id}")).into_response()
}

/// Triages record `id` as `outcome` (`fault`, `consult`, `complaint`), completing the
/// fields given as (field name, value) (empty values are left alone), with `actor` in the
/// history: what the record page's form and `POST /api/v1/records/{id}/triage` both do. A
/// value that does not parse is a 400, a triage the workflow refuses a 409.
pub(super) async fn triage_record(
    state: &AppState,
    id: i64,
    outcome: &str,
    fields: impl IntoIterator<Item = (String, String)>,
    actor: String,
) -> Result<(), WebError> {
    let outcome =
        Triage::parse(outcome).ok_or_else(|| WebError::BadRequest(format!("as: `{outcome}`")))?;
    let mut sets: Vec<(Target, String)> = Vec::new();
    for (name, value) in fields {
        let target = Target::parse(&name)
            .ok_or_else(|| WebError::BadRequest(format!("unknown field `{name}`")))?;
        let value = value.trim();
        if !value.is_empty() {
            sets.push((target, value.to_string()));
        }
    }
    state
        .store(move |s| s.triage(id, outcome, &sets, &actor))
        .await
}

/// Applies status change `change` (`start`, `resolve`, `accept`, `reject`) to record `id`
/// with `text` (the solution of a resolve, the reason of a reject; required there) and
/// `actor` in the history; returns the new status. The record page's form and
/// `POST /api/v1/records/{id}/status` both come here.
pub(super) async fn change_record_status(
    state: &AppState,
    id: i64,
    change: &str,
    text: &str,
    actor: String,
) -> Result<String, WebError> {
    let text = text.trim().to_string();
    if !matches!(change, "start" | "resolve" | "accept" | "reject") {
        return Err(WebError::BadRequest(format!("change: `{change}`")));
    }
    if matches!(change, "resolve" | "reject") && text.is_empty() {
        return Err(WebError::BadRequest(format!(
            "{change}: the text is required"
        )));
    }
    let names = state.config().workflow.status_names();
    let change = change.to_string();
    state
        .store(move |s| {
            let change = match change.as_str() {
                "start" => StatusChange::Start,
                "resolve" => StatusChange::Resolve { result: &text },
                "accept" => StatusChange::Accept,
                _ => StatusChange::Reject { reason: &text },
            };
            s.change_status(id, &names, change, &actor)
        })
        .await
}

#[derive(Deserialize)]
pub(super) struct TriageForm {
    csrf: Option<String>,
    /// fault | consult | complaint.
    #[serde(rename = "as")]
    outcome: String,
    branch: Option<String>,
    site: Option<String>,
    #[serde(rename = "elevator-no")]
    elevator_no: Option<String>,
}

/// `POST /records/{id}/triage`.
pub(super) async fn triage(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<TriageForm>,
) -> Result<Response, WebError> {
    current.check_csrf(form.csrf.as_deref())?;
    visible(&state, &current, id).await?;
    let fields = TRIAGE_FIELDS
        .into_iter()
        .zip([form.branch, form.site, form.elevator_no])
        .filter_map(|(name, value)| Some((name.to_string(), value?)));
    triage_record(&state, id, &form.outcome, fields, current.user.name.clone()).await?;
    Ok(back_to(id))
}

#[derive(Deserialize)]
pub(super) struct StatusForm {
    csrf: Option<String>,
    /// start | resolve | accept | reject.
    change: String,
    /// The solution (resolve) or the reason (reject).
    text: Option<String>,
}

/// `POST /records/{id}/status`.
pub(super) async fn change_status(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<StatusForm>,
) -> Result<Response, WebError> {
    current.check_csrf(form.csrf.as_deref())?;
    visible(&state, &current, id).await?;
    let text = form.text.unwrap_or_default();
    change_record_status(&state, id, &form.change, &text, current.user.name.clone()).await?;
    Ok(back_to(id))
}

#[derive(Deserialize)]
pub(super) struct NotifyForm {
    csrf: Option<String>,
    rule: String,
}

/// `POST /records/{id}/notify`: queues a manual `[[notify]]` rule for the record.
pub(super) async fn notify(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<NotifyForm>,
) -> Result<Response, WebError> {
    current.check_csrf(form.csrf.as_deref())?;
    visible(&state, &current, id).await?;
    let rules = state.config().notify.clone();
    let actor = current.user.name.clone();
    // NOTE: a rule whose recipients all fail to resolve is still written, as failed, to the
    // log and the history (as `records notify` does); the record page shows it there.
    state
        .store(move |s| s.notify_manual(&rules, id, &form.rule, &actor))
        .await?;
    Ok(back_to(id))
}
