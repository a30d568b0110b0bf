//! One document can be fed by several streams: a customer's summary takes its account's
//! deposits and its orders, in feed order, whatever the batch boundaries.

mod support;

use cqrs_core::{BoxError, EventFilter, InMemoryEventStore, Position, RecordedEvent};
use cqrs_elastic::{Change, ElasticProjection, EsQueries};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use support::*;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Customer {
    deposited: i64,
    ordered: i64,
    /// `stream@version` of every event applied, to check the order.
    history: Vec<String>,
}

struct Customers {
    name: String,
}

impl ElasticProjection for Customers {
    type Document = Customer;

    fn name(&self) -> &str {
        &self.name
    }

    fn mappings(&self) -> Value {
        json!({
            "deposited": { "type": "long" },
            "ordered": { "type": "long" },
            "history": { "type": "keyword" }
        })
    }

    fn filter(&self) -> EventFilter {
        EventFilter::all().category("account").category("order")
    }

    fn document_id(&self, event: &RecordedEvent) -> Result<Option<String>, BoxError> {
        Ok(event.payload["customer"]
            .as_str()
            .map(|c| format!("customer-{c}")))
    }

    fn apply(
        &self,
        current: Option<&Customer>,
        event: &RecordedEvent,
    ) -> Result<Change<Customer>, BoxError> {
        let mut customer = current.cloned().unwrap_or(Customer {
            deposited: 0,
            ordered: 0,
            history: Vec::new(),
        });
        let cents = event.payload["cents"].as_i64().ok_or("cents missing")?;
        match event.event_type.as_str() {
            "Deposited" => customer.deposited += cents,
            "Ordered" => customer.ordered += cents,
            _ => return Ok(Change::Unchanged),
        }
        customer
            .history
            .push(format!("{}@{}", event.stream_id, event.version));
        Ok(Change::Upsert(customer))
    }
}

#[tokio::test]
async fn documents_fed_by_two_streams_see_every_event_in_feed_order() {
    let client = client();
    let store = InMemoryEventStore::new();
    for i in 0..60_i64 {
        let customer = format!("{}", i % 4);
        append(
            &store,
            &format!("account-{}", i % 4),
            "Deposited",
            json!({ "customer": customer, "cents": i }),
        )
        .await;
        append(
            &store,
            &format!("order-{}", i % 7),
            "Ordered",
            json!({ "customer": customer, "cents": 2 * i }),
        )
        .await;
        append(
            &store,
            "other-1",
            "Noise",
            json!({ "customer": customer, "cents": 1 }),
        )
        .await;
    }

    let projection = Customers {
        name: unique_name("customers"),
    };
    let expected: Vec<(String, Customer)> = {
        let mut docs = std::collections::BTreeMap::new();
        for event in all_events(&store).await {
            if !projection
                .filter()
                .matches(event.stream_id.as_str(), &event.event_type)
            {
                continue;
            }
            let id = projection.document_id(&event).unwrap().unwrap();
            if let Change::Upsert(doc) = projection.apply(docs.get(&id), &event).unwrap() {
                docs.insert(id, doc);
            }
        }
        docs.into_iter().collect()
    };
    let name = projection.name.clone();
    let projector = projector(&client, projection).await;
    assert!(drive(&projector, &store, Position::START, 11)
        .await
        .is_empty());

    let model: EsQueries<Customer> = EsQueries::new(client.clone(), name).unwrap();
    assert_eq!(expected.len(), 4);
    for (id, doc) in &expected {
        let stored = model.get(id).await.unwrap().expect("customer document");
        assert_eq!(&stored, doc, "{id}");
        assert_eq!(
            stored.history.len(),
            30,
            "every event of both streams, once"
        );
    }
}
