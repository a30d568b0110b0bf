//! Who may use the console: the token (as a bearer token, or once at the login form, which
//! opens a session; wrong tokens are throttled), and the CSRF token every state-changing POST
//! must carry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, DOCTYPE};
use serde::Deserialize;

use crate::web::Console;

/// The session cookie's name.
const COOKIE: &str = "cqrs_console_session";
/// How long a session lasts.
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// At most this many sessions; the oldest goes first.
const MAX_SESSIONS: usize = 1024;

/// Whether `a` and `b` are equal, looking at every byte of the longer one whatever they hold:
/// the time taken tells nothing of where they differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = usize::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

/// 244 random bits, hex.
fn random_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// How the request proved it may use the console. Its `Debug` shows neither the session id
/// nor the CSRF token.
#[derive(Clone)]
pub(crate) enum Signed {
    /// `Authorization: Bearer <token>`: may read; cannot act (no CSRF token).
    Bearer,
    /// The login form's session: may read and act, with this CSRF token.
    Session { id: String, csrf: String },
}

impl Signed {
    /// The session's CSRF token, if any.
    pub(crate) fn csrf(&self) -> Option<&str> {
        match self {
            Signed::Bearer => None,
            Signed::Session { csrf, .. } => Some(csrf),
        }
    }

    /// Whether `given` is this session's CSRF token. A bearer request has none, so its POSTs
    /// are refused: browsers send cookies on their own, never a bearer token, and a script
    /// using the token needs no form.
    pub(crate) fn csrf_matches(&self, given: Option<&str>) -> bool {
        match (self.csrf(), given) {
            (Some(expected), Some(given)) => {
                constant_time_eq(expected.as_bytes(), given.as_bytes())
            }
            _ => false,
        }
    }
}

impl std::fmt::Debug for Signed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Signed::Bearer => f.write_str("Bearer"),
            Signed::Session { .. } => f
                .debug_struct("Session")
                .field("id", &"****")
                .field("csrf", &"****")
                .finish(),
        }
    }
}

struct Session {
    csrf: String,
    opened: Instant,
}

/// The open sessions, in memory: a restart logs everyone out.
#[derive(Default)]
pub(crate) struct Sessions {
    open: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    fn open(&self) -> (String, String) {
        let id = random_secret();
        let csrf = random_secret();
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.retain(|_, s| s.opened.elapsed() < SESSION_TTL);
        if open.len() >= MAX_SESSIONS {
            if let Some(oldest) = open
                .iter()
                .min_by_key(|(_, s)| s.opened)
                .map(|(id, _)| id.clone())
            {
                open.remove(&oldest);
            }
        }
        open.insert(
            id.clone(),
            Session {
                csrf: csrf.clone(),
                opened: Instant::now(),
            },
        );
        (id, csrf)
    }

    fn find(&self, id: &str) -> Option<String> {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        // A map lookup by the cookie's value: the id is 244 random bits, so timing tells
        // nothing useful about another session's id.
        open.get(id)
            .filter(|s| s.opened.elapsed() < SESSION_TTL)
            .map(|s| s.csrf.clone())
    }

    fn close(&self, id: &str) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.remove(id);
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

/// Lets a request through only with the token or a session; else 401 with the login form.
pub(crate) async fn require(
    State(console): State<Arc<Console>>,
    mut request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let session = session_cookie(headers).and_then(|id| {
        console.sessions.find(id).map(|csrf| Signed::Session {
            id: id.to_owned(),
            csrf,
        })
    });
    let signed = match (session, bearer(headers)) {
        (Some(session), _) => Some(session),
        (None, Some(token)) => {
            if let Err(wait) = console.throttle.check() {
                return too_many(&console, wait);
            }
            if console.token.matches(token) {
                Some(Signed::Bearer)
            } else {
                tracing::info!("console: a request with a wrong bearer token");
                console.throttle.failed();
                None
            }
        }
        (None, None) => None,
    };
    match signed {
        Some(signed) => {
            request.extensions_mut().insert(signed);
            next.run(request).await
        }
        None => {
            let mut response = login_page(&console, None, StatusCode::UNAUTHORIZED);
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"cqrs console\""),
            );
            response
        }
    }
}

/// 429 with the login form: too many wrong tokens lately; no token is checked for `wait`.
fn too_many(console: &Console, wait: Duration) -> Response {
    tracing::warn!(
        wait_secs = wait.as_secs(),
        "console: too many wrong tokens; refusing token checks for a while"
    );
    let seconds = wait.as_secs().max(1);
    let message = format!("Too many wrong tokens. Try again in {seconds} s.");
    let mut response = login_page(console, Some(&message), StatusCode::TOO_MANY_REQUESTS);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

fn login_page(console: &Console, error: Option<&str>, status: StatusCode) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "Log in · cqrs console" }
                link rel="stylesheet" href=(console.at("/console.css"));
            }
            body {
                main.login {
                    h1 { "cqrs console" }
                    @if let Some(error) = error { p.error { (error) } }
                    form method="post" action=(console.at("/login")) {
                        label for="token" { "Token" }
                        input #token type="password" name="token" autocomplete="current-password" required;
                        button type="submit" { "Log in" }
                    }
                }
            }
        }
    };
    (status, Html(markup.into_string())).into_response()
}

/// `GET {base}/login`.
pub(crate) async fn login_form(State(console): State<Arc<Console>>) -> Response {
    login_page(&console, None, StatusCode::OK)
}

/// The login form's fields.
#[derive(Deserialize)]
pub(crate) struct LoginForm {
    token: String,
}

/// `POST {base}/login`: the right token opens a session (cookie) and goes to the console;
/// a wrong one gets the form again, 401.
pub(crate) async fn login(
    State(console): State<Arc<Console>>,
    Form(form): Form<LoginForm>,
) -> Response {
    if let Err(wait) = console.throttle.check() {
        return too_many(&console, wait);
    }
    if !console.token.matches(&form.token) {
        tracing::info!("console: a login with a wrong token");
        console.throttle.failed();
        return login_page(&console, Some("wrong token"), StatusCode::UNAUTHORIZED);
    }
    let (id, _) = console.sessions.open();
    let cookie = format!(
        "{COOKIE}={id}; Path={}; HttpOnly; SameSite=Strict; Max-Age={}{}",
        console.config.base_path,
        SESSION_TTL.as_secs(),
        if console.config.secure_cookie {
            "; Secure"
        } else {
            ""
        }
    );
    let mut response = Redirect::to(&console.at("/")).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// A state-changing form's CSRF field.
#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    pub(crate) csrf: Option<String>,
}

/// `POST {base}/logout` (with the CSRF token): ends the session.
pub(crate) async fn logout(
    State(console): State<Arc<Console>>,
    axum::Extension(signed): axum::Extension<Signed>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !signed.csrf_matches(form.csrf.as_deref()) {
        return forbidden(&console, &signed);
    }
    if let Signed::Session { id, .. } = &signed {
        console.sessions.close(id);
    }
    let mut response = Redirect::to(&console.at("/login")).into_response();
    let expired = format!(
        "{COOKIE}=; Path={}; HttpOnly; SameSite=Strict; Max-Age=0",
        console.config.base_path
    );
    if let Ok(value) = HeaderValue::from_str(&expired) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// 403 for a POST without the session's CSRF token: a session reloads its form; a bearer
/// token never acts, so it is told to log in.
pub(crate) fn forbidden(console: &Console, signed: &Signed) -> Response {
    let message = match signed {
        Signed::Bearer => "a bearer token reads but does not act: log in through the form to act",
        Signed::Session { .. } => {
            "this action needs the form's CSRF token: reload the page and try again"
        }
    };
    console.failure(signed, StatusCode::FORBIDDEN, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_holds_only_for_equal_bytes() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"secret", b""));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn a_session_cookie_is_found_among_others_and_a_bearer_token_by_scheme() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; cqrs_console_session=abc; b=2"),
        );
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer tok"),
        );
        assert_eq!(session_cookie(&headers), Some("abc"));
        assert_eq!(bearer(&headers), Some("tok"));
    }

    #[test]
    fn a_bearer_request_never_passes_the_csrf_check() {
        assert!(!Signed::Bearer.csrf_matches(Some("")));
        let session = Signed::Session {
            id: "i".into(),
            csrf: "c".into(),
        };
        assert!(session.csrf_matches(Some("c")));
        assert!(!session.csrf_matches(Some("d")));
        assert!(!session.csrf_matches(None));
    }

    #[test]
    fn a_signed_request_debugs_without_its_session_id_or_csrf_token() {
        let signed = Signed::Session {
            id: "s3ssion-id".into(),
            csrf: "csrf-t0ken".into(),
        };
        let shown = format!("{signed:?}");
        assert!(
            !shown.contains("s3ssion-id") && !shown.contains("csrf-t0ken"),
            "{shown}"
        );
        assert!(shown.contains("Session"), "{shown}");
    }
}
