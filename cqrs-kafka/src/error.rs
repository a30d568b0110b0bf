//! The crate's error type, [`KafkaError`], and how it is classified
//! ([`KafkaError::is_transient`]).
//!
//! Every message is whole on its own: a variant that wraps a cause ends with the cause's text
//! (its `source()` still returns the cause). No message shows a password: the configuration
//! errors name the setting, never a secret's value.

use std::time::Duration;

use rdkafka::error::{KafkaError as ClientError, RDKafkaErrorCode};

/// The crate's result type.
pub type Result<T, E = KafkaError> = std::result::Result<T, E>;

/// Everything that can go wrong talking to Kafka.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KafkaError {
    /// The configuration is unusable: a variable unset, a bootstrap list that does not parse.
    /// Found before any connection.
    #[error("invalid kafka configuration: {setting}: {problem}")]
    Config {
        /// The variable or setting at fault (`KAFKA_BOOTSTRAP_SERVERS`, `sasl.username`, ...).
        setting: String,
        /// What is wrong with it, and how to write it.
        problem: String,
    },
    /// The client (librdkafka) refused or failed an operation.
    #[error("{operation} failed: {source}")]
    Client {
        /// What was asked (`"create the producer"`, `"commit"`, ...).
        operation: &'static str,
        /// The client's error.
        #[source]
        source: ClientError,
    },
    /// A message was not acknowledged by the broker (it may or may not be written; an
    /// idempotent producer writes it at most once).
    #[error("message to {topic} not delivered: {source}")]
    Delivery {
        /// The message's topic.
        topic: String,
        /// The client's error.
        #[source]
        source: ClientError,
    },
    /// The producer was dropped before the message's delivery was reported.
    #[error(
        "message to {topic} not delivered: the producer was dropped before the broker answered"
    )]
    DeliveryCanceled {
        /// The message's topic.
        topic: String,
    },
    /// An administrative operation failed for one topic.
    #[error("{operation} topic {topic} failed: {code}")]
    Topic {
        /// `"create"` or `"delete"`.
        operation: &'static str,
        /// The topic.
        topic: String,
        /// The broker's or client's error code.
        code: RDKafkaErrorCode,
    },
    /// Nothing arrived, or no answer came, within the time allowed.
    #[error("{operation} timed out after {after:?}")]
    Timeout {
        /// What was waited for.
        operation: &'static str,
        /// How long.
        after: Duration,
    },
}

impl KafkaError {
    /// The client's error code, when the cause carries one.
    pub fn code(&self) -> Option<RDKafkaErrorCode> {
        match self {
            KafkaError::Client { source, .. } | KafkaError::Delivery { source, .. } => {
                source.rdkafka_error_code()
            }
            KafkaError::Topic { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether trying again later can succeed: the broker unreachable or busy, a timeout, a
    /// full local queue, a topic not created yet or not granted to this client. Configuration
    /// errors, refusals of the message (an invalid topic name, a message too large) and fatal
    /// producer errors are not.
    pub fn is_transient(&self) -> bool {
        match self {
            KafkaError::Timeout { .. } => true,
            KafkaError::Config { .. } | KafkaError::DeliveryCanceled { .. } => false,
            _ => self.code().is_some_and(is_transient_code),
        }
    }
}

fn is_transient_code(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        C::BrokerTransportFailure
            | C::AllBrokersDown
            | C::Resolve
            | C::QueueFull
            | C::MessageTimedOut
            | C::OperationTimedOut
            | C::RequestTimedOut
            | C::TimedOutQueue
            | C::LeaderNotAvailable
            | C::NotLeaderForPartition
            | C::NotEnoughReplicas
            | C::NotEnoughReplicasAfterAppend
            | C::NotCoordinator
            | C::CoordinatorNotAvailable
            | C::CoordinatorLoadInProgress
            | C::NetworkException
            | C::UnknownTopicOrPartition
            // The client's own word for the same, once it has learnt it (a topic not created
            // yet is for an operator to create).
            | C::UnknownTopic
            | C::UnknownPartition
            // A grant an operator gives: nothing about the message.
            | C::TopicAuthorizationFailed
            | C::RebalanceInProgress
            | C::KafkaStorageError
            | C::FencedLeaderEpoch
            | C::UnknownLeaderEpoch
            | C::OffsetNotAvailable
            | C::PreferredLeaderNotAvailable
            | C::ThrottlingQuotaExceeded
            | C::NoOffset
    )
}

impl KafkaError {
    /// The error of `operation` from the client's. A setting the client refused becomes a
    /// [`KafkaError::Config`] naming the setting: the client's own error carries the value as
    /// given, which may be a password.
    pub(crate) fn client(operation: &'static str) -> impl FnOnce(ClientError) -> KafkaError {
        move |source| match source {
            ClientError::ClientConfig(_, problem, setting, value) => KafkaError::Config {
                problem: without_value(&problem, &value),
                setting,
            },
            source => KafkaError::Client { operation, source },
        }
    }
}

/// The client's description of a refused setting, without the value: librdkafka quotes a
/// value it shows; a value of at least four characters is taken out wherever it appears.
fn without_value(problem: &str, value: &str) -> String {
    if value.is_empty() {
        return problem.to_owned();
    }
    let problem = problem.replace(&format!("\"{value}\""), "\"****\"");
    if value.chars().count() >= 4 {
        problem.replace(value, "****")
    } else {
        problem
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::error::KafkaError as ClientError;

    use super::*;

    #[test]
    fn a_topic_this_client_may_not_use_is_transient_for_every_client() {
        // A missing grant is an operator's to fix, not a message's fault: the publisher, a
        // dispatcher and a consumer all wait for it rather than park what they carry.
        let error = KafkaError::Delivery {
            topic: "t".to_owned(),
            source: ClientError::MessageProduction(RDKafkaErrorCode::TopicAuthorizationFailed),
        };
        assert!(error.is_transient());
    }

    #[test]
    fn a_missing_topic_is_transient_on_every_try_not_only_the_first() {
        // librdkafka fails the messages queued before it learns the topic is missing with the
        // broker's code, then every later one at once with its own (until its next metadata
        // refresh): a dispatcher retrying must see the same class both times.
        use RDKafkaErrorCode as C;
        for code in [
            C::UnknownTopicOrPartition,
            C::UnknownTopic,
            C::UnknownPartition,
        ] {
            let error = KafkaError::Delivery {
                topic: "t".to_owned(),
                source: ClientError::MessageProduction(code),
            };
            assert!(error.is_transient(), "{code:?}");
        }
    }
}
