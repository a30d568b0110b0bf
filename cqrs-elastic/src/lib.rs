//! Read models in Elasticsearch (or OpenSearch) for `cqrs-core`: events become documents,
//! documents answer typed queries, and a read model can be rebuilt without downtime.
//!
//! - [`ElasticProjection`]: your read model: which events, which document each one changes, and
//!   how ([`Change`]). Plain, synchronous code.
//! - [`EsReadModel`]: the one object to build from a client and your projection: it creates
//!   the index ([`EsReadModel::ensure`]), makes the projector for the runner
//!   ([`EsReadModel::projector`]), answers queries and rebuilds. The parts below are what it
//!   is made of.
//! - [`EsProjector`]: runs it as a core [`Projection`](cqrs_core::projection::Projection): one
//!   `_mget` and one `_bulk` per batch, idempotent and order-safe (each document remembers the
//!   last feed position applied to it), optimistic on `_seq_no`, every bulk item checked.
//! - [`EsIndex`]: the alias `{name}` over a versioned index `{name}_v{n}` with explicit
//!   mappings; [`EsIndex::ensure`] creates it, [`EsIndex::rebuild`] fills `{name}_v{n+1}` from
//!   the feed and swaps the alias atomically.
//! - [`EsQueries`]: `get`, [`Search`] with a small [`Query`] builder, `count`, and
//!   `wait_for_position` to read your own writes.
//!
//! Every document holds the framework's metadata in a top-level `cqrs` object (`id`,
//! `position`, `deleted`); deleted documents stay as tombstones that queries never return, so
//! a replay cannot bring them back.
//!
//! The client is the official `elasticsearch` crate; only APIs that Elasticsearch 7 to 9 and
//! OpenSearch 2 share are used.

mod block;
mod bulk;
mod client;
mod document;
mod error;
mod fold;
mod http;
mod index;
mod mget;
mod projection;
mod projector;
mod queries;
mod query;
mod read_model;
mod rebuild;
mod refresh;
mod search;
mod settings;
#[cfg(feature = "testing")]
pub mod testing;

#[doc(inline)]
pub use block::WriteBlock;
#[doc(inline)]
pub use client::connect;
#[doc(inline)]
pub use error::{EsError, Result};
#[doc(inline)]
pub use index::{EsIndex, IndexVersion};
#[doc(inline)]
pub use projection::{Change, ElasticProjection};
#[doc(inline)]
pub use projector::{EsProjector, ProjectorOptions};
#[doc(inline)]
pub use queries::EsQueries;
#[doc(inline)]
pub use query::{BoolQuery, Query, Range};
#[doc(inline)]
pub use read_model::EsReadModel;
#[doc(inline)]
pub use rebuild::{RebuildOptions, RebuildReport};
#[doc(inline)]
pub use refresh::RefreshPolicy;
#[doc(inline)]
pub use search::{Hit, Page, Search, SortOrder};
#[doc(inline)]
pub use settings::IndexSettings;
