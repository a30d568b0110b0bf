//! Applying one batch: upcast (holding back the keys of parked events), apply with retries of
//! transient failures behind the circuit breaker, then hand what was rejected to the poison
//! policy.

use time::OffsetDateTime;
use tracing::Instrument;

use crate::projection::{BreakerState, ProjectionError, ProjectionState, Rejected};
use crate::RecordedEvent;

use super::outcome::{Applied, Lead};
use super::upcast::{upcast_in_order, Upcast};
use super::worker::Worker;

impl Worker {
    /// Counts in the status the events waiting in the feed from the batch in hand's first
    /// event, while that batch cannot be applied (nothing is reported meanwhile). Not from the
    /// checkpoint: at the head of a store's feed that is the feed's end, past every position,
    /// which counted nothing for the whole outage.
    async fn count_waiting(&self, batch: &[RecordedEvent]) {
        let Some(first) = batch.first() else {
            return;
        };
        let Ok(head) = self.runner.feed.head().await else {
            return;
        };
        let waiting = head.parts().1.saturating_sub(first.position.parts().1);
        self.set(|s| s.lag_events = waiting.saturating_add(1));
    }

    /// Applies one batch: upcasts, holds back events of parked keys, retries transient failures
    /// behind the breaker, and deals with poison per the policy.
    pub(super) async fn apply(&mut self, events: Vec<RecordedEvent>) -> Result<Applied, Lead> {
        let projection = self.runner.projection.clone();
        let Upcast {
            mut ready,
            rejected: mut poison,
        } = upcast_in_order(
            &self.runner.options.upcasters,
            events,
            |event| projection.key(event),
            &self.parked,
            self.runner.poison() == super::PoisonPolicy::Stop,
        );
        let lag = ready
            .last()
            .map(|e| (OffsetDateTime::now_utc() - e.recorded_at).unsigned_abs())
            .unwrap_or_default();
        let rejected = self.apply_with_retries(&ready).await?;
        self.set(|s| s.breaker = BreakerState::Closed);
        self.record_breaker(None).await;
        for Rejected { position, error } in rejected {
            if let Some(index) = ready.iter().position(|e| e.position == position) {
                poison.push((ready.remove(index), error));
            }
        }
        if poison.is_empty() {
            return Ok(Applied {
                count: ready.len() as u64,
                parked: 0,
                lag,
            });
        }
        self.poisoned(ready, poison, lag).await
    }

    /// Applies `ready`, retrying transient failures with backoff behind the breaker: the
    /// events the projection rejected as poison, or why leading ends.
    async fn apply_with_retries(&mut self, ready: &[RecordedEvent]) -> Result<Vec<Rejected>, Lead> {
        let projection = self.runner.projection.clone();
        let mut attempt = 0u32;
        loop {
            if ready.is_empty() {
                return Ok(Vec::new());
            }
            let wait = self.breaker.wait_time();
            let state = self.breaker.state();
            self.set(|s| s.breaker = state);
            self.record_breaker(None).await;
            if !wait.is_zero() {
                self.set(|s| s.state = ProjectionState::Retrying);
                if !self.stop.pause(wait).await {
                    return Err(Lead::Stopped);
                }
                continue;
            }
            let span = tracing::debug_span!("apply", events = ready.len(), attempt = attempt + 1);
            let lease = self.fence.as_ref().and_then(|f| f.lease().cloned());
            let outcome = projection
                .apply_fenced(ready, lease.as_ref())
                .instrument(span)
                .await;
            let breaker = &mut self.breaker;
            match outcome {
                Ok(()) => {
                    breaker.record_success();
                    return Ok(Vec::new());
                }
                Err(ProjectionError::Poison(rejected)) => {
                    breaker.record_success();
                    return Ok(rejected);
                }
                Err(ProjectionError::LeaseLost(error)) => {
                    tracing::warn!(%error, "the sink refused the batch: the lease passed on");
                    if let Some(fence) = &self.fence {
                        fence.lose();
                    }
                    return Err(Lead::LostLease);
                }
                Err(ProjectionError::Transient(error)) => {
                    breaker.record_failure();
                    let state = breaker.state();
                    attempt = attempt.saturating_add(1);
                    let text = error.to_string();
                    tracing::warn!(attempt, error = %text, "transient projection failure");
                    self.record_breaker(Some(&text)).await;
                    self.set(|s| {
                        s.state = ProjectionState::Retrying;
                        s.breaker = state;
                        s.error(text.clone());
                    });
                    self.count_waiting(ready).await;
                    if attempt >= self.runner.options.retry.max_attempts() {
                        return Err(Lead::Failed(format!(
                            "retries exhausted after {attempt} attempts: {text}"
                        )));
                    }
                    if !self
                        .stop
                        .pause(self.runner.options.retry.delay(attempt))
                        .await
                    {
                        return Err(Lead::Stopped);
                    }
                }
            }
        }
    }
}
