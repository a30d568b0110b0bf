//! One attempt at publishing a batch: map every event, enqueue every message at once, await
//! every acknowledgement.

use std::collections::HashSet;
use std::pin::Pin;

use rdkafka::error::{KafkaError as ClientError, RDKafkaErrorCode};
use tokio::time::Sleep;

use cqrs_core::projection::Rejected;
use cqrs_core::{BoxError, RecordedEvent, StreamId};

use crate::{Delivery, KafkaError, Result};

use super::ack_memo::AckMemo;
use super::message;
use super::transport::{Ack, Failure, Transport};
use super::IntegrationMapper;

/// What an attempt came to.
#[derive(Debug, Default)]
pub(crate) struct Attempt {
    /// Events that can never be published, and those of their streams that follow them.
    pub(crate) rejected: Vec<Rejected>,
    /// The first failure a retry may cure (or that needs a new producer); the batch is to be
    /// tried again.
    pub(crate) failure: Option<(Failure, BoxError)>,
    /// Messages acknowledged in this attempt.
    pub(crate) sent: usize,
}

impl Attempt {
    fn fail(&mut self, kind: Failure, error: impl Into<BoxError>) {
        // A fatal error wins: the producer must be rebuilt whatever else happened.
        let replace = match &self.failure {
            None => true,
            Some((Failure::Fatal, _)) => false,
            Some(_) => kind == Failure::Fatal,
        };
        if replace {
            self.failure = Some((kind, error.into()));
        }
    }
}

/// Publishes `events` through `transport`, skipping what `memo` says was acknowledged in an
/// earlier attempt at the same batch, and remembering there what is acknowledged now.
///
/// Per-stream order: an event that cannot be published holds back its stream's later
/// events (rejected too); and once an event of a stream is sent in this attempt, that
/// stream's later events are sent again after it even if acknowledged before, so the first
/// time a subscriber sees version n+1 is after version n.
pub(crate) async fn publish<M: IntegrationMapper + ?Sized>(
    transport: &dyn Transport,
    mapper: &M,
    source: &str,
    events: &[RecordedEvent],
    memo: &mut AckMemo,
) -> Attempt {
    memo.begin(events);
    let mut acks = Acks::new(transport);
    let mut attempt = Attempt::default();
    let mut blocked: HashSet<&StreamId> = HashSet::new();
    let mut resending: HashSet<&StreamId> = HashSet::new();
    let mut pending: Vec<(usize, Ack)> = Vec::with_capacity(events.len());
    let mut settled: Vec<(usize, Result<Delivery>)> = Vec::new();
    for (index, event) in events.iter().enumerate() {
        let stream = &event.stream_id;
        if blocked.contains(stream) {
            attempt.rejected.push(held_back(event));
            continue;
        }
        if memo.is_acked(event.position) && !resending.contains(stream) {
            continue;
        }
        let out = match mapper.map(event) {
            Ok(Some(out)) => out,
            Ok(None) => continue,
            // Written by a newer release: stop here, the retry maps it again (this one may
            // not lead by then).
            Err(error) if error.is_transient() => {
                attempt.fail(Failure::Transient, error);
                break;
            }
            Err(error) => {
                blocked.insert(stream);
                attempt.rejected.push(Rejected::new(event.position, error));
                continue;
            }
        };
        let record = message::record(source, event, out);
        match enqueue(&mut acks, &record, &mut pending, &mut settled).await {
            Ok(ack) => {
                resending.insert(stream);
                pending.push((index, ack));
            }
            Err(error) => match Failure::of(&error) {
                Failure::Poison => {
                    blocked.insert(stream);
                    attempt.rejected.push(Rejected::new(event.position, error));
                }
                kind => {
                    // Stop here: the retry sends the rest, after what is in flight.
                    attempt.fail(kind, error);
                    break;
                }
            },
        }
    }
    for (index, ack) in pending {
        settled.push((index, acks.settle(ack).await));
    }
    acks.settled = true;
    settled.sort_by_key(|(index, _)| *index);
    let mut refused: HashSet<&StreamId> = HashSet::new();
    for (index, result) in settled {
        let event = &events[index];
        match result {
            Ok(_) if refused.contains(&event.stream_id) => {
                // Published, but after an event of its stream the broker refused: it is
                // parked behind that one (a re-drive sends both, in order).
                attempt.rejected.push(held_back(event));
            }
            Ok(_) => {
                memo.ack(event.position);
                attempt.sent += 1;
            }
            Err(error) => match Failure::of(&error) {
                Failure::Poison => {
                    refused.insert(&event.stream_id);
                    attempt.rejected.push(Rejected::new(event.position, error));
                }
                kind => attempt.fail(kind, error),
            },
        }
    }
    attempt.rejected.sort_by_key(|rejected| rejected.position);
    attempt
}

/// Enqueues `record`; when the producer's local queue is full, waits for the oldest
/// delivery in flight (its result goes to `settled`) and tries again.
async fn enqueue(
    acks: &mut Acks<'_>,
    record: &crate::Record,
    pending: &mut Vec<(usize, Ack)>,
    settled: &mut Vec<(usize, Result<Delivery>)>,
) -> Result<Ack> {
    loop {
        if acks.purged {
            // Nothing more goes out after the purge: it would wait without a deadline.
            return Err(KafkaError::Delivery {
                topic: record.topic().to_owned(),
                source: ClientError::MessageProduction(RDKafkaErrorCode::PurgeQueue),
            });
        }
        match acks.transport.enqueue(record) {
            Err(error) if Failure::is_queue_full(&error) && !pending.is_empty() => {
                let (index, ack) = pending.remove(0);
                settled.push((index, acks.settle(ack).await));
            }
            other => return other,
        }
    }
}

/// An attempt's wait for its acknowledgements: up to the transport's deadline (one timer for
/// the attempt), after which everything not acknowledged is purged at once (so no later
/// message of a partition is written after an earlier one gave up) and every wait ends with
/// that failure. An attempt dropped before it settled (the runner drops an apply when its term
/// ends) purges too: its messages no longer expire on their own, and left queued they would
/// land after the next leader's.
struct Acks<'t> {
    transport: &'t dyn Transport,
    deadline: Option<Pin<Box<Sleep>>>,
    purged: bool,
    /// Every acknowledgement was awaited: nothing is left to purge.
    settled: bool,
}

impl<'t> Acks<'t> {
    fn new(transport: &'t dyn Transport) -> Self {
        Self {
            transport,
            deadline: transport
                .deadline()
                .map(|wait| Box::pin(tokio::time::sleep(wait))),
            purged: false,
            settled: false,
        }
    }

    /// `ack`'s outcome: acknowledged, failed, or purged once the deadline passed.
    async fn settle(&mut self, mut ack: Ack) -> Result<Delivery> {
        if let Some(deadline) = self.deadline.as_mut().filter(|_| !self.purged) {
            tokio::select! {
                biased;
                outcome = &mut ack => return outcome,
                () = deadline => {
                    self.transport.purge();
                    self.purged = true;
                }
            }
        }
        ack.await
    }
}

impl Drop for Acks<'_> {
    fn drop(&mut self) {
        // Deadline or not: nothing else ends the messages of an attempt no one waits for.
        if !self.settled && !self.purged {
            self.transport.purge();
        }
    }
}

fn held_back(event: &RecordedEvent) -> Rejected {
    Rejected::new(
        event.position,
        format!(
            "held back behind an earlier event of stream {} that cannot be published",
            event.stream_id
        ),
    )
}
