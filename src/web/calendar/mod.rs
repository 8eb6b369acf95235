//! `GET /calendars/{queue}.ics?token=T`: each queue as an iCalendar feed that managers
//! subscribe to from Thunderbird, Outlook, Apple or Google Calendar (the 1C original loaded
//! leads into users' calendars).
//!
//! Calendar clients cannot send an `Authorization` header, so the token rides in the query:
//! a `tokens add --calendar QUEUE` token reads that queue's feed only (read and write API
//! tokens read every feed). No token or an unknown one is 401, an unknown queue 404, a
//! token for another queue 403, with the API's JSON errors.
//!
//! One `VEVENT` per record of the queue:
//! - `UID`: the record's id and creation time, stable for the record's life;
//! - `DTSTART`: the record's date, floating (the same wall-clock time in every reader's
//!   zone): the form's own time as the website wrote it, else the message's `Date` in local
//!   time, as the record stores it; for records stored before they carried a date, the
//!   message's `Date` header, else when it was stored (both UTC); [`EVENT_LENGTH`] long;
//! - `SUMMARY`: kind, number (or the subject's reference) and contact;
//! - `DESCRIPTION`: phone, address, description and the record page's link (also `URL`);
//! - `SEQUENCE`/`LAST-MODIFIED`/`DTSTAMP`: from the record's history (its changes, not the
//!   notifications sent about it), so a client replaces the event when the record changes;
//! - `STATUS`: `CANCELLED` when rejected, `TENTATIVE` while new, else `CONFIRMED`.

mod ical;

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use self::ical::{Calendar, When};
use super::AppState;
use super::api::{ApiError, ApiSecret, Caller};
use crate::domain::{Need, Stage, StatusNames};
use crate::mapping::RecordKind;
use crate::store::{RecordFilter, Revision, StoreError, StoredRecord};

/// How long an event lasts in the calendar: a record has no end, but a zero-length event
/// is hard to see and to click in most clients.
const EVENT_LENGTH: &str = "PT30M";

/// `?token=`.
#[derive(Debug, Deserialize)]
pub(super) struct FeedQuery {
    token: Option<String>,
}

/// `GET /calendars/{queue}.ics`.
pub(super) async fn feed(
    State(state): State<AppState>,
    Path(file): Path<String>,
    Query(query): Query<FeedQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let secret = query
        .token
        .as_deref()
        .filter(|t| !t.trim().is_empty())
        .map(ApiSecret::presented)
        .ok_or(ApiError::Unauthorized)?;
    let caller = Caller::from_secret(&state, &secret).await?;
    let queue = file
        .strip_suffix(".ics")
        .and_then(|name| state.config().queues.iter().find(|q| q.name == name))
        .ok_or_else(|| ApiError::NotFound(format!("no calendar {file}")))?
        .clone();
    caller.require(Need::Calendar { queue: &queue.name })?;

    let name = queue.name.clone();
    let (records, revisions, message_dates) = state
        .store(move |store| {
            let records = store.list_records(&RecordFilter {
                queue: Some(name.clone()),
                ..RecordFilter::default()
            })?;
            let revisions = store.record_revisions(&name)?;
            let mut message_dates = HashMap::new();
            for record in records.iter().filter(|r| r.record.date.is_none()) {
                if let Some(at) = store
                    .record_source(record.id)?
                    .and_then(|raw| date_header(&raw))
                {
                    message_dates.insert(record.id, at);
                }
            }
            Ok::<_, StoreError>((records, revisions, message_dates))
        })
        .await?;

    let site = site(&state, &headers);
    let names = state.config().workflow.status_names();
    let mut calendar = Calendar::new("-//mailintake//queue feed//EN", &queue.title);
    for record in &records {
        let start = match (record.record.date, message_dates.get(&record.id)) {
            (Some(form), _) => When::Floating(form),
            (None, Some(message)) => When::Utc(*message),
            (None, None) => When::Utc(record.created_at),
        };
        let link = format!("{site}/records/{}", record.id);
        event(
            &mut calendar,
            record,
            revisions.get(&record.id),
            start,
            &link,
            &names,
        );
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/calendar; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        calendar.finish(),
    )
        .into_response())
}

/// The `Date` header of a kept message, as an instant.
fn date_header(raw: &[u8]) -> Option<DateTime<Utc>> {
    let message = mail_parser::MessageParser::new().parse_headers(raw)?;
    DateTime::from_timestamp(message.date()?.to_timestamp(), 0)
}

/// `scheme://host` of the record links: the host the client asked for (the feed is read
/// through whatever name or proxy it was subscribed by), `https` when the session cookie
/// is marked secure (the page is served over TLS then).
fn site(state: &AppState, headers: &HeaderMap) -> String {
    let scheme = if state.config().http.secure_cookies {
        "https"
    } else {
        "http"
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_graphic()))
        .map_or_else(|| state.config().http.listen.to_string(), str::to_string);
    format!("{scheme}://{host}")
}

/// Writes one record's `VEVENT`.
fn event(
    calendar: &mut Calendar,
    stored: &StoredRecord,
    revision: Option<&Revision>,
    start: When,
    link: &str,
    names: &StatusNames,
) {
    let record = &stored.record;
    let service = record.service.as_ref();
    let modified = revision.map_or(stored.updated_at, |r| r.last_at.and_utc());
    calendar.line("BEGIN:VEVENT");
    calendar.text(
        "UID",
        &format!(
            "mailintake-record-{}-{}",
            stored.id,
            stored.created_at.timestamp()
        ),
    );
    calendar.when("DTSTAMP", When::Utc(modified));
    calendar.when("LAST-MODIFIED", When::Utc(modified));
    calendar.when("CREATED", When::Utc(stored.created_at));
    calendar.line(&format!(
        "SEQUENCE:{}",
        revision.map_or(0, |r| (r.changes - 1).max(0))
    ));
    calendar.when("DTSTART", start);
    calendar.line(&format!("DURATION:{EVENT_LENGTH}"));

    let kind = match record.kind {
        RecordKind::Lead => "Lead",
        RecordKind::Order => "Order",
        RecordKind::ServiceRequest => "Service request",
    };
    let number = service
        .and_then(|s| s.number.as_deref())
        .or(record.source.order_ref.as_deref());
    let contact = record
        .contact_name
        .as_deref()
        .or(service.and_then(|s| s.contact.as_deref()));
    let summary: Vec<&str> = [Some(kind), number, contact]
        .into_iter()
        .flatten()
        .collect();
    calendar.text("SUMMARY", &summary.join(" · "));

    let phone = record
        .phone
        .as_ref()
        .map(|p| p.as_str())
        .or(service.and_then(|s| s.contact_phone.as_deref()));
    let address = service.and_then(|s| s.address.as_deref());
    let description = record
        .description
        .as_deref()
        .or(service.and_then(|s| s.content.as_deref()));
    let mut text = Vec::new();
    if let Some(phone) = phone {
        text.push(format!("Phone: {phone}"));
    }
    if let Some(address) = address {
        text.push(format!("Address: {address}"));
    }
    if let Some(description) = description {
        text.push(description.to_string());
    }
    text.push(link.to_string());
    calendar.text("DESCRIPTION", &text.join("\n"));
    calendar.line(&format!("URL:{link}"));
    let status = match names.stage(&stored.status) {
        Stage::Rejected => "CANCELLED",
        Stage::New => "TENTATIVE",
        _ => "CONFIRMED",
    };
    calendar.line(&format!("STATUS:{status}"));
    calendar.line("END:VEVENT");
}
