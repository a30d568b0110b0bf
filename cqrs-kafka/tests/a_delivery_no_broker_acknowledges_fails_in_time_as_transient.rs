//! A message no broker acknowledges fails once its delivery timeout passes, with a typed error
//! that says a retry may help and names the topic. Needs no broker: it talks to a closed port.

use std::time::{Duration, Instant};

use cqrs_kafka::{KafkaConfig, KafkaError, KafkaProducer, ProducerOptions, Record};

#[tokio::test]
async fn a_delivery_no_broker_acknowledges_fails_in_time_as_transient() {
    let config = KafkaConfig::new("127.0.0.1:1").expect("a valid list");
    let options = ProducerOptions::default().delivery_timeout(Duration::from_secs(2));
    let producer = KafkaProducer::with_options(&config, options).expect("producer");
    let started = Instant::now();
    let record = Record::new("nowhere", "key", b"{}".to_vec()).with_header("ce_id", "1");
    let outcome = tokio::time::timeout(Duration::from_secs(30), producer.send(&record))
        .await
        .expect("the delivery timeout ends the send");
    let err = outcome.expect_err("no broker, no acknowledgement");
    assert!(matches!(err, KafkaError::Delivery { .. }), "{err:?}");
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("nowhere"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}
