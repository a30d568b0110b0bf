//! [`BusDeadLetterStore`]: messages a bus consumer parked, whole, with their error.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::projection::Redrive;
use crate::Result;

/// Where a message is on the bus: topic, partition, offset. Letters are ordered by it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset in the partition.
    pub offset: i64,
}

impl MessageId {
    /// The message at `offset` of `topic`/`partition`.
    pub fn new(topic: impl Into<String>, partition: i32, offset: i64) -> Self {
        Self {
            topic: topic.into(),
            partition,
            offset,
        }
    }
}

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}@{}", self.topic, self.partition, self.offset)
    }
}

/// A key a consumer holds back: a message of this topic with this key was parked, so every
/// later one is parked too until the letters are re-driven or skipped.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParkedKey {
    /// The topic.
    pub topic: String,
    /// The message key (bytes: the bus does not say they are text).
    pub key: Vec<u8>,
}

impl ParkedKey {
    /// `key` in `topic`.
    pub fn new(topic: impl Into<String>, key: impl Into<Vec<u8>>) -> Self {
        Self {
            topic: topic.into(),
            key: key.into(),
        }
    }
}

/// A message a consumer parked instead of handling: the whole message (key, headers, payload),
/// so it can be handled again after the topic's retention dropped it, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BusLetter {
    /// The consumer (its group) that parked it.
    pub consumer: String,
    /// Where the message was.
    pub message: MessageId,
    /// The message key, if any: later messages with the same key are parked too.
    pub key: Option<Vec<u8>>,
    /// The headers, in order; a header may have no value.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// The payload, if any.
    pub payload: Option<Vec<u8>>,
    /// Why it was parked.
    pub error: String,
    /// When.
    pub parked_at: OffsetDateTime,
    /// What an operator asked for, until the consumer has done it.
    pub request: Option<Redrive>,
}

impl BusLetter {
    /// Whether `other` holds the same message as this letter (key, headers, payload): a
    /// consumer replaying after a crash parks the same message again, with its own error.
    pub fn is_same_message(&self, other: &BusLetter) -> bool {
        self.key == other.key && self.headers == other.headers && self.payload == other.payload
    }

    /// A letter for the message at `message`, parked by `consumer` now for `error`, with no
    /// key, headers or payload (add them with the `with_` methods).
    pub fn new(consumer: impl Into<String>, message: MessageId, error: impl Into<String>) -> Self {
        Self {
            consumer: consumer.into(),
            message,
            key: None,
            headers: Vec::new(),
            payload: None,
            error: error.into(),
            parked_at: OffsetDateTime::now_utc(),
            request: None,
        }
    }

    /// With the message's key.
    #[must_use]
    pub fn with_key(mut self, key: Option<Vec<u8>>) -> Self {
        self.key = key;
        self
    }

    /// With the message's headers.
    #[must_use]
    pub fn with_headers(mut self, headers: Vec<(String, Option<Vec<u8>>)>) -> Self {
        self.headers = headers;
        self
    }

    /// With the message's payload.
    #[must_use]
    pub fn with_payload(mut self, payload: Option<Vec<u8>>) -> Self {
        self.payload = payload;
        self
    }

    /// Parked at `at` (a store reading a letter back sets it).
    #[must_use]
    pub fn parked_at(mut self, at: OffsetDateTime) -> Self {
        self.parked_at = at;
        self
    }

    /// With an operator's request (a store reading a letter back sets it).
    #[must_use]
    pub fn with_request(mut self, request: Option<Redrive>) -> Self {
        self.request = request;
        self
    }

    /// The key this letter holds back, if the message had a key.
    pub fn parked_key(&self) -> Option<ParkedKey> {
        self.key
            .as_ref()
            .map(|key| ParkedKey::new(self.message.topic.clone(), key.clone()))
    }
}

/// Which bus letters a request is about.
///
/// Exhaustive on purpose: every store must find each target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BusLetterTarget {
    /// Every letter parked under this key.
    Key(ParkedKey),
    /// The letter of this message.
    Message(MessageId),
}

/// Keeps a bus consumer's dead letters and operators' requests on them.
///
/// The consumer parks with [`park_message`](Self::park_message) and loads the keys it holds
/// back with [`parked_message_keys`](Self::parked_message_keys) when it is given a partition;
/// operators page with [`parked_messages`](Self::parked_messages) and mark letters with
/// [`request_messages`](Self::request_messages); whoever carries a request out finds it with
/// [`requested_messages`](Self::requested_messages) and removes the letters with
/// [`take_messages`](Self::take_messages) (or keeps them with [`message_redrive_failed`](Self::message_redrive_failed)).
///
/// The method names differ from [`DeadLetterStore`](crate::projection::DeadLetterStore)'s so a
/// store can implement both and callers can import both.
#[async_trait]
pub trait BusDeadLetterStore: Send + Sync {
    /// Parks `letter`. Parking the same message for the same consumer twice keeps the first
    /// letter ([`BusLetter::is_same_message`]); another message at the same place is refused
    /// with [`Error::MessageIdReused`](crate::Error::MessageIdReused), the first kept.
    async fn park_message(&self, letter: BusLetter) -> Result<()>;

    /// A page of `consumer`'s letters in (topic, partition, offset) order: at most `limit`
    /// after `after` (`None` for the first page; the last letter's message for the next).
    async fn parked_messages(
        &self,
        consumer: &str,
        after: Option<&MessageId>,
        limit: usize,
    ) -> Result<Vec<BusLetter>>;

    /// The keys `consumer` holds back: each key with at least one letter, once.
    async fn parked_message_keys(&self, consumer: &str) -> Result<Vec<ParkedKey>>;

    /// The first `limit` letters parked under `key`, in partition and offset order.
    async fn key_messages(
        &self,
        consumer: &str,
        key: &ParkedKey,
        limit: usize,
    ) -> Result<Vec<BusLetter>>;

    /// Marks the letters `target` names with `request` (`None` withdraws it); how many.
    async fn request_messages(
        &self,
        consumer: &str,
        target: &BusLetterTarget,
        request: Option<Redrive>,
    ) -> Result<u64>;

    /// At most `limit` of `consumer`'s letters with a request, in message order.
    async fn requested_messages(&self, consumer: &str, limit: usize) -> Result<Vec<BusLetter>>;

    /// At most `limit` of `consumer`'s letters of `topic`'s `partition` with a request, in offset
    /// order: what that partition's worker carries out, whatever the other partitions' requests.
    ///
    /// The default pages through every letter of the consumer
    /// ([`parked_messages`](Self::parked_messages)), as the in-memory store does; a store over
    /// a database should read that partition's requests alone, as PostgreSQL's does.
    async fn requested_partition_messages(
        &self,
        consumer: &str,
        topic: &str,
        partition: i32,
        limit: usize,
    ) -> Result<Vec<BusLetter>> {
        const PAGE: usize = 500;
        let mut found = Vec::new();
        let mut after: Option<MessageId> = None;
        while found.len() < limit {
            let page = self.parked_messages(consumer, after.as_ref(), PAGE).await?;
            let full = page.len() == PAGE;
            after = page.last().map(|letter| letter.message.clone());
            found.extend(page.into_iter().filter(|letter| {
                letter.request.is_some()
                    && letter.message.topic == topic
                    && letter.message.partition == partition
            }));
            if !full {
                break;
            }
        }
        found.truncate(limit);
        Ok(found)
    }

    /// Removes the letters of `messages` (re-driven or skipped); how many there were.
    async fn take_messages(&self, consumer: &str, messages: &[MessageId]) -> Result<u64>;

    /// Re-driving the letter of `message` failed with `error`: it stays, with this error and
    /// without its request.
    async fn message_redrive_failed(
        &self,
        consumer: &str,
        message: &MessageId,
        error: &str,
    ) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InMemoryEventStore;

    /// A store that leaves `requested_partition_messages` to the trait's default.
    struct Plain(InMemoryEventStore);

    #[async_trait]
    impl BusDeadLetterStore for Plain {
        async fn park_message(&self, letter: BusLetter) -> Result<()> {
            self.0.park_message(letter).await
        }
        async fn parked_messages(
            &self,
            consumer: &str,
            after: Option<&MessageId>,
            limit: usize,
        ) -> Result<Vec<BusLetter>> {
            self.0.parked_messages(consumer, after, limit).await
        }
        async fn parked_message_keys(&self, consumer: &str) -> Result<Vec<ParkedKey>> {
            self.0.parked_message_keys(consumer).await
        }
        async fn key_messages(
            &self,
            consumer: &str,
            key: &ParkedKey,
            limit: usize,
        ) -> Result<Vec<BusLetter>> {
            self.0.key_messages(consumer, key, limit).await
        }
        async fn request_messages(
            &self,
            consumer: &str,
            target: &BusLetterTarget,
            request: Option<Redrive>,
        ) -> Result<u64> {
            self.0.request_messages(consumer, target, request).await
        }
        async fn requested_messages(&self, consumer: &str, limit: usize) -> Result<Vec<BusLetter>> {
            self.0.requested_messages(consumer, limit).await
        }
        async fn take_messages(&self, consumer: &str, messages: &[MessageId]) -> Result<u64> {
            self.0.take_messages(consumer, messages).await
        }
        async fn message_redrive_failed(
            &self,
            consumer: &str,
            message: &MessageId,
            error: &str,
        ) -> Result<()> {
            self.0
                .message_redrive_failed(consumer, message, error)
                .await
        }
    }

    #[tokio::test]
    async fn the_default_reads_one_partitions_requests_past_a_page_of_others() {
        let store = Plain(InMemoryEventStore::new());
        // More letters before the partition than one page of the default holds.
        let parked =
            (0..700)
                .map(|offset| ("a", 0, offset))
                .chain([("t", 1, 1), ("t", 1, 2), ("t", 1, 3)]);
        for (topic, partition, offset) in parked {
            let message = MessageId::new(topic, partition, offset);
            store
                .park_message(BusLetter::new("c", message.clone(), "poison"))
                .await
                .expect("park");
            if offset != 2 {
                let target = BusLetterTarget::Message(message);
                store
                    .request_messages("c", &target, Some(Redrive::Retry))
                    .await
                    .expect("request");
            }
        }

        let read = store
            .requested_partition_messages("c", "t", 1, 10)
            .await
            .expect("requests");
        let offsets: Vec<i64> = read.iter().map(|l| l.message.offset).collect();
        assert_eq!(offsets, [1, 3]);
        let one = store
            .requested_partition_messages("c", "a", 0, 1)
            .await
            .expect("requests");
        assert_eq!(one.len(), 1);
    }
}
