//! Committing what was handled: one synchronous commit of several partitions' offsets, used
//! by the interval commits, the revoke callback and the shutdown.

use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext};
use rdkafka::{Offset, TopicPartitionList};

use super::status::Tp;
use crate::{KafkaError, Result};

/// Commits `offsets` (each the next offset to read) and waits for the coordinator's answer.
pub(crate) fn commit_offsets<C, K>(consumer: &K, offsets: &[(Tp, i64)]) -> Result<()>
where
    C: ConsumerContext,
    K: Consumer<C> + ?Sized,
{
    if offsets.is_empty() {
        return Ok(());
    }
    let mut list = TopicPartitionList::with_capacity(offsets.len());
    for ((topic, partition), next) in offsets {
        list.add_partition_offset(topic, *partition, Offset::Offset(*next))
            .map_err(KafkaError::client("commit"))?;
    }
    consumer
        .commit(&list, CommitMode::Sync)
        .map_err(KafkaError::client("commit"))
}
