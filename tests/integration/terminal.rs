//! What people see on a terminal (issue 15 §4): text from the mail is shown, never obeyed.
//! Hostile orders and subjects are collected from a real Maildir into a real database, then
//! `records show`, `parse`, `quarantine show` print them; `--json` keeps them exact.

use std::process::Output;

use crate::kit::sandbox::{Sandbox, counts, run_bare};

const INBOX: &str = "inbox";

/// An order description that clears the screen, retitles the terminal and forges two lines
/// of the detail view (a status and the history header) with CR/LF.
const DESCRIPTION: &str =
    "Заказ\u{1b}[2J\u{1b}]0;pwned\u{7}\r\nstatus: paid\r\nhistory:\r\x1b[1Aforged";

/// A website order whose payload and contact name carry `DESCRIPTION` and a CR.
fn hostile_order() -> Vec<u8> {
    let payload = serde_json::json!({
        "Тема": "Заказ 901",
        "Описание": DESCRIPTION,
        "КонтактноеЛицо": "Иван\rSomeone else",
        "Телефон": "+7 900 123-45-67",
        "Товары": [{"Номенклатура": "Баннер\u{9b}2J", "Количество": 1, "Цена": 10, "Сумма": 10}],
    });
    mail(
        "ORDER: 901",
        &serde_json::to_string(&payload).unwrap(),
        "order_901.txt",
    )
}

/// A multipart message with `attachment` as a UTF-8 text attachment.
fn mail(subject: &str, attachment: &str, file_name: &str) -> Vec<u8> {
    format!(
        "From: site@shop.example\r\nTo: orders@shop.example\r\nSubject: {subject}\r\nMessage-ID: <{file_name}@shop.example>\r\nDate: Mon, 1 Jun 2026 12:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nsee the attachment\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Disposition: attachment; filename=\"{file_name}\"\r\n\r\n{attachment}\r\n--b--\r\n"
    )
    .into_bytes()
}

/// A sandbox whose Maildir got `messages` (unique name, bytes), collected once.
fn collected(messages: &[(&str, Vec<u8>)], want: [u64; 5]) -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.maildir(INBOX);
    sandbox.write_config(&[("site-orders", INBOX)], "");
    for (name, bytes) in messages {
        sandbox.deliver(INBOX, name, bytes);
    }
    assert_eq!(counts(&sandbox.collect()), want);
    sandbox
}

fn stdout_of(output: Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// No byte of `text` is a control character but the line feeds that end its lines.
fn assert_no_control_characters(text: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|c| c.is_control() && *c != '\n')
        .collect();
    assert!(bad.is_empty(), "{bad:?} reached the terminal in:\n{text}");
}

/// The detail view of the hostile order, from `records show` or `parse`.
fn assert_hostile_order_shown_safely(text: &str) {
    assert_no_control_characters(text);
    assert!(
        text.contains(r"Заказ\u{1b}[2J\u{1b}]0;pwned\u{7}"),
        "{text}"
    );
    assert!(text.contains(r"Иван\rSomeone else"), "{text}");
    assert!(text.contains(r"Баннер\u{9b}2J"), "{text}");
    // The forged lines stay inside the description, indented under its value.
    assert!(
        text.contains("\n              status: paid\n              history:\\r\\u{1b}[1Aforged\n"),
        "{text}"
    );
    assert!(
        !text.lines().any(|l| l.starts_with("status:")),
        "a forged line: {text}"
    );
}

#[test]
fn records_show_escapes_control_characters_and_json_stays_exact() {
    let sandbox = collected(&[("1.M1.host", hostile_order())], [1, 1, 0, 0, 0]);
    let text = stdout_of(sandbox.run(&["records", "show", "1"]));
    assert_hostile_order_shown_safely(&text);
    assert_eq!(
        text.lines().filter(|l| *l == "history:").count(),
        1,
        "one real history header: {text}"
    );

    let json = sandbox.json(&["records", "show", "1", "--json"]);
    assert_eq!(json["description"], DESCRIPTION);
    assert_eq!(json["contact_name"], "Иван\rSomeone else");
    assert_eq!(json["lines"][0]["item"], "Баннер\u{9b}2J");
}

#[test]
fn parse_without_json_escapes_control_characters() {
    let sandbox = Sandbox::new();
    std::fs::write(sandbox.path("order.eml"), hostile_order()).unwrap();
    let output = run_bare(&["parse", sandbox.path("order.eml").to_str().unwrap()]);
    assert_hostile_order_shown_safely(&stdout_of(output));
}

/// A quarantined message whose subject (an RFC 2047 word, so any byte fits) retitles the
/// terminal and clears the screen, and whose body would too if printed raw.
fn hostile_quarantined() -> Vec<u8> {
    mail(
        "=?utf-8?q?ORDER:_902_=1B]0;pwned=07_=1B[2J?=",
        "{\"Описание\": \"\u{1b}[2J raw body marker",
        "order_902.txt",
    )
}

#[test]
fn quarantine_show_escapes_the_subject_and_raw_stays_exact_but_not_on_a_terminal() {
    let raw = hostile_quarantined();
    let sandbox = collected(&[("2.M1.host", raw.clone())], [1, 0, 0, 1, 0]);
    assert_eq!(sandbox.quarantined(), 1);

    let text = stdout_of(sandbox.run(&["quarantine", "show", "1"]));
    assert_no_control_characters(&text);
    assert!(
        text.contains(r"subject: ORDER: 902 \u{1b}]0;pwned\u{7} \u{1b}[2J"),
        "{text}"
    );
    let json = sandbox.json(&["quarantine", "show", "1", "--json"]);
    assert_eq!(json["subject"], "ORDER: 902 \u{1b}]0;pwned\u{7} \u{1b}[2J");

    // To a pipe (or a file), --raw is the message byte for byte...
    let piped = sandbox.run(&["quarantine", "show", "1", "--raw"]);
    assert!(piped.status.success());
    assert_eq!(piped.stdout, raw);

    // ...but a terminal (a pty from script(1)) gets an error and not one byte of it.
    let command = format!(
        "{} --config {} quarantine show 1 --raw",
        env!("CARGO_BIN_EXE_mailintake"),
        sandbox.path("collectors.toml").display()
    );
    let on_terminal = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("MAILINTAKE_LOG", "warn")
        .output()
        .unwrap();
    let seen = String::from_utf8_lossy(&on_terminal.stdout);
    assert!(!on_terminal.status.success(), "{seen}");
    assert!(seen.contains("stdout is a terminal"), "{seen}");
    assert!(!seen.contains("raw body marker"), "{seen}");
}
