//! The repository retries a command whose append conflicts, with a fresh load each time, and
//! gives up after its `RetryPolicy`'s attempts with the last `Conflict`, having written nothing.
//! A rival writer moves the stream between each load and its append, every time: no timing.

mod support;

use std::convert::Infallible;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cqrs_core::{
    Aggregate, AppendEvents, CommandError, DomainEvent, Error, ExpectedVersion, Metadata, NewEvent,
    ReadStream, Repository, RetryPolicy, StreamId, Version,
};
use cqrs_postgres::PgEventStore;
use serde::{Deserialize, Serialize};

/// Counts its events.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Counter {
    events: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
enum CounterEvent {
    /// The command's event.
    Counted,
    /// The rival's.
    Rival { handle: u32 },
}

/// Appends straight to the command's stream, after the repository loaded it, on the first
/// `rivalries` handles: the repository's append at the loaded version then conflicts.
struct Rival {
    store: PgEventStore,
    rivalries: u32,
    handled: Arc<AtomicU32>,
}

impl Aggregate for Counter {
    const TYPE: &'static str = "counter";
    /// The stream the rival writes to: the command's own.
    type Command = StreamId;
    type Event = CounterEvent;
    type Error = Infallible;
    type Services = Rival;

    fn apply(&mut self, _event: &CounterEvent) {
        self.events += 1;
    }

    async fn handle(
        &self,
        stream: &StreamId,
        rival: &Rival,
    ) -> Result<Vec<CounterEvent>, Infallible> {
        let handled = rival.handled.fetch_add(1, Ordering::SeqCst) + 1;
        if handled <= rival.rivalries {
            rival
                .store
                .append(
                    stream,
                    ExpectedVersion::Any,
                    vec![NewEvent::from_domain(
                        &CounterEvent::Rival { handle: handled },
                        Metadata::default(),
                    )
                    .expect("encodes")],
                )
                .await
                .expect("the rival appends");
        }
        Ok(vec![CounterEvent::Counted])
    }
}

/// A repository whose rival interferes `rivalries` times, retrying up to `attempts` in all;
/// and how many times the command was handled.
fn repository(
    store: &PgEventStore,
    rivalries: u32,
    attempts: u32,
) -> (Repository<Counter, PgEventStore>, Arc<AtomicU32>) {
    let handled = Arc::new(AtomicU32::new(0));
    let rival = Rival {
        store: store.clone(),
        rivalries,
        handled: handled.clone(),
    };
    let retry =
        RetryPolicy::new(attempts).delays(Duration::from_millis(1), Duration::from_millis(5));
    (
        Repository::with_services(store.clone(), rival).with_retry(retry),
        handled,
    )
}

/// The event types of `stream`, in order.
async fn types(store: &PgEventStore, stream: &StreamId) -> Vec<String> {
    store
        .read_stream(stream, Version::new(1), 100)
        .await
        .expect("read the stream")
        .iter()
        .map(|e| e.event_type.clone())
        .collect()
}

#[tokio::test]
async fn a_command_conflicting_on_every_attempt_gives_up_with_the_last_conflict() {
    let store = support::store().await;
    let (counters, handled) = repository(&store, u32::MAX, 4);
    let stream = counters.stream_id("c-1").expect("id");

    let err = counters
        .execute("c-1", &stream)
        .await
        .expect_err("every attempt conflicts");
    match &err {
        CommandError::Store(Error::Conflict {
            expected, actual, ..
        }) => {
            // The fourth attempt loaded version 3 (three rivals) and the rival made it 4.
            assert_eq!(*expected, ExpectedVersion::Exact(Version::new(3)));
            assert_eq!(*actual, Version::new(4));
        }
        other => panic!("expected the last Conflict, got {other:?}"),
    }
    assert!(err.rejection().is_none(), "a conflict is no rejection");
    assert_eq!(
        handled.load(Ordering::SeqCst),
        4,
        "RetryPolicy::new(4): four attempts, no more"
    );
    assert_eq!(
        types(&store, &stream).await,
        ["Rival"; 4],
        "only the rival's events: the command wrote nothing"
    );
}

#[tokio::test]
async fn a_command_that_conflicts_twice_lands_on_its_third_attempt() {
    let store = support::store().await;
    let (counters, handled) = repository(&store, 2, 4);
    let stream = counters.stream_id("c-2").expect("id");

    let outcome = counters
        .execute("c-2", &stream)
        .await
        .expect("the third attempt lands");
    assert_eq!(outcome.attempts, 3);
    assert_eq!(handled.load(Ordering::SeqCst), 3);
    assert_eq!(outcome.version, Version::new(3));
    assert_eq!(types(&store, &stream).await, ["Rival", "Rival", "Counted"]);
}
