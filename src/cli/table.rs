//! The one table layout every human-readable list uses (records, triage, quarantine,
//! collectors), so all lists look alike and a layout fix lands everywhere at once.

/// Prints rows as left-aligned columns; cells are cut to `max` characters.
pub(super) fn print_table(header: &[&str], rows: Vec<Vec<String>>, max: usize) {
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

/// A missing value shows as `-` in tables and detail views.
pub(super) fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_string()
}
