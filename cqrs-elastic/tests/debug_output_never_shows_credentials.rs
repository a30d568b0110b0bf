//! The crate's types that hold a client print it without its secrets: Basic passwords, API
//! keys, bearer tokens and a password in the node's URL never reach a log through `{:?}`, and
//! an error's text does not carry a password given in the node's URL either.

use cqrs_elastic::{EsIndex, EsQueries};
use elasticsearch::auth::Credentials;
use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use elasticsearch::Elasticsearch;
use serde_json::{json, Value};

const SECRETS: [&str; 4] = [
    "basic-s3cret",
    "api-key-s3cret",
    "bearer-s3cret",
    "encoded-s3cret",
];

fn clients() -> Vec<Elasticsearch> {
    [
        Credentials::Basic("elastic".into(), SECRETS[0].into()),
        Credentials::ApiKey("key-id".into(), SECRETS[1].into()),
        Credentials::Bearer(SECRETS[2].into()),
        Credentials::EncodedApiKey(SECRETS[3].into()),
    ]
    .into_iter()
    .map(|credentials| {
        let pool = SingleNodeConnectionPool::new("http://127.0.0.1:1".parse().unwrap());
        let transport = TransportBuilder::new(pool)
            .auth(credentials)
            .build()
            .unwrap();
        Elasticsearch::new(transport)
    })
    .collect()
}

fn assert_no_secret(shown: &str) {
    for secret in SECRETS.iter().chain(&["url-s3cret"]) {
        assert!(!shown.contains(secret), "{secret} shown in {shown}");
    }
}

#[test]
fn the_debug_output_of_an_index_and_a_read_model_redacts_the_client() {
    for client in clients() {
        let index = EsIndex::new(client.clone(), "orders", json!({})).unwrap();
        let shown = format!("{index:?} {index:#?}");
        assert_no_secret(&shown);
        assert!(shown.contains("orders"), "{shown}");
        let model: EsQueries<Value> = EsQueries::new(client, "orders").unwrap();
        assert_no_secret(&format!("{model:?} {model:#?}"));
    }
    let client = cqrs_elastic::connect("http://user:url-s3cret@127.0.0.1:1").unwrap();
    let index = EsIndex::new(client, "orders", json!({})).unwrap();
    assert_no_secret(&format!("{index:?}"));
}

#[tokio::test]
async fn a_password_in_the_node_url_never_shows_in_an_error() {
    let client = cqrs_elastic::connect("http://user:url-s3cret@127.0.0.1:1").unwrap();
    let model: EsQueries<Value> = EsQueries::new(client, "orders").unwrap();
    let error = model.get("a").await.expect_err("nothing listens on port 1");
    let mut shown = format!("{error} {error:?}");
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        shown.push_str(&format!(" {cause} {cause:?}"));
        source = cause.source();
    }
    assert_no_secret(&shown);
}
