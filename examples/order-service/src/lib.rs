//! The order service: the quick start's order flow ([`quickstart`]) as a microservice, on
//! PostgreSQL and a search node.
//!
//! - [`Config`]: from the environment ([`Config::from_env`]), `Debug` without passwords;
//! - [`Service`]: [`Service::start`] connects, migrates and starts the workers (the order
//!   summaries' projection, the orchestrated saga with its timer pump, the carrier);
//!   [`Service::router`] is the HTTP API ([`http`] lists its routes);
//!   [`Service::serve`] serves it with a graceful shutdown;
//! - commands answer the feed position of their last event, and queries may wait for the read
//!   model to reach it (`min_position`, read-your-writes; see [`http`]); errors are
//!   `application/problem+json` ([`http::Problem`]);
//! - [`health`]: liveness and readiness; [`metrics`]: `GET /metrics` in Prometheus text;
//!   [`telemetry`]: logs, and the request span that continues the caller's trace;
//! - the web console at `/console` ([`cqrs_console`]), off unless
//!   `ORDER_SERVICE_CONSOLE_TOKEN` is set ([`Config::console_token`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let config = order_service::Config::from_env()?;
//! let service = order_service::Service::start(config).await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let stop = async { let _ = tokio::signal::ctrl_c().await; };
//! service.serve(listener, stop).await?;
//! # Ok(()) }
//! ```

mod admin;
mod config;
mod console;
pub mod health;
pub mod http;
pub mod metrics;
mod service;
pub mod telemetry;

#[doc(inline)]
pub use admin::admin;
#[doc(inline)]
pub use config::{Config, ConfigError, DEFAULT_BIND, DEFAULT_INDEX, DEFAULT_SCHEMA};
#[doc(inline)]
pub use service::{Service, StartError};
