//! `GET /metrics`: the process's metrics in Prometheus text format (names and labels in
//! `src/metrics.rs`), and the middleware that counts every request by its route template.

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::metrics::{UNMATCHED_ROUTE, http_request, install, last_success, outbox_depth};
use crate::store::StoreError;

/// Prometheus's text exposition format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics`: first the gauges the database knows (each configured collector's last
/// success, the outbox depth) are set from it, then everything is rendered. A store that
/// does not answer leaves those gauges as they were; the rest is still served.
pub(super) async fn render(State(state): State<AppState>) -> Response {
    let read = state
        .store(|s| Ok::<_, StoreError>((s.collector_states()?, s.queued_notifications()?)))
        .await;
    match read {
        Ok((states, queued)) => {
            for collector in states {
                if state.config().collector(&collector.collector).is_some()
                    && let Some(at) = collector.last_success_at
                {
                    last_success(&collector.collector, at.and_utc());
                }
            }
            outbox_depth(queued);
        }
        Err(e) => tracing::warn!(error = %e, "metrics: cannot read the store's gauges"),
    }
    ([(CONTENT_TYPE, TEXT_FORMAT)], install().render()).into_response()
}

/// Counts each request under the route it matched (`/records/{id}`, never `/records/42`, so
/// the label set stays as small as the route table) and the status it got.
pub(super) async fn count(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_string());
    let response = next.run(request).await;
    http_request(
        route.as_deref().unwrap_or(UNMATCHED_ROUTE),
        response.status().as_u16(),
    );
    response
}
