//! `mailintake users`: who may log in to the review page, with which role and queues.
//!
//! Passwords are read from stdin or a file, never from the command line (where `ps` and the
//! shell history would show them), and stored only as argon2 hashes.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Subcommand, ValueEnum};

use super::print_json_or;
use super::table::print_table;
use crate::config::Config;
use crate::domain::Role;
use crate::store::Store;
use crate::web::hash_password;

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a user; the password is read from stdin (first line) or --password-file
    Add {
        name: String,
        #[arg(long, value_enum)]
        role: RoleArg,
        /// A queue a manager sees (repeatable); admins see every queue
        #[arg(long = "queue", value_name = "QUEUE")]
        queues: Vec<String>,
        /// Read the password from this file's first line instead of stdin
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    /// Set a user's password (stdin or --password-file); logs them out everywhere
    Passwd {
        name: String,
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    /// Disable a user: kept, but can no longer log in; logs them out everywhere
    Disable { name: String },
    /// List users with their roles and queues
    List {
        #[arg(long)]
        json: bool,
    },
}

/// `users add --role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    Admin,
    Manager,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Role {
        match role {
            RoleArg::Admin => Role::Admin,
            RoleArg::Manager => Role::Manager,
        }
    }
}

/// The password: the first line of `file`, or of stdin.
fn read_password(file: Option<&Path>) -> Result<String> {
    let text = match file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the password file {}", path.display()))?,
        None => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the password from stdin")?;
            text
        }
    };
    let password = text.lines().next().unwrap_or("").to_string();
    if password.is_empty() {
        bail!("the password is empty (give it on stdin or in --password-file)");
    }
    Ok(password)
}

fn hashed(file: Option<&Path>) -> Result<String> {
    hash_password(&read_password(file)?).map_err(|e| anyhow!("cannot hash the password: {e}"))
}

/// Runs a `users` subcommand.
pub(super) fn run(config: &Config, store: &mut Store, command: &UsersCommand) -> Result<()> {
    match command {
        UsersCommand::Add {
            name,
            role,
            queues,
            password_file,
        } => {
            if name.trim().is_empty() || name.chars().any(char::is_control) {
                bail!("a user name needs visible characters");
            }
            if let Some(unknown) = queues
                .iter()
                .find(|q| !config.queues.iter().any(|known| &known.name == *q))
            {
                bail!(
                    "--queue {unknown}: no such [[queue]] in {}",
                    config.path.display()
                );
            }
            let hash = hashed(password_file.as_deref())?;
            store.add_user(name, Role::from(*role), &hash, queues)?;
            println!("user {name} added ({})", Role::from(*role));
        }
        UsersCommand::Passwd {
            name,
            password_file,
        } => {
            let hash = hashed(password_file.as_deref())?;
            if !store.set_password(name, &hash)? {
                bail!("no user {name}");
            }
            println!("user {name}: password changed");
        }
        UsersCommand::Disable { name } => {
            if !store.disable_user(name)? {
                bail!("no user {name}");
            }
            println!("user {name} disabled");
        }
        UsersCommand::List { json } => {
            let users = store.users()?;
            print_json_or(*json, &users[..], |users| {
                let rows = users
                    .iter()
                    .map(|u| {
                        vec![
                            u.name.clone(),
                            u.role.to_string(),
                            if u.disabled { "disabled" } else { "active" }.into(),
                            u.queues.join(", "),
                        ]
                    })
                    .collect();
                print_table(&["NAME", "ROLE", "STATE", "QUEUES"], rows, 60);
            })?;
        }
    }
    Ok(())
}
