//! The config contract: what loads, and the errors (file:line:column: key: message) for what
//! does not.

use std::path::{Path, PathBuf};

use super::*;

const GOOD: &str = r#"
[storage]
url = "sqlite://data/mi.db"

[[queue]]
name = "site-orders"
title = "Заказы с сайта"

[[collector]]
name = "site-orders"
queue = "site-orders"
format = "order-json"
schedule = "0 */5 * * * *"
subject-keyword = "ORDER"
default-charset = "cp1251"
[collector.maildir]
path = "samples/maildir"
"#;

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(Path::new("/etc/mi/collectors.toml"), text)
}

fn error_text(text: &str) -> String {
    load(text).unwrap_err().to_string()
}

#[test]
fn good_config_resolves_paths_against_its_folder() {
    let config = load(GOOD).unwrap();
    assert_eq!(
        config.storage,
        StorageUrl::Sqlite(PathBuf::from("/etc/mi/data/mi.db"))
    );
    let c = &config.collectors[0];
    assert_eq!(
        c.source,
        SourceConfig::Maildir {
            path: PathBuf::from("/etc/mi/samples/maildir")
        }
    );
    assert_eq!(c.rules.default_charset, encoding_rs::WINDOWS_1251);
    assert_eq!(c.batch_size, DEFAULT_BATCH_SIZE);
    assert_eq!(config.queues[0].title, "Заказы с сайта");
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let text = GOOD.replace("path = \"samples/maildir\"", "pth = \"samples/maildir\"");
    let err = error_text(&text);
    assert!(
        err.starts_with("/etc/mi/collectors.toml:17:1: pth: unknown field `pth`"),
        "{err}"
    );
}

#[test]
fn wrong_type_names_the_key_from_its_line() {
    let text = GOOD.replace("queue = \"site-orders\"\nformat", "queue = 5\nformat");
    let err = error_text(&text);
    assert!(
        err.starts_with("/etc/mi/collectors.toml:11:9: queue: "),
        "{err}"
    );
}

#[test]
fn undeclared_queue_is_rejected() {
    let err = error_text(&GOOD.replace("queue = \"site-orders\"", "queue = \"shop\""));
    assert!(
        err.contains(":11:") && err.contains("collector.queue") && err.contains("`shop`"),
        "{err}"
    );
}

#[test]
fn bad_cron_and_charset_are_rejected_at_load() {
    let err = error_text(&GOOD.replace("0 */5 * * * *", "*/5 * * * *"));
    assert!(
        err.contains(":13:") && err.contains("collector.schedule"),
        "{err}"
    );
    let err = error_text(&GOOD.replace("cp1251", "cp9999"));
    assert!(
        err.contains(":15:") && err.contains("collector.default-charset"),
        "{err}"
    );
}

#[test]
fn collector_without_source_is_rejected() {
    let text = GOOD.replace("[collector.maildir]\npath = \"samples/maildir\"\n", "");
    assert!(error_text(&text).contains("has no source"));
}

#[test]
fn duplicate_collector_names_are_rejected() {
    let block = &GOOD[GOOD.find("[[collector]]").unwrap()..];
    let err = error_text(&format!("{GOOD}\n{block}"));
    assert!(
        err.contains("declared twice") && err.contains(":20:"),
        "{err}"
    );
}

const IMAP: &str = r#"
[[queue]]
name = "shop"

[[collector]]
name = "shop"
queue = "shop"
mode = "idle"
[collector.imap]
host = "imap.example.com"
username = "orders@example.com"
password-file = "secrets/imap"
[collector.after]
action = "move"
move-to = "Processed"
delete-after-days = 30
"#;

#[test]
fn imap_collector_defaults_to_verified_implicit_tls() {
    let config = load(IMAP).unwrap();
    let c = &config.collectors[0];
    let SourceConfig::Imap(imap) = &c.source else {
        panic!("not IMAP")
    };
    assert_eq!(
        (imap.tls, imap.port, imap.mailbox.as_str()),
        (TlsMode::Implicit, 993, "INBOX")
    );
    assert_eq!(
        imap.password,
        Secret::File(PathBuf::from("/etc/mi/secrets/imap"))
    );
    assert_eq!(c.after.action, AfterAction::Move("Processed".into()));
    assert_eq!(
        (c.after.delete_after_days, c.mode),
        (Some(30), CollectMode::Idle)
    );
}

#[test]
fn inline_passwords_are_refused() {
    let err =
        error_text(&IMAP.replace("password-file = \"secrets/imap\"", "password = \"hunter2\""));
    assert!(
        err.contains(":12:12:") && err.contains("password-env") && !err.contains("hunter2"),
        "{err}"
    );
}

#[test]
fn plain_imap_is_only_for_loopback_unless_allowed() {
    let plain = IMAP.replace("username =", "tls = \"none\"\nusername =");
    assert!(error_text(&plain).contains("collector.imap.tls"));
    let local = plain.replace("imap.example.com", "127.0.0.1");
    let SourceConfig::Imap(imap) = &load(&local).unwrap().collectors[0].source else {
        panic!()
    };
    assert_eq!((imap.tls, imap.port), (TlsMode::None, 143));
    assert!(
        load(&plain.replace("tls = \"none\"", "tls = \"none\"\nallow-insecure = true")).is_ok()
    );
}

#[test]
fn after_and_mode_rules_are_checked() {
    assert!(error_text(&IMAP.replace("move-to = \"Processed\"\n", "")).contains("needs move-to"));
    assert!(error_text(&IMAP.replace("\"move\"", "\"archive\"")).contains("unknown action"));
    assert!(
        error_text(&IMAP.replace("Processed", "Pro\\\"cessed")).contains("collector.after.move-to")
    );
    let maildir_idle = GOOD.replace(
        "format = \"order-json\"",
        "format = \"order-json\"\nmode = \"idle\"",
    );
    assert!(error_text(&maildir_idle).contains("needs an IMAP collector"));
    let maildir_move = format!("{GOOD}[collector.after]\naction = \"delete\"\n");
    assert!(error_text(&maildir_move).contains("need an IMAP collector"));
}

#[test]
fn unknown_words_name_file_line_key_and_the_allowed_words() {
    assert_eq!(
        error_text(&IMAP.replace("username =", "tls = \"tls13\"\nusername =")),
        "/etc/mi/collectors.toml:11:7: collector.imap.tls: unknown TLS mode `tls13`; expected implicit, starttls or none"
    );
    assert_eq!(
        error_text(&IMAP.replace("\"move\"", "\"archive\"")),
        "/etc/mi/collectors.toml:14:10: collector.after.action: unknown action `archive`; expected seen, move or delete"
    );
    assert_eq!(
        error_text(&IMAP.replace("\"idle\"", "\"push\"")),
        "/etc/mi/collectors.toml:8:8: collector.mode: unknown mode `push`; expected poll or idle"
    );
}

#[test]
fn a_word_of_the_wrong_type_is_a_type_error_on_its_key() {
    let err = error_text(&IMAP.replace("\"idle\"", "1"));
    assert!(
        err.starts_with("/etc/mi/collectors.toml:8:8: mode: invalid type: integer `1`"),
        "{err}"
    );
}

#[test]
fn every_known_word_is_accepted() {
    for (tls, expected) in [
        ("implicit", TlsMode::Implicit),
        ("starttls", TlsMode::Starttls),
        ("none", TlsMode::None),
    ] {
        let text = IMAP
            .replace("imap.example.com", "localhost")
            .replace("username =", &format!("tls = \"{tls}\"\nusername ="));
        let SourceConfig::Imap(imap) = &load(&text).unwrap().collectors[0].source else {
            panic!("not IMAP")
        };
        assert_eq!(imap.tls, expected);
    }
    for (action, expected) in [
        ("seen", AfterAction::Seen),
        ("delete", AfterAction::Delete),
        ("move", AfterAction::Move("Processed".into())),
    ] {
        let text = IMAP.replace("\"move\"", &format!("\"{action}\""));
        assert_eq!(load(&text).unwrap().collectors[0].after.action, expected);
    }
    let poll = load(&IMAP.replace("\"idle\"", "\"poll\"")).unwrap();
    assert_eq!(poll.collectors[0].mode, CollectMode::Poll);
}

#[test]
fn a_bad_format_kind_lists_the_kinds() {
    let text = format!(
        "{GOOD}\n[[format]]\nname = \"web\"\nkind = \"ticket\"\n[format.fields]\nphone = \"{{{{tel}}}}\"\n"
    );
    let err = error_text(&text);
    assert!(
        err.contains(
            ":21:8: format.kind: unknown kind `ticket`; expected lead, order or service-request"
        ),
        "{err}"
    );
}

#[test]
fn storage_url_errors_name_the_key() {
    let err = error_text(&GOOD.replace("sqlite://data/mi.db", "postgres://db/mi"));
    assert_eq!(
        err,
        "/etc/mi/collectors.toml:3:7: storage.url: the PostgreSQL URL needs a user (postgres://USER@HOST:PORT/DATABASE)"
    );
    let err = error_text(&GOOD.replace("sqlite://data/mi.db", "postgres://mi:hunter2@db/mi"));
    assert!(
        err.starts_with("/etc/mi/collectors.toml:3:7: storage.url: passwords are never written")
            && !err.contains("hunter2"),
        "{err}"
    );
}

fn postgres_storage(keys: &str) -> String {
    GOOD.replace(
        "url = \"sqlite://data/mi.db\"",
        &format!("url = \"postgres://mi@db.example:6432/intake\"\n{keys}"),
    )
}

#[test]
fn postgres_storage_takes_its_password_by_reference_and_an_sslmode() {
    let config = load(&postgres_storage(
        "password-file = \"secrets/db\"\nsslmode = \"verify-full\"",
    ))
    .unwrap();
    let StorageUrl::Postgres(pg) = &config.storage else {
        panic!("{:?}", config.storage)
    };
    assert_eq!(
        (
            pg.user.as_str(),
            pg.host.as_str(),
            pg.port,
            pg.database.as_str()
        ),
        ("mi", "db.example", 6432, "intake")
    );
    assert_eq!(pg.sslmode, crate::store::SslMode::VerifyFull);
    assert_eq!(
        pg.password,
        Some(Secret::File(PathBuf::from("/etc/mi/secrets/db")))
    );

    let config = load(&postgres_storage("password-env = \"MI_DB_PASSWORD\"")).unwrap();
    let StorageUrl::Postgres(pg) = &config.storage else {
        panic!()
    };
    assert_eq!(pg.password, Some(Secret::Env("MI_DB_PASSWORD".into())));
    assert_eq!(
        pg.sslmode,
        crate::store::SslMode::VerifyIfOffered,
        "verified TLS whenever the server offers it"
    );
    assert_eq!(
        load(GOOD).unwrap().storage_lease,
        std::time::Duration::from_secs(15)
    );
}

#[test]
fn storage_keys_errors_name_file_line_and_key() {
    let err = error_text(&postgres_storage("password = \"hunter2\""));
    assert!(
        err.starts_with(
            "/etc/mi/collectors.toml:4:12: storage.password: passwords are never written"
        ) && !err.contains("hunter2"),
        "{err}"
    );
    assert_eq!(
        error_text(&postgres_storage("sslmode = \"sometimes\"")),
        "/etc/mi/collectors.toml:4:11: storage.sslmode: unknown sslmode `sometimes`; expected verify-if-offered, disable, allow, prefer, require, verify-ca or verify-full"
    );
    assert_eq!(
        error_text(&postgres_storage(
            "password-env = \"A\"\npassword-file = \"b\""
        )),
        "/etc/mi/collectors.toml:4:16: storage.password-env: give password-env or password-file, not both"
    );
    assert_eq!(
        error_text(&GOOD.replace(
            "url = \"sqlite://data/mi.db\"",
            "url = \"sqlite://data/mi.db\"\nsslmode = \"require\""
        )),
        "/etc/mi/collectors.toml:4:11: storage.sslmode: only a postgres:// storage URL takes this key"
    );
}

#[test]
fn check_reads_the_storage_password_now() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("collectors.toml");
    let text = postgres_storage("password-file = \"db-password\"").replace(
        "path = \"samples/maildir\"",
        &format!("path = \"{}\"", dir.path().display()),
    );
    std::fs::write(&path, &text).unwrap();
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
    }
    let err = Config::load_and_probe(&path).unwrap_err().to_string();
    assert!(
        err.contains(":4:17: storage.password-file: cannot read password file"),
        "{err}"
    );
    std::fs::write(dir.path().join("db-password"), "s3cret\n").unwrap();
    assert!(Config::load_and_probe(&path).is_ok());
    assert!(Config::load(&dir.path().join("collectors.toml")).is_ok());
}

#[test]
fn workflow_and_unknown_customer_are_read() {
    let text = format!(
        "{GOOD}\n[workflow]\nresolved = \"已解决\"\nvisible-to-customer = [\"已解决\"]\n\n[unknown-customer]\ncounterparty = \"0000000000\"\nstatus = \"customer-unknown\"\n"
    );
    let config = load(&text).unwrap();
    assert_eq!(config.workflow.resolved, "已解决");
    assert_eq!(config.workflow.accepted, "accepted");
    assert!(config.workflow.result_visible_to_customer("已解决"));
    assert!(!config.workflow.result_visible_to_customer("accepted"));
    let fallback = config.unknown_customer.unwrap();
    assert_eq!(
        (fallback.counterparty.as_str(), fallback.status.as_str()),
        ("0000000000", "customer-unknown")
    );
    assert_eq!(load(GOOD).unwrap().workflow, Workflow::default());
    let err = error_text(&format!("{GOOD}\n[workflow]\nvisible = [\"resolved\"]\n"));
    assert!(
        err.contains(":20:1: visible: unknown field `visible`"),
        "{err}"
    );
}

/// The shipped `collectors.toml` is the admin's documentation: it loads as it is, and with
/// every commented-out key (`# key = value`, `# [table]`) switched on, so the keys and
/// defaults it shows are ones the program accepts.
#[test]
fn shipped_config_and_its_commented_out_keys_load() {
    let shipped = include_str!("../../collectors.toml");
    let path = Path::new("/etc/mi/collectors.toml");
    Config::from_toml(path, shipped).unwrap();
    let looks_like_toml = |line: &str| {
        line.starts_with('[')
            || line
                .split_once(" = ")
                .is_some_and(|(key, _)| key.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
    };
    let switched_on: String = shipped
        .lines()
        .map(|line| {
            let code = line.trim_start_matches("# ");
            if line.starts_with('#') && looks_like_toml(code) {
                code
            } else {
                line
            }
        })
        .map(|line| format!("{line}\n"))
        .collect();
    let config = Config::from_toml(path, &switched_on).unwrap();
    assert!(config.unknown_customer.is_some());
    let shop = config.collector("shop").unwrap();
    assert!(matches!(shop.source, SourceConfig::Imap(_)));
    assert_eq!(shop.after.quarantine_move_to.as_deref(), Some("Quarantine"));
    let site = config.collector("site-orders").unwrap();
    assert_eq!(site.http.map(|h| h.max_body), Some(DEFAULT_MAX_BODY));
}

/// Writes `text` as `collectors.toml` in `dir` and loads it the way `mailintake check` does.
fn probe_in(dir: &Path, text: &str) -> Result<Config, ConfigError> {
    let path = dir.join("collectors.toml");
    std::fs::write(&path, text).unwrap();
    Config::load_and_probe(&path)
}

#[test]
fn check_probes_the_maildir_but_loading_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let err = probe_in(dir.path(), GOOD).unwrap_err().to_string();
    let file = dir.path().join("collectors.toml");
    assert!(
        err.starts_with(&format!(
            "{}:17:8: collector.maildir.path: collector `site-orders`: ",
            file.display()
        )) && err.contains("is not a Maildir"),
        "{err}"
    );
    assert!(Config::load(&file).is_ok(), "only check looks at the disk");

    let maildir = dir.path().join("samples/maildir");
    std::fs::create_dir_all(maildir.join("new")).unwrap();
    assert!(probe_in(dir.path(), GOOD).is_err(), "cur/ is missing");
    std::fs::create_dir_all(maildir.join("cur")).unwrap();
    probe_in(dir.path(), GOOD).unwrap();
}

#[test]
fn check_reads_the_password_and_the_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = probe_in(dir.path(), IMAP).unwrap_err().to_string();
    assert!(
        err.contains("collectors.toml:12:17: collector.imap.password-file: collector `shop`: cannot read password file"),
        "{err}"
    );
    std::fs::create_dir(dir.path().join("secrets")).unwrap();
    std::fs::write(dir.path().join("secrets/imap"), "secret\n").unwrap();
    probe_in(dir.path(), IMAP).unwrap();

    let unset = IMAP.replace(
        "password-file = \"secrets/imap\"",
        "password-env = \"MAILINTAKE_TEST_VARIABLE_NOBODY_SETS\"",
    );
    let err = probe_in(dir.path(), &unset).unwrap_err().to_string();
    assert!(
        err.contains(":12:16: collector.imap.password-env: collector `shop`: environment variable MAILINTAKE_TEST_VARIABLE_NOBODY_SETS is not set"),
        "{err}"
    );

    for (ca_file, problem) in [
        ("missing.pem", "cannot read ca-file"),
        ("secrets/imap", "holds no certificate"),
    ] {
        let text = IMAP.replace(
            "password-file = \"secrets/imap\"",
            &format!("password-file = \"secrets/imap\"\nca-file = \"{ca_file}\""),
        );
        let err = probe_in(dir.path(), &text).unwrap_err().to_string();
        assert!(
            err.contains(":13:11: collector.imap.ca-file: collector `shop`: ")
                && err.contains(problem),
            "{err}"
        );
    }
}

#[test]
fn size_limits_default_to_25mb_and_16mb_and_read_sizes_or_byte_counts() {
    let c = &load(GOOD).unwrap().collectors[0];
    assert_eq!(
        (c.max_message_size, c.batch_bytes),
        (DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_BATCH_BYTES)
    );
    assert_eq!(DEFAULT_MAX_MESSAGE_SIZE, 25 * 1024 * 1024);
    let text = GOOD.replace(
        "default-charset = \"cp1251\"",
        "default-charset = \"cp1251\"\nmax-message-size = \"64 MiB\"\nbatch-bytes = 1048576",
    );
    let c = &load(&text).unwrap().collectors[0];
    assert_eq!((c.max_message_size, c.batch_bytes), (64 << 20, 1 << 20));
    let err = error_text(&GOOD.replace(
        "default-charset = \"cp1251\"",
        "default-charset = \"cp1251\"\nmax-message-size = \"lots\"",
    ));
    assert!(
        err.starts_with("/etc/mi/collectors.toml:16:20: collector.max-message-size: give a size"),
        "{err}"
    );
}

#[test]
fn http_serves_on_loopback_8080_by_default_and_bad_addresses_name_the_key() {
    let config = load(GOOD).unwrap();
    assert_eq!(config.http, HttpSettings::default());
    assert!(config.http.enabled && !config.http.secure_cookies);
    assert_eq!(config.http.listen.to_string(), DEFAULT_LISTEN);

    let text = format!(
        "{GOOD}\n[http]\nenabled = false\nlisten = \"[::1]:9000\"\nsecure-cookies = true\n"
    );
    let http = load(&text).unwrap().http;
    assert!(!http.enabled && http.secure_cookies);
    assert_eq!(http.listen.to_string(), "[::1]:9000");

    let text = format!("{GOOD}\n[http]\nlisten = \"localhost\"\n");
    let line = text.lines().position(|l| l.starts_with("listen")).unwrap() + 1;
    let err = error_text(&text);
    assert!(
        err.starts_with(&format!(
            "/etc/mi/collectors.toml:{line}:10: http.listen: `localhost` is not ADDRESS:PORT"
        )),
        "{err}"
    );
    let err = error_text(&format!("{GOOD}\n[http]\nsecure-cookie = true\n"));
    assert!(err.contains("secure-cookie"), "{err}");
}

#[test]
fn an_http_table_alone_is_a_source_and_max_body_reads_as_a_size() {
    let config = load(GOOD).unwrap();
    assert_eq!(config.collectors[0].http, None);
    let beside = format!("{GOOD}[collector.http]\n");
    let c = &load(&beside).unwrap().collectors[0];
    assert!(matches!(c.source, SourceConfig::Maildir { .. }));
    assert_eq!(
        c.http,
        Some(HttpIntake {
            max_body: DEFAULT_MAX_BODY
        })
    );
    assert_eq!(DEFAULT_MAX_BODY, 1024 * 1024);

    let alone = GOOD
        .replace("[collector.maildir]\npath = \"samples/maildir\"\n", "")
        .replace("schedule = \"0 */5 * * * *\"\n", "")
        + "[collector.http]\nmax-body = \"64KB\"\n";
    let c = &load(&alone).unwrap().collectors[0];
    assert_eq!(c.source, SourceConfig::HttpOnly);
    assert_eq!(
        c.http,
        Some(HttpIntake {
            max_body: 64 * 1024
        })
    );

    let err = error_text(&format!("{GOOD}[collector.http]\nmax-body = \"huge\"\n"));
    assert!(
        err.starts_with("/etc/mi/collectors.toml:19:12: collector.http.max-body: give a size"),
        "{err}"
    );
    let err = error_text(&format!("{GOOD}[collector.http]\nmax-bytes = 1\n"));
    assert!(
        err.starts_with("/etc/mi/collectors.toml:19:1: max-bytes: unknown field `max-bytes`"),
        "{err}"
    );
}
