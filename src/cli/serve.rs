//! `mailintake serve`: the review page alone, without collectors; and the page beside them
//! in `mailintake run`.

use anyhow::{Context, Result};
use tokio::net::TcpListener;
use tracing::{error, info};

use super::Cli;
use crate::config::Config;
use crate::ingest::{Shutdown, runtime};
use crate::web::{self, AppState};

/// Serves the review page until a signal stops it.
pub(super) fn run(cli: &Cli) -> Result<()> {
    let config = cli.load_config()?;
    runtime()?.block_on(async {
        let signals = crate::daemon::Signals::from_os()?;
        let listener = bind(&config).await?;
        let state = AppState::new(config)?;
        web::serve(listener, state, signals.shutdown)
            .await
            .context("the review page stopped")
    })
}

/// Binds `[http] listen`.
async fn bind(config: &Config) -> Result<TcpListener> {
    let listener = TcpListener::bind(config.http.listen)
        .await
        .with_context(|| format!("cannot listen on {} ([http] listen)", config.http.listen))?;
    info!(address = %listener.local_addr()?, "review page: http://{}/", listener.local_addr()?);
    Ok(listener)
}

/// Starts the review page beside the collectors when `[http] enabled`; it stops with
/// `shutdown`. A page that cannot start is logged and the collectors run on: collecting is
/// the daemon's job, and a busy port must not stop it.
pub(super) async fn beside_collectors(config: &Config, shutdown: Shutdown) {
    if !config.http.enabled {
        return;
    }
    let started = async {
        let listener = bind(config).await?;
        let state = AppState::new(config.clone())?;
        Ok::<_, anyhow::Error>((listener, state))
    };
    match started.await {
        Ok((listener, state)) => {
            tokio::spawn(async move {
                if let Err(e) = web::serve(listener, state, shutdown).await {
                    error!(error = %e, "the review page stopped");
                }
            });
        }
        Err(e) => error!(error = format!("{e:#}"), "the review page is not served"),
    }
}
