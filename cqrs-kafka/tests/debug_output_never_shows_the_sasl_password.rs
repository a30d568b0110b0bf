//! A configuration, its credentials and the clients made from it print no password.

use cqrs_kafka::{KafkaConfig, KafkaProducer, Sasl, SaslMechanism};

#[test]
fn debug_output_never_shows_the_sasl_password() {
    let config = KafkaConfig::new("127.0.0.1:1")
        .expect("a valid list")
        .with_sasl(Sasl::new(SaslMechanism::ScramSha256, "orders", "pa55-w0rd"))
        .with_setting("sasl.oauthbearer.client.secret", "t0ken");
    let printed = format!("{config:?} {config:#?}");
    assert!(!printed.contains("pa55-w0rd"), "{printed}");
    assert!(!printed.contains("t0ken"), "{printed}");
    assert!(printed.contains("orders"), "{printed}");

    // A producer connects lazily: made with a SASL PLAIN login, it prints none of it.
    let plain = KafkaConfig::new("127.0.0.1:1")
        .expect("a valid list")
        .with_sasl(Sasl::plain("orders", "pa55-w0rd"));
    let producer = KafkaProducer::new(&plain).expect("producer");
    assert!(!format!("{producer:?}").contains("pa55-w0rd"));
}

#[test]
fn a_missing_or_malformed_bootstrap_list_is_a_typed_error_naming_the_variable() {
    let err = KafkaConfig::new("localhost").expect_err("no port");
    assert!(matches!(err, cqrs_kafka::KafkaError::Config { .. }));
    assert!(!err.is_transient());
    let text = err.to_string();
    assert!(
        text.contains("KAFKA_BOOTSTRAP_SERVERS") && text.contains("no port"),
        "{text}"
    );
}
