//! `mailintake check`: validate the config file, and what its sources refer to as far as
//! can be done without a network (Maildirs, `ca-file`s, passwords); then ask the database
//! whether it answers.

use anyhow::Context;

use crate::config::Config;
use crate::store::{self, Answer};

/// Runs `check` on a config that loaded and probed (that is the validation; errors name
/// file:line:key), then asks the configured database a query: a SQLite file that is not
/// there yet passes (the first command that stores creates it), a database that does not
/// answer fails the check.
pub(super) fn run(config: &Config) -> anyhow::Result<()> {
    println!(
        "{}: OK ({} queues, {} collectors, storage {})",
        config.path.display(),
        config.queues.len(),
        config.collectors.len(),
        config.storage
    );
    let answer = store::answers(&config.storage)
        .with_context(|| format!("storage {}: the database does not answer", config.storage))?;
    match answer {
        Answer::NotCreatedYet => println!(
            "storage {}: not created yet (created and migrated on first use)",
            config.storage
        ),
        Answer::Answers(what) => println!("storage {}: answers ({what})", config.storage),
    }
    Ok(())
}
