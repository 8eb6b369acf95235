//! API tokens (issue 11): which other systems may call the API, intake and calendar feeds.
//!
//! Drawing a token and hashing it happen above (`src/web/api/token.rs`); the store keeps the
//! SHA-256 of the secret, never the secret, and answers "whose is this hash" for every call.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Serialize;

use super::schema::api_tokens;
use super::{Store, StoreError, insert::now, read::as_utc};
use crate::domain::TokenScope;

/// A token as `tokens list` shows it (no secret, no hash).
#[derive(Debug, Clone, Serialize)]
pub struct ApiToken {
    pub name: String,
    /// `intake`, `read`, `write` or `calendar`.
    pub scope: &'static str,
    /// The collector (intake) or queue (calendar) the token is limited to.
    pub target: Option<String>,
    #[serde(serialize_with = "as_utc")]
    pub created_at: NaiveDateTime,
    /// Revoked tokens stay listed, so an admin sees when a name was retired.
    pub revoked: bool,
    #[serde(skip)]
    pub scope_value: TokenScope,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = api_tokens)]
#[diesel(check_for_backend(crate::store::MultiBackend))]
struct TokenRow {
    id: i64,
    name: String,
    scope: String,
    target: Option<String>,
    created_at: NaiveDateTime,
    revoked_at: Option<NaiveDateTime>,
}

impl TokenRow {
    fn into_token(self) -> Result<ApiToken, StoreError> {
        let scope_value =
            TokenScope::from_stored(&self.scope, self.target.clone()).map_err(|message| {
                StoreError::Corrupt {
                    table: "api_tokens",
                    id: self.id,
                    column: "scope",
                    message,
                }
            })?;
        Ok(ApiToken {
            name: self.name,
            scope: scope_value.kind(),
            target: self.target,
            created_at: self.created_at,
            revoked: self.revoked_at.is_some(),
            scope_value,
        })
    }
}

impl Store {
    /// Stores a new token by the hash of its secret; a live token of the same name is
    /// [`StoreError::TokenExists`].
    pub fn add_token(
        &mut self,
        name: &str,
        scope: &TokenScope,
        secret_hash: &str,
    ) -> Result<(), StoreError> {
        diesel::insert_into(api_tokens::table)
            .values((
                api_tokens::name.eq(name),
                api_tokens::scope.eq(scope.kind()),
                api_tokens::target.eq(scope.target()),
                api_tokens::secret_hash.eq(secret_hash),
                api_tokens::created_at.eq(now()),
            ))
            .execute(&mut self.conn)
            .map_err(|e| match e {
                DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                    StoreError::TokenExists(name.to_string())
                }
                other => StoreError::Query(other),
            })?;
        Ok(())
    }

    /// Every token, live and revoked, oldest first.
    pub fn tokens(&mut self) -> Result<Vec<ApiToken>, StoreError> {
        api_tokens::table
            .select(TokenRow::as_select())
            .order(api_tokens::id)
            .load::<TokenRow>(&mut self.conn)?
            .into_iter()
            .map(TokenRow::into_token)
            .collect()
    }

    /// Revokes the live token called `name`; false if there is none.
    pub fn revoke_token(&mut self, name: &str) -> Result<bool, StoreError> {
        let changed = diesel::update(
            api_tokens::table
                .filter(api_tokens::name.eq(name))
                .filter(api_tokens::revoked_at.is_null()),
        )
        .set(api_tokens::revoked_at.eq(now()))
        .execute(&mut self.conn)?;
        Ok(changed > 0)
    }

    /// The live token whose secret hashes to `secret_hash`, if any.
    pub fn token_by_hash(&mut self, secret_hash: &str) -> Result<Option<ApiToken>, StoreError> {
        api_tokens::table
            .filter(api_tokens::secret_hash.eq(secret_hash))
            .filter(api_tokens::revoked_at.is_null())
            .select(TokenRow::as_select())
            // NOTE: `get_result`, not `first` (run per API request): see
            // `counterparty_by_inn` in insert.rs.
            .get_result::<TokenRow>(&mut self.conn)
            .optional()?
            .map(TokenRow::into_token)
            .transpose()
    }
}
