//! The commands for a service's own binary: everything `cqrs` does, plus `projections
//! rebuild <name>` and `projections reset <name>` over the projections the service registers
//! (rebuilding needs the service's projection code).
//!
//! ```no_run
//! use clap::{Parser, Subcommand};
//! use cqrs_admin::service::{Admin, AdminArgs, CatchUpProjection};
//! use cqrs_admin::Inspector;
//! use cqrs_core::projection::ProjectionRunner;
//! # use cqrs_core::projection::{Projection, ProjectionError};
//! # use cqrs_core::{EventFilter, RecordedEvent};
//! # #[derive(Clone)] struct Orders;
//! # #[async_trait::async_trait]
//! # impl Projection for Orders {
//! #     fn name(&self) -> &str { "orders" }
//! #     fn filter(&self) -> EventFilter { EventFilter::all() }
//! #     async fn apply(&self, _: &[RecordedEvent]) -> Result<(), ProjectionError> { Ok(()) }
//! # }
//!
//! #[derive(Parser)]
//! enum MyService {
//!     /// Serve HTTP.
//!     Serve,
//!     /// Operations: status, dead letters, projections rebuild...
//!     Admin(AdminArgs),
//! }
//!
//! # async fn demo(store: cqrs_postgres::PgEventStore) -> std::process::ExitCode {
//! match MyService::parse() {
//!     MyService::Serve => std::process::ExitCode::SUCCESS,
//!     MyService::Admin(args) => {
//!         let runner_store = store.clone();
//!         Admin::new(Inspector::new(store.clone()))
//!             .projection(CatchUpProjection::new("orders", store, move || {
//!                 ProjectionRunner::for_store(Orders, &runner_store)
//!             }))
//!             .main("my-service", &args)
//!             .await
//!     }
//! }
//! # }
//! ```

mod admin;
mod progress;
mod projection;

#[doc(inline)]
pub use admin::{Admin, AdminArgs, AdminCommand, ProjectionCommand};
#[doc(inline)]
pub use progress::{Progress, ProgressTarget};
#[doc(inline)]
pub use projection::{
    AdminProjection, CatchUpProjection, RebuildFuture, RebuildOutcome, RebuildWith,
};
