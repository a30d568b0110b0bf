//! A document's id comes from an event (an order id a client chose): `.` and `..` are ids like
//! any other. A get by id put them in the request's path, where the client's URL handling
//! resolved them as path segments: `GET /{alias}/_doc/..` went to `GET /` and the answer was
//! read as a broken document. They are found, and the others around them still are.

mod support;

use cqrs_core::{BoxError, EventFilter, InMemoryEventStore, Position, RecordedEvent};
use cqrs_elastic::testing::TestNode;
use cqrs_elastic::{Change, ElasticProjection};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use support::*;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Loan {
    times_lent: u32,
}

#[derive(Clone)]
struct Loans {
    name: String,
}

impl ElasticProjection for Loans {
    type Document = Loan;

    fn name(&self) -> &str {
        &self.name
    }

    fn mappings(&self) -> Value {
        json!({ "times_lent": { "type": "integer" } })
    }

    fn filter(&self) -> EventFilter {
        EventFilter::all().category("loan")
    }

    fn document_id(&self, event: &RecordedEvent) -> Result<Option<String>, BoxError> {
        Ok(event.payload["book"].as_str().map(str::to_owned))
    }

    fn apply(
        &self,
        current: Option<&Loan>,
        _event: &RecordedEvent,
    ) -> Result<Change<Loan>, BoxError> {
        let times_lent = current.map_or(0, |loan| loan.times_lent) + 1;
        Ok(Change::Upsert(Loan { times_lent }))
    }
}

#[tokio::test]
async fn documents_named_dot_or_dot_dot_are_got_by_their_ids() {
    let node = TestNode::from_env().expect("a test node");
    let store = InMemoryEventStore::new();
    let books = [".", "..", "a/../b", "%2e%2e", "plain"];
    for (n, book) in books.iter().enumerate() {
        for _ in 0..=n {
            append(
                &store,
                &format!("loan-{n}"),
                "Lent",
                json!({ "book": book }),
            )
            .await;
        }
    }
    let model = read_model(
        node.client(),
        Loans {
            name: node.unique_name("dots"),
        },
    )
    .await;
    let rejected = drive(&model.projector(), &store, Position::START, 100).await;
    assert!(rejected.is_empty(), "{rejected:?}");

    for (n, book) in books.iter().enumerate() {
        let times_lent = u32::try_from(n + 1).expect("small");
        let got = model.get(book).await;
        assert!(
            matches!(&got, Ok(Some(loan)) if loan.times_lent == times_lent),
            "{book}: {got:?}"
        );
    }
    assert!(matches!(model.get("...").await, Ok(None)));
    node.clean_up().await.expect("delete the test's index");
}
