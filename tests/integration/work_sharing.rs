//! Work sharing between daemons (issue 8): several `mailintake run` processes on one
//! PostgreSQL database run each collector once, through its lease; a daemon killed with
//! SIGKILL gives its collectors to the survivor within two lease lengths; and even two
//! daemons forced onto the same mailboxes (leases switched off) store each message once.
//!
//! Real things throughout: one Dovecot with four users (one mailbox per collector), one
//! PostgreSQL database per test, aiosmtpd for the notifications, the daemons as processes.
//! The lease is 2 s and the collectors poll every second, to keep the tests short.

use std::collections::BTreeMap;
use std::fs;
use std::process::Stdio;
use std::time::Duration;

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use mailintake::secret::Secret;
use mailintake::store::{Acquisition, LeaseHolder, SslMode, StorageUrl, Store};
use serde_json::Value;

use crate::kit::dovecot::{Dovecot, DovecotOptions};
use crate::kit::imap_server::MailboxMessage;
use crate::kit::mail::Corpus;
use crate::kit::postgres::{Postgres, TestDatabase};
use crate::kit::process::{Daemon, wait_until};
use crate::kit::sandbox::{Sandbox, success_json};
use crate::kit::smtp::SmtpServer;

const PASSWORD: &str = "secret";
const COLLECTORS: [&str; 4] = ["north", "south", "east", "west"];
const PASSWORD_ENV: &str = "MAILINTAKE_TEST_DB_PASSWORD";
/// Generous: the whole drain, notifications included, on a loaded machine.
const DRAIN: Duration = Duration::from_secs(120);

// --- the leases themselves, on both backends (no daemon) ---

fn holder(id: &str, pid: i64) -> LeaseHolder {
    LeaseHolder {
        id: id.into(),
        host: "host".into(),
        pid,
    }
}

/// Acquire, renew, expiry, takeover and release, as two holders see them on `url`.
fn leases_behave(url: &StorageUrl) {
    const LONG: Duration = Duration::from_secs(3600);
    let mut store = Store::open(url).unwrap();
    let (a, b) = (holder("a", 1), holder("b", 2));
    let c = ["c".to_string()];
    assert_eq!(
        store.acquire_lease("c", &a, LONG).unwrap(),
        Acquisition::Acquired
    );
    assert_eq!(
        store.acquire_lease("c", &a, LONG).unwrap(),
        Acquisition::Acquired,
        "one's own lease is acquired again (renewed)"
    );
    let Acquisition::Held(held) = store.acquire_lease("c", &b, LONG).unwrap() else {
        panic!("b took a running lease");
    };
    assert_eq!(
        (held.holder.as_str(), held.host.as_str(), held.pid),
        ("a", "host", 1)
    );
    assert!(store.renew_leases(&c, &b, LONG).unwrap().is_empty());
    assert_eq!(store.renew_leases(&c, &a, LONG).unwrap(), c);
    assert_eq!(
        store.release_leases(&c, &b).unwrap(),
        0,
        "not b's to release"
    );

    // Renewed for no time: expired, so free; b takes it over and a has lost it.
    store.renew_leases(&c, &a, Duration::ZERO).unwrap();
    assert!(store.running_leases().unwrap().is_empty());
    assert_eq!(
        store.acquire_lease("c", &b, LONG).unwrap(),
        Acquisition::Acquired
    );
    assert!(store.renew_leases(&c, &a, LONG).unwrap().is_empty());
    let running = store.running_leases().unwrap();
    assert_eq!(
        running
            .iter()
            .map(|l| (&*l.collector, l.pid))
            .collect::<Vec<_>>(),
        [("c", 2)]
    );

    // Released: free at once, for anyone.
    assert_eq!(store.release_leases(&c, &b).unwrap(), 1);
    assert!(store.running_leases().unwrap().is_empty());
    assert_eq!(
        store.acquire_lease("c", &a, LONG).unwrap(),
        Acquisition::Acquired
    );
}

#[test]
fn leases_are_acquired_renewed_expired_and_taken_over_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    leases_behave(&StorageUrl::Sqlite(dir.path().join("leases.db")));
}

#[test]
fn leases_are_acquired_renewed_expired_and_taken_over_on_postgres() {
    let db = Postgres::shared().fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password");
    fs::write(&password, &db.password).unwrap();
    let mut url = StorageUrl::parse(&db.url, dir.path()).unwrap();
    if let StorageUrl::Postgres(pg) = &mut url {
        pg.password = Some(Secret::File(password));
        pg.sslmode = SslMode::Disable;
    }
    leases_behave(&url);
}

// --- daemons ---

/// One Dovecot with a user per collector, each INBOX holding its share of `corpus` (message
/// `i` goes to collector `i % 4`).
fn mailboxes(corpus: &Corpus) -> Dovecot {
    let server = Dovecot::start(DovecotOptions::default());
    for user in COLLECTORS {
        server.add_user(user, PASSWORD);
    }
    // NOTE: one connection per mailbox, side by side: Dovecot syncs each APPEND to disk.
    std::thread::scope(|scope| {
        for (n, user) in COLLECTORS.iter().enumerate() {
            let server = &server;
            scope.spawn(move || {
                let mut imap = server.connect_as(user, PASSWORD);
                for message in corpus.messages.iter().skip(n).step_by(COLLECTORS.len()) {
                    imap.append("INBOX", &[], None, message);
                }
                imap.logout();
            });
        }
    });
    server
}

/// The four IMAP collectors on `imap_port`, storing in `db` (2 s leases), a notification for
/// every record to `smtp_port` (none: no `[smtp]`, nothing sent), no web server.
fn config(db: &TestDatabase, imap_port: u16, smtp_port: Option<u16>) -> String {
    let mut text = format!(
        "[storage]\nurl = \"{}\"\npassword-env = \"{PASSWORD_ENV}\"\nsslmode = \"disable\"\nlease-secs = 2\n\n[http]\nenabled = false\n\n",
        db.url
    );
    if let Some(port) = smtp_port {
        text.push_str(&format!(
            "[smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nfrom = \"Orders <orders@example.test>\"\n\n\
             [[notify]]\nname = \"every-record\"\non = \"created\"\nchannel = \"email\"\nto = [\"desk@example.test\"]\nsubject = \"record {{{{id}}}}\"\nbody = \"new\"\n\n"
        ));
    }
    for name in COLLECTORS {
        text.push_str(&format!(
            "[[queue]]\nname = \"{name}\"\n\n[[collector]]\nname = \"{name}\"\nqueue = \"{name}\"\nschedule = \"* * * * * *\"\n\
             [collector.imap]\nhost = \"127.0.0.1\"\nport = {imap_port}\ntls = \"none\"\nusername = \"{name}\"\npassword-file = \"imap-password\"\nmailbox = \"INBOX\"\ntimeout-secs = 10\n\n"
        ));
    }
    text
}

/// What the daemon tests run against: `messages` orders over the four mailboxes of one
/// Dovecot, a fresh database, and a sandbox whose config `a` has the four collectors (and a
/// notification for every record to `smtp`, if given).
struct Rig {
    imap: Dovecot,
    db: TestDatabase,
    sandbox: Sandbox,
}

fn rig(messages: usize, smtp: Option<&SmtpServer>) -> Rig {
    let imap = mailboxes(&Corpus::generate(messages));
    let db = Postgres::shared().fresh_database();
    let sandbox = sandbox(&[("a", &config(&db, imap.port(), smtp.map(SmtpServer::port)))]);
    Rig { imap, db, sandbox }
}

/// A sandbox with `config` in `NAME.toml`, and the IMAP password file.
fn sandbox(configs: &[(&str, &str)]) -> Sandbox {
    let sandbox = Sandbox::new();
    fs::write(sandbox.path("imap-password"), PASSWORD).unwrap();
    for (name, text) in configs {
        fs::write(sandbox.path(&format!("{name}.toml")), text).unwrap();
    }
    sandbox
}

/// `mailintake ARGS` on the sandbox's config `name`, with the database password.
fn command(
    sandbox: &Sandbox,
    db: &TestDatabase,
    name: &str,
    args: &[&str],
) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_mailintake"));
    command
        .arg("--config")
        .arg(sandbox.path(&format!("{name}.toml")))
        .args(args)
        .env(PASSWORD_ENV, &db.password)
        .env("MAILINTAKE_LOG", "warn");
    command
}

/// `mailintake run` on config `name`, logging into `LOG.log`.
fn daemon(
    sandbox: &Sandbox,
    db: &TestDatabase,
    name: &str,
    log: &str,
    ignore_leases: bool,
) -> Daemon {
    let mut command = command(sandbox, db, name, &["run"]);
    command
        .env("MAILINTAKE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(fs::File::create(sandbox.path(&format!("{log}.log"))).unwrap());
    if ignore_leases {
        command.env("MAILINTAKE_IGNORE_LEASES", "1");
    }
    Daemon::spawn(&mut command)
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn count(db: &TestDatabase, sql: &str) -> i64 {
    try_count(db, sql).unwrap()
}

/// `count`, or why not (the tables do not exist before a daemon has migrated).
fn try_count(db: &TestDatabase, sql: &str) -> Result<i64, String> {
    let mut conn = PgConnection::establish(&db.url_with_password).map_err(|e| e.to_string())?;
    diesel::sql_query(sql)
        .get_result::<Count>(&mut conn)
        .map(|c| c.n)
        .map_err(|e| e.to_string())
}

/// Waits until the database holds `want` records.
fn wait_for_records(db: &TestDatabase, want: i64) {
    wait_until(DRAIN, Duration::from_millis(200), || {
        let have = try_count(db, "SELECT count(*) AS n FROM records")?;
        if have >= want {
            Ok(())
        } else {
            Err(format!("{have} of {want} records"))
        }
    });
}

/// Exactly one record and one ledger row per message: `total` of each, `total` distinct
/// order numbers.
fn assert_each_message_stored_once(db: &TestDatabase, total: i64) {
    assert_eq!(count(db, "SELECT count(*) AS n FROM records"), total);
    assert_eq!(count(db, "SELECT count(*) AS n FROM ledger"), total);
    assert_eq!(
        count(db, "SELECT count(DISTINCT order_ref) AS n FROM records"),
        total
    );
}

/// Each collector's holder pid in `collectors status --json` (`None`: free).
fn holders(sandbox: &Sandbox, db: &TestDatabase) -> BTreeMap<String, Option<u64>> {
    let rows = success_json(
        command(sandbox, db, "a", &["collectors", "status", "--json"])
            .output()
            .unwrap(),
    );
    rows.as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let holder = &row["holder"];
            if !holder.is_null() {
                assert!(
                    holder["host"].as_str().is_some_and(|h| !h.is_empty()),
                    "{row}"
                );
            }
            (
                row["collector"].as_str().unwrap().to_string(),
                holder["pid"].as_u64(),
            )
        })
        .collect()
}

/// Waits until every collector's holder satisfies `wanted`; returns the holders.
fn wait_for_holders(
    sandbox: &Sandbox,
    db: &TestDatabase,
    wanted: impl Fn(Option<u64>) -> bool,
) -> BTreeMap<String, Option<u64>> {
    wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
        let holders = holders(sandbox, db);
        if holders.values().all(|pid| wanted(*pid)) {
            Ok(holders)
        } else {
            Err(format!("holders now: {holders:?}"))
        }
    })
}

/// The notifications each message the SMTP server got was: every Message-ID names a
/// notification (`<notification-ID@...>`); returns how many times each id arrived.
fn received_ids(smtp: &SmtpServer) -> BTreeMap<u64, usize> {
    let mut ids = BTreeMap::new();
    for message in smtp.received() {
        let message_id = message.header("Message-ID");
        let id = message_id
            .first()
            .and_then(|m| m.strip_prefix("<notification-"))
            .and_then(|m| m.split('@').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("not a notification: {:?}", message.headers));
        *ids.entry(id).or_insert(0) += 1;
    }
    ids
}

/// Waits until `sent` notifications are marked sent, then returns what the server received.
fn wait_for_sent(db: &TestDatabase, smtp: &SmtpServer, sent: i64) -> BTreeMap<u64, usize> {
    wait_until(DRAIN, Duration::from_millis(200), || {
        let have = count(
            db,
            "SELECT count(*) AS n FROM notifications WHERE status = 'sent'",
        );
        if have >= sent {
            Ok(())
        } else {
            Err(format!("{have} of {sent} notifications sent"))
        }
    });
    received_ids(smtp)
}

#[test]
fn two_daemons_share_four_collectors_and_store_and_notify_each_message_once() {
    const TOTAL: i64 = 2000;
    let smtp = SmtpServer::start();
    let Rig {
        imap: _imap,
        db,
        sandbox,
    } = rig(TOTAL as usize, Some(&smtp));
    let first = daemon(&sandbox, &db, "a", "first", false);
    let second = daemon(&sandbox, &db, "a", "second", false);
    let pids = [u64::from(first.id()), u64::from(second.id())];

    // While they drain, every collector is held by one of the two.
    let held = wait_for_holders(&sandbox, &db, |pid| pid.is_some());
    assert!(
        held.values().all(|pid| pids.contains(&pid.unwrap())),
        "{held:?}, daemons {pids:?}"
    );

    // And shared: whichever started first hands half over, so each runs two.
    wait_until(DRAIN, Duration::from_millis(200), || {
        let held = holders(&sandbox, &db);
        let each = pids.map(|daemon| held.values().filter(|&&pid| pid == Some(daemon)).count());
        if each == [2, 2] {
            Ok(())
        } else {
            Err(format!("{held:?}, daemons {pids:?}"))
        }
    });

    wait_for_records(&db, TOTAL);
    let received = wait_for_sent(&db, &smtp, TOTAL);
    assert_each_message_stored_once(&db, TOTAL);
    assert_eq!(count(&db, "SELECT count(*) AS n FROM notifications"), TOTAL);
    assert_eq!(received.len() as i64, TOTAL, "every notification arrived");
    assert!(received.values().all(|&n| n == 1), "none twice");

    // A graceful stop gives the leases back: the other daemon takes them at once.
    assert!(first.terminate().success());
    let survivor = pids[1];
    wait_for_holders(&sandbox, &db, |pid| pid == Some(survivor));
    assert!(second.terminate().success());
    let free = holders(&sandbox, &db);
    assert!(
        free.values().all(Option::is_none),
        "released at stop: {free:?}"
    );
}

#[test]
fn a_killed_daemons_collectors_are_taken_over_and_the_totals_stay_exact() {
    const TOTAL: i64 = 1000;
    let smtp = SmtpServer::start();
    let Rig {
        imap: _imap,
        db,
        sandbox,
    } = rig(TOTAL as usize, Some(&smtp));

    // The first daemon alone takes every collector; the second waits beside it.
    let first = daemon(&sandbox, &db, "a", "first", false);
    let first_pid = u64::from(first.id());
    wait_for_holders(&sandbox, &db, |pid| pid == Some(first_pid));
    let second = daemon(&sandbox, &db, "a", "second", false);
    let second_pid = u64::from(second.id());
    wait_for_records(&db, 100);

    // Killed mid-drain: nothing released, its leases run out, the survivor takes them.
    first.kill();
    let killed_at = chrono::Utc::now().naive_utc();
    let before = count(&db, "SELECT count(*) AS n FROM records");
    assert!(
        before < TOTAL,
        "the drain was over before the kill ({before})"
    );
    wait_for_holders(&sandbox, &db, |pid| pid == Some(second_pid));
    wait_for_records(&db, TOTAL);
    assert_each_message_stored_once(&db, TOTAL);
    assert_eq!(count(&db, "SELECT count(*) AS n FROM notifications"), TOTAL);

    // Notifications: the survivor sends every one the dead daemon had not claimed; those
    // its last claim holds (claimed before the kill, so held until before `killed_at` plus
    // the 15-minute claim) wait for the claim to run out, and none arrives twice meanwhile.
    let dead_claims = format!(
        "SELECT count(*) AS n FROM notifications WHERE status = 'queued' AND claimed_until <= '{}'",
        killed_at + chrono::TimeDelta::minutes(15)
    );
    let sent = "SELECT count(*) AS n FROM notifications WHERE status = 'sent'";
    let mut last_sent = -1;
    let held = wait_until(DRAIN, Duration::from_secs(1), || {
        let (now_sent, held) = (count(&db, sent), count(&db, &dead_claims));
        let settled = std::mem::replace(&mut last_sent, now_sent) == now_sent;
        if settled && now_sent + held >= TOTAL {
            Ok(held)
        } else {
            Err(format!(
                "{now_sent} sent, {held} held by the dead daemon's claim, of {TOTAL}"
            ))
        }
    });
    let received = received_ids(&smtp);
    assert!(received.values().all(|&n| n == 1), "none twice");
    assert_eq!(
        received.len() as i64,
        count(&db, sent),
        "every one sent arrived"
    );
    assert!(
        received.len() as i64 >= TOTAL - held,
        "every notification not held by the dead daemon arrived"
    );
    assert!(second.terminate().success());
}

#[test]
fn two_daemons_without_leases_on_the_same_mailboxes_still_store_each_message_once() {
    const TOTAL: i64 = 400;
    let Rig { imap, db, sandbox } = rig(TOTAL as usize, None);
    let first = daemon(&sandbox, &db, "a", "first", true);
    let second = daemon(&sandbox, &db, "a", "second", true);
    wait_for_records(&db, TOTAL);
    // Both kept polling the same mailboxes meanwhile; a few more passes find nothing new.
    wait_until(DRAIN, Duration::from_millis(200), || {
        let idle = COLLECTORS
            .iter()
            .all(|user| MailboxMessage::unseen(&imap.messages(user, "INBOX")) == 0);
        if idle {
            Ok(())
        } else {
            Err("messages not yet acknowledged")
        }
    });
    assert_each_message_stored_once(&db, TOTAL);
    for log in ["first", "second"] {
        let text = fs::read_to_string(sandbox.path(&format!("{log}.log"))).unwrap();
        assert!(text.contains("MAILINTAKE_IGNORE_LEASES=1"), "{text}");
    }
    // Nobody holds a lease: they were ignored.
    assert!(holders(&sandbox, &db).values().all(Option::is_none));
    assert!(first.terminate().success());
    assert!(second.terminate().success());
}

/// `collect` skips a collector a daemon holds, with a line saying who (its mail is being
/// collected: not a failure).
#[test]
fn collect_skips_the_collectors_a_daemon_holds() {
    let Rig {
        imap: _imap,
        db,
        sandbox,
    } = rig(8, None);
    let running = daemon(&sandbox, &db, "a", "daemon", false);
    let pid = running.id();
    wait_for_records(&db, 8);
    let out = command(&sandbox, &db, "a", &["collect"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    for name in COLLECTORS {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("{name}: held by "))
                    && l.contains(&format!(":{pid} until "))
                    && l.ends_with(", skipped")),
            "{stdout}"
        );
    }
    assert!(running.terminate().success());
    // Released by the daemon's stop: collect runs them all, and gives them back too.
    let out = command(&sandbox, &db, "a", &["collect", "--json"])
        .output()
        .unwrap();
    let reports: Value = success_json(out);
    assert_eq!(
        reports.as_array().unwrap().len(),
        COLLECTORS.len(),
        "{reports}"
    );
    assert!(holders(&sandbox, &db).values().all(Option::is_none));
    assert_each_message_stored_once(&db, 8);
}
