//! `/collectors`: each collector's last run, last success, last error, counts and next run
//! (the rows of `collectors status`), for the queues the user sees; admins can start a pass
//! now, which runs here as `mailintake collect --collector NAME` would (the ledger keeps it
//! exactly once even beside the daemon's own pass).

use askama::Template;
use axum::extract::{Form, Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, SecondsFormat, Utc};

use super::auth::{CsrfForm, CurrentUser};
use super::log::admin_only;
use super::{AppState, Lang, WebError};
use crate::cli::{StatusRow, states_and_damage, status_rows};
use crate::domain::Role;
use crate::ingest::{Shutdown, collect, record_run};
use crate::store::{Store, User};

#[derive(Template)]
#[template(path = "collectors.html")]
struct CollectorsPage<'a> {
    lang: Lang,
    user: Option<&'a User>,
    csrf: &'a str,
    rows: Vec<StatusRow<'a>>,
    admin: bool,
}

impl CollectorsPage<'_> {
    fn time(&self, at: &Option<DateTime<Utc>>) -> String {
        at.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
            .unwrap_or_default()
    }

    fn count(&self, row: &StatusRow<'_>, key: &str) -> String {
        row.counts
            .as_ref()
            .map(|c| c[key].to_string())
            .unwrap_or_default()
    }
}

/// `GET /collectors`.
pub(super) async fn page(
    State(state): State<AppState>,
    lang: Lang,
    current: CurrentUser,
) -> Result<Html<String>, WebError> {
    let for_states = state.clone();
    let observed = tokio::task::spawn_blocking(move || {
        states_and_damage(for_states.config()).map_err(|e| WebError::Internal(format!("{e:#}")))
    })
    .await
    .map_err(|e| WebError::Internal(e.to_string()))??;
    let user = &current.user;
    let rows = status_rows(state.config(), &observed)
        .into_iter()
        .filter(|row| user.role.sees_queue(&user.queues, row.queue))
        .collect();
    let page = CollectorsPage {
        lang,
        user: Some(user),
        csrf: &current.csrf,
        rows,
        admin: user.role == Role::Admin,
    };
    Ok(Html(page.render()?))
}

/// A collector whose lease another process holds runs there, not here: `collect now` on a
/// page served by another daemon (or by `serve`) is refused rather than racing it.
fn refuse_if_held_elsewhere(store: &mut Store, collector: &str) -> Result<(), WebError> {
    if crate::daemon::leases_ignored() {
        return Ok(());
    }
    let me = crate::daemon::this_process();
    match store
        .running_leases()?
        .into_iter()
        .find(|lease| lease.collector == collector && lease.holder != me.id)
    {
        Some(lease) => Err(WebError::HeldElsewhere {
            collector: collector.to_string(),
            host: lease.host,
            pid: lease.pid,
        }),
        None => Ok(()),
    }
}

/// `POST /collectors/{name}/collect`: one pass of that collector now (admins).
pub(super) async fn collect_now(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(name): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, WebError> {
    admin_only(&current)?;
    current.check_csrf(form.csrf.as_deref())?;
    if state.config().collector(&name).is_none() {
        return Err(WebError::NotFound);
    }
    let runtime = tokio::runtime::Handle::current();
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let config = state.config();
        let collector = config.collector(&name).expect("checked above");
        // NOTE: a store of its own, as the CLI's `collect` has: the pages' shared connection
        // stays free while the pass runs.
        let mut store =
            crate::cli::open_store(config).map_err(|e| WebError::Internal(format!("{e:#}")))?;
        refuse_if_held_elsewhere(&mut store, &name)?;
        let result = runtime.block_on(collect(collector, &mut store, &Shutdown::new()));
        if let Err(failed) = &result {
            tracing::error!(collector = %name, error = %failed.error, "collector pass failed");
        }
        record_run(&mut store, &collector.name, &result, None);
        Ok::<_, WebError>(())
    })
    .await
    .map_err(|e| WebError::Internal(e.to_string()))??;
    Ok(Redirect::to("/collectors").into_response())
}
