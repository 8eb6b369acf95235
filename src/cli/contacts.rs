//! `mailintake contacts`: a contact's records, found by phone number.

use anyhow::Result;
use clap::Subcommand;

use super::records::print_record_table;
use super::{phone_digits_arg, print_json_or};
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum ContactsCommand {
    /// A contact's records, found by phone number
    Show {
        phone: String,
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `contacts` subcommand.
pub(super) fn run(store: &mut Store, command: &ContactsCommand) -> Result<()> {
    let ContactsCommand::Show { phone, json } = command;
    let digits = phone_digits_arg("", phone)?;
    let ids = store.contact_record_ids(&digits)?;
    let records = store.records_by_ids(&ids)?;
    print_json_or(*json, &records[..], print_record_table)
}
