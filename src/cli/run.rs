//! `mailintake run`: every collector on its schedule until stopped (the daemon), with the
//! review page beside them (`[http]`).

use anyhow::Result;

use super::Cli;
use crate::ingest::runtime;

/// Runs the daemon until a signal stops it.
pub(super) fn run(cli: &Cli) -> Result<()> {
    let config = cli.load_config()?;
    runtime()?.block_on(async {
        let signals = crate::daemon::Signals::from_os()?;
        super::serve::beside_collectors(&config, signals.shutdown.clone()).await;
        crate::daemon::run(cli.config_path(), config, signals).await
    })
}
