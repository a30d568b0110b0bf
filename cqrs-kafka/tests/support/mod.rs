//! Shared helpers for the tests against a real broker.

#![allow(dead_code, unreachable_pub)]

use cqrs_kafka::testing::TestBroker;

pub mod raw;

/// The test broker (`KAFKA_BOOTSTRAP_SERVERS`). Fails the test, saying how to get one, when
/// the variable is unset: these tests skip nothing.
pub fn broker() -> TestBroker {
    match TestBroker::from_env() {
        Ok(broker) => broker,
        Err(e) => panic!(
            "{e}. These tests need a real Kafka broker: run scripts/test.sh, or \
             `scripts/kafka.sh start` and export the KAFKA_BOOTSTRAP_SERVERS=... line it prints"
        ),
    }
}

pub mod bus {
    //! A small contract, a handler that records what it handled (and can block, fail or
    //! refuse on chosen messages), and helpers to send and to read committed offsets.

    use std::collections::{HashMap, HashSet};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use async_trait::async_trait;
    use cqrs_kafka::consume::{HandleError, Incoming, IntegrationHandler};
    use cqrs_kafka::{
        CloudEvent, IntegrationEvent, KafkaConfig, KafkaConsumer, KafkaProducer, Record,
    };
    use serde::{Deserialize, Serialize};
    use tokio::sync::Semaphore;
    use uuid::Uuid;

    /// The contract of the tests: message `n` of `key`.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Counted {
        pub key: String,
        pub n: u64,
    }

    impl IntegrationEvent for Counted {
        const TYPE: &'static str = "test.counted.v1";
    }

    /// A well-formed message of `Counted`, with its `ce_id`.
    pub fn counted(topic: &str, key: &str, n: u64) -> (Uuid, Record) {
        let id = Uuid::now_v7();
        let body = serde_json::to_vec(&Counted {
            key: key.to_owned(),
            n,
        })
        .expect("json");
        let record = CloudEvent::new(id, "/services/test", Counted::TYPE)
            .write(Record::new(topic, key, body));
        (id, record)
    }

    /// Sends every record and waits for each acknowledgement; the (partition, offset) of each.
    pub async fn send_all(config: &KafkaConfig, records: &[Record]) -> Vec<(i32, i64)> {
        let producer = KafkaProducer::new(config).expect("producer");
        let pending: Vec<_> = records
            .iter()
            .map(|r| producer.enqueue(r).expect("enqueue"))
            .collect();
        let mut places = Vec::new();
        for delivery in pending {
            let delivery = delivery.await.expect("acknowledged");
            places.push((delivery.partition, delivery.offset));
        }
        places
    }

    /// The group's committed offset of `topic`/`partition` as the broker has it.
    pub fn committed(
        config: &KafkaConfig,
        group: &str,
        topic: &str,
        partition: i32,
    ) -> Option<i64> {
        let reader = KafkaConsumer::new(config, group).expect("a consumer to read offsets");
        reader
            .committed_offset(topic, partition, Duration::from_secs(10))
            .expect("committed offsets")
    }

    /// What the recorder does with message `(key, n)`.
    #[derive(Default)]
    pub struct Script {
        /// Wait for a permit of this gate first.
        pub gate: Option<((String, u64), Arc<Semaphore>)>,
        /// Fail transiently this many times first.
        pub transient: HashMap<(String, u64), u32>,
        /// Refuse as poison.
        pub poison: HashSet<(String, u64)>,
        /// Fail transiently whenever told of a message being parked.
        pub untellable: bool,
    }

    /// Records each message it handled, in order, and follows its script.
    #[derive(Clone, Default)]
    pub struct Recorder {
        pub handled: Arc<Mutex<Vec<Counted>>>,
        pub attempts: Arc<Mutex<HashMap<(String, u64), u32>>>,
        pub script: Arc<Script>,
        /// What it was told of parking: message `n` of key, and why.
        pub told: Arc<Mutex<Vec<(String, u64, String)>>>,
    }

    impl Recorder {
        pub fn new(script: Script) -> Self {
            Self {
                script: Arc::new(script),
                ..Self::default()
            }
        }

        pub fn handled(&self) -> Vec<Counted> {
            self.handled
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
        }

        pub fn told(&self) -> Vec<(String, u64, String)> {
            self.told.lock().unwrap_or_else(|p| p.into_inner()).clone()
        }
    }

    #[async_trait]
    impl IntegrationHandler for Recorder {
        fn event_types(&self) -> Vec<&'static str> {
            vec![Counted::TYPE]
        }

        async fn parking(&self, incoming: &Incoming, reason: &str) -> Result<(), HandleError> {
            if self.script.untellable {
                return Err(HandleError::transient("whom to tell is gone"));
            }
            let counted: Counted = incoming.data()?;
            self.told.lock().unwrap_or_else(|p| p.into_inner()).push((
                counted.key,
                counted.n,
                reason.to_owned(),
            ));
            Ok(())
        }

        async fn handle(&self, incoming: &Incoming) -> Result<(), HandleError> {
            let counted: Counted = incoming.data()?;
            let id = (counted.key.clone(), counted.n);
            let attempt = {
                let mut attempts = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
                let a = attempts.entry(id.clone()).or_default();
                *a += 1;
                *a
            };
            if let Some((at, gate)) = &self.script.gate {
                if *at == id {
                    gate.acquire().await.expect("gate open").forget();
                }
            }
            if self.script.poison.contains(&id) {
                return Err(HandleError::poison(format!("{} {} is refused", id.0, id.1)));
            }
            if self
                .script
                .transient
                .get(&id)
                .is_some_and(|fails| attempt <= *fails)
            {
                return Err(HandleError::transient(format!("attempt {attempt} fails")));
            }
            self.handled
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(counted);
            Ok(())
        }
    }
}
