//! The per-request middleware: the correlation id (read from `X-Correlation-Id`, or a new
//! UUID v7; echoed in the response), the `request` span (continuing the caller's trace), and
//! the HTTP metrics.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;
use uuid::Uuid;

use super::Problem;

/// The request and response header of the correlation id.
pub const CORRELATION_ID: &str = "x-correlation-id";

/// The request header of a command id: the same id sent again gets the first outcome back.
pub const COMMAND_ID: &str = "x-command-id";

/// The response header of a command's feed position (`major/minor`), for read-your-writes.
pub const FEED_POSITION: &str = "x-feed-position";

/// A request's correlation id, in the request's extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Correlation(pub Uuid);

/// The method as a metric label and span field: HTTP's own methods by name, any other token
/// (which a client may send freely) as `OTHER`, so a label's values stay few.
fn method_label(method: &Method) -> &'static str {
    [
        (Method::GET, "GET"),
        (Method::HEAD, "HEAD"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::PATCH, "PATCH"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ]
    .into_iter()
    .find(|(known, _)| known == method)
    .map_or("OTHER", |(_, label)| label)
}

/// Reads or makes the correlation id (400 when malformed), runs the request in its span, echoes
/// the id, counts the request (as 499 when its client went away before the answer: the
/// server drops the request then).
pub(crate) async fn middleware(mut request: Request, next: Next) -> Response {
    let method = method_label(request.method()).to_owned();
    let route = (request.extensions().get::<MatchedPath>())
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let span = correlation(&request).map(|id| {
        (
            id,
            crate::telemetry::request_span(request.headers(), &method, &route, id),
        )
    });
    let counted = Counted {
        started: Instant::now(),
        labels: Some((method, route)),
    };
    let response = match span {
        Err(problem) => problem.into_response(),
        Ok((id, span)) => {
            request.extensions_mut().insert(Correlation(id));
            let mut response = next.run(request).instrument(span.clone()).await;
            let status = response.status();
            span.record("http.response.status_code", status.as_u16());
            if status.is_server_error() {
                span.record("otel.status_code", "ERROR");
            }
            if let Ok(value) = HeaderValue::from_str(&id.to_string()) {
                response.headers_mut().insert(CORRELATION_ID, value);
            }
            response
        }
    };
    counted.answered(response.status().as_u16());
    response
}

/// A request under way, counted once: with its status when answered, or as 499 (nginx's
/// "client closed request") when dropped first.
struct Counted {
    started: Instant,
    /// Method and route, until counted.
    labels: Option<(String, String)>,
}

impl Counted {
    fn answered(mut self, status: u16) {
        self.count(status);
    }

    fn count(&mut self, status: u16) {
        if let Some((method, route)) = self.labels.take() {
            crate::metrics::http_request(method, route, status, self.started.elapsed());
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.count(CLIENT_CLOSED_REQUEST);
    }
}

/// The status a request its client gave up on is counted with.
const CLIENT_CLOSED_REQUEST: u16 = 499;

/// The request's correlation id: its header's, or a new one.
fn correlation(request: &Request) -> Result<Uuid, Problem> {
    match request.headers().get(CORRELATION_ID) {
        None => Ok(Uuid::now_v7()),
        Some(value) => (value.to_str().ok())
            .and_then(|v| Uuid::parse_str(v.trim()).ok())
            .ok_or_else(|| Problem::bad_request("the X-Correlation-Id header is not a UUID")),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use axum::routing::get;
    use axum::Router;
    use opentelemetry::trace::{Status, TracerProvider as _};
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
    use tracing_subscriber::layer::SubscriberExt;

    use super::middleware;

    #[tokio::test]
    async fn a_request_answered_with_a_server_error_is_an_error_in_its_trace() {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        // This thread's subscriber: the test's runtime runs the server on this thread too.
        let _guard = tracing::subscriber::set_default(
            tracing_subscriber::registry()
                .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test"))),
        );
        let app = Router::new()
            .route("/down", get(|| async { StatusCode::SERVICE_UNAVAILABLE }))
            .route("/absent", get(|| async { StatusCode::NOT_FOUND }))
            .layer(axum::middleware::from_fn(middleware));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let address = listener.local_addr().expect("its address");
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let client = reqwest::Client::new();
        for path in ["/down", "/absent"] {
            let answer = client
                .get(format!("http://{address}{path}"))
                .send()
                .await
                .expect("an answer");
            assert!(answer.status().is_client_error() || answer.status().is_server_error());
        }
        server.abort();
        provider.force_flush().expect("flushed");

        let spans = exporter.get_finished_spans().expect("spans");
        let requests: Vec<(String, &Status)> = spans
            .iter()
            .filter(|s| s.name == "request")
            .map(|s| {
                let status = s
                    .attributes
                    .iter()
                    .find(|kv| kv.key.as_str() == "http.response.status_code")
                    .map(|kv| kv.value.to_string())
                    .unwrap_or_default();
                (status, &s.status)
            })
            .collect();
        // The server's failure is the trace's error; the client's (a 4xx) is not.
        assert_eq!(requests.len(), 2, "{requests:?}");
        assert_eq!(requests[0].0, "503", "{requests:?}");
        assert!(
            matches!(requests[0].1, Status::Error { .. }),
            "{requests:?}"
        );
        assert_eq!(requests[1], ("404".to_owned(), &Status::Unset));
    }
}
