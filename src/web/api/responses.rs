//! Pieces of the OpenAPI document that several `/api/v1` routes share, declared once.

use utoipa::{IntoParams, IntoResponses};

use super::ErrorBody;
use crate::store::RecordWithHistory;

/// What every `/api/v1` call answers when its token does not let it through.
#[derive(IntoResponses)]
#[allow(dead_code)] // NOTE: only read by the document; the answers come from `ApiError`.
pub(super) enum TokenRefused {
    /// No `Authorization: Bearer` header, or a token that is unknown or revoked
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// A token whose scope does not cover the call: reading needs a read or write token,
    /// acting a write token
    #[response(status = 403)]
    Forbidden(ErrorBody),
}

/// The record a `/api/v1/records/{id}` call is about.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // NOTE: only read by the document; the handlers take `ApiPath<i64>`.
pub(super) struct RecordId {
    /// The record's id (`records list` shows it)
    id: i64,
}

/// What a call that acts on a record answers, besides a bad body and a refused token.
#[derive(IntoResponses)]
#[allow(dead_code)] // NOTE: only read by the document.
pub(super) enum Acted {
    /// The record as it is now, with its history
    #[response(status = 200)]
    Done(Box<RecordWithHistory>),
    /// No such record
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// The workflow refuses from the record's state (a closed record, a request triaged
    /// already, a record that is not a service request); nothing was written
    #[response(status = 409)]
    Refused(ErrorBody),
}
