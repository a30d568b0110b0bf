//! The publisher on the in-memory store and the core's runner, sending through a fake
//! transport that fails the sends it is told to: no broker needed.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cqrs_core::projection::{DeadLetterStore, ProjectionHandle, ProjectionRunner, RunnerOptions};
use cqrs_core::{
    AppendEvents, ExpectedVersion, InMemoryEventStore, NewEvent, Position, ReadAll, RecordedEvent,
    RetryPolicy, StreamId, Upcasters,
};
use rdkafka::error::{KafkaError as ClientError, RDKafkaErrorCode};
use serde::{Deserialize, Serialize};

use super::transport::{Ack, MakeTransport, Transport};
use super::*;
use crate::{cloudevents, Delivery, IntegrationEvent, KafkaError, Record};

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Counted {
    n: u64,
}
impl IntegrationEvent for Counted {
    const TYPE: &'static str = "test.counted.v1";
}

/// Maps `Counted { n }` payloads; `{"poison": true}` does not map, `{"private": true}` is not
/// published.
struct TestMapper;

impl IntegrationMapper for TestMapper {
    fn event_types(&self) -> Vec<&'static str> {
        vec!["Counted"]
    }
    fn map(&self, event: &RecordedEvent) -> Result<Option<Outgoing>, MapError> {
        if event.payload.get("poison").is_some() {
            return Err(MapError::refused("a poison payload"));
        }
        if event.payload.get("private").is_some() {
            return Ok(None);
        }
        let n = event.payload["n"]
            .as_u64()
            .ok_or_else(|| MapError::refused("no n"))?;
        Outgoing::of("counts", &Counted { n }).map(Some)
    }
}

/// One send the fake saw: stream, version, which producer, and whether it was acknowledged.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Sent {
    stream: String,
    version: u64,
    producer: usize,
    acked: bool,
}

/// Records every send; fails the first sends of the (stream, version)s in its plan.
#[derive(Default)]
struct Fake {
    sent: Mutex<Vec<Sent>>,
    plan: Mutex<HashMap<(String, u64), VecDeque<RDKafkaErrorCode>>>,
    made: AtomicUsize,
    /// With a deadline: a batch waits this long, then purges.
    deadline: Option<Duration>,
    /// The (stream, version) whose first send finds the broker gone: it and every send after
    /// it wait until a purge, as a broker that stopped answering makes them.
    outage: Option<(String, u64)>,
    purged: tokio::sync::watch::Sender<usize>,
}

impl Fake {
    fn fail(&self, stream: &str, version: u64, codes: &[RDKafkaErrorCode]) {
        self.plan.lock().unwrap().insert(
            (stream.to_owned(), version),
            codes.iter().copied().collect(),
        );
    }

    fn sent(&self) -> Vec<Sent> {
        self.sent.lock().unwrap().clone()
    }

    /// (stream, version) of the acknowledged sends, in order.
    fn acked(&self) -> Vec<(String, u64)> {
        self.sent()
            .into_iter()
            .filter(|s| s.acked)
            .map(|s| (s.stream, s.version))
            .collect()
    }

    fn make(fake: &Arc<Fake>) -> MakeTransport {
        let fake = fake.clone();
        Arc::new(move || {
            let producer = fake.made.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(Arc::new(FakeProducer {
                fake: fake.clone(),
                producer,
            }) as Arc<dyn Transport>)
        })
    }
}

struct FakeProducer {
    fake: Arc<Fake>,
    producer: usize,
}

impl Transport for FakeProducer {
    fn enqueue(&self, record: &Record) -> crate::Result<Ack> {
        let text = |name| String::from_utf8(record.header(name).unwrap_or_default().to_vec());
        let stream = text(cloudevents::SUBJECT).unwrap_or_default();
        let version: u64 = text(cloudevents::SEQUENCE)
            .unwrap_or_default()
            .parse()
            .unwrap_or_default();
        let failure = self
            .fake
            .plan
            .lock()
            .unwrap()
            .get_mut(&(stream.clone(), version))
            .and_then(VecDeque::pop_front);
        let mut sent = self.fake.sent.lock().unwrap();
        let outage_from = self.fake.outage.as_ref().and_then(|(s, v)| {
            sent.iter()
                .position(|sent| (&sent.stream, sent.version) == (s, *v))
        });
        let in_outage = self.fake.outage.as_ref() == Some(&(stream.clone(), version))
            && outage_from.is_none()
            || outage_from.is_some_and(|_| *self.fake.purged.borrow() == 0);
        let offset = i64::try_from(sent.len()).unwrap_or_default();
        sent.push(Sent {
            stream,
            version,
            producer: self.producer,
            acked: failure.is_none() && !in_outage,
        });
        let topic = record.topic().to_owned();
        if in_outage {
            let mut purged = self.fake.purged.subscribe();
            return Ok(Box::pin(async move {
                let _ = purged.wait_for(|purges| *purges > 0).await;
                Err(KafkaError::Delivery {
                    topic,
                    source: ClientError::MessageProduction(RDKafkaErrorCode::PurgeQueue),
                })
            }));
        }
        Ok(Box::pin(async move {
            match failure {
                None => Ok(Delivery {
                    partition: 0,
                    offset,
                }),
                Some(code) => Err(KafkaError::Delivery {
                    topic,
                    source: ClientError::MessageProduction(code),
                }),
            }
        }))
    }

    fn deadline(&self) -> Option<Duration> {
        self.fake.deadline
    }

    fn purge(&self) {
        self.fake.purged.send_modify(|purges| *purges += 1);
    }
}

fn publisher(fake: &Arc<Fake>) -> KafkaPublisher<TestMapper> {
    KafkaPublisher::with_transport(
        "counts",
        TestMapper,
        "/services/test".to_owned(),
        Fake::make(fake),
    )
    .expect("a fake transport")
}

fn run(store: &InMemoryEventStore, publisher: KafkaPublisher<TestMapper>) -> ProjectionHandle {
    let options = RunnerOptions::new()
        .retry(
            RetryPolicy::new(u32::MAX).delays(Duration::from_millis(1), Duration::from_millis(5)),
        )
        .poll_interval(Duration::from_millis(10));
    ProjectionRunner::for_store(publisher, store)
        .with_options(options)
        .spawn()
}

/// Appends one event per item, `(stream, payload)`, in this order.
async fn append(store: &InMemoryEventStore, events: &[(&str, serde_json::Value)]) -> Position {
    let mut last = Position::START;
    for (stream, payload) in events {
        let outcome = store
            .append(
                &StreamId::new(stream).expect("a stream id"),
                ExpectedVersion::Any,
                vec![NewEvent::new("Counted", 1, payload.clone())],
            )
            .await
            .expect("append");
        last = outcome.position;
    }
    last
}

async fn caught_up(handle: &ProjectionHandle, store: &InMemoryEventStore) {
    let head = store.head().await.expect("head");
    handle
        .wait_for(head, Duration::from_secs(10))
        .await
        .expect("the publisher reaches the head");
}

fn n(n: u64) -> serde_json::Value {
    serde_json::json!({ "n": n })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_batch_sends_only_what_was_not_acknowledged_keeping_each_streams_order() {
    let store = InMemoryEventStore::new();
    let fake = Arc::new(Fake::default());
    // a-2's first delivery times out: the batch fails, and is retried.
    fake.fail("a", 2, &[RDKafkaErrorCode::MessageTimedOut]);
    append(
        &store,
        &[
            ("a", n(1)),
            ("b", n(1)),
            ("a", n(2)),
            ("b", n(2)),
            ("a", n(3)),
            ("b", n(3)),
        ],
    )
    .await;
    let handle = run(&store, publisher(&fake));
    caught_up(&handle, &store).await;
    handle.shutdown().await;

    let sent: Vec<(String, u64, bool)> = fake
        .sent()
        .into_iter()
        .map(|s| (s.stream, s.version, s.acked))
        .collect();
    let expected: Vec<(String, u64, bool)> = [
        ("a", 1, true),
        ("b", 1, true),
        ("a", 2, false),
        ("b", 2, true),
        ("a", 3, true),
        ("b", 3, true),
        // The retry: a-2, then a-3 again after it (its stream's order); a-1 and b not again.
        ("a", 2, true),
        ("a", 3, true),
    ]
    .into_iter()
    .map(|(s, v, a)| (s.to_owned(), v, a))
    .collect();
    assert_eq!(sent, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_whose_acknowledgements_do_not_come_by_its_deadline_is_purged_whole_then_retried_in_order(
) {
    let store = InMemoryEventStore::new();
    // The broker stops answering at a-2: it and everything sent after it wait until the
    // batch's deadline purges them together, so no later version is written before it.
    let fake = Arc::new(Fake {
        deadline: Some(Duration::from_millis(200)),
        outage: Some(("a".to_owned(), 2)),
        ..Fake::default()
    });
    append(
        &store,
        &[
            ("a", n(1)),
            ("b", n(1)),
            ("a", n(2)),
            ("b", n(2)),
            ("a", n(3)),
        ],
    )
    .await;
    let started = std::time::Instant::now();
    let handle = run(&store, publisher(&fake));
    caught_up(&handle, &store).await;
    handle.shutdown().await;

    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(*fake.purged.borrow(), 1, "one purge, at the deadline");
    let sent: Vec<(String, u64, bool)> = fake
        .sent()
        .into_iter()
        .map(|s| (s.stream, s.version, s.acked))
        .collect();
    let expected: Vec<(String, u64, bool)> = [
        ("a", 1, true),
        ("b", 1, true),
        ("a", 2, false),
        ("b", 2, false),
        ("a", 3, false),
        // The retry sends what was purged, in order.
        ("a", 2, true),
        ("b", 2, true),
        ("a", 3, true),
    ]
    .into_iter()
    .map(|(s, v, a)| (s.to_owned(), v, a))
    .collect();
    assert_eq!(sent, expected);
}

/// Sends one attempt of `stream`'s `count` events through a transport whose broker never
/// acknowledges them, with `deadline`, drops it while it waits, and says how many purges the
/// transport saw.
async fn purges_after_dropping_an_attempt(deadline: Option<Duration>, count: u64) -> usize {
    let fake = Arc::new(Fake {
        deadline,
        outage: Some(("a".to_owned(), 1)),
        ..Fake::default()
    });
    let store = InMemoryEventStore::new();
    let events: Vec<(&str, _)> = (1..=count).map(|v| ("a", n(v))).collect();
    append(&store, &events).await;
    let events = store
        .read_all(Position::START, 10, &cqrs_core::EventFilter::all())
        .await
        .expect("events")
        .events;
    let transport = Fake::make(&fake)().expect("a fake transport");
    let mut memo = super::ack_memo::AckMemo::default();
    let attempt = super::batch::publish(&*transport, &TestMapper, "/s", &events, &mut memo);

    let dropped = tokio::time::timeout(Duration::from_millis(200), attempt).await;

    assert!(dropped.is_err(), "the attempt was still waiting");
    let purged = *fake.purged.borrow();
    purged
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_dropped_while_it_waits_purges_what_it_sent() {
    // The runner drops an apply when its term ends; the producer lives on, and its messages no
    // longer time out on their own: left queued, they would land after the next leader's.
    let purged = purges_after_dropping_an_attempt(Some(Duration::from_secs(60)), 2).await;
    assert_eq!(purged, 1, "what it sent is purged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_dropped_without_a_deadline_purges_what_it_sent_too() {
    // A zero delivery timeout sets no deadline; the messages of a dropped attempt would wait
    // in the producer for good all the same.
    let purged = purges_after_dropping_an_attempt(None, 1).await;
    assert_eq!(purged, 1, "what it sent is purged");
}

#[test]
fn a_zero_delivery_timeout_means_no_deadline_as_librdkafka_reads_it() {
    let config = crate::KafkaConfig::new("127.0.0.1:1").expect("a valid list");
    let options = crate::ProducerOptions::default().delivery_timeout(Duration::ZERO);
    let producer = super::transport::Publishing::new(&config, &options).expect("producer");
    assert_eq!(
        super::transport::Transport::deadline(&producer),
        None,
        "not a deadline that has always passed, which purged every batch at once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_publishers_producer_fails_a_batch_no_broker_acknowledges_at_its_deadline() {
    // A closed port: no broker ever answers, and no message times out on its own.
    let config = crate::KafkaConfig::new("127.0.0.1:1").expect("a valid list");
    let options = crate::ProducerOptions::default().delivery_timeout(Duration::from_secs(1));
    let producer = super::transport::Publishing::new(&config, &options).expect("producer");
    let store = InMemoryEventStore::new();
    append(&store, &[("a", n(1)), ("a", n(2)), ("b", n(1))]).await;
    let events = store
        .read_all(Position::START, 10, &cqrs_core::EventFilter::all())
        .await
        .expect("events")
        .events;
    let mut memo = super::ack_memo::AckMemo::default();
    let started = std::time::Instant::now();

    let attempt = tokio::time::timeout(
        Duration::from_secs(30),
        super::batch::publish(&producer, &TestMapper, "/services/test", &events, &mut memo),
    )
    .await
    .expect("the deadline ends the attempt");

    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
    assert_eq!(attempt.sent, 0);
    assert!(attempt.rejected.is_empty(), "{:?}", attempt.rejected);
    let Some((kind, error)) = attempt.failure else {
        panic!("the attempt failed")
    };
    assert_eq!(kind, super::transport::Failure::Transient, "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fatal_producer_error_makes_a_new_producer_and_the_batch_goes_out_on_it() {
    let store = InMemoryEventStore::new();
    let fake = Arc::new(Fake::default());
    fake.fail("a", 2, &[RDKafkaErrorCode::Fatal]);
    append(&store, &[("a", n(1)), ("a", n(2)), ("b", n(1))]).await;
    let handle = run(&store, publisher(&fake));
    caught_up(&handle, &store).await;
    handle.shutdown().await;

    assert_eq!(
        fake.made.load(Ordering::SeqCst),
        2,
        "one producer made anew"
    );
    let on_second: Vec<(String, u64)> = fake
        .sent()
        .into_iter()
        .filter(|s| s.producer == 2)
        .map(|s| (s.stream, s.version))
        .collect();
    assert_eq!(
        on_second,
        [("a".to_owned(), 2)],
        "only the unacknowledged event"
    );
    let mut acked = fake.acked();
    acked.sort();
    assert_eq!(
        acked,
        [
            ("a".to_owned(), 1),
            ("a".to_owned(), 2),
            ("b".to_owned(), 1)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_that_does_not_map_is_parked_with_its_streams_later_events_and_the_rest_goes_out()
{
    let store = InMemoryEventStore::new();
    let fake = Arc::new(Fake::default());
    append(
        &store,
        &[
            ("a", n(1)),
            ("a", serde_json::json!({ "poison": true })),
            ("b", n(1)),
            ("a", n(3)),
            ("b", serde_json::json!({ "private": true })),
            ("b", n(3)),
        ],
    )
    .await;
    let handle = run(&store, publisher(&fake));
    caught_up(&handle, &store).await;
    let status = handle.status();
    handle.shutdown().await;

    assert_eq!(
        fake.acked(),
        [
            ("a".to_owned(), 1),
            ("b".to_owned(), 1),
            ("b".to_owned(), 3)
        ],
        "b-2 is private; a-2 does not map and holds a-3 back"
    );
    assert_eq!(status.parked, 2, "{status:?}");
    let letters = store
        .dead_letters("publisher:counts", Position::START, 10)
        .await
        .expect("dead letters");
    let parked: Vec<(String, u64)> = letters
        .iter()
        .map(|l| (l.stream_id.to_string(), l.version.get()))
        .collect();
    assert_eq!(parked, [("a".to_owned(), 2), ("a".to_owned(), 3)]);
    assert!(
        letters[0].error.contains("poison payload"),
        "{}",
        letters[0].error
    );
    assert_eq!(letters[0].key.as_deref(), Some("a"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_broker_refuses_is_parked_and_holds_back_its_stream() {
    let store = InMemoryEventStore::new();
    let fake = Arc::new(Fake::default());
    fake.fail("a", 1, &[RDKafkaErrorCode::MessageSizeTooLarge]);
    append(&store, &[("a", n(1)), ("b", n(1))]).await;
    let handle = run(&store, publisher(&fake));
    caught_up(&handle, &store).await;
    // A later event of the held-back stream is parked too, and never sent.
    append(&store, &[("a", n(2)), ("b", n(2))]).await;
    caught_up(&handle, &store).await;
    handle.shutdown().await;

    assert_eq!(fake.acked(), [("b".to_owned(), 1), ("b".to_owned(), 2)]);
    assert_eq!(fake.sent().len(), 3, "{:?}", fake.sent());
    let letters = store
        .dead_letters("publisher:counts", Position::START, 10)
        .await
        .expect("dead letters");
    assert_eq!(letters.len(), 2, "{letters:?}");
    assert!(
        letters[0].error.contains("not delivered"),
        "{}",
        letters[0].error
    );
}

#[test]
fn the_publisher_is_named_filters_on_the_mappers_types_and_keys_by_stream() {
    use cqrs_core::projection::Projection;
    let fake = Arc::new(Fake::default());
    let publisher = publisher(&fake);
    assert_eq!(publisher.name(), "publisher:counts");
    assert_eq!(publisher.filter().event_types, ["Counted"]);
    let event = RecordedEvent::new(
        StreamId::new("order-5").expect("a stream id"),
        cqrs_core::Version::new(1),
        Position::from_parts(0, 1),
        NewEvent::new("Counted", 1, n(1)),
        time::OffsetDateTime::now_utc(),
    );
    assert_eq!(publisher.key(&event).as_deref(), Some("order-5"));
}

#[derive(Serialize, Deserialize, cqrs_core::DomainEvent)]
enum Shop {
    #[event(version = 2)]
    Paid {
        cents: u64,
    },
    Noted {
        text: String,
    },
}

#[test]
fn a_domain_mapper_decodes_old_payloads_through_the_upcasters() {
    let upcasters = Upcasters::new().with_fn("Paid", 1, |payload| {
        let euros = payload["euros"].as_u64().ok_or("no euros")?;
        Ok(serde_json::json!({ "cents": euros * 100 }))
    });
    let mapper = DomainMapper::new(
        ["Paid", "Noted"],
        |event: &Shop, _: &RecordedEvent| match event {
            Shop::Paid { cents } => Outgoing::of("payments", &Counted { n: *cents }).map(Some),
            Shop::Noted { .. } => Ok(None),
        },
    )
    .with_upcasters(upcasters);
    let event = |event_type: &str, schema, payload| {
        RecordedEvent::new(
            StreamId::new("shop-1").expect("a stream id"),
            cqrs_core::Version::new(1),
            Position::from_parts(0, 1),
            NewEvent::new(event_type, schema, payload),
            time::OffsetDateTime::now_utc(),
        )
    };
    let old = mapper
        .map(&event("Paid", 1, serde_json::json!({ "euros": 3 })))
        .expect("maps")
        .expect("published");
    assert_eq!(old.data(), br#"{"n":300}"#);
    let current = mapper
        .map(&event("Paid", 2, serde_json::json!({ "cents": 5 })))
        .expect("maps")
        .expect("published");
    assert_eq!(current.data(), br#"{"n":5}"#);
    let private = mapper.map(&event("Noted", 1, serde_json::json!({ "text": "hi" })));
    assert!(matches!(private, Ok(None)));
    let broken = mapper.map(&event("Paid", 2, serde_json::json!({ "cents": "five" })));
    assert!(matches!(broken, Err(MapError::Decode(_))), "{broken:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_written_by_newer_code_is_retried_not_parked() {
    // A replica on the release before leads the publisher during a rolling deploy: an event
    // at a schema version newer than it knows waits for the new release, whose mapper reads
    // it, rather than being parked with its stream held back behind it.
    let fake = Arc::new(Fake::default());
    let mapper = DomainMapper::new(["Paid"], |event: &Shop, _: &RecordedEvent| match event {
        Shop::Paid { cents } => Outgoing::of("payments", &Counted { n: *cents }).map(Some),
        Shop::Noted { .. } => Ok(None),
    });
    let publisher = KafkaPublisher::with_transport(
        "shop",
        mapper,
        "/services/test".to_owned(),
        Fake::make(&fake),
    )
    .expect("a fake transport");
    let newer = RecordedEvent::new(
        StreamId::new("shop-1").expect("a stream id"),
        cqrs_core::Version::new(1),
        Position::from_parts(0, 1),
        NewEvent::new(
            "Paid",
            3,
            serde_json::json!({ "cents": 5, "currency": "EUR" }),
        ),
        time::OffsetDateTime::now_utc(),
    );
    let applied = cqrs_core::projection::Projection::apply(&publisher, &[newer]).await;
    assert!(
        matches!(
            applied,
            Err(cqrs_core::projection::ProjectionError::Transient(_))
        ),
        "{applied:?}"
    );
    assert!(fake.sent().is_empty());
}
