//! Human-readable output: tables and detail views.

use crate::map::{OrderLine, Phone, Record};
use crate::store::{QuarantineEntry, RecordEvent, StoredRecord};

/// Prints rows as left-aligned columns; cells are cut to `max` characters.
fn print_table(header: &[&str], rows: Vec<Vec<String>>, max: usize) {
    let cut = |s: &str| -> String {
        let one_line: String = s
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if one_line.chars().count() > max {
            one_line.chars().take(max - 1).collect::<String>() + "…"
        } else {
            one_line
        }
    };
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| cut(c)).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
}

fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_string()
}

fn number(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), |n| n.to_string())
}

pub fn print_record_table(records: &[StoredRecord]) {
    let rows = records
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                r.queue.clone(),
                r.record.kind.as_str().to_string(),
                r.status.clone(),
                r.record
                    .date
                    .map_or_else(|| "-".into(), |d| d.format("%Y-%m-%d %H:%M").to_string()),
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
            or_dash(line.item.as_deref()),
            if line.is_service { " (service)" } else { "" },
            number(line.quantity),
            number(line.price),
            number(line.amount),
            number(line.width),
            number(line.height),
            or_dash(line.material.as_deref()),
            or_dash(line.material_code.as_deref()),
            or_dash(line.resolution.as_deref()),
        );
        for work in &line.extra_work {
            println!(
                "       + {} x{} {}",
                or_dash(work.kind.as_deref()),
                number(work.quantity),
                or_dash(work.description.as_deref())
            );
        }
    }
}

/// A decoded record (also what `parse` prints without `--json`).
pub fn print_record_details(record: &Record) {
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
        println!("{name:>12}: {}", value.as_deref().unwrap_or("-"));
    }
    for file in &record.layout_files {
        println!("{:>12}: {file}", "layout file");
    }
    for warning in &record.warnings {
        println!("{:>12}: {warning}", "warning");
    }
    if !record.lines.is_empty() {
        println!("lines:");
        print_lines(&record.lines);
    }
}

pub fn print_stored_record(stored: &StoredRecord, history: &[RecordEvent]) {
    println!(
        "record {} in queue {} ({}), status {}",
        stored.id, stored.queue, stored.collector, stored.status
    );
    print_record_details(&stored.record);
    if let Some(service) = &stored.record.service {
        println!(
            "service request {} ({}{}), contact {}, address {}, content {}",
            service.number.as_deref().unwrap_or("-"),
            service.request_type,
            service
                .sub_type
                .as_deref()
                .map(|s| format!(", {s}"))
                .unwrap_or_default(),
            service.contact.as_deref().unwrap_or("-"),
            service.address.as_deref().unwrap_or("-"),
            service.content.as_deref().unwrap_or("-"),
        );
    }
    if let Some(result) = &stored.result {
        println!("{:>12}: {result}", "result");
    }
    if !stored.tech_cards.is_empty() {
        let cards: Vec<String> = stored
            .tech_cards
            .iter()
            .map(|c| format!("line {}: {}", c.line, c.status))
            .collect();
        println!("tech cards: {}", cards.join(", "));
    }
    println!("history:");
    for event in history {
        println!(
            "  {} {} by {}{}",
            event.at.format("%Y-%m-%d %H:%M:%S"),
            event.event,
            event.actor,
            event
                .detail
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        );
    }
}

pub fn print_quarantine_table(entries: &[QuarantineEntry]) {
    let rows = entries
        .iter()
        .map(|e| {
            vec![
                e.id.to_string(),
                e.collector.clone(),
                e.status.clone(),
                e.created_at.format("%Y-%m-%d %H:%M").to_string(),
                or_dash(e.subject.as_deref()),
                e.reason.clone(),
            ]
        })
        .collect();
    print_table(
        &[
            "ID",
            "COLLECTOR",
            "STATUS",
            "QUARANTINED",
            "SUBJECT",
            "REASON",
        ],
        rows,
        60,
    );
    println!(
        "{} entr{}",
        entries.len(),
        if entries.len() == 1 { "y" } else { "ies" }
    );
}

pub fn print_quarantine_entry(entry: &QuarantineEntry) {
    println!("quarantine entry {} ({})", entry.id, entry.status);
    println!("   collector: {}", entry.collector);
    println!("      source: {}", entry.source_key);
    println!(
        "  message-id: {}",
        entry.message_id.as_deref().unwrap_or("-")
    );
    println!("     subject: {}", entry.subject.as_deref().unwrap_or("-"));
    println!("      reason: {}", entry.reason);
    println!(
        "        size: {} bytes (quarantine show {} --raw prints them)",
        entry.raw.len(),
        entry.id
    );
    if let Some(record_id) = entry.record_id {
        println!("    released: as record {record_id}");
    }
}

pub fn print_collector_table(rows: &[serde_json::Value]) {
    let text = |v: &serde_json::Value| v.as_str().map_or_else(|| "-".to_string(), str::to_string);
    let counts = |v: &serde_json::Value| {
        if v.is_null() {
            return "-".to_string();
        }
        [
            "fetched",
            "accepted",
            "skipped",
            "quarantined",
            "duplicates",
        ]
        .iter()
        .map(|k| format!("{k} {}", v[*k]))
        .collect::<Vec<_>>()
        .join(", ")
    };
    let table = rows
        .iter()
        .map(|r| {
            vec![
                text(&r["collector"]),
                text(&r["last_run"]),
                text(&r["last_success"]),
                text(&r["next_run"]),
                counts(&r["counts"]),
                text(&r["last_error"]),
            ]
        })
        .collect();
    print_table(
        &[
            "COLLECTOR",
            "LAST RUN",
            "LAST SUCCESS",
            "NEXT RUN",
            "LAST COUNTS",
            "LAST ERROR",
        ],
        table,
        80,
    );
}

/// The triage list (服务指派): name, gender, phone, region, address, description, and the
/// website's order number (下单编号) next to the request number.
pub fn print_triage_table(records: &[StoredRecord]) {
    let rows = records
        .iter()
        .map(|r| {
            let service = r.record.service.clone().unwrap_or_default();
            vec![
                r.id.to_string(),
                or_dash(service.number.as_deref()),
                service.request_type.to_string(),
                or_dash(service.contact.as_deref()),
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
