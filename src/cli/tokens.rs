//! `mailintake tokens`: bearer tokens for the systems that call mailintake over HTTP.
//!
//! `add` prints the new token alone on stdout (so `TOKEN=$(mailintake tokens add ...)` works)
//! and stores only its SHA-256: a lost token cannot be shown again, only revoked and replaced.

use anyhow::{Result, bail};
use clap::{Args, Subcommand, ValueEnum};

use super::print_json_or;
use super::table::print_table;
use crate::config::Config;
use crate::domain::TokenScope;
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create a token and print it (alone, on stdout); only its hash is stored
    Add(AddArgs),
    /// List tokens (never their secrets)
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token: calls with it are refused from now on
    Revoke { name: String },
}

/// `tokens add`: a name and exactly one of the scopes.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("scope_choice").required(true).args(["collector", "scope", "calendar"])))]
pub struct AddArgs {
    /// What the token is called in `tokens list` and `tokens revoke`
    #[arg(long)]
    name: String,
    /// HTTP intake for this collector only (`POST /api/v1/intake/COLLECTOR`)
    #[arg(long, value_name = "COLLECTOR")]
    collector: Option<String>,
    /// The JSON API: `read` reads records, notifications, quarantine, collectors; `write`
    /// also triages and changes status
    #[arg(long, value_enum)]
    scope: Option<ApiScope>,
    /// This queue's calendar feed only (`GET /calendars/QUEUE.ics?token=...`)
    #[arg(long, value_name = "QUEUE")]
    calendar: Option<String>,
}

/// `tokens add --scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApiScope {
    Read,
    Write,
}

impl AddArgs {
    /// The scope asked for, checked against the configuration.
    fn scope(&self, config: &Config) -> Result<TokenScope> {
        if let Some(collector) = &self.collector {
            if !config.collectors.iter().any(|c| &c.name == collector) {
                bail!(
                    "--collector {collector}: no such [[collector]] in {}",
                    config.path.display()
                );
            }
            return Ok(TokenScope::Intake {
                collector: collector.clone(),
            });
        }
        if let Some(queue) = &self.calendar {
            if !config.queues.iter().any(|q| &q.name == queue) {
                bail!(
                    "--calendar {queue}: no such [[queue]] in {}",
                    config.path.display()
                );
            }
            return Ok(TokenScope::Calendar {
                queue: queue.clone(),
            });
        }
        Ok(match self.scope {
            Some(ApiScope::Write) => TokenScope::Write,
            _ => TokenScope::Read,
        })
    }
}

/// Runs a `tokens` subcommand.
pub(super) fn run(config: &Config, store: &mut Store, command: &TokensCommand) -> Result<()> {
    match command {
        TokensCommand::Add(args) => {
            if args.name.trim().is_empty() || args.name.chars().any(char::is_control) {
                bail!("a token name needs visible characters");
            }
            let scope = args.scope(config)?;
            let token = crate::web::ApiSecret::draw();
            store.add_token(&args.name, &scope, &token.hash())?;
            println!("{}", token.expose());
            eprintln!(
                "token {} ({scope}) added; it is shown only this once",
                args.name
            );
        }
        TokensCommand::List { json } => {
            let tokens = store.tokens()?;
            print_json_or(*json, &tokens[..], |tokens| {
                let rows = tokens
                    .iter()
                    .map(|t| {
                        vec![
                            t.name.clone(),
                            t.scope.to_string(),
                            t.target.clone().unwrap_or_default(),
                            if t.revoked { "revoked" } else { "live" }.into(),
                            t.created_at.format("%Y-%m-%d %H:%M").to_string(),
                        ]
                    })
                    .collect();
                print_table(&["NAME", "SCOPE", "FOR", "STATE", "CREATED"], rows, 60);
            })?;
        }
        TokensCommand::Revoke { name } => {
            if !store.revoke_token(name)? {
                bail!("no live token {name}");
            }
            println!("token {name} revoked");
        }
    }
    Ok(())
}
