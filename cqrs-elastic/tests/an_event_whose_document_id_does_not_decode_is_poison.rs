//! A projection decodes its events to find the document they change; when that decode fails,
//! the event is poison (parked with serde's reason under `Park`, a failed projection under
//! `Stop`, whose checkpoint stays before it), never skipped while the status says all is well.

mod support;

use cqrs_core::projection::{DeadLetterStore, PoisonPolicy, ProjectionRunner, RunnerOptions};
use cqrs_core::{BoxError, EventFilter, InMemoryEventStore, Position, RecordedEvent};
use cqrs_elastic::testing::TestNode;
use cqrs_elastic::{Change, ElasticProjection, EsReadModel};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use support::*;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Loan {
    times_lent: u32,
}

/// The payload of a `Lent` event, as the projection reads it.
#[derive(Deserialize)]
struct Lent {
    book: String,
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
        let lent: Lent = serde_json::from_value(event.payload.clone())?;
        Ok(Some(lent.book))
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

/// Three loans; the second names no book (a payload the projection cannot decode).
async fn loans(store: &InMemoryEventStore) -> Position {
    append(store, "loan-1", "Lent", json!({ "book": "b1" })).await;
    let bad = append(store, "loan-2", "Lent", json!({ "title": "no book" })).await;
    append(store, "loan-3", "Lent", json!({ "book": "b2" })).await;
    bad
}

#[tokio::test]
async fn under_park_it_is_a_dead_letter_with_serdes_reason() {
    let node = TestNode::from_env().expect("a test node");
    let store = InMemoryEventStore::new();
    let bad = loans(&store).await;
    let model = read_model(
        node.client(),
        Loans {
            name: node.unique_name("loan-park"),
        },
    )
    .await;

    ProjectionRunner::new(model.projector(), store.clone(), store.clone())
        .with_dead_letters(store.clone())
        .with_options(RunnerOptions::new().poison(PoisonPolicy::Park))
        .catch_up()
        .await
        .expect("the good events are applied");

    let letters = store
        .dead_letters(model.name(), Position::START, 10)
        .await
        .expect("dead letters");
    let parked: Vec<(Position, &str)> = letters
        .iter()
        .map(|l| (l.position, l.error.as_str()))
        .collect();
    assert_eq!(
        parked.len(),
        1,
        "the undecodable event is parked: {parked:?}"
    );
    assert_eq!(parked[0].0, bad);
    assert!(parked[0].1.contains("missing field `book`"), "{parked:?}");
    assert_eq!(model.get("b1").await.unwrap(), Some(Loan { times_lent: 1 }));
    assert_eq!(model.get("b2").await.unwrap(), Some(Loan { times_lent: 1 }));
    node.clean_up().await.expect("delete the test's index");
}

#[tokio::test]
async fn under_stop_the_projection_fails_before_it() {
    let node = TestNode::from_env().expect("a test node");
    let store = InMemoryEventStore::new();
    let bad = loans(&store).await;
    let model: EsReadModel<Loans> = read_model(
        node.client(),
        Loans {
            name: node.unique_name("loan-stop"),
        },
    )
    .await;

    let stopped = ProjectionRunner::new(model.projector(), store.clone(), store.clone())
        .with_options(RunnerOptions::new().poison(PoisonPolicy::Stop))
        .catch_up()
        .await;

    let error = stopped.expect_err("the projection stops on the undecodable event");
    assert!(
        error.to_string().contains("missing field `book`"),
        "{error}"
    );
    let checkpoint = cqrs_core::CheckpointStore::load_checkpoint(&store, model.name())
        .await
        .unwrap();
    assert!(
        checkpoint.is_none_or(|c| c < bad),
        "{checkpoint:?} stays before {bad}"
    );
    node.clean_up().await.expect("delete the test's index");
}
