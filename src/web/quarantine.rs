//! `/quarantine`: messages that could not be decoded, for admins (an entry has no queue
//! until it decodes). Each entry shows its reason and headers, offers the raw message as a
//! download, a retry with the config file as it is now (as `quarantine retry`), and a dismiss that
//! marks it set aside and keeps it.

use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::auth::{CsrfForm, CurrentUser};
use super::log::admin_only;
use super::{AppState, Lang, WebError};
use crate::config::Config;
use crate::ingest::{Retried, retry_quarantined};
use crate::store::{QuarantineEntry, User};

#[derive(Deserialize)]
pub(super) struct ListQuery {
    /// Any value: released and dismissed entries too.
    all: Option<String>,
}

#[derive(Template)]
#[template(path = "quarantine.html")]
struct ListPage<'a> {
    lang: Lang,
    user: Option<&'a User>,
    csrf: &'a str,
    all: bool,
    entries: Vec<QuarantineEntry>,
}

/// `GET /quarantine`: open entries (`?all=1`: every entry).
pub(super) async fn list(
    State(state): State<AppState>,
    lang: Lang,
    current: CurrentUser,
    Query(query): Query<ListQuery>,
) -> Result<Html<String>, WebError> {
    admin_only(&current)?;
    let all = query.all.is_some();
    let entries = state.store(move |s| s.quarantine_entries(all)).await?;
    let page = ListPage {
        lang,
        user: Some(&current.user),
        csrf: &current.csrf,
        all,
        entries,
    };
    Ok(Html(page.render()?))
}

#[derive(Template)]
#[template(path = "quarantine_entry.html")]
struct EntryPage<'a> {
    lang: Lang,
    user: Option<&'a User>,
    csrf: &'a str,
    entry: &'a QuarantineEntry,
    headers: String,
}

/// The header section of a raw message, as text (undecodable bytes replaced).
fn header_section(raw: &[u8]) -> String {
    let end = [&b"\r\n\r\n"[..], b"\n\n"]
        .iter()
        .filter_map(|blank| raw.windows(blank.len()).position(|w| w == *blank))
        .min()
        .unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

/// `GET /quarantine/{id}`.
pub(super) async fn entry(
    State(state): State<AppState>,
    lang: Lang,
    current: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Html<String>, WebError> {
    admin_only(&current)?;
    let entry = state.store(move |s| s.quarantine_entry(id)).await?;
    let page = EntryPage {
        lang,
        user: Some(&current.user),
        csrf: &current.csrf,
        headers: header_section(&entry.raw),
        entry: &entry,
    };
    Ok(Html(page.render()?))
}

/// `GET /quarantine/{id}/raw`: the message byte for byte, as a download (never shown inline:
/// it is the sender's content).
pub(super) async fn raw(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    admin_only(&current)?;
    let entry = state.store(move |s| s.quarantine_entry(id)).await?;
    Ok((
        [
            (CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"quarantine-{id}.eml\""),
            ),
        ],
        entry.raw,
    )
        .into_response())
}

/// `POST /quarantine/{id}/retry`: to the new record if it now decodes, else back to the
/// entry with its new reason.
pub(super) async fn retry(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, WebError> {
    admin_only(&current)?;
    current.check_csrf(form.csrf.as_deref())?;
    let actor = current.user.name.clone();
    // NOTE: the config file as it is now, not as the server read it at start: the point of a
    // retry is a config fixed since (as `quarantine retry`, which reads it on each run).
    let path = state.config().path.clone();
    let config = tokio::task::spawn_blocking(move || Config::load(&path))
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?
        .map_err(|e| WebError::Internal(format!("cannot retry: {e}")))?;
    let retried = state
        .store(move |s| retry_quarantined(&config, s, id, &actor))
        .await?;
    Ok(match retried {
        Retried::Accepted { record_id } => Redirect::to(&format!("/records/{record_id}")),
        Retried::Quarantined { .. } | Retried::Skipped { .. } => {
            Redirect::to(&format!("/quarantine/{id}"))
        }
    }
    .into_response())
}

/// `POST /quarantine/{id}/dismiss`: marks the entry dismissed; nothing is deleted.
pub(super) async fn dismiss(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, WebError> {
    admin_only(&current)?;
    current.check_csrf(form.csrf.as_deref())?;
    state.store(move |s| s.dismiss_quarantine(id)).await?;
    Ok(Redirect::to("/quarantine").into_response())
}

#[cfg(test)]
mod tests {
    use super::header_section;

    #[test]
    fn the_header_section_ends_at_the_first_blank_line() {
        assert_eq!(
            header_section(b"A: 1\r\nB: 2\r\n\r\nbody\n\nmore"),
            "A: 1\r\nB: 2"
        );
        assert_eq!(header_section(b"A: 1\n\nbody"), "A: 1");
        assert_eq!(header_section(b"A: 1"), "A: 1");
    }
}
