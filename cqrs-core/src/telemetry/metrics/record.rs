//! Where the framework records its counters and histograms: one small function per fact, so
//! each call site is one line. Label values are `&'static str` (aggregate and process types,
//! outcomes) except a projection's name.

use std::time::Instant;

use metrics::{counter, histogram};

use crate::process::{Dispatched, ReceivedKind};
use crate::{CommandError, CommandOutcome};

use super::{
    COMMANDS, COMMAND_CONFLICTS, COMMAND_DURATION, COMMAND_RETRIES, PROCESS_COMMANDS,
    PROCESS_INPUTS, PROCESS_TIMEOUTS_FIRED, PROCESS_TIMER_FAILURES, PROJECTION_EVENTS_APPLIED,
    PROJECTION_EVENTS_PARKED,
};

/// A command of `aggregate` that started at `started` ended with `result`.
pub(crate) fn command(aggregate: &'static str, started: Instant, outcome: &'static str) {
    counter!(COMMANDS, "aggregate" => aggregate, "outcome" => outcome).increment(1);
    histogram!(COMMAND_DURATION, "aggregate" => aggregate, "outcome" => outcome)
        .record(started.elapsed());
}

/// A command under way: dropped before [`finished`](Self::finished), its caller gave up on
/// it (a client or a balancer that stopped waiting, a shutdown past its grace), and it is
/// counted as `cancelled`, with its time so far. Without it the slowest commands, the ones a
/// latency alert is for, were never counted.
pub(crate) struct Unfinished {
    aggregate: &'static str,
    started: Instant,
    finished: bool,
}

impl Unfinished {
    pub(crate) fn command(aggregate: &'static str, started: Instant) -> Self {
        Self {
            aggregate,
            started,
            finished: false,
        }
    }

    /// The command came to an outcome, which its caller records.
    pub(crate) fn finished(mut self) {
        self.finished = true;
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if !self.finished {
            command(self.aggregate, self.started, "cancelled");
        }
    }
}

/// An append of a command of `aggregate` met a conflict; `retrying` when it tries again.
pub(crate) fn command_conflict(aggregate: &'static str, retrying: bool) {
    counter!(COMMAND_CONFLICTS, "aggregate" => aggregate).increment(1);
    if retrying {
        counter!(COMMAND_RETRIES, "aggregate" => aggregate).increment(1);
    }
}

/// Projection `name` settled `applied` events and `parked` dead letters.
pub(crate) fn projection_settled(name: &str, applied: u64, parked: u64) {
    if applied > 0 {
        counter!(PROJECTION_EVENTS_APPLIED, "projection" => name.to_owned()).increment(applied);
    }
    if parked > 0 {
        counter!(PROJECTION_EVENTS_PARKED, "projection" => name.to_owned()).increment(parked);
    }
}

/// Process manager `process` recorded an input of `kind`.
pub(crate) fn process_input(process: &'static str, kind: &ReceivedKind) {
    let kind = match kind {
        ReceivedKind::Event { .. } => "event",
        ReceivedKind::Timeout { .. } => "timeout",
        ReceivedKind::Accepted { .. } => "accepted",
        ReceivedKind::Rejected { .. } => "rejected",
    };
    counter!(PROCESS_INPUTS, "process" => process, "kind" => kind).increment(1);
}

/// Process manager `process` dispatched a command, which came to `dispatched`.
pub(crate) fn process_command(process: &'static str, outcome: &'static str) {
    counter!(PROCESS_COMMANDS, "process" => process, "outcome" => outcome).increment(1);
}

/// The `outcome` label of a command's result (also its span's `outcome` field): accepted,
/// unchanged, duplicate, rejected, conflict or error.
pub(crate) fn command_outcome<T, E: std::error::Error + 'static>(
    result: &Result<CommandOutcome<T>, CommandError<E>>,
) -> &'static str {
    match result {
        Ok(outcome) if outcome.duplicate => "duplicate",
        Ok(outcome) if outcome.events.is_empty() => "unchanged",
        Ok(_) => "accepted",
        Err(CommandError::Rejected(_)) => "rejected",
        Err(CommandError::Store(error)) if error.is_conflict() => "conflict",
        Err(_) => "error",
    }
}

/// The `outcome` label of a process manager's dispatch (also its span's `outcome` field):
/// accepted, duplicate, forwarded, rejected or failed.
pub(crate) fn dispatch_outcome<R>(
    dispatched: &Result<Dispatched, crate::process::DispatchError<R>>,
) -> &'static str {
    use crate::process::DispatchError;
    match dispatched {
        Ok(Dispatched::Accepted {
            duplicate: true, ..
        }) => "duplicate",
        Ok(Dispatched::Accepted { .. }) => "accepted",
        Ok(Dispatched::Forwarded) => "forwarded",
        Err(DispatchError::Rejected(_)) => "rejected",
        Err(DispatchError::Failed(_)) => "failed",
    }
}

/// A firing of `process`'s timer pump failed (it is retried).
pub(crate) fn timer_failed(process: &'static str) {
    counter!(PROCESS_TIMER_FAILURES, "process" => process).increment(1);
}

/// Process manager `process`'s pump fired `fired` timeouts.
pub(crate) fn timeouts_fired(process: &'static str, fired: usize) {
    if fired > 0 {
        counter!(PROCESS_TIMEOUTS_FIRED, "process" => process).increment(fired as u64);
    }
}
