//! Human-readable views of records: the list and triage tables, and the detail view that
//! `records show` and `parse` share.

use crate::cli::table::{or_dash, print_table};
use crate::cli::terminal::{indented, one_line};
use crate::domain::Phone;
use crate::mapping::{OrderLine, Record};
use crate::store::{RecordEvent, StoredRecord};

fn number(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), |n| n.to_string())
}

/// A value from the mail on one line, or `-`.
fn shown(value: Option<&str>) -> String {
    value.map_or_else(|| "-".to_string(), one_line)
}

/// The record's date (a service request's: the form's submission time, else the message's
/// Date), to the minute.
fn date(r: &StoredRecord) -> String {
    r.record
        .date
        .map_or_else(|| "-".into(), |d| d.format("%Y-%m-%d %H:%M").to_string())
}

/// Where the values of the detail view start: a 12-column label, then `: `.
const VALUE_COLUMN: usize = 14;

/// `records list` and `contacts show`.
pub(in crate::cli) fn print_record_table(records: &[StoredRecord]) {
    let rows = records
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                r.queue.clone(),
                r.record.kind.as_str().to_string(),
                r.status.clone(),
                date(r),
                or_dash(r.record.source.order_ref.as_deref()),
                or_dash(r.record.phone.as_ref().map(Phone::as_str)),
                or_dash(r.record.contact_name.as_deref()),
                r.record.lines.len().to_string(),
                or_dash(r.record.title.as_deref()),
            ]
        })
        .collect();
    print_table(
        &[
            "ID", "QUEUE", "KIND", "STATUS", "DATE", "REF", "PHONE", "CONTACT", "LINES", "TITLE",
        ],
        rows,
        40,
    );
    println!("{} record(s)", records.len());
}

fn print_lines(lines: &[OrderLine]) {
    for (n, line) in (1..).zip(lines) {
        println!(
            "  {n}. {}{} | {} x {} = {} | {}x{} | {} [{}] {}",
            shown(line.item.as_deref()),
            if line.is_service { " (service)" } else { "" },
            number(line.quantity),
            number(line.price),
            number(line.amount),
            number(line.width),
            number(line.height),
            shown(line.material.as_deref()),
            shown(line.material_code.as_deref()),
            shown(line.resolution.as_deref()),
        );
        for work in &line.extra_work {
            println!(
                "       + {} x{} {}",
                shown(work.kind.as_deref()),
                number(work.quantity),
                shown(work.description.as_deref())
            );
        }
    }
}

/// A decoded record (also what `parse` prints without `--json`).
pub(in crate::cli) fn print_record_details(record: &Record) {
    let fields = [
        ("kind", Some(record.kind.as_str().to_string())),
        ("title", record.title.clone()),
        ("date", record.date.map(|d| d.to_string())),
        ("contact", record.contact_name.clone()),
        ("phone", record.phone.as_ref().map(Phone::to_string)),
        ("email", record.email.clone()),
        (
            "inn",
            record.inn.as_ref().map(|i| {
                if i.is_valid() {
                    i.to_string()
                } else {
                    format!("{i} (invalid)")
                }
            }),
        ),
        ("description", record.description.clone()),
        ("message-id", record.source.message_id.clone()),
        ("subject", record.source.subject.clone()),
        ("order ref", record.source.order_ref.clone()),
        (
            "attachment",
            record
                .source
                .attachment_name
                .as_ref()
                .map(|a| format!("{a} ({})", record.source.charset)),
        ),
    ];
    for (name, value) in fields {
        let value = value
            .as_deref()
            .map_or("-".to_string(), |v| indented(v, VALUE_COLUMN));
        println!("{name:>12}: {value}");
    }
    for file in &record.layout_files {
        println!("{:>12}: {}", "layout file", one_line(file));
    }
    for warning in &record.warnings {
        println!("{:>12}: {}", "warning", indented(warning, VALUE_COLUMN));
    }
    if !record.lines.is_empty() {
        println!("lines:");
        print_lines(&record.lines);
    }
}

/// `records show` without `--json`: the record, its service fields, result, tech cards and history.
pub(super) fn print_stored_record(stored: &StoredRecord, history: &[RecordEvent]) {
    println!(
        "record {} in queue {} ({}), status {}",
        stored.id,
        one_line(&stored.queue),
        one_line(&stored.collector),
        one_line(&stored.status)
    );
    print_record_details(&stored.record);
    if let Some(service) = &stored.record.service {
        println!(
            "service request {} ({}{}), contact {}, address {}, content {}",
            shown(service.number.as_deref()),
            service.request_type,
            service
                .sub_type
                .as_deref()
                .map(|s| format!(", {}", one_line(s)))
                .unwrap_or_default(),
            shown(service.contact.as_deref()),
            shown(service.address.as_deref()),
            service
                .content
                .as_deref()
                .map_or("-".to_string(), |c| indented(c, 2)),
        );
    }
    if let Some(result) = &stored.result {
        println!("{:>12}: {}", "result", indented(result, VALUE_COLUMN));
    }
    if !stored.tech_cards.is_empty() {
        let cards: Vec<String> = stored
            .tech_cards
            .iter()
            .map(|c| format!("line {}: {}", c.line, one_line(&c.status)))
            .collect();
        println!("tech cards: {}", cards.join(", "));
    }
    println!("history:");
    for event in history {
        println!(
            "  {} {} by {}{}",
            event.at.format("%Y-%m-%d %H:%M:%S"),
            event.event,
            one_line(&event.actor),
            event
                .detail
                .as_deref()
                .map(|d| format!(": {}", indented(d, 4)))
                .unwrap_or_default()
        );
    }
}

/// The triage list (服务指派): name, gender, phone, region, address, description, and the
/// website's order number (下单编号) next to the request number.
pub(super) fn print_triage_table(records: &[StoredRecord]) {
    let rows = records
        .iter()
        .map(|r| {
            let service = r.record.service.clone().unwrap_or_default();
            vec![
                r.id.to_string(),
                or_dash(service.number.as_deref()),
                service.request_type.to_string(),
                date(r),
                // 姓名: the name without the salutation (records stored before contact_name
                // lost it show it as they were stored).
                or_dash(
                    r.record
                        .contact_name
                        .as_deref()
                        .or(service.contact.as_deref()),
                ),
                or_dash(service.gender.as_deref()),
                or_dash(r.record.phone.as_ref().map(Phone::as_str)),
                or_dash(service.region.as_deref()),
                or_dash(service.address.as_deref()),
                or_dash(r.record.description.as_deref()),
                or_dash(r.record.source.order_ref.as_deref()),
            ]
        })
        .collect();
    print_table(
        &[
            "ID",
            "NUMBER",
            "TYPE",
            "DATE",
            "NAME",
            "GENDER",
            "PHONE",
            "REGION",
            "ADDRESS",
            "DESCRIPTION",
            "ORDER NO",
        ],
        rows,
        40,
    );
    println!("{} request(s)", records.len());
}
