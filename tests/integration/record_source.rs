//! The record page's `.eml` download: the message a record was made from, byte for byte,
//! for the users who may see the record, over the real server and a real SQLite file.

use diesel::{Connection, RunQueryDsl, SqliteConnection};

use crate::kit::sandbox::sample;
use crate::kit::web::{Served, add_user};
use crate::web::{PASSWORD, with_fault_reports, with_quarantined};

#[test]
fn a_collected_record_downloads_as_the_delivered_message_byte_for_byte() {
    let sandbox = with_fault_reports(&[("13800000001", "电梯困人")]);
    let kept = sandbox.files_in("mail/triage", "cur");
    assert_eq!(kept.len(), 1, "{kept:?}");
    let delivered = std::fs::read(sandbox.path("mail/triage/cur").join(&kept[0])).unwrap();
    add_user(&sandbox, "mia", "manager", &["triage"], PASSWORD);
    add_user(&sandbox, "max", "manager", &["orders"], PASSWORD);
    let served = Served::start(&sandbox);
    let mut client = served.client();
    client.log_in("mia", PASSWORD);

    let page = client.get("/records/1");
    assert!(
        page.body.contains(
            "<a id=\"eml\" href=\"/records/1/eml\">Download the original e-mail (.eml)</a>"
        ),
        "{}",
        page.body
    );
    let eml = client.get("/records/1/eml");
    assert_eq!(eml.status, 200);
    assert_eq!(eml.header("content-type"), Some("message/rfc822"));
    assert_eq!(
        eml.header("content-disposition"),
        Some("attachment; filename=\"record-1.eml\"")
    );
    assert!(
        eml.bytes == delivered,
        "the download differs from the delivered file"
    );
    assert_eq!(client.get("/records/2/eml").status, 404, "no such record");

    // A manager without the record's queue learns nothing of it.
    let mut other = served.client();
    other.log_in("max", PASSWORD);
    let refused = other.get("/records/1/eml");
    assert_eq!(refused.status, 404);
    assert!(!refused.bytes.windows(7).any(|w| w == b"Subject"));
}

#[test]
fn a_record_released_from_the_quarantine_downloads_the_quarantined_bytes() {
    let sandbox = with_quarantined();
    let served = Served::start(&sandbox);
    let mut client = served.client();
    client.log_in("ann", PASSWORD);
    let csrf = client.get("/quarantine/1").csrf();
    sandbox.write_config(
        &[("site-orders", "inbox")],
        "default-charset = \"windows-1251\"",
    );
    let released = client.post("/quarantine/1/retry", &[("csrf", &csrf)]);
    let location = released.header("location").unwrap().to_string();
    let eml = client.get(&format!("{location}/eml"));
    assert_eq!(eml.status, 200, "{location}");
    assert!(eml.bytes == sample("02-lead-octet-stream.eml"));
}

#[test]
fn a_record_older_than_the_download_says_its_e_mail_was_not_kept() {
    let sandbox = with_fault_reports(&[("13800000001", "电梯困人")]);
    add_user(&sandbox, "mia", "manager", &["triage"], PASSWORD);
    // As a record created before sources were kept: no row for it.
    let db = sandbox.path("data/mailintake.db");
    let mut conn = SqliteConnection::establish(db.to_str().unwrap()).unwrap();
    let deleted = diesel::sql_query("DELETE FROM record_sources")
        .execute(&mut conn)
        .unwrap();
    assert_eq!(deleted, 1);
    let served = Served::start(&sandbox);
    let mut client = served.client();
    client.log_in("mia", PASSWORD);
    let page = client.get("/records/1?lang=en");
    assert!(page.body.contains("id=\"no-eml\""), "{}", page.body);
    assert!(!page.body.contains("/records/1/eml"), "{}", page.body);
    assert_eq!(client.get("/records/1/eml").status, 404);
}
