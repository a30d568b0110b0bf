//! `ProjectionRunner::catch_up` runs the engine in its own tasks; a caller that gives up on it
//! (drops its future, as a cancelled rebuild does) kills the run as a crash would: the apply
//! in flight is dropped, no later batch is applied and nothing more is saved.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::projection::{Projection, ProjectionError, ProjectionRunner, RunnerOptions};
use cqrs_core::{
    AppendEvents, CheckpointStore, ExpectedVersion, InMemoryEventStore, NewEvent, RecordedEvent,
    StreamId,
};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

const WAIT: Duration = Duration::from_secs(10);

/// Tells when it is dropped.
struct DropSignal(Option<oneshot::Sender<()>>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        if let Some(dropped) = self.0.take() {
            let _ = dropped.send(());
        }
    }
}

/// Its first apply says it started, then never returns (until dropped); later applies count.
struct Stuck {
    started: mpsc::UnboundedSender<oneshot::Receiver<()>>,
    applies: Arc<AtomicU32>,
}

#[async_trait]
impl Projection for Stuck {
    fn name(&self) -> &str {
        "stuck"
    }

    async fn apply(&self, _events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        if self.applies.fetch_add(1, Ordering::SeqCst) > 0 {
            return Ok(());
        }
        let (dropped, on_drop) = oneshot::channel();
        let _signal = DropSignal(Some(dropped));
        let _ = self.started.send(on_drop);
        std::future::pending::<()>().await;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catch_up_given_up_on_leaves_nothing_running() {
    let store = InMemoryEventStore::new();
    let stream = StreamId::new("s-1").unwrap();
    for _ in 0..4 {
        let event = NewEvent::new("Happened", 1, json!({}));
        store
            .append(&stream, ExpectedVersion::Any, vec![event])
            .await
            .unwrap();
    }
    let (started, mut starts) = mpsc::unbounded_channel();
    let applies = Arc::new(AtomicU32::new(0));
    let projection = Stuck {
        started,
        applies: applies.clone(),
    };
    let catch_up = ProjectionRunner::new(projection, store.clone(), store.clone())
        .with_options(RunnerOptions::new().batch_size(1))
        .catch_up();

    // Given up on once its first apply is in flight.
    let on_drop = tokio::select! {
        ended = catch_up => panic!("the catch-up ended: {ended:?}"),
        started = starts.recv() => started.expect("the apply started"),
    };
    tokio::time::timeout(WAIT, on_drop)
        .await
        .expect("the apply in flight is dropped")
        .expect("dropped, not forgotten");
    assert_eq!(applies.load(Ordering::SeqCst), 1, "no later batch applied");
    assert_eq!(store.load_checkpoint("stuck").await.unwrap(), None);
}
