//! The one table layout every human-readable list uses (records, triage, quarantine,
//! collectors), so all lists look alike and a layout fix lands everywhere at once.
//!
//! Columns are measured in terminal columns, not characters: our users write Chinese (each
//! character two columns wide) and Russian (one column), and a table padded by character
//! count leans right on every Chinese cell. Widths are `unicode-width`'s, as terminals
//! (wcwidth) count them.

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// A cell on one line (control characters become spaces), cut to `max` columns with `…`.
fn cell(text: &str, max: usize) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.width() <= max {
        return one_line;
    }
    let mut out = String::new();
    let mut used = 0;
    for c in one_line.chars() {
        let w = c.width().unwrap_or(0);
        // One column is kept for the ellipsis.
        if used + w > max.saturating_sub(1) {
            break;
        }
        used += w;
        out.push(c);
    }
    out + "…"
}

/// The table as text: left-aligned columns two spaces apart, lines without trailing blanks;
/// cells are cut to `max` columns.
pub(super) fn render_table(header: &[&str], rows: &[Vec<String>], max: usize) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| cell(c, max)).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.width()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.width());
        }
    }
    let line = |cells: &[&str]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w.saturating_sub(c.width()))))
            .collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(header);
    for row in &rows {
        out += &line(&row.iter().map(String::as_str).collect::<Vec<_>>());
    }
    out
}

/// Prints rows as left-aligned columns; cells are cut to `max` columns.
pub(super) fn print_table(header: &[&str], rows: Vec<Vec<String>>, max: usize) {
    print!("{}", render_table(header, &rows, max));
}

/// A missing value shows as `-` in tables and detail views.
pub(super) fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The display column where `needle` starts on `line`.
    fn column(line: &str, needle: &str) -> usize {
        line[..line.find(needle).unwrap()].width()
    }

    #[test]
    fn columns_line_up_with_chinese_and_cyrillic_text() {
        let rows = vec![
            vec!["1".into(), "张伟".into(), "13812345678".into()],
            vec![
                "2".into(),
                "Иванов Сергей".into(),
                "+7 916 555-03-05".into(),
            ],
            vec!["3".into(), "欧阳娜娜".into(), "021-62345678".into()],
            vec!["4".into(), "Lee".into(), "1".into()],
        ];
        let text = render_table(&["ID", "NAME", "PHONE"], &rows, 40);
        let lines: Vec<&str> = text.lines().collect();
        let at = column(lines[0], "PHONE");
        assert_eq!(at, 2 + 2 + "Иванов Сергей".width() + 2);
        for (line, phone) in lines[1..].iter().zip(["138", "+7", "021", "1"]) {
            assert_eq!(column(line, phone), at, "{text}");
        }
    }

    #[test]
    fn long_cells_are_cut_by_columns() {
        let cut = cell("一二三四五六", 7);
        assert_eq!(cut, "一二三…");
        assert!(cut.width() <= 7);
        assert_eq!(cell("Привет, мир", 7), "Привет…");
        assert_eq!(cell("a\tb", 7), "a b");
    }
}
