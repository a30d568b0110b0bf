//! In: a consumer that turns integration events into this service's commands, with an
//! exactly-once effect.
//!
//! A service implements an [`IntegrationHandler`] (which event types, and what each does);
//! [`IntegrationConsumer`] runs it as a consumer-group member. The effect is once per message
//! because the handler's commands carry a command id derived from the message
//! ([`Incoming::command_context`], [`derived_command_id`]): a message delivered again (after a
//! crash, a rebalance) derives the same id and the repository returns the first outcome. The
//! offset is committed only after the effect, so nothing is skipped.
//!
//! The parts: `handler` (the trait and [`HandleError`]), `incoming` (the decoded message),
//! `ids` (the id rule), `runner` (the group member: dispatch to partitions, commits),
//! `partition` (one partition's worker: retries, parking), `redrive` (operators' retry / skip
//! requests on parked messages, carried out by the partition's worker), `commit` and `context` (commits on
//! the interval and on revoke), `status` and `handle` (what a running consumer reports).
//! Parked messages go to a [`BusDeadLetterStore`](cqrs_core::bus::BusDeadLetterStore), the
//! service's own database.

mod commit;
mod context;
mod handle;
mod handler;
mod ids;
mod incoming;
mod options;
mod partition;
mod redrive;
mod runner;
mod status;

#[doc(inline)]
pub use handle::{ConsumerHandle, ConsumerWaitError};
#[doc(inline)]
pub use handler::{HandleError, IntegrationHandler};
#[doc(inline)]
pub use ids::{derived_command_id, BUS_NAMESPACE};
pub(crate) use incoming::carry_trace;
#[doc(inline)]
pub use incoming::Incoming;
#[doc(inline)]
pub use options::ConsumerOptions;
#[doc(inline)]
pub use runner::IntegrationConsumer;
#[doc(inline)]
pub use status::{ConsumerState, ConsumerStatus, PartitionStatus};
