//! Event-bus dead letters: [`BusLetterView`], a message a consumer parked.

use cqrs_core::bus::{BusLetter, MessageId};
use cqrs_core::projection::Redrive;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::RedriveRequest;

/// One message an event-bus consumer parked. Keys, header values and payloads are bytes on
/// the bus: shown as text (invalid UTF-8 replaced).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BusLetterView {
    /// The consumer that parked it.
    pub consumer: String,
    /// The message: `topic/partition/offset`.
    pub message: String,
    /// Its topic.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its key, as text.
    pub key: Option<String>,
    /// Its headers, values as text.
    pub headers: Vec<(String, Option<String>)>,
    /// Its payload, as text.
    pub payload: Option<String>,
    /// Why it was parked.
    pub error: String,
    /// When it was parked.
    #[serde(with = "time::serde::rfc3339")]
    pub parked_at: OffsetDateTime,
    /// A request pending on it.
    pub request: Option<RedriveRequest>,
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl From<&BusLetter> for BusLetterView {
    fn from(letter: &BusLetter) -> Self {
        let m = &letter.message;
        Self {
            consumer: letter.consumer.clone(),
            message: message_text(m),
            topic: m.topic.clone(),
            partition: m.partition,
            offset: m.offset,
            key: letter.key.as_deref().map(text),
            headers: letter
                .headers
                .iter()
                .map(|(name, value)| (name.clone(), value.as_deref().map(text)))
                .collect(),
            payload: letter.payload.as_deref().map(text),
            error: letter.error.clone(),
            parked_at: letter.parked_at,
            request: letter.request.map(|r| match r {
                Redrive::Retry => RedriveRequest::Retry,
                Redrive::Skip => RedriveRequest::Skip,
            }),
        }
    }
}

/// `topic/partition/offset`.
pub(crate) fn message_text(m: &MessageId) -> String {
    format!("{}/{}/{}", m.topic, m.partition, m.offset)
}

/// A message written `topic/partition/offset` (the topic may hold `/`).
pub(crate) fn parse_message(text: &str) -> Option<MessageId> {
    let (rest, offset) = text.rsplit_once('/')?;
    let (topic, partition) = rest.rsplit_once('/')?;
    if topic.is_empty() {
        return None;
    }
    Some(MessageId::new(
        topic,
        partition.parse().ok()?,
        offset.parse().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_reads_back_as_written_and_a_bad_one_is_refused() {
        let m = parse_message("orders.v1/3/1200").expect("parses");
        assert_eq!(message_text(&m), "orders.v1/3/1200");
        assert_eq!(
            parse_message("a/b/c/0/7").map(|m| m.topic),
            Some("a/b/c".to_owned())
        );
        assert!(parse_message("orders/x/1").is_none());
        assert!(parse_message("/1/2").is_none());
        assert!(parse_message("12").is_none());
    }
}
