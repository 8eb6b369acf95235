//! `GET /healthz`: whether this mailintake works, for a load balancer or a watchdog script.
//!
//! Healthy (200) while the store answers a query and no configured collector has been
//! failing longer than its `stale-after` (default: three periods of its schedule); else 503
//! with the reason. A failing collector within its `stale-after` is reported but healthy:
//! a server that is down for a minute is what the backoff is for, and a load balancer that
//! took the review page away for it would only add an outage.
//!
//! It reads the collectors' state from the database, as `collectors status` does, so
//! `mailintake serve` answers for a daemon running in another process too. No token is
//! needed; the answer names collectors and times only, never an error text (which can
//! carry a host or user name) — those are on `/collectors` and in the log.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::AppState;
use crate::config::{Collector, Config, display_duration};
use crate::daemon::schedule_of;
use crate::store::CollectorState;

/// How many schedule periods a collector may fail before it is stale, unless it says.
const DEFAULT_STALE_PERIODS: u32 = 3;

/// The answer's body.
#[derive(Debug, Serialize)]
pub(super) struct Health {
    /// `ok` or `unavailable`.
    status: &'static str,
    /// Why it is unavailable; absent when healthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    collectors: Vec<CollectorHealth>,
}

/// One configured collector's health.
#[derive(Debug, Serialize)]
struct CollectorHealth {
    name: String,
    /// `ok` (its last pass succeeded), `pending` (no pass recorded yet), `failing` (within
    /// its `stale-after`) or `stale` (failing longer).
    status: &'static str,
    last_success_at: Option<DateTime<Utc>>,
    failing_since: Option<DateTime<Utc>>,
    stale_after_secs: u64,
}

/// How long `collector` may fail from `since` before it is stale: its `stale-after`, else
/// three times the gap between the two schedule ticks after `since`.
fn stale_after(collector: &Collector, since: DateTime<Utc>) -> Duration {
    collector.stale_after.unwrap_or_else(|| {
        let schedule = schedule_of(collector);
        let mut ticks = schedule.after(&since);
        let period = match (ticks.next(), ticks.next()) {
            (Some(first), Some(second)) => (second - first).to_std().unwrap_or_default(),
            // NOTE: a schedule with no two ticks left never runs the collector again; its
            // failures are not news, so they never make it stale.
            _ => Duration::MAX / (2 * DEFAULT_STALE_PERIODS),
        };
        period * DEFAULT_STALE_PERIODS
    })
}

/// The health of `config`'s collectors, given their recorded `states`, at `now`.
pub(super) fn assess(config: &Config, states: &[CollectorState], now: DateTime<Utc>) -> Health {
    let mut reasons = Vec::new();
    let collectors = config
        .collectors
        .iter()
        .map(|collector| {
            let state = states.iter().find(|s| s.collector == collector.name);
            let failing_since = state.and_then(|s| s.failing_since).map(|t| t.and_utc());
            let limit = stale_after(collector, failing_since.unwrap_or(now));
            let status = match (state, failing_since) {
                (Some(_), Some(since)) => {
                    let failing = (now - since).to_std().unwrap_or_default();
                    if failing > limit {
                        reasons.push(format!(
                            "collector `{}` has been failing for {}, longer than its stale-after ({})",
                            collector.name,
                            display_duration(Duration::from_secs(failing.as_secs())),
                            display_duration(limit),
                        ));
                        "stale"
                    } else {
                        "failing"
                    }
                }
                (Some(s), None) if s.last_run_at.is_some() => "ok",
                _ => "pending",
            };
            CollectorHealth {
                name: collector.name.clone(),
                status,
                last_success_at: state.and_then(|s| s.last_success_at).map(|t| t.and_utc()),
                failing_since,
                stale_after_secs: limit.as_secs(),
            }
        })
        .collect();
    Health {
        status: if reasons.is_empty() {
            "ok"
        } else {
            "unavailable"
        },
        reason: (!reasons.is_empty()).then(|| reasons.join("; ")),
        collectors,
    }
}

/// `GET /healthz`.
pub(super) async fn healthz(State(state): State<AppState>) -> Response {
    match state.store(|s| s.collector_states()).await {
        Ok(states) => {
            let health = assess(state.config(), &states, Utc::now());
            let code = match health.reason {
                None => StatusCode::OK,
                Some(_) => StatusCode::SERVICE_UNAVAILABLE,
            };
            (code, Json(health)).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "health check: the store does not answer");
            let health = Health {
                status: "unavailable",
                reason: Some("the store does not answer".into()),
                collectors: Vec::new(),
            };
            (StatusCode::SERVICE_UNAVAILABLE, Json(health)).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use chrono::TimeZone;

    use super::*;

    fn config(extra: &str) -> Config {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[storage]\nurl = \"sqlite://db\"\n[[queue]]\nname = \"q\"\n\
             [[collector]]\nname = \"every-5-min\"\nqueue = \"q\"\n[collector.maildir]\npath = \"m\"\n\
             [[collector]]\nname = \"own\"\nqueue = \"q\"\n{extra}\n[collector.maildir]\npath = \"m\"\n"
        );
        let path = dir.path().join("collectors.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(Path::new(&path)).unwrap()
    }

    fn state(name: &str, failing_since: Option<DateTime<Utc>>) -> CollectorState {
        let at = Utc
            .with_ymd_and_hms(2026, 6, 1, 11, 0, 0)
            .unwrap()
            .naive_utc();
        CollectorState {
            collector: name.into(),
            uidvalidity: None,
            last_uid: None,
            last_run_at: Some(at),
            last_success_at: Some(at),
            last_error: failing_since.map(|_| "down".into()),
            last_report: None,
            next_run_at: None,
            updated_at: at,
            mode: None,
            fallbacks: None,
            failed_report: None,
            failing_since: failing_since.map(|t| t.naive_utc()),
        }
    }

    fn noon() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
    }

    fn statuses(health: &Health) -> Vec<(&str, &str, u64)> {
        health
            .collectors
            .iter()
            .map(|c| (c.name.as_str(), c.status, c.stale_after_secs))
            .collect()
    }

    #[test]
    fn the_default_is_three_schedule_periods_and_failing_within_it_is_healthy() {
        let config = config("schedule = \"0 0 * * * *\"");
        let since = noon() - chrono::Duration::minutes(14);
        let health = assess(&config, &[state("every-5-min", Some(since))], noon());
        assert_eq!(
            statuses(&health),
            [
                ("every-5-min", "failing", 900),
                ("own", "pending", 3 * 3600)
            ]
        );
        assert_eq!(health.status, "ok");
        assert_eq!(health.reason, None);
    }

    #[test]
    fn failing_longer_than_stale_after_is_unavailable_with_the_reason() {
        let config = config("stale-after = \"90s\"");
        let health = assess(
            &config,
            &[
                state("every-5-min", None),
                state("own", Some(noon() - chrono::Duration::seconds(100))),
            ],
            noon(),
        );
        assert_eq!(
            statuses(&health),
            [("every-5-min", "ok", 900), ("own", "stale", 90)]
        );
        assert_eq!(health.status, "unavailable");
        assert_eq!(
            health.reason.as_deref(),
            Some("collector `own` has been failing for 100s, longer than its stale-after (90s)")
        );
    }

    #[test]
    fn a_collector_no_longer_configured_does_not_count() {
        let config = config("");
        let long_ago = noon() - chrono::Duration::days(3);
        let health = assess(&config, &[state("removed", Some(long_ago))], noon());
        assert_eq!(health.status, "ok");
        assert_eq!(health.collectors.len(), 2);
    }
}
