//! `/notifications`: the notification log (seed 004's Email_Sent / Sms_Sent) with its date
//! range, channel and status filters. The log spans every queue, so it is for admins.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Html;
use serde::Deserialize;

use super::auth::CurrentUser;
use super::{AppState, Lang, WebError};
use crate::domain::Role;
use crate::notify::outbox::{Notification, NotificationFilter};
use crate::notify::rules::Channel;
use crate::store::User;

/// The statuses a notification row can have, for the filter.
const STATUSES: [&str; 3] = ["queued", "sent", "failed"];

#[derive(Debug, Default, Deserialize)]
pub(super) struct LogQuery {
    since: Option<String>,
    until: Option<String>,
    channel: Option<String>,
    status: Option<String>,
}

#[derive(Template)]
#[template(path = "notifications.html")]
struct LogPage<'a> {
    lang: Lang,
    user: Option<&'a User>,
    csrf: &'a str,
    query: &'a LogQuery,
    statuses: [&'static str; 3],
    notifications: Vec<Notification>,
}

impl LogPage<'_> {
    fn value<'b>(&self, field: &'b Option<String>) -> &'b str {
        field.as_deref().unwrap_or("")
    }
}

/// Refuses anyone but an admin.
pub(super) fn admin_only(current: &CurrentUser) -> Result<(), WebError> {
    match current.user.role {
        Role::Admin => Ok(()),
        Role::Manager => Err(WebError::Forbidden),
    }
}

/// The log's filters (local date range, channel, status) as the store takes them; the
/// page and the JSON API read them alike. A value that does not parse is a 400.
pub(super) fn notification_filter(
    since: &Option<String>,
    until: &Option<String>,
    channel: &Option<String>,
    status: &Option<String>,
) -> Result<NotificationFilter, WebError> {
    Ok(NotificationFilter {
        since: super::records::time_filter(since)?,
        until: super::records::time_filter(until)?,
        channel: match super::records::given(channel) {
            None => None,
            Some("email") => Some(Channel::Email),
            Some("sms") => Some(Channel::Sms),
            Some(other) => return Err(WebError::BadRequest(format!("channel: `{other}`"))),
        },
        status: super::records::given(status)
            .map(|s| {
                STATUSES
                    .contains(&s)
                    .then(|| s.to_string())
                    .ok_or_else(|| WebError::BadRequest(format!("status: `{s}`")))
            })
            .transpose()?,
        record_id: None,
    })
}

/// `GET /notifications`.
pub(super) async fn notifications_page(
    State(state): State<AppState>,
    lang: Lang,
    current: CurrentUser,
    Query(query): Query<LogQuery>,
) -> Result<Html<String>, WebError> {
    admin_only(&current)?;
    let filter = notification_filter(&query.since, &query.until, &query.channel, &query.status)?;
    let notifications = state.store(move |s| s.notifications(&filter)).await?;
    let page = LogPage {
        lang,
        user: Some(&current.user),
        csrf: &current.csrf,
        query: &query,
        statuses: STATUSES,
        notifications,
    };
    Ok(Html(page.render()?))
}
