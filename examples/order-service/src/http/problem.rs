//! [`Problem`]: every error answer, as an RFC 9457 `application/problem+json` body.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cqrs_core::ErrorKind;
use serde::Serialize;

/// The media type of a problem body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error answer: `type` (a URI naming the kind of problem, `/problems/{slug}`), `title`
/// (the same for every problem of that type), `status`, `detail` (this occurrence) and, for a
/// rejection by an aggregate, its error's `code` (the variant's name) and `message`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// `/problems/{slug}`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The problem type's title.
    pub title: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong this time.
    pub detail: String,
    /// The aggregate's error code, for a rejection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The aggregate's error message, for a rejection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Problem {
    /// A problem of type `/problems/{slug}`.
    pub fn new(
        status: StatusCode,
        slug: &str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            kind: format!("/problems/{slug}"),
            title,
            status: status.as_u16(),
            detail: detail.into(),
            code: None,
            message: None,
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "malformed-request",
            "malformed request",
            detail,
        )
    }

    /// 404: no such order (or document).
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "not found", detail)
    }

    /// 409: other writers kept getting there first.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "conflict",
            "conflict after retries",
            detail,
        )
    }

    /// 422: the aggregate refused the command; `code` and `message` are its error's.
    pub fn rejected(code: String, message: String) -> Self {
        Self {
            code: Some(code),
            message: Some(message.clone()),
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "rejected",
                "command rejected",
                message,
            )
        }
    }

    /// 503: a dependency is down, its breaker open, or the service is stopping.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "dependency unavailable",
            detail,
        )
    }

    /// 504: the read model did not reach the position asked for in time.
    pub fn stale(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "read-model-behind",
            "read model behind",
            detail,
        )
    }

    /// 500: a failure retrying will not cure. The client is told no more than that: `detail`
    /// (a store's or a node's text: table names, decode errors, internal addresses) goes to
    /// the log, in the request's span with its correlation id, which the answer echoes.
    pub fn internal(detail: impl Into<String>) -> Self {
        let detail = detail.into();
        tracing::error!(%detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
            "the service failed; its log has why, under this request's X-Correlation-Id",
        )
    }

    /// The problem for a framework or store failure of kind `kind`: 409 for a conflict, 503
    /// for an unavailable backend, 400 for refused input, 500 otherwise.
    pub fn from_kind(kind: ErrorKind, detail: impl Into<String>) -> Self {
        match kind {
            ErrorKind::Conflict => Self::conflict(detail),
            ErrorKind::Unavailable => Self::unavailable(detail),
            ErrorKind::InvalidInput => Self::bad_request(detail),
            _ => Self::internal(detail),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejection_carries_the_aggregates_code_and_message() {
        let problem =
            Problem::rejected("NoLines".into(), "an order needs at least one line".into());
        let body = serde_json::to_value(&problem).unwrap();
        assert_eq!(body["type"], "/problems/rejected");
        assert_eq!(body["status"], 422);
        assert_eq!(body["code"], "NoLines");
        assert_eq!(body["message"], "an order needs at least one line");
    }

    #[test]
    fn an_internal_error_keeps_its_detail_in_the_log_not_the_answer() {
        let problem = Problem::internal("relation \"order_service.events\" at db-7.internal:5432");
        let body = serde_json::to_value(&problem).unwrap();
        assert_eq!(body["status"], 500);
        let detail = body["detail"].as_str().unwrap();
        assert!(
            !detail.contains("db-7") && !detail.contains("order_service"),
            "{detail}"
        );
    }

    #[test]
    fn store_failures_map_by_kind() {
        assert_eq!(Problem::from_kind(ErrorKind::Conflict, "").status, 409);
        assert_eq!(Problem::from_kind(ErrorKind::Unavailable, "").status, 503);
        assert_eq!(Problem::from_kind(ErrorKind::InvalidInput, "").status, 400);
        assert_eq!(Problem::from_kind(ErrorKind::Backend, "").status, 500);
    }
}
