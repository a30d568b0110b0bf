//! The id rule of the consumer: the command id a message's effect is recorded under.
//!
//! `command id = UUID v5(BUS_NAMESPACE, "{consumer}\0{ce_id}\0{step}")`. The same message,
//! delivered again, derives the same id, and the repository's command-id idempotency makes the
//! second delivery change nothing. The consumer's name is part of it, so two consumers of one
//! service handling the same event derive different ids; the step, so one message may cause
//! several commands, each landing once.

use uuid::{uuid, Uuid};

/// The UUID v5 namespace of the command ids bus consumers derive (fixed forever: changing it
/// would make every redelivered message look new).
pub const BUS_NAMESPACE: Uuid = uuid!("3c0e7a9d-58b1-5f4e-a2d6-19c4b7e83f05");

/// The command id that consumer `consumer` uses for `step` of the message whose `ce_id` is
/// `message_id`.
///
/// ```
/// use cqrs_kafka::consume::derived_command_id;
/// use uuid::Uuid;
///
/// let message = Uuid::now_v7();
/// let id = derived_command_id("billing", message, "charge");
/// assert_eq!(id, derived_command_id("billing", message, "charge"), "stable");
/// assert_ne!(id, derived_command_id("shipping", message, "charge"), "per consumer");
/// assert_ne!(id, derived_command_id("billing", message, "refund"), "per step");
/// ```
pub fn derived_command_id(consumer: &str, message_id: Uuid, step: &str) -> Uuid {
    let name = format!("{consumer}\0{message_id}\0{step}");
    Uuid::new_v5(&BUS_NAMESPACE, name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parts_are_separated_so_they_cannot_slide_into_each_other() {
        let id = Uuid::nil();
        assert_ne!(
            derived_command_id("a", id, "bc"),
            derived_command_id("a\0", id, "bc"),
        );
        assert_eq!(
            derived_command_id("billing", id, "charge"),
            Uuid::new_v5(
                &BUS_NAMESPACE,
                b"billing\x0000000000-0000-0000-0000-000000000000\x00charge"
            ),
            "the documented rule, byte for byte"
        );
    }
}
