//! Fixtures for the unit tests of a pass and of the daemon: a form e-mail written out by
//! hand, and a configuration of Maildir collectors in a scratch folder.

use std::path::Path;

use crate::config::Config;

/// A form e-mail with `json` as its attachment; `id` makes its Message-ID (and so its
/// bytes) unique.
pub(crate) fn form_message(id: &str, subject: &str, json: &str) -> Vec<u8> {
    format!(
        "From: site@shop.example\r\nSubject: {subject}\r\nMessage-ID: <{id}@shop.example>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nform\r\n\
         --b\r\nContent-Type: application/json; charset=utf-8\r\n\
         Content-Disposition: attachment; filename=\"form.json\"\r\n\r\n{json}\r\n--b--\r\n"
    )
    .into_bytes()
}

/// A lead: the subject has the keyword and the attachment maps.
pub(crate) fn lead(id: &str) -> Vec<u8> {
    form_message(
        id,
        "ORDER: 1",
        r#"{"Тема": "Заказ", "Телефон": "+7 925 642 42-90"}"#,
    )
}

/// Writes `collectors.toml` in `dir` (SQLite in `dir/db`): one queue and one Maildir
/// collector per name, reading `dir/NAME`, with `extra` collector keys; and loads it.
pub(crate) fn maildir_config(dir: &Path, names: &[&str], extra: &str) -> Config {
    let mut text = String::from("[storage]\nurl = \"sqlite://db\"\n\n");
    for name in names {
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(dir.join(name).join(sub)).unwrap();
        }
        text.push_str(&format!(
            "[[queue]]\nname = \"{name}\"\n\n[[collector]]\nname = \"{name}\"\nqueue = \"{name}\"\n\
             schedule = \"0 0 0 1 1 *\"\n{extra}\n[collector.maildir]\npath = \"{name}\"\n\n"
        ));
    }
    let path = dir.join("collectors.toml");
    std::fs::write(&path, text).unwrap();
    Config::load(&path).unwrap()
}
