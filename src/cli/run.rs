//! `mailintake run`: every collector on its schedule until stopped (the daemon).

use anyhow::Result;

use super::Cli;
use crate::ingest::runtime;

/// Runs the daemon until a signal stops it.
pub(super) fn run(cli: &Cli) -> Result<()> {
    let config = cli.load_config()?;
    runtime()?.block_on(async {
        let signals = crate::daemon::Signals::from_os()?;
        crate::daemon::run(cli.config_path(), config, signals).await
    })
}
