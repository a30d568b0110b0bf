//! `PgEventStore::connect` tries a first connection at once: a wrong port, host or URL fails
//! within seconds with a typed error whose message names the address and the cause, and never
//! the password. (It used to wait out the pool's 30 s and end in `PoolTimedOut`, naming
//! neither.)

use std::time::{Duration, Instant};

use cqrs_postgres::{PgError, PgEventStore};

/// Long enough for any failing connect here; the old behaviour took 30 s.
const PATIENCE: Duration = Duration::from_secs(10);

/// A port on 127.0.0.1 that nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// The error of connecting to `url`, its whole text (every cause), and how long it took.
async fn refused(url: &str) -> (PgError, String, Duration) {
    let started = Instant::now();
    let result = tokio::time::timeout(PATIENCE, PgEventStore::connect(url))
        .await
        .unwrap_or_else(|_| panic!("connect to {url:?} did not answer within {PATIENCE:?}"));
    let elapsed = started.elapsed();
    let Err(error) = result else {
        panic!("connect to {url:?} succeeded")
    };
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(" | ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    assert!(!text.contains("s3cret"), "the password shows: {text}");
    assert!(
        !format!("{error:?}").contains("s3cret"),
        "the password shows in Debug: {error:?}"
    );
    (error, text, elapsed)
}

#[tokio::test]
async fn a_closed_port_is_refused_within_seconds_naming_the_address() {
    let port = closed_port();
    let url = format!("postgres://cqrs:pg-s3cret@127.0.0.1:{port}/cqrs");
    let (error, text, elapsed) = refused(&url).await;
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}: {text}");
    let message = error.to_string();
    assert!(
        message.contains(&format!("127.0.0.1:{port}")),
        "the message names the address: {message}"
    );
    assert!(
        message.to_lowercase().contains("refused"),
        "the message names the refusal: {message}"
    );
    assert!(error.is_transient(), "a refused connection may be retried");
}

#[tokio::test]
async fn an_unknown_host_is_named_in_the_error() {
    let url = "postgres://cqrs:pg-s3cret@no-such-host.invalid:5432/cqrs";
    let (error, text, _) = refused(url).await;
    let message = error.to_string();
    assert!(
        message.contains("no-such-host.invalid:5432"),
        "the message names the address: {message} ({text})"
    );
}

#[tokio::test]
async fn a_url_without_a_scheme_or_with_a_bad_port_is_a_typed_error_without_the_password() {
    for url in [
        "localhost:9450",
        "cqrs:pg-s3cret@127.0.0.1:5432/cqrs",
        "postgres://cqrs:pg-s3cret@127.0.0.1:notaport/cqrs",
        "postgres://cqrs:pg-s3cret@127.0.0.1:5432/cqrs?sslmode=pg-s3cret",
    ] {
        let (error, text, elapsed) = refused(url).await;
        assert!(elapsed < Duration::from_secs(1), "{url}: took {elapsed:?}");
        assert!(
            matches!(error, PgError::InvalidUrl { .. }),
            "{url}: expected InvalidUrl, got {text}"
        );
    }
}

#[tokio::test]
async fn a_session_the_server_refuses_is_named_with_the_server_s_reason() {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL: a real PostgreSQL");
    let mut parsed = url::Url::parse(&url).expect("a valid DATABASE_URL");
    parsed.set_path("/no_such_database_for_cqrs");
    let (error, _, elapsed) = refused(parsed.as_str()).await;
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    let message = error.to_string();
    assert!(
        matches!(error, PgError::Connect { .. }) && message.contains("does not exist"),
        "the server's reason: {message}"
    );
    assert!(
        !error.is_transient(),
        "the same database is missing on the next try"
    );
}
