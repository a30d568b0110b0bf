//! Process managers (sagas): long-running, event-sourced decision makers that react to events,
//! send commands to aggregates, schedule timeouts and compensate when a command is rejected.
//!
//! A [`ProcessManager`] is as plain as an [`Aggregate`](crate::Aggregate): [`route`] says which
//! instance an event starts or continues, [`apply`] folds what the instance received, and
//! [`decide`] returns [`Action`]s. The framework runs it as a projection on the one
//! [`ProjectionRunner`](crate::projection::ProjectionRunner) (checkpoint, lease, dead letters,
//! backoff), and guarantees:
//!
//! - **each instance is event-sourced** in its own stream `"{TYPE}-{instance}"`: what it
//!   one `ProcessInputReceived` per input, holding what it received and what it decided.
//!   State after a crash equals state without one.
//! - **exactly-once steps**: an input delivered twice decides nothing new, and each command
//!   carries a command id derived from (instance, input, action index), so a step redone after
//!   a crash lands once through the aggregates' idempotent command ids.
//! - **durable timeouts**: kept by the store with the journal append, fired once (even with
//!   several workers), surviving restarts, cancellable by key, driven by a clock tests control.
//!
//! [`route`]: ProcessManager::route
//! [`apply`]: ProcessManager::apply
//! [`decide`]: ProcessManager::decide

mod alarm;
mod dispatch;
mod drive;
mod fixture;
mod ids;
mod instance;
mod journal;
mod life;
mod manager;
mod options;
mod projection;
mod pump;
mod reply;
mod status;
mod store;

pub use dispatch::{CommandDispatcher, DispatchError, Dispatched};
pub use fixture::ProcessFixture;
pub use ids::{InputId, PROCESS_NAMESPACE};
pub use instance::{Bookkeeping, PendingCommand};
pub use journal::{
    DecidedAction, InputReceived, ReceivedKind, RecordedAction, TimeoutFired, INPUT_RECEIVED,
    TIMEOUT_FIRED,
};
pub use life::{InstanceState, LiveTimeout};
pub use manager::{Action, Context, Due, EventRef, Input, ProcessManager, Route, Step};
pub use options::ProcessOptions;
pub use projection::ProcessManagerProjection;
pub use reply::{CommandReplied, ReplyOutcome, COMMAND_REPLIED};
pub use status::{Processes, TimelineEntry, TimelineKind};
pub use store::{
    in_utc, FiredTimeout, InstanceCounts, InstanceFilter, InstanceQuery, InstanceRow,
    ProcessManagerStore, ProcessRecord, ProcessStore, ScheduledTimeout, TimeoutChange,
};
