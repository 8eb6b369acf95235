//! Headers every response carries (the review page's and the API's).
//!
//! The Content-Security-Policy allows nothing but same-origin styles and forms: no script
//! runs at all, so an injected `<script>` or `onclick` would be inert even if escaping failed.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::http::header::{
    CACHE_CONTROL, CONNECTION, CONTENT_LENGTH, CONTENT_SECURITY_POLICY, REFERRER_POLICY,
    TRANSFER_ENCODING, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::middleware::Next;
use axum::response::Response;

/// The policy: no scripts, no plugins, no framing, forms post only back here.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub(super) async fn headers(request: Request, next: Next) -> Response {
    let sends_body = request.headers().contains_key(TRANSFER_ENCODING)
        || request
            .headers()
            .get(CONTENT_LENGTH)
            .is_some_and(|length| length != "0");
    let mut response = next.run(request).await;
    let refused = !response.status().is_success();
    let headers = response.headers_mut();
    // NOTE: a refusal (login redirect, 401, 403, 413, ...) is answered before the body is
    // read; hyper then drops the connection rather than drain an unread body, and a client
    // that reuses it for its next request finds it closed ("peer disconnected"). Saying so
    // in the answer makes every client open a fresh connection instead.
    if sends_body && refused {
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    for (name, value) in [
        (CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY_VALUE),
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (X_FRAME_OPTIONS, "DENY"),
        (REFERRER_POLICY, "same-origin"),
        // Pages show customers' personal data: never keep them in shared caches.
        (CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
