//! Messages: a [`Record`] to send, a [`Received`] message.

use rdkafka::message::{BorrowedMessage, Headers, Message};

/// A message to send: topic, key, payload and headers.
///
/// The key chooses the partition (the default partitioner hashes it), so messages with one
/// key keep their order.
///
/// ```
/// # use cqrs_kafka::Record;
/// let record = Record::new("orders", "order-1", br#"{"total":3}"#.to_vec())
///     .with_header("ce_type", "order.placed.v1");
/// assert_eq!(record.header("ce_type"), Some(&b"order.placed.v1"[..]));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    topic: String,
    key: Vec<u8>,
    payload: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
}

impl Record {
    /// A record for `topic` with `key` and `payload`, no headers.
    pub fn new(topic: impl Into<String>, key: impl Into<Vec<u8>>, payload: Vec<u8>) -> Self {
        Self {
            topic: topic.into(),
            key: key.into(),
            payload,
            headers: Vec::new(),
        }
    }

    /// Adds a header (a name may appear more than once; order is kept).
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The headers, in order.
    pub fn headers(&self) -> &[(String, Vec<u8>)] {
        &self.headers
    }

    /// The first header named `name`.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// A message read from a topic, copied out of the client's buffers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    topic: String,
    partition: i32,
    offset: i64,
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

impl Received {
    pub(crate) fn copy_of(message: &BorrowedMessage<'_>) -> Self {
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec),
            headers,
        }
    }

    /// A message rebuilt from its parts (a parked message handled again).
    pub(crate) fn from_parts(
        topic: String,
        partition: i32,
        offset: i64,
        key: Option<Vec<u8>>,
        payload: Option<Vec<u8>>,
        headers: Vec<(String, Option<Vec<u8>>)>,
    ) -> Self {
        Self {
            topic,
            partition,
            offset,
            key,
            payload,
            headers,
        }
    }

    /// The topic it was read from.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Its partition.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// Its offset in the partition.
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// The key, if it has one.
    pub fn key(&self) -> Option<&[u8]> {
        self.key.as_deref()
    }

    /// The payload, if it has one (a tombstone has none).
    pub fn payload(&self) -> Option<&[u8]> {
        self.payload.as_deref()
    }

    /// The headers, in order; a header may have no value.
    pub fn headers(&self) -> &[(String, Option<Vec<u8>>)] {
        &self.headers
    }

    /// The value of the first header named `name` that has one.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .find_map(|(_, v)| v.as_deref())
    }
}
