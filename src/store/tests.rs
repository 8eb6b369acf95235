//! Store tests on a real SQLite file that reach inside the store (its connection, its
//! tables): damaged stored data is reported, not hidden; a batch's rows and bytes commit
//! together. The store's behaviour through its public API runs on both backends in
//! `tests/integration/store_backends.rs`.

use diesel::prelude::*;

use super::schema::records;
use super::{StorageUrl, Store, StoreError, insert};

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

/// An accepted message whose order has `lines` goods lines, the second of them a service
/// (no tech card).
fn accepted_with_lines(key: &str, lines: usize) -> super::Incoming {
    let goods: Vec<String> = (0..lines)
        .map(|l| {
            format!(
                r#"{{"Номенклатура": "{key}-{l}", "Количество": 1, "Услуга": {}}}"#,
                l == 1
            )
        })
        .collect();
    let json = format!(
        r#"{{"Телефон": "+7 900 000-00-01", "Товары": [{}]}}"#,
        goods.join(", ")
    );
    let (payload, envelope) = crate::mapping::test_input(&json, "order.txt", "utf-8");
    let record = crate::mapping::map_order_json(&payload, None, &envelope).unwrap();
    super::Incoming {
        record: Ok(Box::new(record)),
        ..accepted(key, key.as_bytes())
    }
}

#[test]
fn a_batch_s_rows_get_the_ids_and_order_of_one_insert_per_row() {
    use super::schema::{record_events, record_lines, record_sources, tech_cards};
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&StorageUrl::Sqlite(dir.path().join("t.db"))).unwrap();
    // 45 records of 1 to 6 lines: chunks of every size, and single rows, in each table.
    let batch: Vec<_> = (0..45)
        .map(|i| accepted_with_lines(&format!("m{i:02}"), 1 + i % 6))
        .collect();
    let committed = store.commit_batch("c", "q", &batch).unwrap();
    let ids: Vec<i64> = committed.iter().map(|c| c.record_id().unwrap()).collect();
    assert_eq!(ids, (1..=45).collect::<Vec<_>>());

    let lines: Vec<(i64, i64, i32, Option<String>)> = record_lines::table
        .select((
            record_lines::id,
            record_lines::record_id,
            record_lines::position,
            record_lines::item,
        ))
        .order(record_lines::id)
        .load(&mut store.conn)
        .unwrap();
    let expected: Vec<(i64, i32, Option<String>)> = (0..45)
        .flat_map(|i| (0..1 + i % 6).map(move |l| (i, l)))
        .map(|(i, l)| (i as i64 + 1, l + 1, Some(format!("m{i:02}-{l}"))))
        .collect();
    let got: Vec<_> = lines
        .iter()
        .map(|(_, r, p, t)| (*r, *p, t.clone()))
        .collect();
    assert_eq!(got, expected);
    assert_eq!(
        lines.last().unwrap().0,
        expected.len() as i64,
        "ids from 1, no gap"
    );

    let cards: Vec<(i64, i32)> = tech_cards::table
        .select((tech_cards::record_id, tech_cards::line_position))
        .order(tech_cards::id)
        .load(&mut store.conn)
        .unwrap();
    let expected_cards: Vec<(i64, i32)> = expected
        .iter()
        .filter(|(_, position, _)| *position != 2)
        .map(|(record, position, _)| (*record, *position))
        .collect();
    assert_eq!(cards, expected_cards);

    let events: Vec<(i64, String, Option<String>)> = record_events::table
        .select((
            record_events::record_id,
            record_events::actor,
            record_events::detail,
        ))
        .order(record_events::id)
        .load(&mut store.conn)
        .unwrap();
    assert_eq!(events.len(), 45);
    for (i, (record, actor, detail)) in events.iter().enumerate() {
        assert_eq!(*record, i as i64 + 1);
        assert_eq!(actor, "collector:c");
        let lines = 1 + i % 6;
        let cards = if lines >= 2 { lines - 1 } else { lines };
        assert_eq!(
            detail.as_deref(),
            Some(&*format!(
                "order from m@x ({lines} lines, {cards} tech cards)"
            ))
        );
    }
    let sources: Vec<(i64, Vec<u8>)> = record_sources::table
        .order(record_sources::record_id)
        .load(&mut store.conn)
        .unwrap();
    let expected_sources: Vec<(i64, Vec<u8>)> = (0..45)
        .map(|i| (i as i64 + 1, format!("m{i:02}").into_bytes()))
        .collect();
    assert_eq!(sources, expected_sources);
}
