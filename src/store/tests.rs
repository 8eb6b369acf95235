//! Store tests on a real SQLite file: what the store adds to the pure rules (the refused
//! change writes nothing; damaged stored data is reported, not hidden).

use diesel::prelude::*;

use super::schema::records;
use super::{StorageUrl, Store, StoreError, insert};
use crate::domain::{Refusal, StatusChange, StatusNames};

/// A store holding one lead (status `new`) from the mapping of a small order file.
pub(super) fn store_with_a_lead() -> (tempfile::TempDir, Store, i64) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&StorageUrl::Sqlite(dir.path().join("t.db"))).unwrap();
    let (payload, envelope) = crate::mapping::test_input(
        r#"{"Телефон": "+7 900 000-00-00", "ИНН": "7709745454"}"#,
        "order.txt",
        "utf-8",
    );
    let record = crate::mapping::map_order_json(&payload, None, &envelope).unwrap();
    let Store { conn, ids, .. } = &mut store;
    let id = insert::insert_record(conn, ids, "c", "q", &record, "test").unwrap();
    (dir, store, id)
}

#[test]
fn a_refused_status_change_writes_nothing() {
    let (_dir, mut store, id) = store_with_a_lead();
    let names = StatusNames::default();
    let err = store
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
    assert_eq!(
        err.to_string(),
        format!(
            "record {id}: cannot accept it: its status is `new` (only a resolved record awaits the customer's answer)"
        )
    );
    assert_eq!(store.record(id).unwrap().unwrap().status, "new");
    assert_eq!(store.record_events(id).unwrap().len(), 1, "only `created`");

    let new = store
        .change_status(id, &names, StatusChange::Start, "tech")
        .unwrap();
    assert_eq!(new, "in-progress");
    assert_eq!(store.record(id).unwrap().unwrap().status, "in-progress");
}

#[test]
fn a_stored_record_keeps_its_typed_values() {
    let (_dir, mut store, id) = store_with_a_lead();
    let record = store.record(id).unwrap().unwrap().record;
    assert_eq!(record.phone.unwrap().digits(), Some("79000000000"));
    assert!(record.inn.unwrap().is_valid());
}

#[test]
fn unreadable_json_columns_are_reported_with_table_row_and_column() {
    let (_dir, mut store, id) = store_with_a_lead();
    diesel::update(records::table.find(id))
        .set(records::warnings.eq("not json"))
        .execute(&mut store.conn)
        .unwrap();
    match store.record(id) {
        Err(StoreError::Corrupt {
            table: "records",
            id: row,
            column: "warnings",
            ..
        }) => assert_eq!(row, id),
        other => panic!("expected a corrupt `warnings` column, got {other:?}"),
    }
}

/// An accepted message for [`Store::commit_batch`] whose bytes are `raw`.
fn accepted(key: &str, raw: &[u8]) -> super::Incoming {
    let (payload, envelope) =
        crate::mapping::test_input(r#"{"Телефон": "+7 900 000-00-01"}"#, "order.txt", "utf-8");
    let record = crate::mapping::map_order_json(&payload, None, &envelope).unwrap();
    super::Incoming {
        source_key: key.to_string(),
        envelope: crate::decode::Envelope {
            message_id: Some(format!("<{key}@test>")),
            subject: None,
            fingerprint: crate::decode::Fingerprint::of(raw),
            date: None,
        },
        raw: raw.to_vec(),
        record: Ok(Box::new(record)),
    }
}

#[test]
fn an_accepted_message_s_bytes_commit_with_its_record_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&StorageUrl::Sqlite(dir.path().join("t.db"))).unwrap();
    let committed = store
        .commit_batch("c", "q", &[accepted("one", b"From: a\r\n\r\none\xff")])
        .unwrap();
    let super::Committed::Created(id) = committed[0] else {
        panic!("{committed:?}");
    };
    assert_eq!(
        store.record_source(id).unwrap().as_deref(),
        Some(&b"From: a\r\n\r\none\xff"[..])
    );
    assert!(store.has_record_source(id).unwrap());

    // The second message's bytes cannot be written: the first message's record goes too.
    diesel::sql_query(
        "CREATE TRIGGER refuse BEFORE INSERT ON record_sources WHEN NEW.raw = X'626164' \
         BEGIN SELECT RAISE(ABORT, 'injected'); END",
    )
    .execute(&mut store.conn)
    .unwrap();
    let batch = [accepted("two", b"fine"), accepted("three", b"bad")];
    store.commit_batch("c", "q", &batch).unwrap_err();
    let stored: i64 = records::table.count().get_result(&mut store.conn).unwrap();
    assert_eq!(stored, 1, "only the first batch's record");
    let ledger: i64 = super::schema::ledger::table
        .count()
        .get_result(&mut store.conn)
        .unwrap();
    assert_eq!(ledger, 1, "only the first batch's ledger row");
    assert!(!store.has_record_source(id + 1).unwrap());
}
