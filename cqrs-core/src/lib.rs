//! The core of the framework: the domain traits ([`Aggregate`], [`DomainEvent`]), identity and
//! position newtypes, event envelopes, the store role traits, the command pipeline
//! ([`Repository`]), upcasters, an in-memory store and a given / when / then fixture.
//! `#[derive(DomainEvent)]` (default feature `derive`) implements [`DomainEvent`](trait@DomainEvent)
//! for a serde enum.
//!
//! This crate knows no database: backends such as `cqrs-postgres` implement its store traits,
//! and read-model crates such as `cqrs-elastic` consume its feed. See `ARCHITECTURE.md` in the
//! repository for the whole picture.

// The derive macros name this crate `::cqrs_core`, inside it too.
extern crate self as cqrs_core;

mod aggregate;
pub mod backend;
pub mod bus;
mod clock;
mod command;
mod error;
mod event;
mod fixture;
mod ids;
mod memory;
mod metadata;
pub mod process;
pub mod projection;
mod redact;
mod repository;
mod retry;
mod snapshot;
mod store;
mod stored_metadata;
mod stream_event;
pub mod telemetry;
mod texts;
mod upcast;
mod validate;

#[cfg(feature = "testing")]
pub mod testing;

#[doc(inline)]
pub use aggregate::Aggregate;
#[doc(inline)]
pub use clock::{Clock, SharedClock, SystemClock};
#[doc(inline)]
pub use command::{CommandContext, CommandError, CommandOutcome, ContextIds};
/// Derives [`DomainEvent`](trait@DomainEvent) for a serde enum: each variant's event type is the
/// name serde writes for it, and `#[event(version = N)]` sets the schema version. See the
/// trait's documentation.
#[cfg(feature = "derive")]
pub use cqrs_macros::DomainEvent;
#[doc(inline)]
pub use error::{error_chain, BoxError, Error, ErrorKind, Result};
#[doc(inline)]
pub use event::{decode_tagged_json, DomainEvent, NewEvent, RecordedEvent};
#[doc(inline)]
pub use fixture::{AggregateFixture, Then};
#[doc(inline)]
pub use ids::{
    CommandId, EventId, ExpectedVersion, InvalidPosition, InvalidStreamId, Position, StreamId,
    Version,
};
#[doc(inline)]
pub use memory::InMemoryEventStore;
#[doc(inline)]
pub use metadata::Metadata;
#[doc(inline)]
pub use redact::redact_url;
#[doc(inline)]
pub use repository::Repository;
#[doc(inline)]
pub use retry::RetryPolicy;
#[doc(inline)]
pub use snapshot::SnapshotPolicy;
#[doc(inline)]
pub use store::{
    AppendEvents, AppendOutcome, CheckpointStore, EventFilter, EventStore, FeedBatch, FencedSave,
    ReadAll, ReadStream, Snapshot, SnapshotReplay, SnapshotStore,
};
#[doc(inline)]
pub use stream_event::{Payload, StreamEvent};
#[doc(inline)]
pub use upcast::{Upcaster, Upcasters};
