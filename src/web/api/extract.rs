//! axum's extractors with the API's errors: a query, path or body that does not parse is a
//! JSON 400 (`bad_request`) naming what is wrong, never axum's plain-text rejection (and
//! never a 415 or 422: 422 is the intake's "did not map").

use axum::extract::{FromRequest, FromRequestParts, Json, Path, Query, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::ApiError;

/// The query string as `T`; unknown parameters are refused where `T` denies them.
pub struct ApiQuery<T>(pub T);

/// The path parameters as `T`.
pub struct ApiPath<T>(pub T);

/// A JSON body as `T`, whatever `Content-Type` says (a client that forgets it is still
/// understood; what counts is that the body parses).
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(value) = Query::<T>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
        Ok(ApiQuery(value))
    }
}

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(value) = Path::<T>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
        Ok(ApiPath(value))
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
        let Json(value) =
            Json::<T>::from_bytes(&bytes).map_err(|e| ApiError::BadRequest(e.body_text()))?;
        Ok(ApiJson(value))
    }
}
