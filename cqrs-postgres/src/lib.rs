//! The PostgreSQL event store for `cqrs-core`, on sqlx.
//!
//! [`PgEventStore`] implements every store role trait of `cqrs-core`: appends in one statement
//! with optimistic concurrency (conflicts found through sqlx's constraint classification, never by
//! matching messages), idempotent command and event ids, batched stream reads, a **gap-safe**
//! global feed, snapshots and checkpoints. Its tables live in one schema ([`PgSchema`]), created
//! by the explicit, versioned [`PgEventStore::migrate`]. The SQL sits in `src/sql/` beside the
//! code that runs it.
//!
//! ## Process managers' timeouts
//! For [`ProcessStore`](cqrs_core::process::ProcessStore), timeouts are rows of
//! `process_timeouts`, and each instance has a status row in `process_instances`. Recording an
//! input writes the journal events, the timeout changes and the status row in **one statement**
//! (`append.sql` with the three CTEs of `sql/process_record.sql` spliced in, so conflicts and
//! duplicates are told apart as for any append; the three write only if the events were
//! inserted). Firing deletes due rows under `FOR UPDATE SKIP LOCKED` and appends each one's
//! `ProcessTimeoutFired` event in the same transaction, so however many workers fire, each
//! timeout fires once, and a crash mid-way leaves it due. Due times compare with the process
//! clock the caller passes, never `now()`.
//!
//! ## The gap-safe feed
//! PostgreSQL sequences hand out numbers at insert time but transactions commit in any order, so
//! a reader polling `WHERE position > $checkpoint` can pass an event whose transaction commits
//! late, and never see it. This store records each event's writing transaction
//! (`pg_current_xact_id()`), orders the feed by `(transaction_id, position)` and only returns rows
//! of transactions older than `pg_snapshot_xmin(pg_current_snapshot())`: every transaction that
//! can still commit is at or above that horizon. A [`cqrs_core::Position`] from this store packs
//! that pair. The price: one long open transaction anywhere in the cluster holds every reader
//! back; [`PgEventStore::feed_horizon`] shows by how much.
//!
//! ## Its events' JSON
//! An event's payload and metadata are `jsonb` columns unless the store is configured with
//! [`EventJson::Json`] before [`PgEventStore::migrate`] creates its table
//! ([`PgEventStore::with_event_json`]): `json` keeps the text as written, which spares the
//! server a parse on every append and a print on every read, at the price of a cast before
//! `jsonb`'s operators in your own SQL. `migrate` checks an existing table against the choice.
//!
//! ## Its pool
//! [`PgEventStore::connect`] makes its own pool; [`PgEventStore::new`] takes yours. Start yours
//! from [`pool_options`]: sqlx's default checks every connection with a round trip before each
//! use, which these options do only for a connection idle for a second or more
//! ([`CHECK_IDLE_AFTER`]), so a pooled statement waits for one round trip, not two.

mod append;
mod bounded;
mod bus_dead_letter;
mod checkpoint;
mod columns;
mod connect;
mod convert;
mod dead_letter;
mod error;
mod event_json;
mod group;
mod horizon;
mod jsonb;
mod migrate;
mod notify;
mod operations;
mod process;
mod projection;
mod read;
mod repair;
mod row;
mod schema;
mod signal;
mod snapshot;
mod store;
#[cfg(test)]
mod test_pool;
#[cfg(feature = "testing")]
pub mod testing;
mod text;
mod timestamp;
mod to_the_end;
mod xid;
mod xid8;

#[doc(inline)]
pub use connect::{pool_options, pool_options_checking_idle, CHECK_IDLE_AFTER};
#[doc(inline)]
pub use error::{PgError, Result, TimeoutStage};
#[doc(inline)]
pub use event_json::EventJson;
#[doc(inline)]
pub use group::GroupCommit;
#[doc(inline)]
pub use horizon::{record_feed_horizon, FeedHorizon, HorizonHolder};
#[doc(inline)]
pub use operations::{PgBreaker, PgLease, PgSubscriber, LAG_COUNT_LIMIT};
#[doc(inline)]
pub use repair::TransactionIdRepair;
#[doc(inline)]
pub use schema::PgSchema;
#[doc(inline)]
pub use signal::PgFeedSignal;
#[doc(inline)]
pub use store::{PgEventStore, DEFAULT_ANSWER_TIMEOUT, DEFAULT_MAX_APPEND_BYTES};
