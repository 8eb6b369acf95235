//! The transactional outbox: what the rules decide is written as rows of `notifications`
//! in the same transaction as the change that triggered them (a record stored, triaged, its
//! status changed), so a notification exists exactly when its change does. Each row gets a
//! history event on its record. A dispatcher sends `queued` rows later and marks them
//! `sent` or `failed`; a row whose recipients all failed to resolve (`directory:gm` with
//! nobody enabled) is written `failed` at once with the reason: visible, never skipped.
//!
//! Also the log (seed 004's Email_Sent / Sms_Sent, `notifications list`), `retry`, and the
//! manual rules (`records notify ID --rule NAME`).

use crate::store::AnyConnection;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use super::people;
use super::rules::{Channel, NotifyRules, Outgoing, RecordFields, Trigger};
use crate::domain::EventKind;
use crate::store::schema::{notifications, records};
use crate::store::{
    NewNotification, Store, StoreError, add_event, as_utc, insert_notification, now, on_backend,
    stored_recipients,
};

pub use crate::store::{FAILED, QUEUED, SENT};

/// Why a notification command was refused.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no [[notify]] rule `{0}` in the config")]
    NoRule(String),
    #[error("rule `{rule}` is on = \"{on}\", not \"manual\": it fires by itself")]
    NotManual { rule: String, on: &'static str },
    #[error("rule `{rule}` does not apply to record {record}: {why}")]
    DoesNotApply {
        rule: String,
        record: i64,
        why: String,
    },
    #[error("no notification {0}")]
    NoNotification(i64),
    #[error("notification {id} is {status}; only a failed one is retried")]
    NotFailed { id: i64, status: String },
    #[error(
        "notification {0} has no recipient to retry (none resolved when it was written); fix the directory and send the rule again"
    )]
    NoRecipients(i64),
}

impl From<diesel::result::Error> for NotifyError {
    fn from(e: diesel::result::Error) -> Self {
        NotifyError::Store(e.into())
    }
}

/// The fields rules see of record `id`, read inside the caller's transaction.
fn record_fields(
    conn: &mut AnyConnection,
    rules: &NotifyRules,
    id: i64,
) -> QueryResult<RecordFields> {
    type Row = (
        (String, String, String, String),
        (Option<String>, Option<String>, Option<String>),
        (Option<String>, Option<String>, Option<String>),
        (Option<String>, Option<String>, Option<String>),
    );
    let (
        (queue, collector, kind, status),
        (title, description, phone),
        (email, contact, inn),
        (number, service, format),
    ): Row = on_backend!(conn, c => records::table
        .find(id)
        .select((
            (
                records::queue,
                records::collector,
                records::kind,
                records::status,
            ),
            (records::title, records::description, records::phone),
            (records::email, records::contact_name, records::inn),
            (records::number, records::service, records::format),
        ))
        // NOTE: not `first`: see `counterparty_by_inn` in store/insert.rs.
        .get_result(c))?;
    let mut fields = RecordFields::default();
    if let Some(service) = service {
        let value: serde_json::Value = serde_json::from_str(&service)
            .map_err(|e| diesel::result::Error::DeserializationError(e.into()))?;
        for (key, value) in value.as_object().into_iter().flatten() {
            // NOTE: the stored JSON spells fields the Rust way (`sub_type`); rules use the
            // config's kebab-case names.
            fields.set(&key.replace('_', "-"), value.as_str());
        }
    }
    // The format that mapped the record; records stored before formats were recorded: their
    // collector's.
    let format = format.or_else(|| rules.formats.get(&collector).cloned());
    fields
        .set("id", Some(&id.to_string()))
        .set("queue", Some(&queue))
        .set("collector", Some(&collector))
        .set("kind", Some(&kind))
        .set("status", Some(&status))
        .set("format", format.as_deref())
        .set("title", title.as_deref())
        .set("description", description.as_deref())
        .set("phone", phone.as_deref())
        .set("email", email.as_deref())
        .set("contact-name", contact.as_deref())
        .set("inn", inn.as_deref())
        .set("number", number.as_deref());
    Ok(fields)
}

/// Writes one notification with its history event; returns its id.
fn write(
    conn: &mut AnyConnection,
    record_id: i64,
    out: &Outgoing,
    actor: &str,
) -> QueryResult<i64> {
    let failure = out.failure();
    let new = NewNotification {
        record_id,
        rule: &out.rule,
        channel: out.channel.as_str(),
        recipients: &out.to,
        subject: &out.subject,
        body: &out.body,
    };
    let id = insert_notification(conn, &new, failure.as_deref())?;
    let (event, detail) = match failure {
        Some(reason) => (
            EventKind::NotificationFailed,
            format!("{}: {reason} (notification {id})", out.rule),
        ),
        None if out.problems.is_empty() => (
            EventKind::NotificationQueued,
            format!("{} -> {} (notification {id})", out.rule, out.to.join(", ")),
        ),
        None => (
            EventKind::NotificationQueued,
            format!(
                "{} -> {} (notification {id}; not sent to: {})",
                out.rule,
                out.to.join(", "),
                out.problems.join("; ")
            ),
        ),
    };
    add_event(conn, record_id, actor, event, Some(&detail))?;
    Ok(id)
}

/// Renders one rule for one record and writes it.
fn queue_rule(
    conn: &mut AnyConnection,
    rules: &NotifyRules,
    rule: &super::rules::Rule,
    fields: &RecordFields,
    record_id: i64,
    actor: &str,
) -> QueryResult<Outgoing> {
    let out = rules.prepare(rule, fields, &mut |role: &str, branch: &str| {
        people::enabled(conn, role, branch)
    })?;
    write(conn, record_id, &out, actor)?;
    Ok(out)
}

/// Queues what the rules say for `trigger` on record `record_id`, inside the caller's
/// transaction (the one that made the change). Returns how many notifications were written.
pub(crate) fn queue_for(
    conn: &mut AnyConnection,
    rules: &NotifyRules,
    record_id: i64,
    trigger: Trigger,
    actor: &str,
) -> QueryResult<usize> {
    queue_firing(conn, rules, record_id, trigger, actor, false)
}

/// [`queue_for`], and with `only_new` leaving out rules that have written a notification for
/// this record already: a corrected triage tells whom the new type concerns, and never tells
/// the customer twice.
pub(crate) fn queue_firing(
    conn: &mut AnyConnection,
    rules: &NotifyRules,
    record_id: i64,
    trigger: Trigger,
    actor: &str,
    only_new: bool,
) -> QueryResult<usize> {
    if rules.is_empty() {
        return Ok(0);
    }
    let fields = record_fields(conn, rules, record_id)?;
    let done: Vec<String> = if only_new {
        notifications::table
            .filter(notifications::record_id.eq(record_id))
            .select(notifications::rule)
            .load(conn)?
    } else {
        Vec::new()
    };
    let firing: Vec<_> = rules
        .firing(trigger, &fields)
        .filter(|r| !done.contains(&r.name))
        .collect();
    for rule in &firing {
        queue_rule(conn, rules, rule, &fields, record_id, actor)?;
    }
    Ok(firing.len())
}

/// A notification as the log shows it (`notifications list --json`).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Notification {
    pub id: i64,
    pub record_id: i64,
    pub rule: String,
    pub channel: String,
    /// The addresses (for SMS, the gateway addresses).
    pub to: Vec<String>,
    pub subject: String,
    pub body: String,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub server_reply: Option<String>,
    #[serde(serialize_with = "as_utc")]
    pub next_attempt_at: NaiveDateTime,
    #[serde(serialize_with = "as_utc")]
    pub created_at: NaiveDateTime,
    #[serde(serialize_with = "optional_utc")]
    pub sent_at: Option<NaiveDateTime>,
}

fn optional_utc<S: serde::Serializer>(at: &Option<NaiveDateTime>, s: S) -> Result<S::Ok, S::Error> {
    at.map(|at| at.and_utc()).serialize(s)
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = notifications)]
struct NotificationRow {
    id: i64,
    record_id: i64,
    rule: String,
    channel: String,
    recipients: String,
    subject: String,
    body: String,
    status: String,
    attempts: i32,
    last_error: Option<String>,
    server_reply: Option<String>,
    next_attempt_at: NaiveDateTime,
    created_at: NaiveDateTime,
    sent_at: Option<NaiveDateTime>,
}

impl TryFrom<NotificationRow> for Notification {
    type Error = StoreError;

    fn try_from(row: NotificationRow) -> Result<Self, StoreError> {
        let to = stored_recipients(row.id, &row.recipients)?;
        Ok(Notification {
            id: row.id,
            record_id: row.record_id,
            rule: row.rule,
            channel: row.channel,
            to,
            subject: row.subject,
            body: row.body,
            status: row.status,
            attempts: row.attempts,
            last_error: row.last_error,
            server_reply: row.server_reply,
            next_attempt_at: row.next_attempt_at,
            created_at: row.created_at,
            sent_at: row.sent_at,
        })
    }
}

/// Which notifications the log shows.
#[derive(Debug, Clone, Default)]
pub struct NotificationFilter {
    /// Created at or after this UTC time.
    pub since: Option<NaiveDateTime>,
    /// Created before this UTC time.
    pub until: Option<NaiveDateTime>,
    pub channel: Option<Channel>,
    pub record_id: Option<i64>,
    /// `queued`, `sent` or `failed`.
    pub status: Option<String>,
}

impl Store {
    /// The notification log, oldest first.
    pub fn notifications(
        &mut self,
        filter: &NotificationFilter,
    ) -> Result<Vec<Notification>, StoreError> {
        let mut query = notifications::table
            .select(NotificationRow::as_select())
            .order(notifications::id.asc())
            .into_boxed();
        if let Some(since) = filter.since {
            query = query.filter(notifications::created_at.ge(since));
        }
        if let Some(until) = filter.until {
            query = query.filter(notifications::created_at.lt(until));
        }
        if let Some(channel) = filter.channel {
            query = query.filter(notifications::channel.eq(channel.as_str()));
        }
        if let Some(id) = filter.record_id {
            query = query.filter(notifications::record_id.eq(id));
        }
        if let Some(status) = &filter.status {
            query = query.filter(notifications::status.eq(status));
        }
        query
            .load(self.connection())?
            .into_iter()
            .map(Notification::try_from)
            .collect()
    }

    /// Re-queues a failed notification (status queued, attempts 0, due now), with a history
    /// event on its record.
    pub fn retry_notification(&mut self, id: i64, actor: &str) -> Result<(), NotifyError> {
        self.connection().write_transaction(|conn| {
            let (record_id, rule, status, recipients): (i64, String, String, String) =
                notifications::table
                    .find(id)
                    .select((
                        notifications::record_id,
                        notifications::rule,
                        notifications::status,
                        notifications::recipients,
                    ))
                    .first(conn)
                    .optional()?
                    .ok_or(NotifyError::NoNotification(id))?;
            if status != FAILED {
                return Err(NotifyError::NotFailed { id, status });
            }
            if stored_recipients(id, &recipients)?.is_empty() {
                return Err(NotifyError::NoRecipients(id));
            }
            diesel::update(notifications::table.find(id))
                .set((
                    notifications::status.eq(QUEUED),
                    notifications::attempts.eq(0),
                    notifications::next_attempt_at.eq(now()),
                ))
                .execute(conn)?;
            add_event(
                conn,
                record_id,
                actor,
                EventKind::NotificationRetried,
                Some(&format!("{rule} (notification {id})")),
            )?;
            Ok(())
        })
    }

    /// Sends a `manual` rule for a record now (the seed's 新梯提醒邮件 button): the rule must
    /// be manual and its `when` must match the record. Returns what was written; a
    /// notification nobody could be found for is written `failed` (and returned) too.
    pub fn notify_manual(
        &mut self,
        rules: &NotifyRules,
        record_id: i64,
        rule_name: &str,
        actor: &str,
    ) -> Result<Outgoing, NotifyError> {
        let rule = rules
            .rule(rule_name)
            .ok_or_else(|| NotifyError::NoRule(rule_name.to_string()))?;
        if rule.on != Trigger::Manual {
            return Err(NotifyError::NotManual {
                rule: rule.name.clone(),
                on: rule.on.as_str(),
            });
        }
        self.connection().write_transaction(|conn| {
            let exists: i64 = records::table
                .filter(records::id.eq(record_id))
                .count()
                .get_result(conn)?;
            if exists == 0 {
                return Err(StoreError::NoRecord(record_id).into());
            }
            let fields = record_fields(conn, rules, record_id)?;
            if let Some(why) = rule.mismatch(&fields) {
                return Err(NotifyError::DoesNotApply {
                    rule: rule.name.clone(),
                    record: record_id,
                    why,
                });
            }
            Ok(queue_rule(conn, rules, rule, &fields, record_id, actor)?)
        })
    }
}
