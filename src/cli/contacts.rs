//! `mailintake contacts`: a contact's records, found by phone number.

use anyhow::Result;
use clap::Subcommand;

use super::records::print_record_table;
use super::terminal::{indented, one_line};
use super::{phone_digits_arg, print_json_or};
use crate::config::Workflow;
use crate::store::{Store, StoredRecord};

#[derive(Debug, Subcommand)]
pub enum ContactsCommand {
    /// A contact's records, found by phone number, with the results the customer may hear
    Show {
        phone: String,
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `contacts` subcommand.
pub(super) fn run(workflow: &Workflow, store: &mut Store, command: &ContactsCommand) -> Result<()> {
    let ContactsCommand::Show { phone, json } = command;
    let digits = phone_digits_arg("", phone)?;
    let ids = store.contact_record_ids(&digits)?;
    let records = store.records_by_ids(&ids)?;
    print_json_or(*json, &records[..], |records| {
        print_record_table(records);
        print_results_for_the_customer(workflow, records);
    })
}

/// The hotline reads a caller the results they may hear: only a record in a status of
/// `[workflow] visible-to-customer` shows its result (before that the work is not final).
fn print_results_for_the_customer(workflow: &Workflow, records: &[StoredRecord]) {
    for record in records {
        if let Some(result) = &record.result
            && workflow.result_visible_to_customer(&record.status)
        {
            println!(
                "record {} ({}): {}",
                record.id,
                one_line(&record.status),
                indented(result, 2)
            );
        }
    }
}
