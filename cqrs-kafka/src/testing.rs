//! Helpers for tests against a real broker (feature `testing`): a topic name no other test
//! uses, creating topics, and deleting what a test created.
//!
//! ```no_run
//! # use cqrs_kafka::testing::TestBroker;
//! # async fn test() -> Result<(), cqrs_kafka::KafkaError> {
//! let broker = TestBroker::from_env()?; // KAFKA_BOOTSTRAP_SERVERS, e.g. 127.0.0.1:9092
//! let topic = broker.create_topic("orders", 3).await?; // orders-t19c2f3a1b...
//! // ... produce and consume with broker.config() ...
//! broker.delete_topics().await?; // deletes every topic it created
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;

use crate::{KafkaConfig, KafkaError, Result};

/// How long topic creation and deletion may take on the broker.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A topic name (or group id) no other test, process or earlier run uses:
/// `{prefix}-t{time}-{pid}-{n}`. `prefix` should be short and use only letters, digits, `.`,
/// `_` and `-` (what Kafka allows in a topic name, at most 249 characters).
pub fn unique_topic(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{prefix}-t{:x}{:08x}-{:x}-{n:x}",
        now.as_secs(),
        now.subsec_nanos(),
        std::process::id()
    )
}

/// An admin client for the test broker and the topics a test created on it, to delete at its
/// end. Its `Debug` output shows the configuration (without passwords) and the topics.
pub struct TestBroker {
    config: KafkaConfig,
    admin: AdminClient<DefaultClientContext>,
    topics: Mutex<Vec<String>>,
}

impl fmt::Debug for TestBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestBroker")
            .field("config", &self.config)
            .field("topics", &self.topics)
            .finish_non_exhaustive()
    }
}

impl TestBroker {
    /// The broker in `KAFKA_BOOTSTRAP_SERVERS` ([`KafkaConfig::from_env`]). Fails with
    /// [`KafkaError::Config`] when it is unset or unusable.
    pub fn from_env() -> Result<Self> {
        Self::new(KafkaConfig::from_env()?)
    }

    /// The broker `config` points at.
    pub fn new(config: KafkaConfig) -> Result<Self> {
        let admin = config
            .client_config()
            .create()
            .map_err(KafkaError::client("create the admin client"))?;
        Ok(Self {
            config,
            admin,
            topics: Mutex::new(Vec::new()),
        })
    }

    /// The configuration, for producers and consumers.
    pub fn config(&self) -> &KafkaConfig {
        &self.config
    }

    /// Creates a topic named [`unique_topic(prefix)`](unique_topic) with `partitions`
    /// partitions and replication factor 1, remembered for
    /// [`delete_topics`](Self::delete_topics). Returns once the broker shows it,
    /// every partition with a leader.
    pub async fn create_topic(&self, prefix: &str, partitions: i32) -> Result<String> {
        let name = unique_topic(prefix);
        self.create_topic_named(&name, partitions).await?;
        Ok(name)
    }

    /// Creates topic `name` (a [`unique_topic`] chosen earlier: a test whose clients use the
    /// name before the topic exists) with `partitions` partitions and replication factor 1,
    /// remembered for [`delete_topics`](Self::delete_topics).
    pub async fn create_topic_named(&self, name: &str, partitions: i32) -> Result<()> {
        let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        let results = self
            .admin
            .create_topics([&topic], &options())
            .await
            .map_err(KafkaError::client("create a topic"))?;
        self.remember(name.to_owned());
        check("create", results)?;
        self.wait_until_shown(name, partitions).await
    }

    /// Waits until the broker's metadata shows `topic` with `partitions` partitions, each with
    /// a leader: the controller answers a creation before the broker shows the topic, and a
    /// client that asks in between is told it does not exist.
    async fn wait_until_shown(&self, topic: &str, partitions: i32) -> Result<()> {
        let topic = topic.to_owned();
        let expected = usize::try_from(partitions).unwrap_or_default();
        self.on_metadata_client("wait for a new topic", move |client| {
            let deadline = std::time::Instant::now() + ADMIN_TIMEOUT;
            loop {
                let shown = client
                    .fetch_metadata(Some(&topic), ADMIN_TIMEOUT)
                    .ok()
                    .and_then(|metadata| {
                        let t = metadata.topics().iter().find(|t| t.name() == topic)?;
                        let ready = t.error().is_none()
                            && t.partitions().len() == expected
                            && t.partitions()
                                .iter()
                                .all(|p| p.error().is_none() && p.leader() >= 0);
                        Some(ready)
                    })
                    .unwrap_or(false);
                if shown {
                    return Ok(());
                }
                if std::time::Instant::now() >= deadline {
                    return Err(KafkaError::Timeout {
                        operation: "wait for a new topic to show in the metadata",
                        after: ADMIN_TIMEOUT,
                    });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
        .await
    }

    /// Runs `read` with a client of its own on a blocking thread: metadata and watermark
    /// fetches are blocking round trips. `what` names it if the thread is lost.
    async fn on_metadata_client<T: Send + 'static>(
        &self,
        what: &'static str,
        read: impl FnOnce(BaseConsumer) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let client: BaseConsumer = self
            .config
            .client_config()
            .create()
            .map_err(KafkaError::client("create a client for the metadata"))?;
        tokio::task::spawn_blocking(move || read(client))
            .await
            .map_err(|_| KafkaError::Timeout {
                operation: what,
                after: ADMIN_TIMEOUT,
            })?
    }

    /// Remembers `topic` (made some other way) for [`delete_topics`](Self::delete_topics).
    pub fn remember(&self, topic: String) {
        self.topics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(topic);
    }

    /// How many messages each partition of `topic` holds (high watermark minus low), by
    /// partition: what a test that read the topic back compares with what it read.
    pub async fn message_counts(&self, topic: &str) -> Result<Vec<(i32, i64)>> {
        let topic = topic.to_owned();
        self.on_metadata_client("read the watermarks", move |client| {
            let metadata = client
                .fetch_metadata(Some(&topic), ADMIN_TIMEOUT)
                .map_err(KafkaError::client("read the topic's metadata"))?;
            let partitions: Vec<i32> = metadata
                .topics()
                .iter()
                .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                .collect();
            let mut counts = Vec::with_capacity(partitions.len());
            for partition in partitions {
                let (low, high) = client
                    .fetch_watermarks(&topic, partition, ADMIN_TIMEOUT)
                    .map_err(KafkaError::client("read a partition's watermarks"))?;
                counts.push((partition, high - low));
            }
            Ok(counts)
        })
        .await
    }

    /// Deletes every topic created or remembered; one already gone is fine. Call it at the
    /// end of a test; a test that panics earlier leaves its topics (their names say when
    /// they were made).
    pub async fn delete_topics(&self) -> Result<()> {
        let topics = std::mem::take(&mut *self.topics.lock().unwrap_or_else(|p| p.into_inner()));
        if topics.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        let results = self
            .admin
            .delete_topics(&names, &options())
            .await
            .map_err(KafkaError::client("delete topics"))?;
        let results = results.into_iter().filter(|result| {
            !matches!(result, Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)))
        });
        check("delete", results)
    }
}

fn options() -> AdminOptions {
    AdminOptions::new()
        .operation_timeout(Some(ADMIN_TIMEOUT))
        .request_timeout(Some(ADMIN_TIMEOUT))
}

fn check(
    operation: &'static str,
    results: impl IntoIterator<Item = std::result::Result<String, (String, RDKafkaErrorCode)>>,
) -> Result<()> {
    for result in results {
        if let Err((topic, code)) = result {
            return Err(KafkaError::Topic {
                operation,
                topic,
                code,
            });
        }
    }
    Ok(())
}
