//! An error can echo what it failed on: a message's bytes, a key or an event type read from a
//! Kafka record, JSON with `\u0000` stored as `json`. PostgreSQL's `text` refuses the NUL
//! character, and a letter that cannot be parked stops the runner or consumer that must park
//! it before it moves on, at every restart. Both kinds of letters are parked with each NUL of
//! their error shown as `\0`, and their redrive failures too; so is the error a runner records
//! with its open breaker.

mod support;

use cqrs_core::bus::{BusDeadLetterStore, BusLetter, MessageId};
use cqrs_core::projection::{DeadLetterStore, LetterTarget, Redrive};
use cqrs_core::{backend, Position, StreamId, Version};

#[tokio::test]
async fn a_letter_whose_error_holds_a_nul_is_parked_with_it_shown() {
    let store = support::store().await;
    let position = Position::from_parts(7, 1);

    store
        .park(backend::dead_letter(
            "read-model",
            position,
            StreamId::new("dl-1").expect("id"),
            Version::new(1),
            "Broken",
            None,
            "unknown variant `a\0b`",
            time::OffsetDateTime::now_utc(),
        ))
        .await
        .expect("the projection's letter is parked");
    store
        .park_message(BusLetter::new(
            "billing",
            MessageId::new("orders", 0, 9),
            "held back: key \0\0\0\u{7}",
        ))
        .await
        .expect("the consumer's letter is parked");

    let letters = store
        .dead_letters("read-model", Position::START, 10)
        .await
        .expect("read");
    assert_eq!(letters[0].error, "unknown variant `a\\0b`");
    let messages = store
        .parked_messages("billing", None, 10)
        .await
        .expect("read");
    assert_eq!(messages[0].error, "held back: key \\0\\0\\0\u{7}");

    // A redrive that fails again records its error the same way.
    store
        .request(
            "read-model",
            &LetterTarget::Position(position),
            Some(Redrive::Retry),
        )
        .await
        .expect("request");
    store
        .redrive_failed("read-model", position, "again \0")
        .await
        .expect("the projection's redrive failure is recorded");
    store
        .message_redrive_failed("billing", &MessageId::new("orders", 0, 9), "again \0")
        .await
        .expect("the consumer's redrive failure is recorded");
    let letters = store
        .dead_letters("read-model", Position::START, 10)
        .await
        .expect("read");
    assert_eq!(letters[0].error, "again \\0");
}

#[tokio::test]
async fn a_breaker_whose_error_holds_a_nul_is_recorded_with_it_shown() {
    use cqrs_core::projection::{BreakerRecord, BreakerState};
    use cqrs_core::CheckpointStore;

    let store = support::store().await;
    let record = BreakerRecord::new(BreakerState::Open, Some("the node said `a\0b`".to_owned()));
    store
        .record_breaker("read-model", &record)
        .await
        .expect("the breaker is recorded");
    let shown: Option<String> = sqlx::query_scalar(&format!(
        "SELECT last_error FROM {}.breakers WHERE name = 'read-model'",
        store.schema().as_str()
    ))
    .fetch_one(store.pool())
    .await
    .expect("the breaker's row");
    assert_eq!(shown.as_deref(), Some("the node said `a\\0b`"));
}
