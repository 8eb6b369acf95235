//! `mailintake check`: validate the config file, and what its sources refer to as far as
//! can be done without a network (Maildirs, `ca-file`s, passwords).

use crate::config::Config;

/// Runs `check` on a config that loaded and probed (that is the validation; errors name
/// file:line:key).
pub(super) fn run(config: &Config) {
    println!(
        "{}: OK ({} queues, {} collectors, storage {})",
        config.path.display(),
        config.queues.len(),
        config.collectors.len(),
        config.storage
    );
}
