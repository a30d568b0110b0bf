//! One instance's part of a batch: [`Run`] holds the loaded instance while its inputs are
//! recorded and its pending commands sent, in feed order.
//!
//! Why each crash is safe: the checkpoint passes a trigger only once this returned, so after
//! a crash the trigger comes again and the run resumes from the journal. Recorded before: the
//! record is a duplicate (same event ids) or skipped as recent. Commands pending: sent again
//! with the same command ids, so the aggregates land each once.

use std::sync::{Arc, PoisonError};

use time::OffsetDateTime;
use tracing::Instrument;

use super::cache::Loaded;
use super::{Arrival, Body, Driver, Halt};
use crate::process::dispatch::{CommandDispatcher, DispatchError, Dispatched};
use crate::process::ids::InputId;
use crate::process::instance::{Decision, Instance, PendingCommand, Received};
use crate::process::journal::ReceivedKind;
use crate::process::manager::{Input, ProcessManager};
use crate::process::reply::{CommandReplied, ReplyOutcome};
use crate::process::store::{ProcessManagerStore, TimeoutChange};
use crate::telemetry::{metrics, span_traceparent, TRACEPARENT};
use crate::{Clock, CommandContext, CommandId, Error, Position, SnapshotPolicy, StreamId, Version};

/// Drives `instance` through `arrivals` (its inputs of one batch, in feed order). On a halt,
/// the positions of the arrival that halted and of every later one (they wait behind it).
pub(super) async fn drive<P, S, D>(
    driver: Arc<Driver<P, S, D>>,
    instance: String,
    arrivals: Vec<Arrival<P>>,
) -> Result<(), (Vec<Position>, Halt)>
where
    P: ProcessManager,
    S: ProcessManagerStore,
    D: CommandDispatcher<P::Command, Rejection = P::Rejection> + 'static,
{
    let positions: Vec<Position> = arrivals.iter().map(|a| a.position).collect();
    let mut run = match Run::start(&driver, instance).await {
        Ok(run) => run,
        Err(halt) => return Err((positions, halt)),
    };
    for (n, arrival) in arrivals.into_iter().enumerate() {
        if let Err(halt) = run.take(arrival).await {
            // The instance may be half-way through a record: it is loaded afresh next time.
            return Err((positions[n..].to_vec(), halt));
        }
    }
    run.finish();
    Ok(())
}

/// One instance being driven.
struct Run<'a, P: ProcessManager, S, D> {
    driver: &'a Driver<P, S, D>,
    instance: String,
    stream: StreamId,
    loaded: Loaded<P>,
}

impl<'a, P, S, D> Run<'a, P, S, D>
where
    P: ProcessManager,
    S: ProcessManagerStore,
    D: CommandDispatcher<P::Command, Rejection = P::Rejection> + 'static,
{
    /// Takes the instance from the cache, or loads it.
    async fn start(driver: &'a Driver<P, S, D>, instance: String) -> Result<Self, Halt> {
        let stream = Instance::<P>::stream(&instance).map_err(Halt::of)?;
        let cached = driver
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(stream.as_str());
        let loaded = match cached {
            Some(loaded) => loaded,
            None => Loaded::new(Self::load(driver, &stream).await?),
        };
        Ok(Self {
            driver,
            instance,
            stream,
            loaded,
        })
    }

    async fn load(driver: &Driver<P, S, D>, stream: &StreamId) -> Result<Instance<P>, Halt> {
        Instance::load(&driver.store, stream, &driver.upcasters)
            .await
            .map_err(Halt::of)
    }

    /// Loads the instance again from the store: the journal is the truth.
    async fn reload(&mut self) -> Result<(), Halt> {
        self.loaded = Loaded::new(Self::load(self.driver, &self.stream).await?);
        Ok(())
    }

    /// Puts the quiescent instance back in the cache.
    fn finish(self) {
        self.driver
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .put(self.stream.as_str().to_owned(), self.loaded);
    }

    /// Takes one arrival: records it unless it is to be skipped, then sends what is pending.
    async fn take(&mut self, arrival: Arrival<P>) -> Result<(), Halt> {
        let Arrival {
            starts,
            body,
            position,
        } = arrival;
        let received = match body {
            Body::Input(received) => received,
            Body::Reply(CommandReplied {
                command_id,
                outcome: ReplyOutcome::Failed { reason },
                ..
            }) => return self.failed(command_id, &reason).await,
            Body::Reply(reply) => match self.resolve(&reply)? {
                Some(resolved) => resolved,
                // Not pending (answered before, or not this instance's): nothing to record,
                // but what is pending is sent, as for an input recorded before. A reply comes
                // again when the batch that recorded it failed to send what it decided.
                None => return self.send_pending().await,
            },
        };
        let correlation = self.loaded.instance.books.correlation_id;
        let span = super::span::step::<P>(&self.instance, &received.kind, position, correlation);
        async {
            self.record(vec![received], starts).await?;
            self.send_pending().await
        }
        .instrument(span)
        .await
    }

    /// A target's word that it could not run a command (it parked it): the instance is parked
    /// with the target's reason while the command is pending and unanswered, as a local
    /// dispatcher's failure parks it. Once the target's real answer is recorded (its operators
    /// retried the command), the word is superseded and says nothing: the answer decides.
    async fn failed(&mut self, command_id: CommandId, reason: &str) -> Result<(), Halt> {
        let pending =
            (self.loaded.instance.books.pending.iter()).any(|p| p.step.command_id == command_id);
        if !pending {
            // As for an answer that resolves nothing: what is pending is sent.
            return self.send_pending().await;
        }
        if self.answered(command_id).await? {
            return Ok(());
        }
        Err(Halt::Poison(format!(
            "command {command_id} failed at its target, which parked it: {reason}"
        )))
    }

    /// Whether the target's answer to `command_id` is recorded in its reply stream.
    async fn answered(&self, command_id: CommandId) -> Result<bool, Halt> {
        const PAGE: usize = 64;
        let stream = CommandReplied::stream_of(P::TYPE, command_id)
            .map_err(|error| Halt::Poison(error.to_string()))?;
        let mut from = Version::ZERO;
        loop {
            let events = (self.driver.store)
                .read_stream(&stream, from, PAGE)
                .await
                .map_err(Halt::of)?;
            for event in &events {
                let recorded: CommandReplied = serde_json::from_value(event.payload.clone())
                    .map_err(|e| Halt::Poison(format!("reply {}: {e}", event.metadata.event_id)))?;
                if recorded.outcome.is_answer() {
                    return Ok(true);
                }
            }
            match events.last() {
                Some(last) if events.len() == PAGE => from = last.version.next(),
                _ => return Ok(false),
            }
        }
    }

    /// The outcome input a reply brings, from the pending command it answers: the same input
    /// (id, kind) a local dispatcher's answer would have been. `None` when no pending command
    /// has its command id. A rejection that does not decode as `P::Rejection` is poison.
    fn resolve(&self, reply: &CommandReplied) -> Result<Option<Received<P>>, Halt> {
        let Some(pending) = self
            .loaded
            .instance
            .books
            .pending
            .iter()
            .find(|p| p.step.command_id == reply.command_id)
        else {
            return Ok(None);
        };
        let step = pending.step;
        let command: P::Command = serde_json::from_value(pending.command.clone())
            .map_err(|e| Halt::Poison(format!("pending command {}: {e}", step.command_id)))?;
        let id = InputId::of_outcome(step.command_id);
        Ok(Some(match &reply.outcome {
            ReplyOutcome::Accepted => Received {
                input: Input::Accepted { step, command },
                id,
                kind: ReceivedKind::Accepted { step },
            },
            // Not an answer: `take` hands it to `failed`.
            ReplyOutcome::Failed { .. } => return Ok(None),
            ReplyOutcome::Rejected { error } => {
                let typed: P::Rejection = serde_json::from_value(error.clone()).map_err(|e| {
                    Halt::Poison(format!(
                        "the reply to command {} holds a rejection that is not a {}: {e}",
                        step.command_id,
                        std::any::type_name::<P::Rejection>()
                    ))
                })?;
                Received {
                    input: Input::Rejected {
                        step,
                        command,
                        error: typed,
                    },
                    id,
                    kind: ReceivedKind::Rejected {
                        step,
                        error: error.clone(),
                    },
                }
            }
        }))
    }

    /// Whether a feed input is for this instance as it stands: not to an instance that has not
    /// started (unless it starts it) or has ended, not a timeout that is no longer live, not
    /// one recorded before. Outcomes are always admitted unless recorded before (an ended
    /// instance still records the outcomes of commands it had decided).
    fn admits(&self, id: InputId, kind: &ReceivedKind, starts: bool) -> bool {
        let books = &self.loaded.instance.books;
        if books.recently_received(id) {
            return false;
        }
        match kind {
            ReceivedKind::Accepted { step } | ReceivedKind::Rejected { step, .. } => {
                books.pending_command(step).is_some()
            }
            ReceivedKind::Timeout {
                key, timeout_id, ..
            } => {
                !books.state.is_final()
                    && books.timeouts.get(key).map(|t| t.timeout_id) == Some(*timeout_id)
            }
            ReceivedKind::Event { .. } => {
                !books.state.is_final() && (starts || books.has_started())
            }
        }
    }

    /// Records `inputs` (those it still admits) with their decisions in one write, atomically
    /// with their timeout changes and status row. A conflict (a racing worker) reloads and
    /// tries again; a duplicate means they were recorded before, and the stored decisions
    /// stand.
    async fn record(&mut self, inputs: Vec<Received<P>>, starts: bool) -> Result<(), Halt> {
        let retry = self.driver.options.retry;
        let mut attempt = 0;
        loop {
            let admitted: Vec<&Received<P>> = (inputs.iter())
                .filter(|r| self.admits(r.id, &r.kind, starts))
                .collect();
            if admitted.is_empty() {
                return Ok(());
            }
            let now = self.driver.options.clock.now();
            let decision = (self.loaded.instance)
                .decide_inputs(&self.instance, admitted.iter().copied(), now)
                .map_err(|error| Halt::Poison(error.to_string()))?;
            let before = decision.expected;
            let earliest = earliest_scheduled(&decision);
            let decided: Vec<_> = decision
                .commands
                .iter()
                .map(|(s, _)| s.command_id)
                .collect();
            let record = decision.into_record(self.stream.clone());
            match self.driver.store.record(P::TYPE, record).await {
                Ok(outcome) if !outcome.duplicate => {
                    for received in &admitted {
                        metrics::record::process_input(P::TYPE, &received.kind);
                    }
                    self.loaded.fresh.extend(decided);
                    if let Some(due_at) = earliest {
                        self.driver.alarm.scheduled(due_at);
                    }
                    self.maybe_snapshot(before).await;
                    return Ok(());
                }
                Ok(_) => {
                    self.reload().await?;
                    return Ok(());
                }
                // Some of the ids already stored: an overlapping worker (a leader paused past
                // its lease) recorded part of the same inputs first, as ids are derived from
                // them. A race lost, as a conflict is: reload, and record what is still
                // admitted.
                Err(error)
                    if error.is_conflict() || matches!(error, Error::EventIdReused { .. }) =>
                {
                    attempt += 1;
                    if attempt >= retry.max_attempts() {
                        return Err(Halt::Transient(error));
                    }
                    tokio::time::sleep(retry.delay(attempt)).await;
                    self.reload().await?;
                }
                Err(error) => return Err(Halt::of(error)),
            }
        }
    }

    /// Saves a snapshot when the record crossed a multiple of `snapshot_every`. Only a
    /// shortcut for later loads: a failure is logged.
    async fn maybe_snapshot(&self, before: crate::Version) {
        let books = &self.loaded.instance.books;
        let policy = SnapshotPolicy::every(self.driver.options.snapshot_every);
        if !policy.is_due(before, books.version) {
            return;
        }
        let saved = match self.loaded.instance.snapshot(&self.stream) {
            Ok(snapshot) => self.driver.store.save_snapshot(snapshot).await,
            Err(error) => Err(error),
        };
        if let Err(error) = saved {
            tracing::warn!(stream = %self.stream, error = &error as &dyn std::error::Error, "process snapshot not saved");
        }
    }

    /// Sends the pending commands in (input, index) order and records their outcomes, all of
    /// one round in one write (they may decide more commands: the next round), until only
    /// forwarded ones are left. The commands go out one at a time, in the order they would if
    /// each outcome were recorded before the next command; the journal is the same.
    async fn send_pending(&mut self) -> Result<(), Halt> {
        loop {
            let round = self.unsent();
            if round.is_empty() {
                return Ok(());
            }
            let mut outcomes = Vec::with_capacity(round.len());
            let mut halted = None;
            for pending in round {
                match self.send(pending).await {
                    Ok(Some(outcome)) => outcomes.push(outcome),
                    Ok(None) => {}
                    Err(halt) => {
                        halted = Some(halt);
                        break;
                    }
                }
            }
            // What was answered is recorded even when a later command halts the round.
            if !outcomes.is_empty() {
                self.record(outcomes, false).await?;
            }
            if let Some(halt) = halted {
                return Err(halt);
            }
        }
    }

    /// Sends one pending command: its outcome as an input to record, or `None` when it was
    /// forwarded (the answer comes as an event).
    async fn send(&mut self, pending: PendingCommand) -> Result<Option<Received<P>>, Halt> {
        let step = pending.step;
        let span = super::span::dispatch(&pending.command, step.command_id, &self.stream);
        let command: P::Command = serde_json::from_value(pending.command)
            .map_err(|e| Halt::Poison(format!("pending command {}: {e}", step.command_id)))?;
        let books = &self.loaded.instance.books;
        let mut context = CommandContext::new()
            .command_id(step.command_id)
            .causation_id(step.input.as_uuid())
            .header("process", P::TYPE)
            .header("process_instance", self.instance.as_str());
        if let Some(correlation) = books.correlation_id {
            context = context.correlation_id(correlation);
        }
        // The step's trace goes with the command: a dispatcher to another service has no span
        // of ours to read it from (a local repository's `command` span continues it, and the
        // events name that span).
        if let Some(traceparent) = span_traceparent(&span) {
            context = context.header(TRACEPARENT, traceparent);
        }
        if self.loaded.fresh.remove(&step.command_id) {
            context = context.first_delivery();
        }
        let id = InputId::of_outcome(step.command_id);
        let dispatched = self
            .driver
            .dispatcher
            .dispatch(&command, context)
            .instrument(span.clone())
            .await;
        let outcome = metrics::record::dispatch_outcome(&dispatched);
        span.record("outcome", outcome);
        metrics::record::process_command(P::TYPE, outcome);
        match dispatched {
            Ok(Dispatched::Accepted { .. }) => Ok(Some(Received {
                input: Input::Accepted { step, command },
                id,
                kind: ReceivedKind::Accepted { step },
            })),
            Ok(Dispatched::Forwarded) => {
                self.loaded.forwarded.insert(step.command_id);
                Ok(None)
            }
            Err(DispatchError::Rejected(error)) => {
                let json = serde_json::to_value(&error)
                    .map_err(|e| Halt::Poison(format!("rejection of {}: {e}", step.command_id)))?;
                Ok(Some(Received {
                    input: Input::Rejected {
                        step,
                        command,
                        error,
                    },
                    id,
                    kind: ReceivedKind::Rejected { step, error: json },
                }))
            }
            Err(DispatchError::Failed(error)) => Err(Halt::of(error)),
        }
    }

    /// The pending commands not forwarded, in (input, index) order.
    fn unsent(&self) -> Vec<PendingCommand> {
        (self.loaded.instance.books.pending.iter())
            .filter(|p| !self.loaded.forwarded.contains(&p.step.command_id))
            .cloned()
            .collect()
    }
}

/// When the earliest timeout a decision schedules is due (the pump may have to wake sooner).
fn earliest_scheduled<P: ProcessManager>(decision: &Decision<P>) -> Option<OffsetDateTime> {
    decision
        .timeouts
        .iter()
        .filter_map(|c| match c {
            TimeoutChange::Schedule { due_at, .. } => Some(*due_at),
            _ => None,
        })
        .min()
}
