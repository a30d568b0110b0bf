//! Request / reply across two services, each with its own PostgreSQL schema, talking only
//! through Kafka: a process manager in service A sends `AddToTally` commands to service B's
//! tallies with a `BusDispatcher`; B's `CommandConsumer` runs each with command id = `ce_id`
//! and publishes the outcome; A's `ReplyInbox` records it, and the engine decides the step as
//! `Input::Accepted`, or `Input::Rejected` with B's typed refusal. Every command is sent twice
//! (a redelivery, as after a crash before the step's outcome was recorded), so B receives
//! each command twice and replies twice under one reply id: each lands once, each step is
//! decided once.
//!
//! A command B cannot run at all (its handler says poison) is parked at B, and B tells A so:
//! A's instance is parked with B's reason until B's real answer comes.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::bus::{BusDeadLetterStore, BusLetterTarget};
use cqrs_core::process::{
    Action, CommandDispatcher, Context, DispatchError, Dispatched, Input, InstanceState,
    ProcessManager, ProcessManagerProjection, ProcessOptions, ProcessStore, Route,
};
use cqrs_core::projection::{DeadLetterStore, LetterTarget, Redrive};
use cqrs_core::testing::{Tally, TallyCommand, TallyError};
use cqrs_core::{
    AppendEvents, CommandContext, Error, EventFilter, ExpectedVersion, NewEvent, ReadStream,
    RecordedEvent, Repository, StreamId, Version,
};
use cqrs_kafka::consume::{
    ConsumerHandle, ConsumerOptions, HandleError, Incoming, IntegrationConsumer,
};
use cqrs_kafka::remote::{
    outcome_of, BusDispatcher, CommandConsumer, CommandHandler, ReplyInbox, Request,
};
use cqrs_kafka::testing::{unique_topic, TestBroker};
use cqrs_kafka::{IntegrationEvent, KafkaProducer, Outgoing};
use cqrs_postgres::PgEventStore;
use integration_tests::bus::kafka;
use integration_tests::{drop_schema, eventually, pg_store};
use serde::{Deserialize, Serialize};
use serde_json::json;

const PATIENCE: Duration = Duration::from_secs(60);

/// Service A's process: one transfer adds `amount` to B's tally `tally`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Transfer {
    outcome: Option<String>,
}

/// The command, and B's public command contract.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct AddToTally {
    tally: String,
    amount: u64,
}

impl IntegrationEvent for AddToTally {
    const TYPE: &'static str = "test.tally.add.v1";
}

/// B's typed refusal, as A's process decodes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Refusal {
    Closed,
    OverCap { cap: u64 },
}

impl From<TallyError> for Refusal {
    fn from(error: TallyError) -> Self {
        match error {
            TallyError::OverCap { cap } => Refusal::OverCap { cap },
            _ => Refusal::Closed,
        }
    }
}

impl ProcessManager for Transfer {
    const TYPE: &'static str = "transfer";
    type Trigger = AddToTally;
    type Command = AddToTally;
    type Rejection = Refusal;
    type Timeout = ();

    fn subscriptions() -> EventFilter {
        EventFilter::all().category("request")
    }

    fn route(event: &RecordedEvent) -> Result<Route<AddToTally>, Error> {
        let add: AddToTally = serde_json::from_value(event.payload.clone())
            .map_err(|e| Error::process(Self::TYPE, e.to_string()))?;
        Ok(Route::start(event.stream_id.instance(), add))
    }

    fn apply(&mut self, input: &Input<Self>) {
        match input {
            Input::Accepted { .. } => self.outcome = Some("accepted".to_owned()),
            Input::Rejected { error, .. } => self.outcome = Some(format!("{error:?}")),
            _ => {}
        }
    }

    fn decide(&self, input: &Input<Self>, _: &Context<'_>) -> Vec<Action<Self>> {
        match input {
            Input::Event { trigger, .. } => vec![Action::send(trigger.clone())],
            Input::Accepted { .. } => vec![Action::Complete],
            // A typed refusal: the process fails with it, for the test to read.
            Input::Rejected {
                error: Refusal::Closed,
                ..
            } => vec![Action::fail("closed")],
            Input::Rejected {
                error: Refusal::OverCap { cap },
                ..
            } => vec![Action::fail(format!("over cap {cap}"))],
            _ => vec![],
        }
    }
}

/// Sends each command twice: B receives it twice and answers twice.
struct Twice<D>(D);

#[async_trait]
impl<D: CommandDispatcher<AddToTally, Rejection = Refusal>> CommandDispatcher<AddToTally>
    for Twice<D>
{
    type Rejection = Refusal;

    async fn dispatch(
        &self,
        command: &AddToTally,
        context: CommandContext,
    ) -> Result<Dispatched, DispatchError<Refusal>> {
        self.0.dispatch(command, context.clone()).await?;
        self.0.dispatch(command, context).await
    }
}

/// Service B: runs `AddToTally` on its tallies.
struct Tallies(Repository<Tally, PgEventStore>);

#[async_trait]
impl CommandHandler for Tallies {
    fn command_types(&self) -> Vec<&'static str> {
        vec![AddToTally::TYPE]
    }

    async fn execute(
        &self,
        command: &Incoming,
        context: CommandContext,
    ) -> Result<cqrs_core::process::ReplyOutcome, HandleError> {
        let add: AddToTally = command.data()?;
        let result = self
            .0
            .execute_with(&add.tally, &TallyCommand::Add(vec![add.amount]), context)
            .await;
        outcome_of(result, Refusal::from)
    }
}

/// Service B with a defect: while `broken`, it cannot run any command (a bug, a contract it
/// cannot read), which no retry cures.
struct Broken {
    tallies: Tallies,
    broken: Arc<AtomicBool>,
}

/// Why `Broken` cannot run a command.
const DEFECT: &str = "the tally service cannot read this command yet";

#[async_trait]
impl CommandHandler for Broken {
    fn command_types(&self) -> Vec<&'static str> {
        self.tallies.command_types()
    }

    async fn execute(
        &self,
        command: &Incoming,
        context: CommandContext,
    ) -> Result<cqrs_core::process::ReplyOutcome, HandleError> {
        if self.broken.load(Ordering::Acquire) {
            // As a handler may say it: the outcome it cannot run to (an `Err` poison is the
            // same to the consumer). Either way the command is parked here.
            return Ok(cqrs_core::process::ReplyOutcome::Failed {
                reason: DEFECT.to_owned(),
            });
        }
        self.tallies.execute(command, context).await
    }
}

/// A's reply inbox on `replies`, recording in A's store.
fn reply_inbox(broker: &TestBroker, replies: &str, service_a: &PgEventStore) -> ConsumerHandle {
    IntegrationConsumer::new(
        broker.config(),
        &unique_topic("g-replies"),
        &[replies],
        ReplyInbox::new(service_a.clone()),
    )
    .with_dead_letters(Arc::new(service_a.clone()))
    .spawn()
    .expect("A's reply inbox")
}

/// A's dispatcher: each `AddToTally` to B's `commands`, keyed by its tally, answered on
/// `replies`.
fn dispatcher(
    producer: KafkaProducer,
    commands: &str,
    replies: &str,
) -> BusDispatcher<AddToTally, Refusal> {
    let topic = commands.to_owned();
    BusDispatcher::new(producer, "/services/a", replies, move |add: &AddToTally| {
        Ok(Request::new(
            add.tally.clone(),
            Outgoing::of(topic.as_str(), add)?,
        ))
    })
}

async fn request(store: &PgEventStore, n: usize, add: &AddToTally) {
    let stream = StreamId::new(format!("request-{n}")).expect("stream id");
    let event = NewEvent::new(
        "TransferRequested",
        1,
        serde_json::to_value(add).expect("json"),
    );
    store
        .append(&stream, ExpectedVersion::NoStream, vec![event])
        .await
        .expect("requested");
}

fn kinds(journal: &[RecordedEvent]) -> Vec<String> {
    journal
        .iter()
        .map(|e| {
            e.payload["kind"]["type"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_manager_commands_another_service_through_the_bus_and_hears_each_outcome_once() {
    let started = std::time::Instant::now();
    let service_a = pg_store().await;
    let service_b = pg_store().await;
    let broker = kafka();
    let commands = broker
        .create_topic("t-tally-commands", 3)
        .await
        .expect("topic");
    let replies = broker
        .create_topic("t-transfer-replies", 3)
        .await
        .expect("topic");

    // B: tally "closed" refuses everything; the others take up to Tally::CAP.
    let tallies: Repository<Tally, PgEventStore> = Repository::new(service_b.clone());
    tallies
        .execute("closed", &TallyCommand::Close)
        .await
        .expect("closed");
    let transfers: Vec<AddToTally> = (0..24u64)
        .map(|i| match i % 6 {
            0 => AddToTally {
                tally: "closed".into(),
                amount: i + 1,
            },
            1 => AddToTally {
                tally: format!("t-{}", i % 4),
                amount: Tally::CAP + 1,
            },
            _ => AddToTally {
                tally: format!("t-{}", i % 4),
                amount: i + 1,
            },
        })
        .collect();
    for (n, add) in transfers.iter().enumerate() {
        request(&service_a, n, add).await;
    }

    let producer = KafkaProducer::new(broker.config()).expect("producer");
    let b = IntegrationConsumer::new(
        broker.config(),
        &unique_topic("g-tallies"),
        &[&commands],
        CommandConsumer::new(
            Tallies(Repository::new(service_b.clone())),
            producer.clone(),
            "/services/b",
        ),
    )
    .with_dead_letters(Arc::new(service_b.clone()))
    .spawn()
    .expect("B's command consumer");
    let inbox = reply_inbox(&broker, &replies, &service_a);
    let dispatcher = dispatcher(producer, &commands, &replies);
    let process = ProcessManagerProjection::<Transfer, _, _>::new(
        service_a.clone(),
        Twice(dispatcher),
        ProcessOptions::default(),
    )
    .runner()
    .spawn();

    let rows = eventually(PATIENCE, "every transfer ended", || async {
        let mut rows = Vec::new();
        for n in 0..transfers.len() {
            let row = service_a
                .instance(Transfer::TYPE, &n.to_string())
                .await
                .expect("read")?;
            if row.state == InstanceState::Running {
                return None;
            }
            rows.push(row);
        }
        Some(rows)
    })
    .await;
    // Every command was received twice by B and answered twice.
    let b_status = b
        .wait_until(PATIENCE, |s| s.handled >= 2 * transfers.len() as u64)
        .await
        .expect("B handled every delivery");
    let inbox_status = inbox
        .wait_until(PATIENCE, |s| s.handled >= 2 * transfers.len() as u64)
        .await
        .expect("A received every reply");
    println!("B: {b_status}\nA's inbox: {inbox_status}");
    assert_eq!((b_status.parked, inbox_status.parked), (0, 0));
    process.shutdown().await;
    b.shutdown().await;
    inbox.shutdown().await;

    // A: each step decided once, with the typed refusal where B refused.
    let mut expected_totals: BTreeMap<String, u64> = BTreeMap::new();
    for (n, (add, row)) in transfers.iter().zip(&rows).enumerate() {
        let stream = StreamId::new(format!("transfer-{n}")).expect("stream id");
        let journal = service_a
            .read_stream(&stream, Version::ZERO, 100)
            .await
            .expect("journal");
        if add.tally == "closed" {
            assert_eq!(kinds(&journal), ["event", "rejected"], "transfer {n}");
            assert_eq!(journal[1].payload["kind"]["error"], json!("Closed"));
            assert_eq!(row.state, InstanceState::Failed);
        } else if add.amount > Tally::CAP {
            assert_eq!(kinds(&journal), ["event", "rejected"], "transfer {n}");
            assert_eq!(
                journal[1].payload["kind"]["error"],
                json!({ "OverCap": { "cap": Tally::CAP } })
            );
            assert_eq!(row.state, InstanceState::Failed);
        } else {
            assert_eq!(kinds(&journal), ["event", "accepted"], "transfer {n}");
            assert_eq!(row.state, InstanceState::Completed);
            *expected_totals.entry(add.tally.clone()).or_default() += add.amount;
        }
    }

    // B: each accepted command landed once, under the step's command id.
    let mut seen = HashSet::new();
    for (tally, total) in &expected_totals {
        let (state, _) = tallies.load(tally).await.expect("load");
        assert_eq!(state.total, *total, "tally {tally}");
        let stream = tallies.stream_id(tally).expect("stream id");
        for event in service_b
            .read_stream(&stream, Version::ZERO, 1000)
            .await
            .expect("read")
        {
            let id = event.metadata.command_id.expect("a command id");
            assert!(seen.insert(id), "command {id} landed twice");
        }
    }
    println!(
        "{} transfers, {} accepted, in {:?}",
        transfers.len(),
        seen.len(),
        started.elapsed()
    );
    broker.delete_topics().await.expect("delete topics");
    drop_schema(&service_a).await;
    drop_schema(&service_b).await;
}

/// A command its target cannot run is parked there (B's dead letters, for B's operators).
/// Before, nothing told A: its instance stayed running with the command pending, for good,
/// and A's operators saw nothing wrong. B now replies that it could not run it; A parks the
/// instance with B's reason; once B's operator retried the command (fixed) and A's operator
/// retried the instance, the step is decided once, on B's real answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_its_target_cannot_run_parks_the_requesting_instance_with_the_targets_reason() {
    let service_a = pg_store().await;
    let service_b = pg_store().await;
    let broker = kafka();
    let commands = broker
        .create_topic("t-tally-commands", 1)
        .await
        .expect("topic");
    let replies = broker
        .create_topic("t-transfer-replies", 1)
        .await
        .expect("topic");
    let add = AddToTally {
        tally: "t-0".into(),
        amount: 7,
    };
    request(&service_a, 0, &add).await;

    let broken = Arc::new(AtomicBool::new(true));
    let producer = KafkaProducer::new(broker.config()).expect("producer");
    let b_group = unique_topic("g-tallies");
    let b = IntegrationConsumer::new(
        broker.config(),
        &b_group,
        &[&commands],
        CommandConsumer::new(
            Broken {
                tallies: Tallies(Repository::new(service_b.clone())),
                broken: broken.clone(),
            },
            producer.clone(),
            "/services/b",
        ),
    )
    .with_dead_letters(Arc::new(service_b.clone()))
    .with_options(ConsumerOptions::default().redrive_interval(Duration::from_millis(100)))
    .spawn()
    .expect("B's command consumer");
    let inbox = reply_inbox(&broker, &replies, &service_a);
    let dispatcher = dispatcher(producer, &commands, &replies);
    let process = ProcessManagerProjection::<Transfer, _, _>::new(
        service_a.clone(),
        dispatcher,
        ProcessOptions::default(),
    )
    .runner()
    .spawn();

    // A hears of it: the instance is parked with B's reason, its command still pending.
    let projection = format!("process:{}", Transfer::TYPE);
    let letter = eventually(PATIENCE, "A's instance parked with B's reason", || async {
        let letters = service_a
            .key_letters(&projection, "transfer-0", 10)
            .await
            .expect("A's letters");
        letters.into_iter().next()
    })
    .await;
    assert!(letter.error.contains(DEFECT), "{}", letter.error);
    let row = service_a
        .instance(Transfer::TYPE, "0")
        .await
        .expect("read")
        .expect("the instance");
    assert_eq!(
        (row.state, row.pending_commands),
        (InstanceState::Running, 1)
    );
    let parked = service_b
        .parked_messages(&b_group, None, 10)
        .await
        .expect("B's letters");
    assert_eq!(parked.len(), 1, "the command is parked at B too");
    assert!(parked[0].error.contains(DEFECT), "{}", parked[0].error);

    // B's operator retries the command once B is fixed; its answer reaches A.
    broken.store(false, Ordering::Release);
    service_b
        .request_messages(
            &b_group,
            &BusLetterTarget::Message(parked[0].message.clone()),
            Some(Redrive::Retry),
        )
        .await
        .expect("retry at B");
    inbox
        .wait_until(PATIENCE, |s| s.handled >= 2)
        .await
        .expect("B's answer reached A");
    // A's operator retries the instance: the step is decided on B's answer.
    service_a
        .retry(&projection, &LetterTarget::Key("transfer-0".into()))
        .await
        .expect("retry at A");
    let row = eventually(PATIENCE, "the transfer ended", || async {
        service_a
            .instance(Transfer::TYPE, "0")
            .await
            .expect("read")
            .filter(|row| row.state != InstanceState::Running)
    })
    .await;
    assert_eq!(row.state, InstanceState::Completed);
    let journal = service_a
        .read_stream(
            &StreamId::new("transfer-0").expect("stream id"),
            Version::ZERO,
            100,
        )
        .await
        .expect("journal");
    assert_eq!(kinds(&journal), ["event", "accepted"], "decided once");
    let tallies: Repository<Tally, PgEventStore> = Repository::new(service_b.clone());
    let (tally, _) = tallies.load("t-0").await.expect("load");
    assert_eq!(tally.total, 7, "run once, after the fix");
    assert!(
        service_a
            .key_letters(&projection, "transfer-0", 10)
            .await
            .expect("A's letters")
            .is_empty(),
        "nothing left parked at A"
    );

    process.shutdown().await;
    b.shutdown().await;
    inbox.shutdown().await;
    broker.delete_topics().await.expect("delete topics");
    drop_schema(&service_a).await;
    drop_schema(&service_b).await;
}
