//! `mailintake people`: the directory `directory:ROLE` recipients are looked up in.

use anyhow::{Context, Result};
use clap::Subcommand;

use super::print_json_or;
use super::table::{or_dash, print_table};
use crate::notify::people::{NewPerson, StoredPerson};
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum PeopleCommand {
    /// Add a person (e.g. a branch's general manager: --role gm)
    Add {
        #[arg(long)]
        name: String,
        /// The branch (分公司) whose records they are told of
        #[arg(long)]
        branch: String,
        /// What `directory:ROLE` in a [[notify]] rule calls them, e.g. gm
        #[arg(long)]
        role: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        phone: Option<String>,
    },
    /// List everyone, enabled or not
    List {
        #[arg(long)]
        json: bool,
    },
    /// Disable a person: kept, but never a recipient again
    Disable { id: i64 },
    /// Add everyone of an HR export: CSV with a header row naming name, branch, role and
    /// optionally email, phone, enabled
    Import { file: std::path::PathBuf },
}

/// Runs a `people` subcommand.
pub(super) fn run(store: &mut Store, command: &PeopleCommand) -> Result<()> {
    match command {
        PeopleCommand::Add {
            name,
            branch,
            role,
            email,
            phone,
        } => {
            let id = store.add_person(NewPerson {
                name: name.clone(),
                branch: branch.clone(),
                role: role.clone(),
                email: email.clone(),
                phone: phone.clone(),
                enabled: true,
            })?;
            println!("person {id}: {name}, {role} of {branch}");
        }
        PeopleCommand::List { json } => {
            let people = store.people()?;
            print_json_or(*json, &people[..], print_people)?;
        }
        PeopleCommand::Disable { id } => {
            store.disable_person(*id)?;
            println!("person {id}: disabled");
        }
        PeopleCommand::Import { file } => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let count = store
                .import_people(&text)
                .with_context(|| format!("{}", file.display()))?;
            println!("imported {count} people from {}", file.display());
        }
    }
    Ok(())
}

fn print_people(people: &[StoredPerson]) {
    let rows = people
        .iter()
        .map(|p| {
            vec![
                p.id.to_string(),
                p.name.clone(),
                p.branch.clone(),
                p.role.clone(),
                or_dash(p.email.as_deref()),
                or_dash(p.phone.as_deref()),
                if p.enabled { "yes" } else { "no" }.to_string(),
            ]
        })
        .collect();
    print_table(
        &["ID", "NAME", "BRANCH", "ROLE", "EMAIL", "PHONE", "ENABLED"],
        rows,
        40,
    );
}
