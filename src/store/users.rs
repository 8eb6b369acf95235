//! The review page's users, their queues and their login sessions.
//!
//! Password hashing and token drawing happen above (`src/web/auth.rs`): the store keeps the
//! PHC hash string and the SHA-256 of a session token, never a password or a cookie.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Serialize;

use super::schema::{sessions, user_queues, users};
use super::{AnyConnection, Store, StoreError, insert::now, on_backend, read::as_utc};
use crate::domain::Role;

/// A user as `users list` shows it (no password hash).
#[derive(Debug, Clone, Serialize)]
pub struct User {
    /// Row id (sessions point at it).
    #[serde(skip)]
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub disabled: bool,
    /// The queues a manager sees (admins see all whatever this says).
    pub queues: Vec<String>,
    #[serde(serialize_with = "as_utc")]
    pub created_at: NaiveDateTime,
}

/// A user's stored row.
#[derive(Queryable)]
struct UserRow {
    id: i64,
    name: String,
    role: String,
    password_hash: String,
    disabled: bool,
    created_at: NaiveDateTime,
}

/// A live session: whose it is and the CSRF token its forms carry.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: User,
    pub csrf: String,
}

impl Store {
    /// Adds a user; a taken name is [`StoreError::UserExists`].
    pub fn add_user(
        &mut self,
        name: &str,
        role: Role,
        password_hash: &str,
        queues: &[String],
    ) -> Result<(), StoreError> {
        self.conn.write_transaction(|conn| {
            let id: i64 = diesel::insert_into(users::table)
                .values((
                    users::name.eq(name),
                    users::role.eq(role.as_str()),
                    users::password_hash.eq(password_hash),
                    users::disabled.eq(false),
                    users::created_at.eq(now()),
                ))
                .returning(users::id)
                .get_result(conn)
                .map_err(|e| match e {
                    DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                        StoreError::UserExists(name.to_string())
                    }
                    other => StoreError::Query(other),
                })?;
            for queue in queues {
                on_backend!(&mut *conn, c => diesel::insert_into(user_queues::table)
                    .values((user_queues::user_id.eq(id), user_queues::queue.eq(queue)))
                    .on_conflict_do_nothing()
                    .execute(c))?;
            }
            Ok(())
        })
    }

    /// Replaces a user's password hash and ends their sessions; false if there is no such user.
    pub fn set_password(&mut self, name: &str, password_hash: &str) -> Result<bool, StoreError> {
        self.update_user(name, |conn, id| {
            diesel::update(users::table.find(id))
                .set(users::password_hash.eq(password_hash))
                .execute(conn)
        })
    }

    /// Disables a user and ends their sessions; false if there is no such user.
    pub fn disable_user(&mut self, name: &str) -> Result<bool, StoreError> {
        self.update_user(name, |conn, id| {
            diesel::update(users::table.find(id))
                .set(users::disabled.eq(true))
                .execute(conn)
        })
    }

    /// Runs `change` on user `name` and logs them out everywhere, in one transaction.
    fn update_user(
        &mut self,
        name: &str,
        change: impl FnOnce(&mut AnyConnection, i64) -> QueryResult<usize>,
    ) -> Result<bool, StoreError> {
        Ok(self.conn.write_transaction(|conn| {
            let Some(id) = users::table
                .filter(users::name.eq(name))
                .select(users::id)
                .first::<i64>(conn)
                .optional()?
            else {
                return Ok::<_, DieselError>(false);
            };
            change(conn, id)?;
            diesel::delete(sessions::table.filter(sessions::user_id.eq(id))).execute(conn)?;
            Ok(true)
        })?)
    }

    /// Every user, by name (bytewise: see [`by_bytes`]).
    pub fn users(&mut self) -> Result<Vec<User>, StoreError> {
        let mut rows: Vec<UserRow> = users::table.load(&mut self.conn)?;
        rows.sort_by(|a, b| by_bytes(&a.name, &b.name));
        rows.into_iter().map(|row| self.user_from(row)).collect()
    }

    /// User `name` with their password hash, if they exist and are not disabled.
    pub fn active_user(&mut self, name: &str) -> Result<Option<(User, String)>, StoreError> {
        let row: Option<UserRow> = users::table
            .filter(users::name.eq(name))
            .filter(users::disabled.eq(false))
            .first(&mut self.conn)
            .optional()?;
        row.map(|row| {
            let hash = row.password_hash.clone();
            Ok((self.user_from(row)?, hash))
        })
        .transpose()
    }

    fn user_from(&mut self, row: UserRow) -> Result<User, StoreError> {
        let role = row.role.parse().map_err(|message| StoreError::Corrupt {
            table: "users",
            id: row.id,
            column: "role",
            message,
        })?;
        let mut queues: Vec<String> = user_queues::table
            .filter(user_queues::user_id.eq(row.id))
            .select(user_queues::queue)
            .load(&mut self.conn)?;
        queues.sort_by(|a, b| by_bytes(a, b));
        Ok(User {
            id: row.id,
            name: row.name,
            role,
            disabled: row.disabled,
            queues,
            created_at: row.created_at,
        })
    }

    /// Starts a session for user `user_id` until `expires_at`.
    pub fn create_session(
        &mut self,
        token_hash: &str,
        user_id: i64,
        csrf: &str,
        expires_at: NaiveDateTime,
    ) -> Result<(), StoreError> {
        diesel::insert_into(sessions::table)
            .values((
                sessions::token_hash.eq(token_hash),
                sessions::user_id.eq(user_id),
                sessions::csrf.eq(csrf),
                sessions::created_at.eq(now()),
                sessions::expires_at.eq(expires_at),
            ))
            .execute(&mut self.conn)?;
        Ok(())
    }

    /// The live session with this token hash: not expired, its user not disabled.
    pub fn session(&mut self, token_hash: &str) -> Result<Option<Session>, StoreError> {
        let found: Option<(UserRow, String)> = sessions::table
            .inner_join(users::table)
            .filter(sessions::token_hash.eq(token_hash))
            .filter(sessions::expires_at.gt(now()))
            .filter(users::disabled.eq(false))
            .select((users::all_columns, sessions::csrf))
            .first(&mut self.conn)
            .optional()?;
        found
            .map(|(row, csrf)| {
                Ok(Session {
                    user: self.user_from(row)?,
                    csrf,
                })
            })
            .transpose()
    }

    /// Ends the session with this token hash (logout), and every expired one.
    pub fn end_session(&mut self, token_hash: &str) -> Result<(), StoreError> {
        diesel::delete(
            sessions::table.filter(
                sessions::token_hash
                    .eq(token_hash)
                    .or(sessions::expires_at.le(now())),
            ),
        )
        .execute(&mut self.conn)?;
        Ok(())
    }
}

/// The order of names in listings: by their UTF-8 bytes, as SQLite's ORDER BY sorts text.
///
/// NOTE: not the database's ORDER BY. PostgreSQL sorts text by the database's collation,
/// usually the language the cluster was made with (`en_US.UTF-8`: "adam" before "Zoe"),
/// and SQLite bytewise ("Zoe" first): the same command would list in another order on each
/// backend. The lists sorted here are short (users, their queues, collectors).
pub(crate) fn by_bytes(a: &str, b: &str) -> std::cmp::Ordering {
    a.as_bytes().cmp(b.as_bytes())
}
