//! The event bus in the integration tests: a public contract (`TallyAdded`), a handler that
//! turns it into commands on PostgreSQL tallies through the real `Repository` with the
//! message's derived command id, messages built as the publisher writes them, and the fold the
//! tallies must equal.

use std::collections::BTreeMap;

use async_trait::async_trait;
use cqrs_core::testing::{Tally, TallyCommand};
use cqrs_core::Repository;
use cqrs_kafka::consume::{HandleError, Incoming, IntegrationHandler};
use cqrs_kafka::testing::TestBroker;
use cqrs_kafka::{CloudEvent, IntegrationEvent, KafkaConfig, KafkaProducer, Record};
use cqrs_postgres::PgEventStore;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The test broker (`KAFKA_BOOTSTRAP_SERVERS`). Fails the test, saying how to get one, when
/// the variable is unset: these tests skip nothing.
pub fn kafka() -> TestBroker {
    TestBroker::from_env().unwrap_or_else(|e| {
        panic!(
            "{e}. These tests need a real Kafka broker: run scripts/test.sh, or \
             `scripts/kafka.sh start` and export the KAFKA_BOOTSTRAP_SERVERS=... line it prints"
        )
    })
}

/// The contract: `amount` added to tally `tally`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TallyAdded {
    /// The tally (the message key too).
    pub tally: String,
    /// How much.
    pub amount: u64,
}

impl IntegrationEvent for TallyAdded {
    const TYPE: &'static str = "test.tally.added.v1";
}

/// A `TallyAdded` message as the publisher writes it (key = the tally), with a new `ce_id`.
pub fn tally_added(topic: &str, tally: &str, amount: u64) -> (Uuid, Record) {
    let id = Uuid::now_v7();
    (id, tally_added_with_id(topic, id, tally, amount))
}

/// A `TallyAdded` message with `ce_id` `id` (a redelivery repeats it).
pub fn tally_added_with_id(topic: &str, id: Uuid, tally: &str, amount: u64) -> Record {
    let body = serde_json::to_vec(&TallyAdded {
        tally: tally.to_owned(),
        amount,
    })
    .expect("json");
    let mut event = CloudEvent::new(id, "/services/test", TallyAdded::TYPE);
    event.subject = Some(tally.to_owned());
    event.write(Record::new(topic, tally, body))
}

/// Adds each message's amount to its tally on PostgreSQL, with the message's derived command
/// id: a message handled twice adds once.
pub struct TallyHandler {
    repository: Repository<Tally, PgEventStore>,
}

impl TallyHandler {
    /// A handler writing to `store`.
    pub fn new(store: PgEventStore) -> Self {
        Self {
            repository: Repository::new(store),
        }
    }
}

#[async_trait]
impl IntegrationHandler for TallyHandler {
    fn event_types(&self) -> Vec<&'static str> {
        vec![TallyAdded::TYPE]
    }

    async fn handle(&self, incoming: &Incoming) -> Result<(), HandleError> {
        let added: TallyAdded = incoming.data()?;
        self.repository
            .execute_with(
                &added.tally,
                &TallyCommand::Add(vec![added.amount]),
                incoming.command_context("add"),
            )
            .await?;
        Ok(())
    }
}

/// What the tallies must hold: per tally, (sum of amounts, number of messages).
pub fn fold<'a>(added: impl IntoIterator<Item = &'a TallyAdded>) -> BTreeMap<String, (u64, u64)> {
    let mut tallies = BTreeMap::new();
    for a in added {
        let entry: &mut (u64, u64) = tallies.entry(a.tally.clone()).or_default();
        entry.0 += a.amount;
        entry.1 += 1;
    }
    tallies
}

/// What the tallies on `store` hold: per tally of `names`, (total, events applied).
pub async fn tallies(
    store: &PgEventStore,
    names: impl IntoIterator<Item = &String>,
) -> BTreeMap<String, (u64, u64)> {
    let repository: Repository<Tally, PgEventStore> = Repository::new(store.clone());
    let mut tallies = BTreeMap::new();
    for name in names {
        let (tally, _) = repository.load(name).await.expect("load a tally");
        tallies.insert(name.clone(), (tally.total, tally.applied));
    }
    tallies
}

/// Sends every record and waits for each acknowledgement.
pub async fn send_all(config: &KafkaConfig, records: &[Record]) {
    let producer = KafkaProducer::new(config).expect("producer");
    let pending: Vec<_> = records
        .iter()
        .map(|r| producer.enqueue(r).expect("enqueue"))
        .collect();
    for delivery in pending {
        delivery.await.expect("acknowledged");
    }
}

/// What tick `n` adds to its tally: `n % 100 + 1` (a long run stays under the tally's cap).
pub fn tick_amount(n: u64) -> u64 {
    n % 100 + 1
}

/// Adds each published `Tick` (see [`publishing`](crate::publishing)) to the tally named by
/// its message key (the publishing stream, `tick-{s}`), [`tick_amount`] of it,, with the message's derived command id:
/// the consumer side of the publisher-and-consumer kill test.
pub struct TickHandler {
    repository: Repository<Tally, PgEventStore>,
}

impl TickHandler {
    /// A handler writing to `store`.
    pub fn new(store: PgEventStore) -> Self {
        Self {
            repository: Repository::new(store),
        }
    }
}

#[async_trait]
impl IntegrationHandler for TickHandler {
    fn event_types(&self) -> Vec<&'static str> {
        vec![crate::publishing::Tick::TYPE]
    }

    async fn handle(&self, incoming: &Incoming) -> Result<(), HandleError> {
        let tick: crate::publishing::Tick = incoming.data()?;
        let key = incoming
            .message()
            .key()
            .and_then(|k| std::str::from_utf8(k).ok())
            .ok_or_else(|| HandleError::poison("a tick without a utf-8 key"))?
            .to_owned();
        self.repository
            .execute_with(
                &key,
                &TallyCommand::Add(vec![tick_amount(tick.n)]),
                incoming.command_context("add"),
            )
            .await?;
        Ok(())
    }
}
