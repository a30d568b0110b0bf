//! One partition's worker: handles its messages one after another (per-key order), retries a
//! transient failure behind the shared breaker, parks or stops on poison, and marks each
//! message done on the board so the committer may commit past it. Between messages it carries
//! out operators' requests on its parked messages (`redrive`).

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use cqrs_core::bus::{BusLetter, MessageId};
use cqrs_core::projection::PoisonPolicy;
use cqrs_core::RetryPolicy;
use tokio::sync::mpsc::UnboundedReceiver;
use tracing::Instrument;

use super::runner::{Lane, Shared};
use super::{HandleError, Incoming};
use crate::{CloudEvent, Received};

/// What became of one message.
enum Step {
    Handled,
    Parked,
    /// The consumer must stop here, for this reason (the message is not done).
    Stop(String),
    /// The consumer is stopping or lost the partition: leave the message undone.
    Cancelled,
}

/// Runs one partition until its channel closes, the partition is revoked or the consumer stops.
pub(crate) async fn work(
    shared: Arc<Shared>,
    lane: Arc<Lane>,
    mut messages: UnboundedReceiver<Received>,
) {
    let Some(mut held) = held_keys(&shared, &lane).await else {
        return;
    };
    let mut redrive = tokio::time::interval(shared.options.redrive_interval);
    redrive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let message = tokio::select! {
            message = messages.recv() => message,
            _ = redrive.tick(), if shared.dead_letters.is_some() => {
                if lane.revoked.load(Ordering::Acquire) || shared.core.stopping() {
                    break;
                }
                if !super::redrive::carry_out(&shared, &lane, &mut held).await {
                    break;
                }
                continue;
            }
        };
        let Some(message) = message else {
            break;
        };
        if lane.revoked.load(Ordering::Acquire) || shared.core.stopping() {
            break;
        }
        shared.took(&lane, &message);
        let next = message.offset().saturating_add(1);
        match process(&shared, &lane, &mut held, message).await {
            Step::Handled => shared.core.board().done(&lane.tp, lane.epoch, next, false),
            Step::Parked => shared.core.board().done(&lane.tp, lane.epoch, next, true),
            Step::Stop(error) => {
                tracing::error!(consumer = %shared.core.name, %error, "consumer stops");
                shared.core.board().fail(error);
                shared.core.request_stop();
                shared.core.notify();
                break;
            }
            Step::Cancelled => break,
        }
        shared.core.notify();
    }
}

/// The keys of this partition's topic parked earlier (by this or another member): their later
/// messages are parked too. `None`: the consumer stopped (or lost the lane) meanwhile, or the store failed for
/// good (then the consumer failed).
async fn held_keys(shared: &Shared, lane: &Lane) -> Option<HashSet<Vec<u8>>> {
    let Some(store) = shared.dead_letters.clone() else {
        return Some(HashSet::new());
    };
    let mut retry = 0;
    loop {
        match store.parked_message_keys(&shared.core.name).await {
            Ok(keys) => {
                return Some(
                    keys.into_iter()
                        .filter(|k| k.topic == lane.tp.0)
                        .map(|k| k.key)
                        .collect(),
                )
            }
            Err(error) if error.is_transient() => {
                retry += 1;
                shared
                    .core
                    .board()
                    .error(format!("loading the parked keys failed: {error}"));
                if !sleep_or_stop(shared, lane, backoff(shared, retry)).await {
                    return None;
                }
            }
            Err(error) => {
                shared
                    .core
                    .board()
                    .fail(format!("loading the parked keys failed: {error}"));
                shared.core.request_stop();
                shared.core.notify();
                return None;
            }
        }
    }
}

async fn process(
    shared: &Shared,
    lane: &Lane,
    held: &mut HashSet<Vec<u8>>,
    message: Received,
) -> Step {
    if let Some(key) = message.key().filter(|k| held.contains(*k)) {
        let error = format!(
            "held back: an earlier message with key {} is parked",
            String::from_utf8_lossy(key)
        );
        return poison(shared, lane, held, &message, error).await;
    }
    match attempt(shared, lane, &message).await {
        Attempt::Done => Step::Handled,
        Attempt::Poison(error) => poison(shared, lane, held, &message, error).await,
        Attempt::Cancelled => Step::Cancelled,
    }
}

/// What came of handling one message.
pub(crate) enum Attempt {
    Done,
    /// It can never be handled, for this reason.
    Poison(String),
    /// The consumer began stopping, or the group gave the partition to another member, while
    /// it waited to retry.
    Cancelled,
}

/// Decodes `message` and runs the handler on it, retrying transient failures with backoff
/// behind the breaker until it passes, turns out poison, or the consumer stops or loses `lane`
/// (the member that got it handles the message: retried here too, it would run beside it).
pub(crate) async fn attempt(shared: &Shared, lane: &Lane, message: &Received) -> Attempt {
    let event = match CloudEvent::read(message) {
        Ok(event) => event,
        Err(error) => return Attempt::Poison(format!("malformed: {error}")),
    };
    if !shared.types.contains(event.event_type.as_str()) {
        return Attempt::Poison(format!("unknown event type {}", event.event_type));
    }
    let span = message_span(shared, message, &event);
    let incoming = Incoming::from_parts(shared.core.name.clone(), event, message.clone());
    let Ok(_permit) = shared.permits.acquire().await else {
        return Attempt::Cancelled;
    };
    let mut retry = 0;
    // Marks the consumer as retrying from this message's first failure until it is done with.
    let mut retrying = None;
    loop {
        loop {
            let wait = shared.core.breaker().wait_time();
            if wait.is_zero() {
                break;
            }
            if !sleep_or_stop(shared, lane, wait).await {
                return Attempt::Cancelled;
            }
        }
        match shared
            .handler
            .handle(&incoming)
            .instrument(span.clone())
            .await
        {
            Ok(()) => {
                shared.core.breaker().record_success();
                return Attempt::Done;
            }
            Err(HandleError::Poison(reason)) => {
                shared.core.breaker().record_success();
                return Attempt::Poison(reason);
            }
            Err(error) => {
                retry += 1;
                shared.core.breaker().record_failure();
                if retrying.is_none() {
                    retrying = Some(Retrying::began(shared));
                }
                {
                    let mut board = shared.core.board();
                    board.error(format!(
                        "{} (attempt {retry}): {error}",
                        message_id(message)
                    ));
                }
                shared.core.notify();
                if !sleep_or_stop(shared, lane, backoff(shared, retry)).await {
                    return Attempt::Cancelled;
                }
            }
        }
    }
}

/// A message being retried, on the board while this lives: dropped (the message handled,
/// parked, or given up at a stop), it is done with. The consumer is retrying while any of its
/// messages is, in whichever partition.
struct Retrying<'a>(&'a Shared);

impl<'a> Retrying<'a> {
    fn began(shared: &'a Shared) -> Self {
        shared.core.board().retry_began();
        Self(shared)
    }
}

impl Drop for Retrying<'_> {
    fn drop(&mut self) {
        self.0.core.board().retry_ended();
        self.0.core.notify();
    }
}

/// Parks `message` whole with `error`, holding its key back, or stops, by policy.
async fn poison(
    shared: &Shared,
    lane: &Lane,
    held: &mut HashSet<Vec<u8>>,
    message: &Received,
    error: String,
) -> Step {
    let id = message_id(message);
    let store = match (&shared.dead_letters, shared.policy) {
        (Some(store), PoisonPolicy::Park) => store.clone(),
        _ => return Step::Stop(format!("message {id} cannot be handled: {error}")),
    };
    if !tell_parking(shared, lane, message, &error).await {
        return Step::Cancelled;
    }
    tracing::warn!(consumer = %shared.core.name, message = %id, %error, "message parked");
    let letter = BusLetter::new(&*shared.core.name, id.clone(), error)
        .with_key(message.key().map(<[u8]>::to_vec))
        .with_headers(message.parked_headers())
        .with_payload(message.payload().map(<[u8]>::to_vec));
    let mut retry = 0;
    loop {
        match store.park_message(letter.clone()).await {
            Ok(()) => break,
            Err(error) if error.is_transient() => {
                retry += 1;
                shared
                    .core
                    .board()
                    .error(format!("parking {id} failed: {error}"));
                if !sleep_or_stop(shared, lane, backoff(shared, retry)).await {
                    return Step::Cancelled;
                }
            }
            Err(error) => return Step::Stop(format!("parking {id} failed: {error}")),
        }
    }
    if let Some(key) = message.key() {
        held.insert(key.to_vec());
    }
    Step::Parked
}

/// How often telling a handler of a message being parked is tried before it is parked
/// untold: a sender's reply topic that is gone must not hold the partition.
const TELL_ATTEMPTS: u32 = 5;

/// Tells the handler that `message` is about to be parked for `error` (when it reads as a
/// CloudEvent: one that does not has nobody to tell), trying a transient failure again up to
/// [`TELL_ATTEMPTS`] times in all; `false` if the consumer began stopping (or lost `lane`)
/// first.
async fn tell_parking(shared: &Shared, lane: &Lane, message: &Received, error: &str) -> bool {
    let Ok(event) = CloudEvent::read(message) else {
        return true;
    };
    let span = message_span(shared, message, &event);
    let incoming = Incoming::from_parts(shared.core.name.clone(), event, message.clone());
    let mut retry = 0;
    loop {
        match shared
            .handler
            .parking(&incoming, error)
            .instrument(span.clone())
            .await
        {
            Ok(()) => return true,
            Err(failure) if failure.is_transient() && retry + 1 < TELL_ATTEMPTS => {
                retry += 1;
                shared.core.board().error(format!(
                    "telling of {} being parked failed (attempt {retry}): {failure}",
                    message_id(message)
                ));
                shared.core.notify();
                if !sleep_or_stop(shared, lane, backoff(shared, retry)).await {
                    return false;
                }
            }
            Err(failure) => {
                tracing::warn!(
                    consumer = %shared.core.name,
                    message = %message_id(message),
                    error = %failure,
                    "could not tell of the message being parked"
                );
                return true;
            }
        }
    }
}

pub(crate) fn message_id(message: &Received) -> MessageId {
    MessageId::new(message.topic(), message.partition(), message.offset())
}

pub(crate) fn backoff(shared: &Shared, retry: u32) -> Duration {
    RetryPolicy::new(u32::MAX)
        .delays(shared.options.initial_backoff, shared.options.max_backoff)
        .delay(retry)
}

/// Sleeps `duration`; `false` if the consumer began stopping first, or if the group gave
/// `lane`'s partition to another member by the end of it.
pub(crate) async fn sleep_or_stop(shared: &Shared, lane: &Lane, duration: Duration) -> bool {
    let mut stop = shared.core.stop_signal();
    let slept = tokio::select! {
        () = tokio::time::sleep(duration) => true,
        () = super::runner::stopped(&mut stop) => false,
    };
    slept && !lane.revoked.load(Ordering::Acquire)
}

/// The span a message is handled (or its parking told) in: it continues the publisher's trace,
/// so the commands run for the message show in it.
fn message_span(shared: &Shared, message: &Received, event: &CloudEvent) -> tracing::Span {
    let span = tracing::info_span!(
        "message",
        consumer = %shared.core.name,
        topic = message.topic(),
        partition = message.partition(),
        offset = message.offset(),
        event_type = %event.event_type,
    );
    if let Some(traceparent) = &event.traceparent {
        cqrs_core::telemetry::follow_traceparent(&span, traceparent);
    }
    span
}
