//! Messages: a [`Record`] to send, a [`Received`] message.

use std::panic::{catch_unwind, AssertUnwindSafe};

use cqrs_core::bus::BusLetter;
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

/// The header a parked message's dead letter ends with when some of the message's header names
/// were not UTF-8: how many (those headers themselves cannot be kept). Shown with the letter's
/// headers; a retry reads it back and refuses the message again.
pub const UNREADABLE_HEADERS: &str = "cqrs-unreadable-headers";

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

    /// Its headers as its dead letter keeps them: when some names could not be read, a last
    /// header [`UNREADABLE_HEADERS`] says how many, for a retry to refuse it as it was refused.
    pub(crate) fn parked_headers(&self) -> Vec<ReceivedHeader> {
        let mut headers = self.headers.clone();
        if self.unreadable_headers > 0 {
            headers.push((
                UNREADABLE_HEADERS.to_owned(),
                Some(self.unreadable_headers.to_string().into_bytes()),
            ));
        }
        headers
    }

    /// A parked message rebuilt from its letter, to be handled again: as it arrived, headers
    /// it lost counted again ([`parked_headers`](Self::parked_headers)).
    pub(crate) fn from_letter(letter: &BusLetter) -> Self {
        let mut headers = letter.headers.clone();
        // Only as the last header, where parking puts it: a message may carry one of that name
        // itself, anywhere.
        let lost = match headers.last() {
            Some((name, _)) if name == UNREADABLE_HEADERS => headers.pop(),
            _ => None,
        };
        let mut message = Self::from_parts(
            letter.message.topic.clone(),
            letter.message.partition,
            letter.message.offset,
            letter.key.clone(),
            letter.payload.clone(),
            headers,
        );
        if let Some((_, count)) = lost {
            // Whatever it says, something was lost: at least one.
            let count = count
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .and_then(|text| text.parse::<usize>().ok());
            message.unreadable_headers = count.unwrap_or(1).max(1);
        }
        message
    }

    /// A message rebuilt from its parts.
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

#[cfg(test)]
mod tests {
    use cqrs_core::bus::{BusLetter, MessageId};

    use super::*;

    fn arrived(unreadable_headers: usize) -> Received {
        let mut message = Received::from_parts(
            "orders".into(),
            2,
            7,
            Some(b"order-1".to_vec()),
            Some(b"{}".to_vec()),
            vec![("ce_type".into(), Some(b"order.placed.v1".to_vec()))],
        );
        message.unreadable_headers = unreadable_headers;
        message
    }

    fn parked(message: &Received) -> BusLetter {
        BusLetter::new(
            "billing",
            MessageId::new("orders", 2, 7),
            "1 header names are not UTF-8",
        )
        .with_key(message.key().map(<[u8]>::to_vec))
        .with_headers(message.parked_headers())
        .with_payload(message.payload().map(<[u8]>::to_vec))
    }

    #[test]
    fn a_message_with_unreadable_header_names_is_retried_as_it_arrived() {
        let letter = parked(&arrived(2));
        assert!(
            letter
                .headers
                .contains(&(UNREADABLE_HEADERS.to_owned(), Some(b"2".to_vec()))),
            "the letter says what it lost: {:?}",
            letter.headers
        );

        let again = Received::from_letter(&letter);

        assert_eq!(again.unreadable_headers(), 2);
        assert_eq!(again.headers(), arrived(2).headers());
        assert_eq!(again.key(), Some(&b"order-1"[..]));
        assert_eq!((again.partition(), again.offset()), (2, 7));
    }

    #[test]
    fn a_header_of_that_name_the_message_carried_itself_is_kept_as_it_is() {
        let mut message = arrived(0);
        message
            .headers
            .insert(0, (UNREADABLE_HEADERS.to_owned(), Some(b"7".to_vec())));
        let letter = parked(&message);
        let again = Received::from_letter(&letter);
        assert_eq!(again.unreadable_headers(), 0);
        assert_eq!(again.headers(), message.headers());
    }

    #[test]
    fn a_message_whose_headers_were_all_read_is_parked_and_retried_unchanged() {
        let letter = parked(&arrived(0));
        assert_eq!(letter.headers, arrived(0).headers());
        let again = Received::from_letter(&letter);
        assert_eq!(again.unreadable_headers(), 0);
        assert_eq!(again.headers(), arrived(0).headers());
    }
}
