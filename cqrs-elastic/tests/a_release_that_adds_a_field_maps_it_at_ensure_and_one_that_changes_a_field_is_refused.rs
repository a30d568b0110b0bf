//! A release that adds a field to a read model's mappings needs no rebuild to write it:
//! `ensure` maps the new field on the index the alias points to (documents written before
//! simply lack it until a rebuild fills it). Before, `ensure` found the alias and returned, and
//! the strict mapping refused every document carrying the field, so each was parked as poison.
//! A change the index cannot take in place (another type for a field) is refused at `ensure`
//! by name, saying a rebuild is the way, instead of at the first document.

mod support;

use cqrs_core::ErrorKind;
use cqrs_elastic::{EsError, EsIndex};
use elasticsearch::IndexParts;
use serde_json::json;

#[tokio::test]
async fn a_release_that_adds_a_field_maps_it_at_ensure_and_one_that_changes_a_field_is_refused() {
    let client = support::client();
    let name = support::unique_name("release");
    let first = EsIndex::new(client.clone(), &name, json!({ "a": { "type": "keyword" } }))
        .expect("a read model");
    let current = first.ensure().await.expect("created");

    let next = EsIndex::new(
        client.clone(),
        &name,
        json!({ "a": { "type": "keyword" }, "b": { "type": "long" } }),
    )
    .expect("a read model");
    assert_eq!(
        next.ensure().await.expect("ensured"),
        current,
        "no new version"
    );
    let written = client
        .index(IndexParts::IndexId(&name, "d-1"))
        .body(json!({ "a": "x", "b": 7 }))
        .send()
        .await
        .expect("an answer");
    let status = written.status_code();
    let answer: serde_json::Value = written.json().await.expect("json");
    assert!(status.is_success(), "{status}: {answer}");

    let changed = EsIndex::new(
        client.clone(),
        &name,
        json!({ "a": { "type": "long" }, "b": { "type": "long" } }),
    )
    .expect("a read model");
    let error = changed.ensure().await.expect_err("a changed field");
    assert!(
        matches!(error, EsError::MappingsConflict { .. }),
        "{error:?}"
    );
    assert_eq!(error.kind(), ErrorKind::InvalidInput, "{error}");
    let text = error.to_string();
    assert!(
        text.contains(&current.index) && text.contains("[a]") && text.contains("rebuild"),
        "names the index, the field, and the way out: {text}"
    );
}
