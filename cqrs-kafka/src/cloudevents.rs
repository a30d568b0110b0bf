//! [`CloudEvent`]: the CloudEvents 1.0 attributes of a bus message, in Kafka headers (the
//! protocol binding's binary mode: the body is the event's data, the attributes are `ce_`
//! headers).
//!
//! The publisher writes them, consumers read them back; both go through this one module.
//!
//! | header | value |
//! |---|---|
//! | `ce_specversion` | `1.0` |
//! | `ce_id` | the domain event's id: what consumers deduplicate on |
//! | `ce_source` | the publishing service (`/services/orders`) |
//! | `ce_type` | the integration contract's versioned type (`shop.order.placed.v1`) |
//! | `ce_subject` | the stream id (also the message key) |
//! | `ce_time` | when the event was recorded, RFC 3339 |
//! | `ce_dataschema` | the contract's schema URI, when it has one |
//! | `ce_sequence` | the event's version in its stream |
//! | `ce_correlationid`, `ce_causationid` | from the event's metadata |
//! | `traceparent` | the W3C trace context from the event's metadata |
//! | `content-type` | `application/json` |

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Received, Record};

/// `ce_specversion`.
pub const SPECVERSION: &str = "ce_specversion";
/// `ce_id`.
pub const ID: &str = "ce_id";
/// `ce_source`.
pub const SOURCE: &str = "ce_source";
/// `ce_type`.
pub const TYPE: &str = "ce_type";
/// `ce_subject`.
pub const SUBJECT: &str = "ce_subject";
/// `ce_time`.
pub const TIME: &str = "ce_time";
/// `ce_dataschema`.
pub const DATASCHEMA: &str = "ce_dataschema";
/// `ce_sequence`.
pub const SEQUENCE: &str = "ce_sequence";
/// `ce_correlationid` (an extension attribute).
pub const CORRELATION_ID: &str = "ce_correlationid";
/// `ce_causationid` (an extension attribute).
pub const CAUSATION_ID: &str = "ce_causationid";
/// `traceparent` (W3C trace context; same name as `cqrs_core::telemetry::TRACEPARENT`).
pub const TRACEPARENT: &str = "traceparent";
/// `content-type`.
pub const CONTENT_TYPE: &str = "content-type";
/// The only spec version written and accepted.
pub const SPEC_1_0: &str = "1.0";
/// The body's content type.
pub const JSON: &str = "application/json";

/// The CloudEvents attributes of one message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CloudEvent {
    /// `ce_id`: the domain event's id.
    pub id: Uuid,
    /// `ce_source`: the publishing service.
    pub source: String,
    /// `ce_type`: the contract's versioned type.
    pub event_type: String,
    /// `ce_subject`: the stream id.
    pub subject: Option<String>,
    /// `ce_time`: when the event was recorded.
    pub time: Option<OffsetDateTime>,
    /// `ce_dataschema`.
    pub dataschema: Option<String>,
    /// `ce_sequence`: the event's version in its stream.
    pub sequence: Option<u64>,
    /// `ce_correlationid`.
    pub correlation_id: Option<Uuid>,
    /// `ce_causationid`.
    pub causation_id: Option<Uuid>,
    /// `traceparent`.
    pub traceparent: Option<String>,
}

/// Why a message's headers are not a CloudEvent this crate accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CloudEventError {
    /// A required attribute is missing.
    #[error("the message has no {0} header")]
    Missing(&'static str),
    /// An attribute is not valid (not UTF-8, not a UUID, not RFC 3339...).
    #[error("the message's {header} header is not valid: {reason}")]
    Invalid {
        /// The header.
        header: &'static str,
        /// Why.
        reason: String,
    },
    /// Some of the message's header names are not UTF-8: this client cannot read them, so it
    /// cannot tell what they say.
    #[error("{0} of the message's header names are not UTF-8")]
    UnreadableHeaderNames(usize),
    /// `ce_specversion` is not `1.0`.
    #[error("cloudevents spec version {0} is not supported (only 1.0)")]
    SpecVersion(String),
}

impl CloudEvent {
    /// The attributes a message needs: id, source and type; the others unset.
    pub fn new(id: Uuid, source: impl Into<String>, event_type: impl Into<String>) -> Self {
        Self {
            id,
            source: source.into(),
            event_type: event_type.into(),
            subject: None,
            time: None,
            dataschema: None,
            sequence: None,
            correlation_id: None,
            causation_id: None,
            traceparent: None,
        }
    }

    /// Adds the attributes to `record` as headers (with `content-type: application/json`).
    pub fn write(&self, record: Record) -> Record {
        let mut record = record
            .with_header(SPECVERSION, SPEC_1_0)
            .with_header(ID, self.id.to_string())
            .with_header(SOURCE, self.source.as_str())
            .with_header(TYPE, self.event_type.as_str())
            .with_header(CONTENT_TYPE, JSON);
        if let Some(subject) = &self.subject {
            record = record.with_header(SUBJECT, subject.as_str());
        }
        if let Some(time) = self.time.and_then(|t| t.format(&Rfc3339).ok()) {
            record = record.with_header(TIME, time);
        }
        if let Some(schema) = &self.dataschema {
            record = record.with_header(DATASCHEMA, schema.as_str());
        }
        if let Some(sequence) = self.sequence {
            record = record.with_header(SEQUENCE, sequence.to_string());
        }
        if let Some(id) = self.correlation_id {
            record = record.with_header(CORRELATION_ID, id.to_string());
        }
        if let Some(id) = self.causation_id {
            record = record.with_header(CAUSATION_ID, id.to_string());
        }
        if let Some(parent) = &self.traceparent {
            record = record.with_header(TRACEPARENT, parent.as_str());
        }
        record
    }

    /// Reads the attributes of a received message. Optional attributes that are present but
    /// malformed are errors too: a consumer parks such a message rather than guess.
    pub fn read(message: &Received) -> Result<Self, CloudEventError> {
        if message.unreadable_headers() > 0 {
            return Err(CloudEventError::UnreadableHeaderNames(
                message.unreadable_headers(),
            ));
        }
        let spec = text(message, SPECVERSION)?.ok_or(CloudEventError::Missing(SPECVERSION))?;
        if spec != SPEC_1_0 {
            return Err(CloudEventError::SpecVersion(spec.to_owned()));
        }
        let id = uuid(message, ID)?.ok_or(CloudEventError::Missing(ID))?;
        let source = text(message, SOURCE)?.ok_or(CloudEventError::Missing(SOURCE))?;
        let event_type = text(message, TYPE)?.ok_or(CloudEventError::Missing(TYPE))?;
        let time = match text(message, TIME)? {
            Some(t) => Some(OffsetDateTime::parse(t, &Rfc3339).map_err(|e| invalid(TIME, e))?),
            None => None,
        };
        let sequence = match text(message, SEQUENCE)? {
            Some(s) => Some(s.parse::<u64>().map_err(|e| invalid(SEQUENCE, e))?),
            None => None,
        };
        Ok(Self {
            id,
            source: source.to_owned(),
            event_type: event_type.to_owned(),
            subject: text(message, SUBJECT)?.map(str::to_owned),
            time,
            dataschema: text(message, DATASCHEMA)?.map(str::to_owned),
            sequence,
            correlation_id: uuid(message, CORRELATION_ID)?,
            causation_id: uuid(message, CAUSATION_ID)?,
            traceparent: text(message, TRACEPARENT)?.map(str::to_owned),
        })
    }
}

fn invalid(header: &'static str, error: impl std::fmt::Display) -> CloudEventError {
    CloudEventError::Invalid {
        header,
        reason: error.to_string(),
    }
}

fn text<'m>(
    message: &'m Received,
    header: &'static str,
) -> Result<Option<&'m str>, CloudEventError> {
    message
        .header(header)
        .map(|bytes| std::str::from_utf8(bytes).map_err(|e| invalid(header, e)))
        .transpose()
}

fn uuid(message: &Received, header: &'static str) -> Result<Option<Uuid>, CloudEventError> {
    text(message, header)?
        .map(|s| Uuid::parse_str(s).map_err(|e| invalid(header, e)))
        .transpose()
}
