//! What a consumer of the event bus needs that does not depend on the bus itself: the store of
//! its dead letters ([`BusDeadLetterStore`]), which the in-memory store and `cqrs-postgres`
//! implement, so a Kafka consumer (in `cqrs-kafka`) parks messages in the service's own
//! database without this crate or the database crate knowing Kafka.
//!
//! A bus message is named by its topic, partition and offset ([`MessageId`]); a message that
//! can never be handled is parked whole ([`BusLetter`]: key, headers, payload and the error),
//! and every later message with the same key ([`ParkedKey`]) is parked behind it, so each key
//! keeps its order. Operators ask for letters to be retried or skipped with the same
//! [`Redrive`](crate::projection::Redrive) requests as projection letters.

mod dead_letter;

#[doc(inline)]
pub use dead_letter::{BusDeadLetterStore, BusLetter, BusLetterTarget, MessageId, ParkedKey};
