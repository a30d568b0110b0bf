//! `connect` refuses a URL it could not use (no `http://` or `https://` scheme, no host) with
//! a typed error naming the problem and never the password; a node that refuses connections
//! fails the first request at once, with an error naming the address and "connection
//! refused", classified as worth retrying.

use std::time::{Duration, Instant};

use cqrs_core::ErrorKind;
use cqrs_elastic::{EsError, EsQueries};
use serde_json::Value;

#[test]
fn a_url_without_a_scheme_is_refused_at_connect_naming_the_problem() {
    for url in [
        "localhost:9450",
        "elastic:s3cret@localhost:9450",
        "127.0.0.1:9200",
    ] {
        let error = cqrs_elastic::connect(url).expect_err(url);
        assert!(
            matches!(error, EsError::InvalidUrl { .. }),
            "{url}: {error:?}"
        );
        let text = error.to_string();
        assert!(text.contains("http://"), "{url}: {text}");
        assert!(
            !text.contains("s3cret"),
            "{url}: the password shows in {text}"
        );
        assert!(!error.is_transient(), "{url}: {error:?}");
        assert_eq!(error.kind(), ErrorKind::InvalidInput, "{url}");
    }
    let error = cqrs_elastic::connect("ftp://elastic:s3cret@localhost:9450").expect_err("ftp");
    assert!(error.to_string().contains("ftp"), "{error}");
    assert!(!error.to_string().contains("s3cret"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_refuses_connections_fails_fast_naming_the_address() {
    // Nothing listens on port 1: the connection is refused at once.
    let client = cqrs_elastic::connect("http://127.0.0.1:1").expect("a client");
    let model: EsQueries<Value> = EsQueries::new(client, "nobody-listens").unwrap();
    let started = Instant::now();
    let error = model.get("x").await.expect_err("nobody listens");
    let elapsed = started.elapsed();
    let text = error.to_string();
    assert!(
        text.to_lowercase().contains("connection refused"),
        "the message says why: {text}"
    );
    assert!(
        text.contains("127.0.0.1:1"),
        "the message names the node: {text}"
    );
    assert!(error.is_transient(), "{error:?}");
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert!(
        elapsed < Duration::from_secs(5),
        "a refused connection fails at once, not after retries: {elapsed:?}"
    );
}
