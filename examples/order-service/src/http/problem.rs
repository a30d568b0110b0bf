//! [`Problem`]: every error answer, as an RFC 9457 `application/problem+json` body.

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
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

    /// 422: the `X-Command-Id` names a command already run on another stream (order or item):
    /// the idempotency key draft's answer to a key reused for another request. Which stream
    /// stays unsaid.
    pub fn command_id_reused() -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "command-id-reused",
            "command id reused",
            "the X-Command-Id was used for a command on another order or item; send a new one for a new command",
        )
    }

    /// 503: a dependency is down, its breaker open, or the service is stopping. Answered with
    /// `Retry-After`.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "dependency unavailable",
            detail,
        )
    }

    /// 503 for a server this service needs that failed: which one, and what it answered
    /// (its address too), the caller logs; the client is told no more.
    pub fn dependency_unavailable() -> Self {
        Self::unavailable(
            "a server this service needs is unavailable; its log has which, under this \
             request's X-Correlation-Id",
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
    /// for an unavailable backend, 400 for refused input, 500 otherwise. An unavailable
    /// backend's text (its address, what it answered) is not sent: the caller has logged it.
    pub fn from_kind(kind: ErrorKind, detail: impl Into<String>) -> Self {
        match kind {
            ErrorKind::Conflict => Self::conflict(detail),
            ErrorKind::Unavailable => Self::dependency_unavailable(),
            ErrorKind::InvalidInput => Self::bad_request(detail),
            _ => Self::internal(detail),
        }
    }

    /// The problem for an error answer made before a handler ran (axum's refusal of a body,
    /// a path or a method): `detail` is its text. A server error's text goes to the log, as
    /// [`internal`](Self::internal)'s does.
    pub(crate) fn from_status(status: StatusCode, detail: impl Into<String>) -> Self {
        match status {
            StatusCode::BAD_REQUEST => Self::bad_request(detail),
            StatusCode::NOT_FOUND => Self::not_found(detail),
            StatusCode::METHOD_NOT_ALLOWED => {
                Self::new(status, "method-not-allowed", "method not allowed", detail)
            }
            StatusCode::PAYLOAD_TOO_LARGE => {
                Self::new(status, "too-large", "request too large", detail)
            }
            status if status.is_server_error() => Self {
                status: status.as_u16(),
                ..Self::internal(detail)
            },
            status => {
                let reason = status.canonical_reason().unwrap_or("request refused");
                let slug = reason.to_ascii_lowercase().replace(' ', "-");
                Self::new(status, &slug, reason, detail)
            }
        }
    }
}

/// Turns an error answer made before a handler ran into a problem: axum's extractors and
/// router answer `text/plain` (a body past the limit, a path that is not UTF-8) or nothing (a
/// method the route does not take). Its status and headers (`Allow`) are kept; an answer that
/// has a type of its own (a problem, the health checks' JSON) passes as it is.
pub(crate) async fn middleware(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let response = next.run(request).await;
    let status = response.status();
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|kind| kind.as_bytes().starts_with(b"text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !plain {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, REFUSAL_TEXT_LIMIT)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_default();
    let detail = match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            format!("this route does not take {method}; its Allow header lists what it takes")
        }
        _ if text.is_empty() => status.canonical_reason().unwrap_or("refused").to_owned(),
        _ => text,
    };
    let problem = Problem::from_status(status, detail).into_response();
    let (problem_parts, problem_body) = problem.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.extend(problem_parts.headers);
    Response::from_parts(parts, problem_body)
}

/// How much of a refusal's text is read into its problem's detail.
const REFUSAL_TEXT_LIMIT: usize = 4096;

/// Seconds a client is asked to wait before retrying a 503.
pub const RETRY_AFTER_SECONDS: u64 = 1;

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
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
