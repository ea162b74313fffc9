//! What the services' HTTP APIs share: the platform's JSON error answer and conditional-write
//! headers.

use axum::Json;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use updraft_api::{Code, ErrorBody};
use updraft_store::Condition;

/// An error answer: `{"error": {"code", "message"}}` with the code's status.
pub(crate) struct Fail(pub(crate) Code, pub(crate) String);

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        (self.0.status(), Json(ErrorBody::new(self.0, self.1))).into_response()
    }
}

/// The condition of `If-Match: "<revision>"` or `If-None-Match: *` (none: any state).
pub(crate) fn condition(headers: &HeaderMap) -> Result<Condition, Fail> {
    if let Some(v) = headers.get(header::IF_NONE_MATCH) {
        return if v.as_bytes() == b"*" {
            Ok(Condition::Absent)
        } else {
            Err(Fail(
                Code::BadRequest,
                "If-None-Match takes only `*` (write only if absent)".into(),
            ))
        };
    }
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Ok(Condition::Any);
    };
    v.to_str()
        .ok()
        .map(|s| s.trim().trim_start_matches("W/").trim_matches('"'))
        .and_then(|s| s.parse::<u64>().ok())
        .map(Condition::Revision)
        .ok_or_else(|| {
            Fail(
                Code::BadRequest,
                "If-Match takes one revision as an ETag (`\"42\"`)".into(),
            )
        })
}
