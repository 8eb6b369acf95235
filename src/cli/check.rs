//! `mailintake check`: validate the config file.

use crate::config::Config;

/// Runs `check` on a config that loaded (loading is the validation; errors name file:line).
pub(super) fn run(config: &Config) {
    println!(
        "{}: OK ({} queues, {} collectors, storage {})",
        config.path.display(),
        config.queues.len(),
        config.collectors.len(),
        config.storage
    );
}
