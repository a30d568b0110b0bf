//! Messages: a [`Record`] to send, a [`Received`] message.

use std::panic::{catch_unwind, AssertUnwindSafe};

use rdkafka::message::{BorrowedHeaders, BorrowedMessage, Headers, Message};

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

/// A header of a received message: its name and its value, if it has one.
type ReceivedHeader = (String, Option<Vec<u8>>);

/// A message read from a topic, copied out of the client's buffers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    topic: String,
    partition: i32,
    offset: i64,
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    headers: Vec<ReceivedHeader>,
    unreadable_headers: usize,
    /// The bytes it holds, counted once: the consumer's bulkhead reads it twice per message.
    size: usize,
}

impl Received {
    pub(crate) fn copy_of(message: &BorrowedMessage<'_>) -> Self {
        let (headers, unreadable_headers) = message.headers().map_or_else(Default::default, read);
        let mut received = Self::from_parts(
            message.topic().to_owned(),
            message.partition(),
            message.offset(),
            message.key().map(<[u8]>::to_vec),
            message.payload().map(<[u8]>::to_vec),
            headers,
        );
        received.unreadable_headers = unreadable_headers;
        received
    }

    /// A message rebuilt from its parts (a parked message handled again).
    pub(crate) fn from_parts(
        topic: String,
        partition: i32,
        offset: i64,
        key: Option<Vec<u8>>,
        payload: Option<Vec<u8>>,
        headers: Vec<ReceivedHeader>,
    ) -> Self {
        let bytes = |data: &Option<Vec<u8>>| data.as_ref().map_or(0, Vec::len);
        let size = bytes(&key)
            + bytes(&payload)
            + headers
                .iter()
                .map(|(name, value)| name.len() + bytes(value))
                .sum::<usize>();
        Self {
            topic,
            partition,
            offset,
            key,
            payload,
            headers,
            unreadable_headers: 0,
            size,
        }
    }

    /// How many of its headers have a name this client cannot read (not UTF-8): they are not
    /// among [`headers`](Self::headers).
    pub fn unreadable_headers(&self) -> usize {
        self.unreadable_headers
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

    /// The bytes it holds: key, payload, header names and values.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// The value of the first header named `name` that has one.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .find_map(|(_, v)| v.as_deref())
    }
}

/// The headers whose names can be read, in order, and how many cannot. Kafka header names are
/// bytes, and a client in another language may send one that is not UTF-8; rdkafka (0.39)
/// reads every name as `&str` and panics on such a name, which would end the task reading the
/// partition, so each header is read apart and a panic counts it as unreadable (the default
/// panic hook still prints it). A service built with `panic = "abort"` still dies on such a
/// header: rdkafka's safe API gives no other way to read a name, and its raw one needs
/// `unsafe`, which this workspace forbids.
fn read(headers: &BorrowedHeaders) -> (Vec<ReceivedHeader>, usize) {
    let count = headers.count();
    let mut readable = Vec::with_capacity(count);
    for index in 0..count {
        if let Ok(Some(header)) = catch_unwind(AssertUnwindSafe(|| headers.try_get(index))) {
            readable.push((header.key.to_owned(), header.value.map(<[u8]>::to_vec)));
        }
    }
    let unreadable = count - readable.len();
    (readable, unreadable)
}
