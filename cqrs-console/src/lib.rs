//! A web console for a service built on cqrs-core: projections (state, lag and a chart of it
//! over the last minutes), dead letters (list, show, retry, skip), an event browser (a
//! stream's events, one event's payload and metadata, everything its correlation id caused)
//! and process-manager instances (list, stuck ones, one with its timeline).
//!
//! [`router`] gives an axum [`Router`] to merge into the service's own. The
//! pages are rendered on the server (maud: every value is escaped), with one small CSS file
//! built in and no script; lag charts are inline SVG drawn on the server.
//!
//! **Safe by default.** [`ConsoleConfig::default`] is off: the router has no route. Enabled,
//! it needs a token: `Authorization: Bearer <token>`, or the login form, which sets a session
//! cookie (`HttpOnly`, `SameSite=Strict`). Tokens are compared in constant time. Retry and skip
//! are POSTs that must carry the session's CSRF token (else 403), so a bearer token alone
//! reads but does not act. The token never appears in a page, a log or a `Debug`.
//!
//! The pages render the typed views of [`cqrs_admin::Inspector`] (the layer the `cqrs`
//! command line prints), so both show the same numbers: every projection, process manager
//! and consumer the store knows, with its checkpoint, lag, lease and dead letters.
//!
//! ```no_run
//! # async fn run(store: cqrs_postgres::PgEventStore) {
//! use cqrs_admin::Inspector;
//! use cqrs_console::ConsoleConfig;
//!
//! let config = match std::env::var("CONSOLE_TOKEN") {
//!     Ok(token) => ConsoleConfig::enabled(token),
//!     Err(_) => ConsoleConfig::disabled(),
//! };
//! let app = axum::Router::new().merge(cqrs_console::router(config, Inspector::new(store)));
//! # let _ = app;
//! # }
//! ```

mod auth;
mod config;
mod live;
mod pages;
mod samples;
#[cfg(feature = "testing")]
pub mod testing;
mod throttle;
mod web;

#[doc(inline)]
pub use config::ConsoleConfig;
#[doc(inline)]
pub use live::LiveStatus;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use cqrs_admin::Inspector;

/// The console's routes under [`ConsoleConfig::base_path`], to merge into the service's
/// router; an empty router when the console is off.
///
/// When called inside a Tokio runtime it starts the lag sampler, a task that ends when the
/// router (every clone of it) is dropped.
pub fn router(config: ConsoleConfig, inspector: Inspector) -> Router {
    let Some(token) = config.token.clone() else {
        return Router::new();
    };
    let base = config.base_path.clone();
    let console = Arc::new(web::Console::new(config, token, inspector));
    samples::start(&console);
    let at = |path: &str| format!("{base}{path}");
    let protected = Router::new()
        .route(&base, get(pages::projections::page))
        .route(&at("/"), get(pages::projections::page))
        .route(&at("/dead-letters"), get(pages::dead_letters::list))
        .route(&at("/dead-letter"), get(pages::dead_letters::show))
        .route(&at("/dead-letter/retry"), post(pages::dead_letters::retry))
        .route(&at("/dead-letter/skip"), post(pages::dead_letters::skip))
        .route(&at("/events"), get(pages::events::stream))
        .route(&at("/event"), get(pages::events::one))
        .route(&at("/correlation"), get(pages::events::correlation))
        .route(&at("/processes"), get(pages::processes::list))
        .route(&at("/process"), get(pages::processes::show))
        .route(&at("/logout"), post(auth::logout))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&console),
            auth::require,
        ));
    let open = Router::new()
        .route(&at("/login"), get(auth::login_form).post(auth::login))
        .route(&at("/console.css"), get(web::stylesheet));
    protected
        .merge(open)
        .layer(axum::middleware::from_fn(web::security_headers))
        .with_state(console)
}
