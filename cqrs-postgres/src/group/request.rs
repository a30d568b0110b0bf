//! What a writer hands its lane ([`Request`]) and what it hears back ([`Reply`]).

use std::sync::atomic::AtomicU8;
use std::sync::Arc;
use std::time::Instant;

use cqrs_core::{AppendOutcome, StreamId};
use tokio::sync::oneshot;

use crate::columns::Columns;

/// Where a request is: queued, taken into a group by its lane, or taken back by its writer.
pub(super) const QUEUED: u8 = 0;
pub(super) const TAKEN: u8 = 1;
pub(super) const ABANDONED: u8 = 2;

/// What a lane tells a writer.
pub(super) enum Reply {
    /// Written in a group.
    Appended(AppendOutcome),
    /// Not written in a group: append on your own.
    Alone,
    /// Perhaps written: the group's connection broke and where its events landed could not be
    /// looked up. Append on your own; your own events found at your versions are the group's.
    Unknown,
    /// The statement timed out: nothing was written.
    TimedOut,
}

/// One append waiting for its group.
pub(super) struct Request {
    pub(super) stream_id: StreamId,
    pub(super) expected: i64,
    pub(super) columns: Arc<Columns>,
    /// [`QUEUED`], [`TAKEN`] or [`ABANDONED`], shared with the writer.
    pub(super) state: Arc<AtomicU8>,
    pub(super) reply: oneshot::Sender<Reply>,
    /// When it was queued (the group's wait, in the metrics).
    pub(super) queued_at: Instant,
    /// The writer's span (`pg_append`): the lane records the size of the group it rode in.
    pub(super) span: tracing::Span,
}
