//! Collector leases: which daemon runs each collector now, so several daemons sharing one
//! database run each collector at most once at a time (issue 8, work sharing).
//!
//! A lease is a row `collector_leases(collector, holder, host, pid, acquired_at,
//! expires_at)`. Its holder renews it well before `expires_at`; a row whose `expires_at` has
//! passed is free, whoever wrote it, so a daemon that dies (SIGKILL, power loss) gives its
//! collectors away one lease length after its last renewal, without anyone cleaning up.
//!
//! Every statement changes rows only under a condition checked by the database in the same
//! statement (`holder = me`, or `expires_at <= now`), inside a [`row_transaction`]: on
//! PostgreSQL two daemons racing for one row are ordered by its row lock and the loser's
//! condition is checked again against the winner's row; an `INSERT .. ON CONFLICT DO
//! NOTHING` decides the first claim of a collector never leased before. On SQLite the
//! transaction begins `IMMEDIATE`, so they run one after another (two daemons on one machine
//! sharing one file use the same mechanism).
//!
//! Times are the application's UTC clock ([`now`]), not the database's: the daemons' hosts
//! must keep NTP time, and their skew must stay well under a lease length (a host running
//! ahead sees other leases expire early).
//!
//! [`row_transaction`]: super::AnyConnection::row_transaction

use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::insert::now;
use super::on_backend;
use super::schema::{collector_leases, daemons};
use super::{Store, StoreError};

/// Who holds, or asks for, a lease: one daemon process (or one `mailintake collect` run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    /// Random, drawn once per process: a restarted daemon that got the same pid is another
    /// holder, and never mistakes its predecessor's leases for its own.
    pub id: String,
    /// The host name, for people reading `collectors status`.
    pub host: String,
    pub pid: i64,
}

/// A collector's lease as stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = collector_leases)]
pub struct Lease {
    pub collector: String,
    /// The holder's random id ([`LeaseHolder::id`]).
    pub holder: String,
    pub host: String,
    pub pid: i64,
    pub acquired_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

/// What [`Store::acquire_lease`] got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquisition {
    /// The lease is ours until one lease length from now.
    Acquired,
    /// Another holder's lease is still running.
    Held(Lease),
}

/// `at + length`, as the database stores times.
fn until(at: NaiveDateTime, length: Duration) -> NaiveDateTime {
    at + chrono::TimeDelta::from_std(length).unwrap_or(chrono::TimeDelta::MAX)
}

impl Store {
    /// Takes `collector`'s lease for `me` until `length` from now: when it is free (never
    /// taken, or expired), or ours already (then it is renewed). Otherwise says who holds it.
    pub fn acquire_lease(
        &mut self,
        collector: &str,
        me: &LeaseHolder,
        length: Duration,
    ) -> Result<Acquisition, StoreError> {
        self.conn.row_transaction(|conn| {
            let at = now();
            let expires = until(at, length);
            let row = collector_leases::table.find(collector);
            let renewed = diesel::update(row.filter(collector_leases::holder.eq(&me.id)))
                .set(collector_leases::expires_at.eq(expires))
                .execute(conn)?;
            if renewed == 1 {
                return Ok(Acquisition::Acquired);
            }
            let taken_over = diesel::update(row.filter(collector_leases::expires_at.le(at)))
                .set((
                    collector_leases::holder.eq(&me.id),
                    collector_leases::host.eq(&me.host),
                    collector_leases::pid.eq(me.pid),
                    collector_leases::acquired_at.eq(at),
                    collector_leases::expires_at.eq(expires),
                ))
                .execute(conn)?;
            if taken_over == 1 {
                return Ok(Acquisition::Acquired);
            }
            let inserted = on_backend!(conn, c => diesel::insert_into(collector_leases::table)
                .values((
                    collector_leases::collector.eq(collector),
                    collector_leases::holder.eq(&me.id),
                    collector_leases::host.eq(&me.host),
                    collector_leases::pid.eq(me.pid),
                    collector_leases::acquired_at.eq(at),
                    collector_leases::expires_at.eq(expires),
                ))
                .on_conflict(collector_leases::collector)
                .do_nothing()
                .execute(c))?;
            if inserted == 1 {
                return Ok(Acquisition::Acquired);
            }
            // NOTE: the row exists and is someone else's (a concurrent insert may have won).
            let lease = row.select(Lease::as_select()).first(conn)?;
            Ok(Acquisition::Held(lease))
        })
    }

    /// Extends those of `collectors`' leases that `me` still holds to `length` from now;
    /// returns their names. A missing name was lost: taken over by another holder after it
    /// expired (an expired lease nobody took is still ours, and is renewed).
    pub fn renew_leases(
        &mut self,
        collectors: &[String],
        me: &LeaseHolder,
        length: Duration,
    ) -> Result<Vec<String>, StoreError> {
        if collectors.is_empty() {
            return Ok(Vec::new());
        }
        self.conn.row_transaction(|conn| {
            let expires = until(now(), length);
            Ok(diesel::update(
                collector_leases::table
                    .filter(collector_leases::collector.eq_any(collectors))
                    .filter(collector_leases::holder.eq(&me.id)),
            )
            .set(collector_leases::expires_at.eq(expires))
            .returning(collector_leases::collector)
            .get_results(conn)?)
        })
    }

    /// Gives back those of `collectors`' leases that `me` holds (a graceful stop, the end of
    /// a `collect` run): another daemon takes them at its next attempt, not a lease later.
    pub fn release_leases(
        &mut self,
        collectors: &[String],
        me: &LeaseHolder,
    ) -> Result<usize, StoreError> {
        Ok(diesel::delete(
            collector_leases::table
                .filter(collector_leases::collector.eq_any(collectors))
                .filter(collector_leases::holder.eq(&me.id)),
        )
        .execute(&mut self.conn)?)
    }

    /// The leases running now (an expired one is free, and left out), by collector.
    pub fn running_leases(&mut self) -> Result<Vec<Lease>, StoreError> {
        Ok(collector_leases::table
            .filter(collector_leases::expires_at.gt(now()))
            .order(collector_leases::collector)
            .select(Lease::as_select())
            .load(&mut self.conn)?)
    }

    /// Takes over `lease` (as read from the table) for `me` whatever its expiry, if it is
    /// still held by the same holder: for a holder known to be dead. `false` when it changed
    /// hands meanwhile.
    pub fn take_over_lease(
        &mut self,
        lease: &Lease,
        me: &LeaseHolder,
        length: Duration,
    ) -> Result<bool, StoreError> {
        let at = now();
        let taken = diesel::update(
            collector_leases::table
                .find(&lease.collector)
                .filter(collector_leases::holder.eq(&lease.holder)),
        )
        .set((
            collector_leases::holder.eq(&me.id),
            collector_leases::host.eq(&me.host),
            collector_leases::pid.eq(me.pid),
            collector_leases::acquired_at.eq(at),
            collector_leases::expires_at.eq(until(at, length)),
        ))
        .execute(&mut self.conn)?;
        Ok(taken == 1)
    }

    /// Says `me` is alive for another `length` (and forgets daemons whose time ran out);
    /// returns how many daemons are alive now, `me` included: what the collectors are
    /// shared among.
    pub fn announce_daemon(
        &mut self,
        me: &LeaseHolder,
        length: Duration,
    ) -> Result<usize, StoreError> {
        self.conn.row_transaction(|conn| {
            let at = now();
            diesel::delete(daemons::table.filter(daemons::seen_until.le(at))).execute(conn)?;
            on_backend!(&mut *conn, c => diesel::insert_into(daemons::table)
                .values((
                    daemons::holder.eq(&me.id),
                    daemons::host.eq(&me.host),
                    daemons::pid.eq(me.pid),
                    daemons::seen_until.eq(until(at, length)),
                ))
                .on_conflict(daemons::holder)
                .do_update()
                .set(daemons::seen_until.eq(until(at, length)))
                .execute(c))?;
            let alive: i64 = daemons::table.count().get_result(conn)?;
            Ok(usize::try_from(alive).unwrap_or(usize::MAX).max(1))
        })
    }

    /// Says `me` is gone (a graceful stop): the others' shares grow at once.
    pub fn retire_daemon(&mut self, me: &LeaseHolder) -> Result<(), StoreError> {
        diesel::delete(daemons::table.find(&me.id)).execute(&mut self.conn)?;
        Ok(())
    }
}
