//! What both benches read from outside the code they measure: a process's memory from
//! /proc, and the record count from the database file (read-only, so polling can never
//! create or lock the database of the process being measured).

use std::path::Path;

use diesel::sql_types::BigInt;
use diesel::{Connection, QueryableByName, RunQueryDsl, SqliteConnection};

/// A `kB` field (`VmRSS`, `VmHWM`) of /proc/PROCESS/status, `process` being `self` or a
/// pid; `None` off Linux or once the process is gone.
pub fn proc_status_kb(process: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{process}/status")).ok()?;
    status.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        value.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// A read-only connection to the database at `db`, if it exists.
pub fn open_read_only(db: &Path) -> Option<SqliteConnection> {
    if !db.exists() {
        return None;
    }
    SqliteConnection::establish(&format!("file:{}?mode=ro", db.display())).ok()
}

/// Records stored so far.
pub fn record_count(conn: &mut SqliteConnection) -> diesel::QueryResult<i64> {
    diesel::sql_query("SELECT COUNT(*) AS n FROM records")
        .get_result::<Count>(conn)
        .map(|c| c.n)
}
