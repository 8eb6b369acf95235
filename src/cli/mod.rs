//! The `mailintake` command line: the contract other tools call (see README).
//!
//! This file holds the top-level [`Cli`] and [`Command`], the helpers every command group
//! shares (loading the config, opening the store, printing JSON) and the dispatch. Each
//! command group lives in its own file with its arguments, its logic and its output:
//! `parse`, `collect`, `records`, `quarantine`, `run`, `contacts`, `collectors` (and its
//! `probe`), `check`, `notifications`, `serve` (the review page), `users` (its logins) and
//! `tokens` (the API's callers);
//! `table` is the one table layout they share, `terminal` the escaping every plain-text view
//! applies to text that came with the mail.

mod check;
mod collect;
mod collectors;
mod contacts;
mod db;
mod migrate;
mod notifications;
mod parse;
mod people;
mod probe;
mod quarantine;
mod records;
mod run;
mod serve;
mod table;
mod terminal;
mod tokens;
mod users;

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};
use clap::{Parser, Subcommand};

pub use collect::CollectArgs;
pub use collectors::CollectorsCommand;
pub(crate) use collectors::{StatusRow, states_and_damage, status_rows};
pub use contacts::ContactsCommand;
pub use db::DbCommand;
pub use notifications::NotificationsCommand;
pub use parse::ParseArgs;
pub use people::PeopleCommand;
pub use quarantine::QuarantineCommand;
pub(crate) use records::parse_since;
pub use records::{ActorArg, KindArg, ListArgs, RecordsCommand, TriageAs, TriageListStatus};
pub use tokens::{ApiScope, TokensCommand};
pub use users::{RoleArg, UsersCommand};

use crate::config::{Config, DEFAULT_CONFIG_PATH};
use crate::domain::phone_digits;
use crate::store::Store;

/// Website form e-mails become leads and orders, exactly once.
#[derive(Debug, Parser)]
#[command(name = "mailintake", version, about)]
pub struct Cli {
    /// Config file [default: ./collectors.toml]
    #[arg(long, global = true, env = "MAILINTAKE_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decode one message file without touching the database (a dry run)
    Parse(ParseArgs),
    /// Run collectors once and exit
    Collect(CollectArgs),
    /// Review stored records
    Records {
        #[command(subcommand)]
        command: RecordsCommand,
    },
    /// Messages that could not be decoded, kept whole with their reason
    Quarantine {
        #[command(subcommand)]
        command: QuarantineCommand,
    },
    /// Run every collector on its schedule until stopped (the daemon), with the review page
    Run,
    /// Serve the review page without running collectors
    Serve,
    /// Who may log in to the review page
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Bearer tokens for HTTP intake, the JSON API and calendar feeds
    Tokens {
        #[command(subcommand)]
        command: TokensCommand,
    },
    /// Contacts, found by phone number
    Contacts {
        #[command(subcommand)]
        command: ContactsCommand,
    },
    /// Collector state (last run, last success, last error, counts, next run); probe a server
    Collectors {
        #[command(subcommand)]
        command: CollectorsCommand,
    },
    /// Validate the config file (and its sources, offline), then ask the database whether it answers
    Check,
    /// Apply the database schema's pending migrations (commands and the daemon also do on open)
    Migrate,
    /// Notifications about records: the log, retry, and sending
    Notifications {
        #[command(subcommand)]
        command: NotificationsCommand,
    },
    /// The people directory that directory:ROLE recipients come from
    People {
        #[command(subcommand)]
        command: PeopleCommand,
    },
    /// The database itself: copy an installation between SQLite and PostgreSQL (no config)
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
}

impl Cli {
    fn config_path(&self) -> PathBuf {
        self.config
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
    }

    fn load_config(&self) -> Result<Config> {
        Ok(Config::load(&self.config_path())?)
    }
}

/// The configured store, with the config's unknown-customer fallback; errors name the config.
pub(crate) fn open_store(config: &Config) -> Result<Store> {
    let mut store = Store::open(&config.storage)
        .with_context(|| format!("config {}", config.path.display()))?;
    store.set_unknown_customer(config.unknown_customer.clone());
    store.set_notify_rules(config.notify.clone());
    Ok(store)
}

/// Pretty JSON on stdout with a trailing newline: what every `--json` prints.
fn print_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// With `--json`, `value` as JSON; otherwise `text` prints it for people.
fn print_json_or<T: serde::Serialize + ?Sized>(
    json: bool,
    value: &T,
    text: impl FnOnce(&T),
) -> Result<()> {
    if json {
        print_json(value)
    } else {
        text(value);
        Ok(())
    }
}

/// Prints `value` as [`print_json`] does, with every object's keys sorted, nested ones too.
///
/// NOTE: `parse`, `records show`, `quarantine retry` and `collectors status` once built their
/// JSON as `serde_json::Value`, whose maps sort their keys (the `preserve_order` feature is
/// off). The README makes that output a contract and scripts may compare it byte for byte,
/// so their typed rows keep the sorted order by passing through a `Value`.
fn print_json_sorted_keys(value: &impl serde::Serialize) -> Result<()> {
    print_json(&serde_json::to_value(value)?)
}

/// The actor for a record's history: the one given, or the OS user.
fn actor_or_os_user(actor: Option<&str>) -> String {
    actor.map_or_else(
        || {
            std::env::var("USER")
                .or_else(|_| std::env::var("LOGNAME"))
                .unwrap_or_else(|_| "unknown".into())
        },
        str::to_string,
    )
}

/// The digits of a phone number given on the command line; `what` prefixes the error
/// (`"--phone "` for the flag).
fn phone_digits_arg(what: &str, phone: &str) -> Result<String> {
    phone_digits(phone).ok_or_else(|| anyhow!("{what}`{phone}`: give at least 5 digits"))
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::Parse(args) => parse::run(&cli, args),
        Command::Collect(args) => collect::run(&cli.load_config()?, args),
        Command::Records { command } => {
            let config = cli.load_config()?;
            let mut store = open_store(&config)?;
            records::run(&config, &mut store, command)
        }
        Command::Contacts { command } => {
            let config = cli.load_config()?;
            let mut store = open_store(&config)?;
            contacts::run(&config.workflow, &mut store, command)
        }
        Command::Quarantine { command } => {
            let config = cli.load_config()?;
            let mut store = open_store(&config)?;
            quarantine::run(&config, &mut store, command)
        }
        Command::Run => run::run(&cli),
        Command::Serve => serve::run(&cli),
        Command::Users { command } => {
            let config = cli.load_config()?;
            let mut store = open_store(&config)?;
            users::run(&config, &mut store, command)
        }
        Command::Tokens { command } => {
            let config = cli.load_config()?;
            let mut store = open_store(&config)?;
            tokens::run(&config, &mut store, command)
        }
        Command::Collectors { command } => collectors::run(&cli.load_config()?, command),
        Command::Notifications { command } => {
            let config = cli.load_config()?;
            let mut store = open_store(&config)?;
            notifications::run(&config, &mut store, command)
        }
        Command::People { command } => people::run(&mut open_store(&cli.load_config()?)?, command),
        Command::Check => check::run(&Config::load_and_probe(&cli.config_path())?),
        Command::Db { command } => db::run(command),
        Command::Migrate => migrate::run(&cli.load_config()?),
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::{Cli, Command, RecordsCommand, TriageListStatus};

    /// clap checks the whole definition (duplicate flags, bad defaults, conflicts naming
    /// unknown arguments) only when asked; this asks once for every subcommand.
    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn unknown_kind_error_lists_every_kind() {
        let error = Cli::try_parse_from(["mailintake", "records", "list", "--kind", "ticket"])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("[possible values: lead, order, service-request]"),
            "{error}"
        );
    }

    #[test]
    fn triage_list_shows_unprocessed_requests_by_default() {
        let cli = Cli::try_parse_from(["mailintake", "records", "triage-list"]).unwrap();
        let Command::Records {
            command: RecordsCommand::TriageList { status, .. },
        } = cli.command
        else {
            panic!("parsed as {:?}", cli.command);
        };
        assert_eq!(status, TriageListStatus::Unprocessed);
    }
}
