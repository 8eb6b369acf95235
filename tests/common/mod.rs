//! Shared test harness: runs the real `mailintake` binary against temp folders with real
//! SQLite files and real Maildirs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// Repo root (for samples/).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temp folder with a config, a database and Maildirs.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes `collectors.toml`: one queue and one Maildir collector per `(name, maildir)`.
    pub fn write_config(&self, collectors: &[(&str, &str)], extra: &str) {
        let mut text = String::from("[storage]\nurl = \"sqlite://data/mailintake.db\"\n\n");
        for (name, maildir) in collectors {
            text.push_str(&format!(
                "[[queue]]\nname = \"{name}\"\n\n[[collector]]\nname = \"{name}\"\nqueue = \"{name}\"\nschedule = \"0 */5 * * * *\"\n{extra}\n[collector.maildir]\npath = \"{maildir}\"\n\n"
            ));
        }
        std::fs::write(self.path("collectors.toml"), text).unwrap();
    }

    /// An empty Maildir at `rel`.
    pub fn maildir(&self, rel: &str) -> PathBuf {
        let root = self.path(rel);
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        root
    }

    /// Delivers `bytes` into `new/` of the Maildir at `rel` under the unique name `name`.
    pub fn deliver(&self, rel: &str, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.maildir(rel).join("new").join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// Runs the binary with this sandbox's config.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_mailintake"))
            .arg("--config")
            .arg(self.path("collectors.toml"))
            .args(args)
            .env("MAILINTAKE_LOG", "warn")
            .output()
            .unwrap()
    }

    /// Runs the binary, expects success, and parses stdout as JSON.
    pub fn json(&self, args: &[&str]) -> Value {
        success_json(self.run(args))
    }

    /// Number of open quarantine entries.
    pub fn quarantined(&self) -> usize {
        self.json(&["quarantine", "list", "--json"])
            .as_array()
            .unwrap()
            .len()
    }

    pub fn records(&self) -> Vec<Value> {
        self.json(&["records", "list", "--json"])
            .as_array()
            .unwrap()
            .clone()
    }

    /// The single collect report of a `collect --json` run.
    pub fn collect(&self) -> Value {
        let reports = self.json(&["collect", "--json"]);
        assert_eq!(reports.as_array().unwrap().len(), 1, "{reports}");
        reports[0].clone()
    }
}

pub fn success_json(output: Output) -> Value {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// Runs the binary without a config.
pub fn run_bare(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mailintake"))
        .args(args)
        .env_remove("MAILINTAKE_CONFIG")
        .env("MAILINTAKE_LOG", "warn")
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap()
}

/// Copies a folder tree.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Asserts that `expected` is a subset of `actual`: object keys given must match, arrays
/// match element-wise in full length, numbers compare as numbers.
pub fn assert_subset(expected: &Value, actual: &Value, path: &str) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (key, value) in e {
                let got = a
                    .get(key)
                    .unwrap_or_else(|| panic!("{path}.{key}: missing in {actual}"));
                assert_subset(value, got, &format!("{path}.{key}"));
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            assert_eq!(
                e.len(),
                a.len(),
                "{path}: length differs: expected {expected}, got {actual}"
            );
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                assert_subset(ev, av, &format!("{path}[{i}]"));
            }
        }
        (Value::Number(e), Value::Number(a)) => {
            assert_eq!(e.as_f64(), a.as_f64(), "{path}: expected {e}, got {a}");
        }
        _ => assert_eq!(expected, actual, "{path}"),
    }
}

/// Reads a sample e-mail.
pub fn sample(name: &str) -> Vec<u8> {
    std::fs::read(repo().join("samples/eml").join(name)).unwrap()
}

/// A generated order e-mail (mail-builder), cp1251 JSON attachment, `lines` goods lines.
pub fn order_message(n: usize, inn: &str, lines: usize) -> Vec<u8> {
    use mail_builder::MessageBuilder;
    use mail_builder::headers::content_type::ContentType;
    use mail_builder::mime::MimePart;
    let goods: Vec<Value> = (0..lines)
        .map(|l| {
            serde_json::json!({
                "Номенклатура": format!("Баннер {n}-{l}"), "Количество": l + 1, "Цена": "100,50",
                "Сумма": 100.5 * (l + 1) as f64, "Услуга": l == 1
            })
        })
        .collect();
    let payload = serde_json::json!({
        "Тема": format!("Заказ №{n}"), "Дата": "01.06.2019 10:00:00", "ИНН": inn,
        "Телефон": format!("+7 (900) 123-{:02}-{:02}", (n % 1000) / 100, n % 100),
        "КонтактноеЛицо": "Иванов Иван", "Товары": goods
    });
    let json = serde_json::to_string_pretty(&payload).unwrap();
    let attachment = MimePart::new(
        ContentType::new("text/plain").attribute("charset", "windows-1251"),
        encoding_rs::WINDOWS_1251.encode(&json).0.into_owned(),
    )
    .attachment(format!("order_{n}.txt"));
    MessageBuilder::new()
        .from("site@shop.example")
        .to("orders@shop.example")
        .subject(format!("ORDER: {n}"))
        .message_id(format!("gen-{n}@shop.example"))
        .body(MimePart::new(
            "multipart/mixed",
            vec![
                MimePart::new("text/plain", format!("Заказ {n}")),
                attachment,
            ],
        ))
        .write_to_vec()
        .unwrap()
}

impl Sandbox {
    /// Runs `collect --json` for all collectors, expecting success.
    pub fn collect_all(&self) -> Vec<Value> {
        self.json(&["collect", "--json"])
            .as_array()
            .unwrap()
            .clone()
    }
}

/// The five counts of a collect report, in contract order:
/// fetched, accepted, skipped, quarantined, duplicates.
pub fn counts(report: &Value) -> [u64; 5] {
    [
        "fetched",
        "accepted",
        "skipped",
        "quarantined",
        "duplicates",
    ]
    .map(|k| report[k].as_u64().unwrap())
}
