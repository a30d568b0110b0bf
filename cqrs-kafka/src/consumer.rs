//! A consumer-group member that commits only when told: [`KafkaConsumer`].

use std::fmt;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::{KafkaConfig, KafkaError, Received, Result};

/// A member of a consumer group that never commits on its own (`enable.auto.commit=false`):
/// the caller commits a message's offset with [`commit`](Self::commit) after its effect, so a
/// crash before that redelivers the message. A group with no committed offset starts at the
/// beginning of each partition (`auto.offset.reset=earliest`). Only committed transactional
/// messages are read (`isolation.level=read_committed`).
pub struct KafkaConsumer {
    inner: StreamConsumer,
    group_id: String,
}

impl fmt::Debug for KafkaConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaConsumer")
            .field("group_id", &self.group_id)
            .finish_non_exhaustive()
    }
}

/// The settings of a group member that commits only when told (shared by [`KafkaConsumer`]
/// and the integration consumer).
pub(crate) fn group_config(config: &KafkaConfig, group_id: &str) -> ClientConfig {
    let mut client = config.client_config();
    client
        .set("group.id", config.group_id(group_id))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "false");
    // A subscribed topic the broker does not show yet (created after the consumer started,
    // or created just before and not yet in the broker's metadata) is looked for again only
    // at this interval: librdkafka's default of five minutes stalls such a consumer that
    // long. A metadata request every few seconds costs the broker next to nothing.
    if client.get(METADATA_REFRESH).is_none() {
        client.set(METADATA_REFRESH, METADATA_REFRESH_MS);
    }
    client
}

/// librdkafka's setting for how often a client refreshes the metadata of its topics.
const METADATA_REFRESH: &str = "topic.metadata.refresh.interval.ms";
/// The consumers' default for it (a user's own `with_setting` wins).
const METADATA_REFRESH_MS: &str = "5000";

impl KafkaConsumer {
    /// A consumer in group `group_id` (after the config's
    /// [group prefix](KafkaConfig::with_group_prefix), if any). Connects lazily.
    pub fn new(config: &KafkaConfig, group_id: &str) -> Result<Self> {
        let inner: StreamConsumer = group_config(config, group_id)
            .create()
            .map_err(KafkaError::client("create the consumer"))?;
        Ok(Self {
            inner,
            group_id: config.group_id(group_id),
        })
    }

    /// The group id the brokers see (with the config's group prefix).
    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    /// Joins the group for `topics` (replacing an earlier subscription); partitions are
    /// assigned on the next [`recv`](Self::recv).
    pub fn subscribe(&self, topics: &[&str]) -> Result<()> {
        self.inner
            .subscribe(topics)
            .map_err(KafkaError::client("subscribe"))
    }

    /// The next message of the assigned partitions. Waits as long as nothing arrives: bound it
    /// with a timeout.
    pub async fn recv(&self) -> Result<Received> {
        let message = self
            .inner
            .recv()
            .await
            .map_err(KafkaError::client("receive a message"))?;
        Ok(Received::copy_of(&message))
    }

    /// [`recv`](Self::recv), giving up with [`KafkaError::Timeout`] after `timeout`.
    pub async fn recv_within(&self, timeout: Duration) -> Result<Received> {
        match tokio::time::timeout(timeout, self.recv()).await {
            Ok(result) => result,
            Err(_) => Err(KafkaError::Timeout {
                operation: "receive a message",
                after: timeout,
            }),
        }
    }

    /// Commits `message` as handled, and so every earlier message of its partition: the
    /// group resumes after it. Waits for the coordinator's answer.
    pub fn commit(&self, message: &Received) -> Result<()> {
        let next = message.offset().checked_add(1).ok_or(KafkaError::Config {
            setting: "offset".to_owned(),
            problem: format!("offset {} has no successor", message.offset()),
        })?;
        let mut list = TopicPartitionList::with_capacity(1);
        list.add_partition_offset(message.topic(), message.partition(), Offset::Offset(next))
            .map_err(KafkaError::client("commit"))?;
        self.inner
            .commit(&list, CommitMode::Sync)
            .map_err(KafkaError::client("commit"))
    }

    /// The group's committed offset for `topic`/`partition` (the next offset it will read),
    /// or `None` when the group committed none.
    pub fn committed_offset(
        &self,
        topic: &str,
        partition: i32,
        timeout: Duration,
    ) -> Result<Option<i64>> {
        let mut list = TopicPartitionList::with_capacity(1);
        list.add_partition(topic, partition);
        let answer = self
            .inner
            .committed_offsets(list, timeout)
            .map_err(KafkaError::client("read the committed offsets"))?;
        let offset = answer
            .find_partition(topic, partition)
            .map(|element| element.offset());
        Ok(match offset {
            Some(Offset::Offset(n)) => Some(n),
            _ => None,
        })
    }
}
