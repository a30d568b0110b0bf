//! [`IntegrationHandler`]: what a service writes to turn messages into effects, and
//! [`HandleError`]: how it says a message failed.

use async_trait::async_trait;
use cqrs_core::{BoxError, CommandError, ErrorKind};

use super::Incoming;

/// Turns integration events from the bus into this service's effects.
///
/// ```
/// use async_trait::async_trait;
/// use cqrs_kafka::consume::{HandleError, Incoming, IntegrationHandler};
/// use cqrs_kafka::IntegrationEvent;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct OrderPlaced {
///     order_id: String,
/// }
/// impl IntegrationEvent for OrderPlaced {
///     const TYPE: &'static str = "shop.order.placed.v1";
/// }
///
/// struct Billing;
///
/// #[async_trait]
/// impl IntegrationHandler for Billing {
///     fn event_types(&self) -> Vec<&'static str> {
///         vec![OrderPlaced::TYPE]
///     }
///     async fn handle(&self, incoming: &Incoming) -> Result<(), HandleError> {
///         let placed: OrderPlaced = incoming.data()?; // a body that does not decode is poison
///         let _context = incoming.command_context("open-invoice");
///         // repository.execute_with(&placed.order_id, &command, context).await?;
///         # let _ = placed.order_id;
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait IntegrationHandler: Send + Sync + 'static {
    /// The integration event types (`ce_type`) it handles; a message of any other type is
    /// poison (parked as unknown).
    fn event_types(&self) -> Vec<&'static str>;

    /// Turns one message into its effect: commands on this service's aggregates, with the
    /// context of [`Incoming::command_context`] so a redelivered message changes nothing. Must
    /// return only once the effect is durable: the message's offset is committed after it.
    async fn handle(&self, incoming: &Incoming) -> Result<(), HandleError>;

    /// Told that `incoming` can never be handled and is about to be parked, and why (the
    /// handler's poison, an unknown type, a key held back behind a parked message), before it
    /// is: a crash in between tells it again. Not called when the consumer stops instead.
    /// Default: nothing. A request / reply target tells the sender here
    /// ([`CommandConsumer`](crate::remote::CommandConsumer)). A transient error is tried again
    /// with backoff, five times in all; then, or on any other error, it is logged and the
    /// message is parked all the same (a sender's topic that is gone must not hold the
    /// partition).
    async fn parking(&self, incoming: &Incoming, reason: &str) -> Result<(), HandleError> {
        let _ = (incoming, reason);
        Ok(())
    }
}

/// Why a message was not handled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandleError {
    /// Trying again later may succeed (a store unreachable or failing, a conflict that
    /// outlived its retries): the consumer retries with backoff behind its circuit breaker,
    /// and the partition waits.
    #[error("the message could not be handled yet: {0}")]
    Transient(#[source] BoxError),
    /// The message can never be handled (a body that does not decode, a command the
    /// aggregate refuses for good): parked or the consumer stops, by its poison policy.
    #[error("the message can never be handled: {0}")]
    Poison(String),
}

impl HandleError {
    /// A transient failure caused by `error`.
    pub fn transient(error: impl Into<BoxError>) -> Self {
        HandleError::Transient(error.into())
    }

    /// A message that can never be handled, for `reason`.
    pub fn poison(reason: impl std::fmt::Display) -> Self {
        HandleError::Poison(reason.to_string())
    }

    /// Whether a retry may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, HandleError::Transient(_))
    }
}

/// A store error is poison when it is about the message: bad input, undecodable data. Any
/// other is transient: the store unavailable, writers that kept conflicting, or a store that
/// fails whatever it is sent (one left behind by a restore, a grant gone missing), which is
/// not the message's fault. Parked, every message would be parked until an operator fixed
/// the store, then each re-driven; retried, the partition waits, the status says why, and it
/// goes on once the store is fixed.
impl From<cqrs_core::Error> for HandleError {
    fn from(error: cqrs_core::Error) -> Self {
        match error.kind() {
            ErrorKind::InvalidInput | ErrorKind::Data => HandleError::Poison(error.to_string()),
            _ => HandleError::Transient(Box::new(error)),
        }
    }
}

/// A rejection by the aggregate is poison (the same command is refused again); a store error
/// is classified as [`From<cqrs_core::Error>`](#impl-From<Error>-for-HandleError) does. A
/// handler that treats a rejection as a normal outcome matches on the result instead.
impl<E: std::error::Error + 'static> From<CommandError<E>> for HandleError {
    fn from(error: CommandError<E>) -> Self {
        match error {
            CommandError::Rejected(rejection) => {
                HandleError::Poison(format!("the command was rejected: {rejection}"))
            }
            CommandError::Store(error) => error.into(),
            other => HandleError::Poison(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_are_transient_only_when_a_retry_can_help() {
        assert!(HandleError::from(cqrs_core::Error::unavailable("down")).is_transient());
        assert!(!HandleError::from(cqrs_core::Error::EmptyAppend).is_transient());
        let poison = HandleError::poison("bad amount");
        assert_eq!(
            poison.to_string(),
            "the message can never be handled: bad amount"
        );
    }

    #[test]
    fn a_store_that_fails_is_retried_not_taken_for_a_bad_message() {
        // A store that refuses every write (a restore that left it behind, a grant that went
        // missing) is not the message's fault: parking would park every message until an
        // operator fixed it, then each would have to be re-driven. Retried, the partition
        // waits, the status shows why, and it goes on once fixed.
        assert!(HandleError::from(cqrs_core::Error::backend("permission denied")).is_transient());
        let data = cqrs_core::Error::process("billing", "an invoice without lines");
        assert!(!HandleError::from(data).is_transient());
    }
}
