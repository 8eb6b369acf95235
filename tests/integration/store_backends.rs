//! The store's behaviour on both backends (issue 8): each scenario below runs on a SQLite
//! file and on a fresh PostgreSQL database ([`on_both_backends!`]), through the public store
//! API and the collectors' own commit step, so a difference between the backends (unique
//! violations, NULL ordering, timestamp precision, integer widths) fails one of the pair.
//!
//! SQLite-only facts (WAL, `quick_check`, a file replaced while open) stay in
//! `src/store/integrity.rs`; the CLI-level flow on both backends is in `backend_matrix.rs`.

use std::fs;

use chrono::{TimeDelta, Timelike, Utc};
use diesel::prelude::*;
use mailintake::config::Config;
use mailintake::domain::{
    Refusal, RequestType, Role, StatusChange, StatusNames, TokenScope, Triage,
};
use mailintake::ingest::{CollectReport, Fetched, Retried, commit_messages, retry_quarantined};
use mailintake::store::schema::ledger;
use mailintake::store::{
    self, Attempt, Committed, Due, NewNotification, PageOrder, PagePosition, RecordFilter,
    RunOutcome, Store, StoreError, TriageFilter,
};

use crate::kit::backend::{Backend, on_both_backends};
use crate::kit::mail::{FAULT_FORMAT, fault_report, order_message};
use crate::kit::sandbox::{Sandbox, sample};

on_both_backends!(
    a_batch_stores_each_message_once_with_ids_in_order,
    a_refused_status_change_writes_nothing,
    a_quarantined_message_is_retried_after_a_fix_or_dismissed,
    triage_lists_and_classifies_pending_requests,
    records_are_found_by_phone_suffix_and_contact,
    a_claimed_notification_is_not_claimed_again_until_marked_or_released,
    users_and_sessions_come_and_go,
    a_live_token_name_is_taken_until_revoked,
    pages_by_update_walk_every_record_once,
    skipped_messages_are_remembered_and_forgotten,
    failing_since_is_the_first_failure_after_a_success,
);

/// The `orders` collector's `default-charset` line, which a test rewrites to fix the config.
const ORDERS_CHARSET: &str = "default-charset = \"windows-1251\"\n";

/// A sandbox whose config has an `orders` collector (the default order format) and a
/// `triage` one (fault reports), stored on `backend`, with its store open.
struct Installed {
    sandbox: Sandbox,
    config: Config,
    store: Store,
}

impl Installed {
    fn new(backend: Backend) -> Installed {
        let sandbox = Sandbox::new();
        let collector = |name: &str, extra: &str| {
            format!(
                "[[queue]]\nname = \"{name}\"\n\n[[collector]]\nname = \"{name}\"\nqueue = \"{name}\"\nschedule = \"0 */5 * * * *\"\n{extra}\n[collector.maildir]\npath = \"mail/{name}\"\n\n"
            )
        };
        let text = format!(
            "[storage]\nurl = \"sqlite://data/mailintake.db\"\n\n{}{}{FAULT_FORMAT}",
            collector("orders", ORDERS_CHARSET),
            collector("triage", "format = \"emes-fault\"\n"),
        );
        fs::write(sandbox.path("collectors.toml"), text).unwrap();
        sandbox.maildir("mail/orders");
        sandbox.maildir("mail/triage");
        backend.install(&sandbox);
        let config = Config::load(&sandbox.path("collectors.toml")).unwrap();
        let mut store = Store::open(&config.storage).unwrap();
        store.set_notify_rules(config.notify.clone());
        Installed {
            sandbox,
            config,
            store,
        }
    }

    /// Replaces `from` by `to` in the config and loads it again.
    fn reconfigure(&mut self, from: &str, to: &str) {
        let path = self.sandbox.path("collectors.toml");
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{text}");
        fs::write(&path, text.replacen(from, to, 1)).unwrap();
        self.config = Config::load(&path).unwrap();
    }

    /// Commits `messages` `(source key, bytes)` as one batch of collector `name`.
    fn commit(&mut self, name: &str, messages: &[(&str, &[u8])]) -> Vec<Committed> {
        let collector = self.config.collector(name).unwrap();
        let fetched = messages
            .iter()
            .map(|(key, raw)| Fetched::whole(key.to_string(), raw.to_vec()))
            .collect();
        let mut report = CollectReport::default();
        commit_messages(collector, &mut self.store, fetched, &mut report)
            .unwrap()
            .into_iter()
            .map(|c| c.expect("every message is for us"))
            .collect()
    }

    /// Commits fault reports `n` from `138000000nn`, described as `fault n`, one per batch.
    fn fault_reports(&mut self, count: u32) -> Vec<i64> {
        (1..=count)
            .map(|n| {
                let raw = fault_report(n, &format!("138{n:08}"), &format!("fault {n}"));
                let key = format!("{n}.M{n}.mx");
                self.commit("triage", &[(&key, &raw)])[0]
                    .record_id()
                    .unwrap()
            })
            .collect()
    }
}

fn a_batch_stores_each_message_once_with_ids_in_order(backend: Backend) {
    use Committed::{Created, Duplicate};
    let mut at = Installed::new(backend);
    let one = order_message(1, "7709745454", 3);
    assert_eq!(at.commit("orders", &[("old", &one)]), [Created(1)]);

    let (two, three) = (order_message(2, "7709745454", 6), order_message(3, "", 1));
    let committed = at.commit(
        "orders",
        &[
            ("a", &two),
            // The same bytes under another position: a copy of `a`.
            ("a-copy", &two),
            ("b", &three),
            // The same position twice: seen again.
            ("b", &three),
            // A position and a content the ledger knew before this batch.
            ("old", &one),
            ("old-copy", &one),
        ],
    );
    assert_eq!(
        committed,
        [
            Created(2),
            Duplicate { record_id: Some(2) },
            Created(3),
            Duplicate { record_id: Some(3) },
            Duplicate { record_id: Some(1) },
            Duplicate { record_id: Some(1) },
        ]
    );
    let records = at.store.list_records(&RecordFilter::default()).unwrap();
    let ids: Vec<i64> = records.iter().map(|r| r.id).collect();
    assert_eq!(ids, [1, 2, 3]);
    let lines: Vec<usize> = records.iter().map(|r| r.record.lines.len()).collect();
    assert_eq!(lines, [3, 6, 1]);
    // One tech card per goods line but the service (line 2).
    let cards: Vec<Vec<i32>> = records
        .iter()
        .map(|r| r.tech_cards.iter().map(|c| c.line).collect())
        .collect();
    assert_eq!(cards, [vec![1, 3], vec![1, 3, 4, 5, 6], vec![1]]);
    assert_eq!(records[0].counterparty_id, records[1].counterparty_id);
    assert!(records[0].counterparty_id.is_some());
    assert_eq!(
        at.store.record_source(2).unwrap().as_deref(),
        Some(&two[..])
    );
    let mut conn = store::connect(&at.config.storage).unwrap();
    let rows: Vec<(String, String, Option<i64>)> = ledger::table
        .select((ledger::source_key, ledger::outcome, ledger::record_id))
        .order(ledger::id)
        .load(&mut conn)
        .unwrap();
    let row = |key: &str, outcome: &str, id: i64| (key.to_string(), outcome.to_string(), Some(id));
    assert_eq!(
        rows,
        [
            row("old", "accepted", 1),
            row("a", "accepted", 2),
            row("a-copy", "duplicate", 2),
            row("b", "accepted", 3),
            row("old-copy", "duplicate", 1),
        ],
        "a position seen before gets no second row"
    );
}

fn a_refused_status_change_writes_nothing(backend: Backend) {
    let mut at = Installed::new(backend);
    let id = at.commit("orders", &[("1", &order_message(1, "7709745454", 1))])[0]
        .record_id()
        .unwrap();
    let names = StatusNames::default();
    let err = at
        .store
        .change_status(id, &names, StatusChange::Accept, "customer")
        .unwrap_err();
    assert!(
        matches!(
            &err,
            StoreError::Refused {
                reason: Refusal::Transition { .. },
                ..
            }
        ),
        "{err}"
    );
    let stored = at.store.record(id).unwrap().unwrap();
    assert_eq!(stored.status, "new");
    assert_eq!(stored.updated_at, stored.created_at);
    assert_eq!(
        at.store.record_events(id).unwrap().len(),
        1,
        "only `created`"
    );

    let started = at
        .store
        .change_status(id, &names, StatusChange::Start, "tech")
        .unwrap();
    assert_eq!(started, "in-progress");
    let resolved = at
        .store
        .change_status(
            id,
            &names,
            StatusChange::Resolve { result: "fixed" },
            "tech",
        )
        .unwrap();
    assert_eq!(resolved, "resolved");
    let stored = at.store.record(id).unwrap().unwrap();
    assert_eq!(
        (stored.status.as_str(), stored.result.as_deref()),
        ("resolved", Some("fixed"))
    );
    assert!(stored.updated_at > stored.created_at);
    let events: Vec<String> = at
        .store
        .record_events(id)
        .unwrap()
        .iter()
        .map(|e| e.event.to_string())
        .collect();
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(
        at.store.record_events(id).unwrap()[2].actor,
        "tech",
        "{events:?}"
    );
}

fn a_quarantined_message_is_retried_after_a_fix_or_dismissed(backend: Backend) {
    let mut at = Installed::new(backend);
    // A wrong default charset: the undeclared cp1251 attachment cannot be read as JSON.
    at.reconfigure(ORDERS_CHARSET, "default-charset = \"utf-16le\"\n");
    let lead = sample("02-lead-octet-stream.eml");
    let truncated = sample("26-truncated-json.eml");
    let committed = at.commit("orders", &[("1", &lead), ("2", &truncated)]);
    let [
        Committed::Quarantined(first),
        Committed::Quarantined(second),
    ] = committed[..]
    else {
        panic!("{committed:?}");
    };
    let open = at.store.quarantine_entries(false).unwrap();
    assert_eq!(
        open.iter().map(|e| e.id).collect::<Vec<_>>(),
        [first, second]
    );
    assert_eq!(open[0].raw, lead, "kept byte for byte");
    assert_eq!(open[0].status, "open");

    let still = retry_quarantined(&at.config, &mut at.store, first, "admin").unwrap();
    assert!(matches!(still, Retried::Quarantined { .. }), "{still:?}");
    at.reconfigure("default-charset = \"utf-16le\"\n", ORDERS_CHARSET);
    let retried = retry_quarantined(&at.config, &mut at.store, first, "admin").unwrap();
    let Retried::Accepted { record_id } = retried else {
        panic!("{retried:?}");
    };
    assert_eq!(at.store.record_source(record_id).unwrap(), Some(lead));
    let entry = at.store.quarantine_entry(first).unwrap();
    assert_eq!(
        (entry.status.as_str(), entry.record_id),
        ("released", Some(record_id))
    );
    let ledger = at.store.ledger_entries("orders", &["1"]).unwrap();
    assert_eq!(ledger["1"].record_id, Some(record_id));

    at.store.dismiss_quarantine(second).unwrap();
    let again = at.store.dismiss_quarantine(second).unwrap_err();
    assert!(
        matches!(again, StoreError::QuarantineNotOpen { id, .. } if id == second),
        "{again}"
    );
    assert!(at.store.quarantine_entries(false).unwrap().is_empty());
    let all: Vec<(i64, String)> = at
        .store
        .quarantine_entries(true)
        .unwrap()
        .into_iter()
        .map(|e| (e.id, e.status))
        .collect();
    assert_eq!(
        all,
        [
            (first, "released".to_string()),
            (second, "dismissed".to_string())
        ]
    );
}

fn triage_lists_and_classifies_pending_requests(backend: Backend) {
    let mut at = Installed::new(backend);
    let ids = at.fault_reports(3);
    let pending = TriageFilter::default();
    assert_eq!(at.store.triage_ids(&pending).unwrap(), ids);
    at.store.triage(ids[1], Triage::Fault, &[], "desk").unwrap();
    assert_eq!(at.store.triage_ids(&pending).unwrap(), [ids[0], ids[2]]);
    let by_phone = TriageFilter {
        phone_digits: Some("00000003".into()),
        ..TriageFilter::default()
    };
    assert_eq!(at.store.triage_ids(&by_phone).unwrap(), [ids[2]]);
    let record = at.store.record(ids[1]).unwrap().unwrap();
    let service = record.record.service.unwrap();
    assert_eq!(service.request_type, RequestType::Fault);
    // Numbered by day and sequence, the second of today's.
    assert!(
        service.number.as_deref().unwrap().ends_with("0002"),
        "{:?}",
        service.number
    );
    // An order is not a service request.
    let order = at.commit("orders", &[("1", &order_message(1, "7709745454", 1))])[0]
        .record_id()
        .unwrap();
    let refused = at
        .store
        .triage(order, Triage::Fault, &[], "desk")
        .unwrap_err();
    assert!(
        matches!(
            refused,
            StoreError::Refused {
                reason: Refusal::NotServiceRequest,
                ..
            }
        ),
        "{refused}"
    );
}

fn records_are_found_by_phone_suffix_and_contact(backend: Backend) {
    let mut at = Installed::new(backend);
    // Orders 1 and 1001 share a contact (the phone from the last four digits).
    let batch: Vec<(String, Vec<u8>)> = [1, 2, 1001]
        .iter()
        .map(|n| (n.to_string(), order_message(*n, "7709745454", 1)))
        .collect();
    let refs: Vec<(&str, &[u8])> = batch
        .iter()
        .map(|(k, raw)| (k.as_str(), raw.as_slice()))
        .collect();
    at.commit("orders", &refs);
    let phone = at.store.record(1).unwrap().unwrap().record.phone.unwrap();
    let digits = phone.digits().unwrap().to_string();
    let filter = RecordFilter {
        phone_digits: Some(digits[digits.len() - 6..].to_string()),
        ..RecordFilter::default()
    };
    let found: Vec<i64> = at
        .store
        .list_records(&filter)
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(found, [1, 3]);
    assert_eq!(at.store.contact_record_ids(&digits).unwrap(), [1, 3]);
    let records = at.store.records_by_ids(&[3, 1]).unwrap();
    assert_eq!(records[0].contact_id, records[1].contact_id);
}

fn a_claimed_notification_is_not_claimed_again_until_marked_or_released(backend: Backend) {
    let mut at = Installed::new(backend);
    let record = at.commit("orders", &[("1", &order_message(1, "7709745454", 1))])[0]
        .record_id()
        .unwrap();
    let recipients = ["a@example.test".to_string(), "b@example.test".to_string()];
    let id = at
        .store
        .queue_notification(&NewNotification {
            record_id: record,
            rule: "r",
            channel: "email",
            recipients: &recipients,
            subject: "s",
            body: "b",
        })
        .unwrap();
    assert_eq!(at.store.queued_notifications().unwrap(), 1);
    let hold = Utc::now().naive_utc() + TimeDelta::minutes(15);
    let first = at
        .store
        .claim_notifications(Due::ByBackoff, 10, hold)
        .unwrap();
    assert_eq!((first.len(), first[0].attempts), (1, 1));
    assert_eq!(first[0].recipients, recipients);
    for due in [Due::ByBackoff, Due::IgnoringBackoff] {
        assert!(
            at.store
                .claim_notifications(due, 10, hold)
                .unwrap()
                .is_empty()
        );
    }
    at.store.release_notification(&first[0]).unwrap();
    let again = at
        .store
        .claim_notifications(Due::ByBackoff, 10, hold)
        .unwrap();
    assert_eq!((again[0].id, again[0].attempts), (id, 1));

    // NOTE: a whole second, so the retry time reads back equal on PostgreSQL (microseconds)
    // as on SQLite.
    let later = (Utc::now() + TimeDelta::hours(1))
        .naive_utc()
        .with_nanosecond(0)
        .unwrap();
    let failed = Attempt::Failed {
        error: "down",
        retry_at: Some(later),
    };
    at.store.mark_notification(&again[0], &failed).unwrap();
    assert_eq!(at.store.next_notification_due().unwrap(), Some(later));
    assert!(
        at.store
            .claim_notifications(Due::ByBackoff, 10, hold)
            .unwrap()
            .is_empty()
    );
    let forced = at
        .store
        .claim_notifications(Due::IgnoringBackoff, 10, hold)
        .unwrap();
    assert_eq!(forced[0].attempts, 2);
    at.store
        .mark_notification(&forced[0], &Attempt::Sent { reply: "250 OK" })
        .unwrap();
    assert_eq!(at.store.next_notification_due().unwrap(), None);
    assert_eq!(at.store.queued_notifications().unwrap(), 0);
}

fn users_and_sessions_come_and_go(backend: Backend) {
    let mut at = Installed::new(backend);
    let queues = ["orders".to_string(), "Zoo".to_string()];
    at.store
        .add_user("mia", Role::Manager, "hash-1", &queues)
        .unwrap();
    let taken = at
        .store
        .add_user("mia", Role::Admin, "hash-2", &[])
        .unwrap_err();
    assert!(
        matches!(&taken, StoreError::UserExists(name) if name == "mia"),
        "{taken}"
    );
    // The refused user left nothing behind, and the store goes on working.
    at.store
        .add_user("ann", Role::Admin, "hash-3", &[])
        .unwrap();
    // Names sort by their bytes on either backend, whatever the database's language.
    at.store
        .add_user("Zoe", Role::Admin, "hash-5", &[])
        .unwrap();
    let users: Vec<(String, Vec<String>)> = at
        .store
        .users()
        .unwrap()
        .into_iter()
        .map(|u| (u.name, u.queues))
        .collect();
    assert_eq!(
        users,
        [
            ("Zoe".to_string(), vec![]),
            ("ann".to_string(), vec![]),
            (
                "mia".to_string(),
                vec!["Zoo".to_string(), "orders".to_string()]
            )
        ],
        "by name"
    );
    let (mia, hash) = at.store.active_user("mia").unwrap().unwrap();
    assert_eq!((mia.role, hash.as_str()), (Role::Manager, "hash-1"));

    let expires = Utc::now().naive_utc() + TimeDelta::hours(1);
    at.store
        .create_session("token-hash", mia.id, "csrf", expires)
        .unwrap();
    let session = at.store.session("token-hash").unwrap().unwrap();
    assert_eq!(
        (session.user.name.as_str(), session.csrf.as_str()),
        ("mia", "csrf")
    );
    at.store.end_session("token-hash").unwrap();
    assert!(at.store.session("token-hash").unwrap().is_none());

    at.store
        .create_session("other-hash", mia.id, "csrf", expires)
        .unwrap();
    assert!(at.store.set_password("mia", "hash-4").unwrap());
    assert!(
        at.store.session("other-hash").unwrap().is_none(),
        "a new password ends the sessions"
    );
    assert!(at.store.disable_user("mia").unwrap());
    assert!(at.store.active_user("mia").unwrap().is_none());
    assert!(!at.store.disable_user("nobody").unwrap());
}

fn a_live_token_name_is_taken_until_revoked(backend: Backend) {
    let mut at = Installed::new(backend);
    let intake = TokenScope::Intake {
        collector: "orders".into(),
    };
    at.store.add_token("site", &intake, "hash-1").unwrap();
    let taken = at
        .store
        .add_token("site", &TokenScope::Read, "hash-2")
        .unwrap_err();
    assert!(
        matches!(&taken, StoreError::TokenExists(name) if name == "site"),
        "{taken}"
    );
    let found = at.store.token_by_hash("hash-1").unwrap().unwrap();
    assert_eq!((found.name.as_str(), &found.scope_value), ("site", &intake));
    assert!(at.store.revoke_token("site").unwrap());
    assert!(!at.store.revoke_token("site").unwrap());
    assert!(at.store.token_by_hash("hash-1").unwrap().is_none());
    at.store
        .add_token("site", &TokenScope::Read, "hash-2")
        .unwrap();
    let tokens: Vec<(String, bool)> = at
        .store
        .tokens()
        .unwrap()
        .into_iter()
        .map(|t| (t.name, t.revoked))
        .collect();
    assert_eq!(
        tokens,
        [("site".to_string(), true), ("site".to_string(), false)]
    );
}

fn pages_by_update_walk_every_record_once(backend: Backend) {
    let mut at = Installed::new(backend);
    let ids = at.fault_reports(5);
    at.store
        .triage(ids[1], Triage::Consult, &[], "desk")
        .unwrap();
    let filter = RecordFilter::default();
    let walk = |store: &mut Store, order: PageOrder, filter: &RecordFilter| {
        let mut seen = Vec::new();
        let mut after: Option<PagePosition> = None;
        loop {
            let page = store
                .records_page(filter, order, after.as_ref(), 2)
                .unwrap();
            let Some(last) = page.last() else { break };
            after = Some(PagePosition::after(last, order));
            seen.extend(page.iter().map(|r| r.id));
        }
        seen
    };
    assert_eq!(walk(&mut at.store, PageOrder::Id, &filter), ids);
    let by_update = walk(&mut at.store, PageOrder::Updated, &filter);
    assert_eq!(by_update, [ids[0], ids[2], ids[3], ids[4], ids[1]]);
    let changed = at.store.record(ids[1]).unwrap().unwrap().updated_at;
    let since = RecordFilter {
        updated_since: Some(changed.naive_utc()),
        ..RecordFilter::default()
    };
    assert_eq!(walk(&mut at.store, PageOrder::Updated, &since), [ids[1]]);
}

fn skipped_messages_are_remembered_and_forgotten(backend: Backend) {
    let mut at = Installed::new(backend);
    let keys = ["1:5".to_string(), "1:7".to_string()];
    at.store
        .remember_skipped("orders", "rules-a", &keys)
        .unwrap();
    // Remembering again (a second pass, another daemon) is harmless.
    at.store
        .remember_skipped("orders", "rules-a", &keys[1..])
        .unwrap();
    let mut remembered = at.store.skipped_positions("orders").unwrap();
    remembered.sort();
    let pair = |k: &str| (k.to_string(), "rules-a".to_string());
    assert_eq!(remembered, [pair("1:5"), pair("1:7")]);
    assert!(at.store.skipped_positions("triage").unwrap().is_empty());
    at.store.forget_skipped("orders", &keys[..1]).unwrap();
    assert_eq!(at.store.skipped_positions("orders").unwrap(), [pair("1:7")]);
}

fn failing_since_is_the_first_failure_after_a_success(backend: Backend) {
    let mut at = Installed::new(backend);
    let counts = serde_json::json!({});
    let failing_since = |store: &mut Store| {
        store
            .collector_state("orders")
            .unwrap()
            .unwrap()
            .failing_since
    };
    at.store
        .record_run("orders", RunOutcome::Success(&counts), None)
        .unwrap();
    assert_eq!(failing_since(&mut at.store), None);
    at.store
        .record_run("orders", RunOutcome::Failure("down", None), None)
        .unwrap();
    let first = failing_since(&mut at.store).expect("a failure starts the count");
    // Long enough for the clock to move at either backend's precision.
    std::thread::sleep(std::time::Duration::from_millis(5));
    at.store
        .record_run("orders", RunOutcome::Failure("down", None), None)
        .unwrap();
    assert_eq!(
        failing_since(&mut at.store),
        Some(first),
        "later failures keep it"
    );
    at.store.save_position("orders", 7, 42).unwrap();
    let state = at.store.collector_state("orders").unwrap().unwrap();
    assert_eq!(
        (
            state.uidvalidity,
            state.last_uid,
            state.last_error.as_deref()
        ),
        (Some(7), Some(42), Some("down"))
    );
    at.store
        .record_run("orders", RunOutcome::Success(&counts), None)
        .unwrap();
    assert_eq!(failing_since(&mut at.store), None);
    // Listed by name, bytewise on either backend.
    at.store
        .record_run("Zed", RunOutcome::Success(&counts), None)
        .unwrap();
    let names: Vec<String> = at
        .store
        .collector_states()
        .unwrap()
        .into_iter()
        .map(|s| s.collector)
        .collect();
    assert_eq!(names, ["Zed", "orders"]);
}
