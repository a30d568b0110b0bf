//! Operations for services built on `cqrs-core` and the PostgreSQL store: see each projection's
//! progress, the dead letters and process-manager instances, a stream's or the feed's events,
//! and act on them (retry or skip a dead letter, rebuild or reset a projection).
//!
//! Three layers, each on the one below:
//! - [`inspect`]: typed, serde-serializable data read from the store ([`Inspector`]); the
//!   `cqrs` command line and the web console both render it;
//! - [`cli`]: the commands as a clap subcommand ([`cli::Command`]) and [`cli::run`], used by
//!   the `cqrs` binary;
//! - [`service`]: the same commands for a service's own binary, plus `projections rebuild` and
//!   `projections reset` over the projections the service registers.

pub mod cli;
mod error;
pub mod inspect;
pub mod service;

#[doc(inline)]
pub use error::{AdminError, ErrorClass, Result};
#[doc(inline)]
pub use inspect::Inspector;
