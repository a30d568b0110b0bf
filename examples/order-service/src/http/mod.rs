//! The HTTP API: routes, the per-request middleware (correlation id, span, metrics), and the
//! handlers, one file per concern.
//!
//! | route | what |
//! |---|---|
//! | `POST /orders/{id}` | place order `id`: `{"customer": "...", "lines": [{"sku", "quantity", "unit_price"}]}` |
//! | `POST /orders/{id}/confirm` | confirm it |
//! | `POST /orders/{id}/ship` | ship it (confirmed orders) |
//! | `POST /orders/{id}/cancel` | cancel it: `{"reason": "..."}` |
//! | `POST /stock/{sku}/restock` | add stock: `{"quantity": n}` |
//! | `GET /orders/{id}` | the order's summary, from the search node |
//! | `GET /orders?status=&customer=&from=&size=` | a page of summaries |
//! | `GET /health/liveness`, `GET /health/readiness` | health checks |
//! | `GET /metrics` | Prometheus text |
//! | `/console/...` | the web console, when `ORDER_SERVICE_CONSOLE_TOKEN` is set (else 404) |

mod commands;
mod correlation;
mod problem;
mod queries;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

use crate::service::State;

#[doc(inline)]
pub use correlation::{Correlation, COMMAND_ID, CORRELATION_ID, FEED_POSITION};
#[doc(inline)]
pub use problem::{Problem, PROBLEM_JSON, RETRY_AFTER_SECONDS};
#[doc(inline)]
pub use queries::{DEFAULT_PAGE, MAX_PAGE};

/// The API's router on `state`.
pub(crate) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/orders/{id}", post(commands::place).get(queries::get))
        .route("/orders/{id}/confirm", post(commands::confirm))
        .route("/orders/{id}/ship", post(commands::ship))
        .route("/orders/{id}/cancel", post(commands::cancel))
        .route("/stock/{sku}/restock", post(commands::restock))
        .route("/orders", get(queries::search))
        .route("/health/liveness", get(crate::health::liveness))
        .route("/health/readiness", get(crate::health::readiness))
        .route("/metrics", get(crate::metrics::scrape))
        .fallback(|| async { Problem::not_found("no such route") })
        .layer(axum::middleware::from_fn(problem::middleware))
        .layer(axum::middleware::from_fn(correlation::middleware))
        .with_state(state)
}
