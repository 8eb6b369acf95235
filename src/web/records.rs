//! The queue page (`/queues/{name}`: seed 000's 服务指派 list with its filters, paged on the
//! server) and the record page (`/records/{id}`: every field, lines, tech cards, payload,
//! history, and the forms of `actions.rs`). Both read through the same store functions as `mailintake records`.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{Html, IntoResponse, Response};
use chrono::NaiveDateTime;
use serde::Deserialize;

use super::actions::TRIAGE_FIELDS;
use super::auth::CurrentUser;
use super::{AppState, Lang, WebError, encode_component};
use crate::domain::{EventKind, RequestType, phone_digits, status};
use crate::mapping::RecordKind;
use crate::notify::outbox::{Notification, NotificationFilter};
use crate::notify::rules::Trigger;
use crate::store::{RecordEvent, RecordFilter, StoreError, StoredRecord, User};

/// Records per page.
const PAGE_SIZE: i64 = 50;

/// The queue page's filters as the form sends them (empty fields mean "any").
#[derive(Debug, Default, Deserialize)]
pub(super) struct QueueQuery {
    since: Option<String>,
    until: Option<String>,
    /// A stored status, `all`, or (absent) `new`: the seed's default, unprocessed.
    status: Option<String>,
    phone: Option<String>,
    kind: Option<String>,
    #[serde(rename = "type")]
    request_type: Option<String>,
    page: Option<i64>,
}

/// A filter field's value, if one was given (a form sends empty fields too).
pub(super) fn given(field: &Option<String>) -> Option<&str> {
    field.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// A date filter (local `YYYY-MM-DD[THH:MM[:SS]]`) as the stored UTC time; 400 if it does
/// not parse.
pub(super) fn time_filter(field: &Option<String>) -> Result<Option<NaiveDateTime>, WebError> {
    given(field)
        .map(|t| crate::cli::parse_since(t).map_err(|e| WebError::BadRequest(e.to_string())))
        .transpose()
}

/// A record kind filter (`lead`, `order`, `service-request`); 400 if it is none of them.
pub(super) fn kind_filter(field: &Option<String>) -> Result<Option<RecordKind>, WebError> {
    given(field)
        .map(|k| RecordKind::parse(k).ok_or_else(|| WebError::BadRequest(format!("kind: `{k}`"))))
        .transpose()
}

/// A phone filter as the digits the stored numbers end with; 400 with fewer than 5.
pub(super) fn phone_filter(field: &Option<String>) -> Result<Option<String>, WebError> {
    given(field)
        .map(|p| {
            phone_digits(p)
                .ok_or_else(|| WebError::BadRequest("phone: give at least 5 digits".to_string()))
        })
        .transpose()
}

impl QueueQuery {
    /// The store filter these fields ask for; a value that does not parse is a 400.
    fn filter(&self, queue: &str) -> Result<RecordFilter, WebError> {
        let bad = |what: &str| WebError::BadRequest(what.to_string());
        let status = match given(&self.status) {
            None => Some(status::NEW.to_string()),
            Some("all") => None,
            Some(other) => Some(other.to_string()),
        };
        let page = self.page.unwrap_or(1).max(1);
        Ok(RecordFilter {
            queue: Some(queue.to_string()),
            kind: kind_filter(&self.kind)?,
            status,
            phone_digits: phone_filter(&self.phone)?,
            since: time_filter(&self.since)?,
            until: time_filter(&self.until)?,
            request_type: given(&self.request_type)
                .map(|t| t.parse::<RequestType>().map_err(|_| bad("type")))
                .transpose()?,
            // One more than a page: whether there is a next one.
            limit: Some(PAGE_SIZE + 1),
            offset: Some((page - 1) * PAGE_SIZE),
            updated_since: None,
        })
    }

    /// This query string on another page.
    fn page_link(&self, page: i64) -> String {
        let mut pairs: Vec<(&str, &str)> = [
            ("since", &self.since),
            ("until", &self.until),
            ("status", &self.status),
            ("phone", &self.phone),
            ("kind", &self.kind),
            ("type", &self.request_type),
        ]
        .into_iter()
        .filter_map(|(k, v)| given(v).map(|v| (k, v)))
        .collect();
        let page = page.to_string();
        pairs.push(("page", &page));
        let query: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", encode_component(v)))
            .collect();
        format!("?{}", query.join("&"))
    }
}

/// One row of the queue table: the seed's columns, and for orders title, amount and lines.
struct Row {
    id: i64,
    created: String,
    status: String,
    kind: &'static str,
    number: String,
    name: String,
    gender: String,
    phone: String,
    region: String,
    address: String,
    description: String,
    title: String,
    amount: String,
    lines: usize,
}

fn text(value: Option<&str>) -> String {
    value.unwrap_or("").to_string()
}

impl Row {
    fn of(r: &StoredRecord) -> Row {
        let service = r.record.service.as_ref();
        let of_service = |f: fn(&crate::mapping::declarative::ServiceRequest) -> Option<&str>| {
            text(service.and_then(f))
        };
        let amount: f64 = r.record.lines.iter().filter_map(|l| l.amount).sum();
        Row {
            id: r.id,
            created: r.created_at.format("%Y-%m-%d %H:%M").to_string(),
            status: r.status.clone(),
            kind: r.record.kind.as_str(),
            number: service
                .and_then(|s| s.number.clone())
                .or_else(|| r.record.source.order_ref.clone())
                .unwrap_or_default(),
            name: service
                .and_then(|s| s.contact.clone())
                .or_else(|| r.record.contact_name.clone())
                .unwrap_or_default(),
            gender: of_service(|s| s.gender.as_deref()),
            phone: r
                .record
                .phone
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            region: of_service(|s| s.region.as_deref()),
            address: of_service(|s| s.address.as_deref()),
            description: text(r.record.description.as_deref()),
            title: text(r.record.title.as_deref()),
            amount: if r.record.lines.is_empty() {
                String::new()
            } else {
                format!("{amount:.2}")
            },
            lines: r.record.lines.len(),
        }
    }
}

#[derive(Template)]
#[template(path = "queue.html")]
struct QueuePage<'a> {
    lang: Lang,
    user: Option<&'a User>,
    csrf: &'a str,
    queue: &'a str,
    query: &'a QueueQuery,
    status: String,
    rows: Vec<Row>,
    page: i64,
    previous: Option<String>,
    next: Option<String>,
}

impl QueuePage<'_> {
    fn value<'b>(&self, field: &'b Option<String>) -> &'b str {
        field.as_deref().unwrap_or("")
    }
}

/// Refuses a queue the user is not a member of (403), or one that does not exist (404).
fn check_queue(state: &AppState, current: &CurrentUser, queue: &str) -> Result<(), WebError> {
    if !state.config().queues.iter().any(|q| q.name == queue) {
        return Err(WebError::NotFound);
    }
    let user = &current.user;
    if !user.role.sees_queue(&user.queues, queue) {
        return Err(WebError::Forbidden);
    }
    Ok(())
}

/// `GET /queues/{name}`.
pub(super) async fn queue_page(
    State(state): State<AppState>,
    lang: Lang,
    current: CurrentUser,
    Path(queue): Path<String>,
    Query(query): Query<QueueQuery>,
) -> Result<Html<String>, WebError> {
    check_queue(&state, &current, &queue)?;
    let filter = query.filter(&queue)?;
    let mut records = state.store(move |s| s.list_records(&filter)).await?;
    let has_next = records.len() as i64 > PAGE_SIZE;
    records.truncate(PAGE_SIZE as usize);
    let page = query.page.unwrap_or(1).max(1);
    let page_view = QueuePage {
        lang,
        user: Some(&current.user),
        csrf: &current.csrf,
        queue: &queue,
        status: given(&query.status).unwrap_or(status::NEW).to_string(),
        rows: records.iter().map(Row::of).collect(),
        page,
        previous: (page > 1).then(|| query.page_link(page - 1)),
        next: has_next.then(|| query.page_link(page + 1)),
        query: &query,
    };
    Ok(Html(page_view.render()?))
}

#[derive(Template)]
#[template(path = "record.html")]
struct RecordPage<'a> {
    lang: Lang,
    user: Option<&'a User>,
    csrf: &'a str,
    record: &'a StoredRecord,
    fields: Vec<(&'static str, String)>,
    history: &'a [RecordEvent],
    /// For a request awaiting triage, or triaged before (a correction): the triage form.
    triage: Option<TriageForm>,
    /// The manual `[[notify]]` rules a user may send for it.
    manual_rules: Vec<&'a str>,
    /// The notifications about it, queued, sent or failed.
    notifications: Vec<Notification>,
    /// Whether it kept the message it was made from (for the `.eml` link).
    has_source: bool,
}

/// The triage form of a request.
struct TriageForm {
    /// Label key of its heading: a first triage, or a correction.
    heading: &'static str,
    /// The fields it completes, as (form name, label key, current value).
    fields: Vec<(&'static str, String, String)>,
    /// The types it may be given, as (value, label key): a correction leaves out the
    /// current one.
    outcomes: Vec<(&'static str, &'static str)>,
}

/// The triage form, prefilled from the request, if it awaits triage or was triaged before
/// (a wrong triage is corrected by triaging again).
fn triage_form(r: &StoredRecord, history: &[RecordEvent]) -> Option<TriageForm> {
    let service = r.record.service.as_ref()?;
    let pending = service.request_type == RequestType::Pending;
    if !pending && !history.iter().any(|e| e.event == EventKind::Triaged) {
        return None;
    }
    let current = |name: &str| match name {
        "branch" => service.branch.clone(),
        "site" => service.site.clone(),
        _ => service.elevator_no.clone(),
    };
    Some(TriageForm {
        heading: if pending {
            "triage-heading"
        } else {
            "retriage-heading"
        },
        fields: TRIAGE_FIELDS
            .into_iter()
            .map(|name| {
                (
                    name,
                    format!("field-{name}"),
                    current(name).unwrap_or_default(),
                )
            })
            .collect(),
        outcomes: [
            ("fault", "triage-fault"),
            ("consult", "triage-consult"),
            ("complaint", "triage-complaint"),
        ]
        .into_iter()
        .filter(|(value, _)| *value != service.request_type.as_str())
        .collect(),
    })
}

/// The record's fields as (catalogue key, value), empty ones left out.
fn fields(r: &StoredRecord) -> Vec<(&'static str, String)> {
    let rec = &r.record;
    let mut fields = vec![
        ("field-queue", r.queue.clone()),
        ("field-collector", r.collector.clone()),
        ("field-kind", rec.kind.as_str().to_string()),
        ("field-status", r.status.clone()),
        ("field-created", r.created_at.to_rfc3339()),
        ("field-title", text(rec.title.as_deref())),
        ("field-description", text(rec.description.as_deref())),
        (
            "field-phone",
            rec.phone
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_default(),
        ),
        ("field-email", text(rec.email.as_deref())),
        ("field-contact-name", text(rec.contact_name.as_deref())),
        (
            "field-inn",
            rec.inn.as_ref().map(|i| i.to_string()).unwrap_or_default(),
        ),
        ("field-order-ref", text(rec.source.order_ref.as_deref())),
        ("field-subject", text(rec.source.subject.as_deref())),
        ("field-message-id", text(rec.source.message_id.as_deref())),
        ("field-result", text(r.result.as_deref())),
    ];
    if let Some(s) = &rec.service {
        fields.extend([
            ("field-number", text(s.number.as_deref())),
            ("field-type", s.request_type.as_str().to_string()),
            ("field-sub-type", text(s.sub_type.as_deref())),
            ("field-source", text(s.source.as_deref())),
            ("field-owner", text(s.owner.as_deref())),
            ("field-contact", text(s.contact.as_deref())),
            ("field-contact-phone", text(s.contact_phone.as_deref())),
            ("field-gender", text(s.gender.as_deref())),
            ("field-region", text(s.region.as_deref())),
            ("field-branch", text(s.branch.as_deref())),
            ("field-site", text(s.site.as_deref())),
            ("field-building", text(s.building.as_deref())),
            ("field-address", text(s.address.as_deref())),
            ("field-content", text(s.content.as_deref())),
            ("field-identity", text(s.identity.as_deref())),
            ("field-elevator-no", text(s.elevator_no.as_deref())),
            ("field-customer-id", text(s.customer_id.as_deref())),
        ]);
    }
    fields.retain(|(_, value)| !value.is_empty());
    fields
}

/// The record if the user sees its queue; 404 otherwise, as for a record that does not
/// exist (so its existence is not revealed).
fn visible(current: &CurrentUser, record: Option<StoredRecord>) -> Result<StoredRecord, WebError> {
    let user = &current.user;
    record
        .filter(|r| user.role.sees_queue(&user.queues, &r.queue))
        .ok_or(WebError::NotFound)
}

/// `GET /records/{id}/eml`: the message the record was made from, byte for byte, as a
/// download (never shown inline: it is the sender's content); 404 as for the record page,
/// and for a record created before sources were kept.
pub(super) async fn source(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let record = state.store(move |s| s.record(id)).await?;
    visible(&current, record)?;
    let raw = state
        .store(move |s| s.record_source(id))
        .await?
        .ok_or(WebError::NotFound)?;
    Ok((
        [
            (CONTENT_TYPE, "message/rfc822".to_string()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"record-{id}.eml\""),
            ),
        ],
        raw,
    )
        .into_response())
}

/// `GET /records/{id}`: 404 for a record that does not exist or is in a queue the user
/// does not see (so its existence is not revealed).
pub(super) async fn record_page(
    State(state): State<AppState>,
    lang: Lang,
    current: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Html<String>, WebError> {
    let (record, history, notifications, has_source) = state
        .store(move |s| {
            let log = NotificationFilter {
                record_id: Some(id),
                ..NotificationFilter::default()
            };
            Ok::<_, StoreError>((
                s.record(id)?,
                s.record_events(id)?,
                s.notifications(&log)?,
                s.has_record_source(id)?,
            ))
        })
        .await?;
    let record = visible(&current, record)?;
    let user = &current.user;
    let page = RecordPage {
        lang,
        user: Some(user),
        csrf: &current.csrf,
        fields: fields(&record),
        triage: triage_form(&record, &history),
        manual_rules: state
            .config()
            .notify
            .rules
            .iter()
            .filter(|r| r.on == Trigger::Manual)
            .map(|r| r.name.as_str())
            .collect(),
        record: &record,
        history: &history,
        notifications,
        has_source,
    };
    Ok(Html(page.render()?))
}
