//! What every page shares: the console's state, the layout, errors as pages, headers.

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use cqrs_admin::{AdminError, ErrorClass, Inspector};
use maud::{html, Markup, DOCTYPE};

use crate::auth::{Sessions, Signed};
use crate::config::{ConsoleConfig, Token};
use crate::samples::Samples;
use crate::throttle::LoginThrottle;

/// The console's state, shared by every handler.
pub(crate) struct Console {
    pub(crate) config: ConsoleConfig,
    pub(crate) token: Token,
    pub(crate) inspector: Inspector,
    pub(crate) sessions: Sessions,
    pub(crate) samples: Samples,
    pub(crate) throttle: LoginThrottle,
}

impl Console {
    pub(crate) fn new(config: ConsoleConfig, token: Token, inspector: Inspector) -> Self {
        let samples = Samples::new(config.samples_kept);
        let throttle = LoginThrottle::new(config.failed_logins.0, config.failed_logins.1);
        Self {
            throttle,
            config,
            token,
            inspector,
            sessions: Sessions::default(),
            samples,
        }
    }

    /// `path` under the console's base path.
    pub(crate) fn at(&self, path: &str) -> String {
        format!("{}{path}", self.config.base_path)
    }

    /// A whole page: the navigation, `title` and `body`.
    pub(crate) fn page(&self, signed: &Signed, title: &str, body: Markup) -> Response {
        let markup = html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) " · cqrs console" }
                    link rel="stylesheet" href=(self.at("/console.css"));
                }
                body {
                    header {
                        nav {
                            strong { "cqrs console" }
                            a href=(self.at("/")) { "Projections" }
                            a href=(self.at("/dead-letters")) { "Dead letters" }
                            a href=(self.at("/events")) { "Events" }
                            a href=(self.at("/processes")) { "Process managers" }
                            @if let Signed::Session { csrf, .. } = signed {
                                form.logout method="post" action=(self.at("/logout")) {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button type="submit" { "Log out" }
                                }
                            }
                        }
                    }
                    main {
                        h1 { (title) }
                        (body)
                    }
                }
            }
        };
        Html(markup.into_string()).into_response()
    }

    /// A page saying what went wrong, with `status`.
    pub(crate) fn failure(&self, signed: &Signed, status: StatusCode, message: &str) -> Response {
        let mut response = self.page(
            signed,
            status.canonical_reason().unwrap_or("Error"),
            html! { p.error { (message) } },
        );
        *response.status_mut() = status;
        response
    }

    /// The page for an inspection error, its status by class: 400 bad input, 404 not found,
    /// 503 the store unreachable, 500 else; with the error's text (it names no secret).
    pub(crate) fn store_failure(&self, signed: &Signed, error: &AdminError) -> Response {
        let status = match error.class() {
            ErrorClass::InvalidInput => StatusCode::BAD_REQUEST,
            ErrorClass::NotFound => StatusCode::NOT_FOUND,
            ErrorClass::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::warn!(%error, "console: the store failed");
        }
        self.failure(signed, status, &error.to_string())
    }
}

/// `GET {base}/console.css`: the one stylesheet, built in.
pub(crate) async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../assets/console.css"),
    )
        .into_response()
}

/// Headers on every console response: no script may run (the pages have none), nothing is
/// framed or sniffed, pages are not cached.
pub(crate) async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// A time for people: `2026-12-04 21:50:16 UTC`.
pub(crate) fn when(at: time::OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// A duration for people: `350 ms`, `12.4 s`, `3 min 5 s`.
pub(crate) fn span(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{} min {} s", d.as_secs() / 60, d.as_secs() % 60)
    }
}
