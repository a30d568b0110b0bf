//! A sink that checks the lease it is applied under and refuses
//! (`ProjectionError::LeaseLost`) ends the worker's term at once: leading ends (the projection
//! is told), the worker stands by and takes the lease again (here its own lease, which the
//! store still shows it holding, so the same epoch: with a lease really passed on, the next
//! holder's), and the batch is applied in the next term.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::projection::{Lease, Projection, ProjectionError, ProjectionRunner, RunnerOptions};
use cqrs_core::{
    AppendEvents, ExpectedVersion, InMemoryEventStore, NewEvent, RecordedEvent, StreamId,
};

/// Refuses the first batch it is given, as a sink finding the lease passed on would; records
/// the epoch of every batch it applies.
#[derive(Clone, Default)]
struct RefusesOnce(Arc<Mutex<Seen>>);

/// Whether it refused yet, the (epoch, events) of each batch applied, and each change of
/// leading it was told.
type Seen = (bool, Vec<(u64, usize)>, Vec<bool>);

#[async_trait]
impl Projection for RefusesOnce {
    fn name(&self) -> &str {
        "refuses-once"
    }

    async fn apply(&self, _events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        Err(ProjectionError::Transient(
            "applied only under a lease".into(),
        ))
    }

    async fn apply_fenced(
        &self,
        events: &[RecordedEvent],
        lease: Option<&Lease>,
    ) -> Result<(), ProjectionError> {
        let mut state = self.0.lock().unwrap();
        if !state.0 {
            state.0 = true;
            return Err(ProjectionError::LeaseLost(
                "the lease row says another epoch".into(),
            ));
        }
        state.1.push((lease.map_or(0, |l| l.epoch), events.len()));
        Ok(())
    }

    async fn leadership_changed(&self, leading: bool) {
        self.0.lock().unwrap().2.push(leading);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_refusing_a_lost_lease_ends_the_term_and_the_batch_is_applied_in_the_next() {
    let store = InMemoryEventStore::new();
    let stream = StreamId::new("order-1").unwrap();
    let outcome = store
        .append(
            &stream,
            ExpectedVersion::Any,
            (0..5)
                .map(|i| NewEvent::new("Changed", 1, serde_json::json!({ "i": i })))
                .collect(),
        )
        .await
        .unwrap();
    let sink = RefusesOnce::default();
    let handle = ProjectionRunner::for_store(sink.clone(), &store)
        .with_options(
            RunnerOptions::new()
                // Long enough that only the refusal ends a term, however slow the machine.
                .lease_ttl(Duration::from_secs(3))
                .poll_interval(Duration::from_millis(20)),
        )
        .spawn();
    let status = handle
        .wait_for(outcome.position, Duration::from_secs(20))
        .await
        .expect("the batch is applied in the next term");
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("lease was lost")),
        "the lost term shows in the status: {status:?}"
    );
    let (applied, terms) = {
        let state = sink.0.lock().unwrap();
        (state.1.clone(), state.2.clone())
    };
    println!("applied (epoch, events): {applied:?}; leading told: {terms:?}");
    assert_eq!(
        applied.iter().map(|(_, n)| n).sum::<usize>(),
        5,
        "applied once"
    );
    assert_eq!(
        terms.get(..3),
        Some(&[true, false, true][..]),
        "the refusal ended the first term, the batch went in the second"
    );
    handle.shutdown().await;
}
