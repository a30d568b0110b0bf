//! Shared helpers for the tests against a real broker.

#![allow(dead_code, unreachable_pub)]

use cqrs_kafka::testing::TestBroker;

/// The test broker (`KAFKA_BOOTSTRAP_SERVERS`). Fails the test, saying how to get one, when
/// the variable is unset: these tests skip nothing.
pub fn broker() -> TestBroker {
    match TestBroker::from_env() {
        Ok(broker) => broker,
        Err(e) => panic!(
            "{e}. These tests need a real Kafka broker: run scripts/test.sh, or \
             `scripts/kafka.sh start` and export the KAFKA_BOOTSTRAP_SERVERS=... line it prints"
        ),
    }
}
