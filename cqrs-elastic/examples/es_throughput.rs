//! How fast an `EsProjector` turns events into documents on a real node, next to a raw `_bulk`
//! of the same documents in the same batches (the ceiling: no `_mget`, no fold, no checks).
//!
//! ```sh
//! scripts/opensearch.sh start 9200
//! ELASTICSEARCH_URL=http://127.0.0.1:9200 \
//!     cargo run --release -p cqrs-elastic --example es_throughput -- [events] [batch] [documents]
//! ```
//!
//! Defaults: 20 000 events, batches of 500, 1 000 documents. Prints events/s; asserts nothing.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use cqrs_core::projection::Projection;
use cqrs_core::{
    AppendEvents, BoxError, EventFilter, ExpectedVersion, InMemoryEventStore, NewEvent, Position,
    ReadAll, RecordedEvent, StreamId,
};
use cqrs_elastic::{
    Change, ElasticProjection, EsIndex, EsProjector, Query, ReadModel, RefreshPolicy,
};
use elasticsearch::params::Refresh;
use elasticsearch::{BulkParts, Elasticsearch};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Account {
    owner: String,
    balance: i64,
    deposits: u32,
}

#[derive(Clone)]
struct Accounts(String);

impl ElasticProjection for Accounts {
    type Document = Account;

    fn name(&self) -> &str {
        &self.0
    }

    fn mappings(&self) -> Value {
        json!({
            "owner": { "type": "keyword" },
            "balance": { "type": "long" },
            "deposits": { "type": "integer" }
        })
    }

    fn filter(&self) -> EventFilter {
        EventFilter::all().category("account")
    }

    fn document_id(&self, event: &RecordedEvent) -> Option<String> {
        Some(event.stream_id.to_string())
    }

    fn apply(
        &self,
        current: Option<&Account>,
        event: &RecordedEvent,
    ) -> Result<Change<Account>, BoxError> {
        Ok(match (event.event_type.as_str(), current) {
            ("Opened", _) => Change::Upsert(Account {
                owner: event.payload["owner"].as_str().unwrap_or("?").to_owned(),
                balance: 0,
                deposits: 0,
            }),
            ("Deposited", Some(account)) => Change::Upsert(Account {
                balance: account.balance + event.payload["cents"].as_i64().ok_or("no cents")?,
                deposits: account.deposits + 1,
                ..account.clone()
            }),
            _ => Change::Unchanged,
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("ELASTICSEARCH_URL")
        .map_err(|_| "set ELASTICSEARCH_URL (scripts/opensearch.sh start prints it)")?;
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let events = args.next().transpose()?.unwrap_or(20_000);
    let batch = args.next().transpose()?.unwrap_or(500).max(1);
    let documents = args.next().transpose()?.unwrap_or(1_000).max(1);
    let client = cqrs_elastic::connect(&url)?;

    let store = InMemoryEventStore::new();
    for i in 0..events {
        let stream = StreamId::new(format!("account-{}", i % documents))?;
        let event = if i < documents {
            NewEvent::new("Opened", 1, json!({ "owner": format!("owner-{i}") }))
        } else {
            NewEvent::new("Deposited", 1, json!({ "cents": i % 97 }))
        };
        store
            .append(&stream, ExpectedVersion::Any, vec![event])
            .await?;
    }
    let feed = read_feed(&store, batch).await?;
    println!("{events} events, {documents} documents, batches of {batch}\n");
    println!("{:<58} {:>8} {:>10}", "case", "seconds", "events/s");

    let tag = format!("{}", std::process::id());
    // Warm the node's JIT with one raw pass, not reported.
    raw(&client, &feed, &format!("bench-{tag}-warm"), None).await?;
    for (label, refresh) in [
        ("EsProjector, refresh none", RefreshPolicy::None),
        (
            "EsProjector, refresh after each bulk",
            RefreshPolicy::Immediate,
        ),
    ] {
        let name = format!("bench-{tag}-{}", matches!(refresh, RefreshPolicy::None));
        let projection = Accounts(name.clone());
        EsIndex::for_projection(client.clone(), &projection)?
            .ensure()
            .await?;
        let projector = EsProjector::new(client.clone(), projection.clone())?.refresh(refresh);
        let elapsed = timed(&feed, |b| projector.apply(b)).await?;
        report(label, events, elapsed);
        let replay = timed(&feed, |b| projector.apply(b)).await?;
        report(&format!("{label}: replay (all skipped)"), events, replay);
        let count = ReadModel::<Account>::for_projection(client.clone(), &projection)?
            .count(&Query::match_all())
            .await?;
        assert_eq!(usize::try_from(count)?, documents.min(events));
        delete(&client, &format!("{name}_v1")).await;
    }

    for (label, refresh) in [
        ("raw _bulk, refresh none", None),
        ("raw _bulk, refresh after each bulk", Some(Refresh::True)),
    ] {
        let elapsed = raw(&client, &feed, &format!("bench-{tag}-raw"), refresh).await?;
        report(label, events, elapsed);
    }
    Ok(())
}

/// Writes the feed's documents with plain `_bulk` calls into a fresh index; the time taken.
async fn raw(
    client: &Elasticsearch,
    feed: &[Vec<RecordedEvent>],
    name: &str,
    refresh: Option<Refresh>,
) -> Result<Duration, Box<dyn std::error::Error>> {
    EsIndex::for_projection(client.clone(), &Accounts(name.to_owned()))?
        .ensure()
        .await?;
    let bodies = raw_bodies(feed);
    let started = Instant::now();
    for body in bodies {
        let mut request = client.bulk(BulkParts::Index(name));
        if let Some(refresh) = refresh {
            request = request.refresh(refresh);
        }
        let response = request.body(vec![body]).send().await?;
        let answer: Value = response.json().await?;
        if answer["errors"] != json!(false) {
            return Err(format!("raw bulk failed: {answer}").into());
        }
    }
    let elapsed = started.elapsed();
    delete(client, &format!("{name}_v1")).await;
    Ok(elapsed)
}

async fn read_feed(
    store: &InMemoryEventStore,
    batch: usize,
) -> Result<Vec<Vec<RecordedEvent>>, Box<dyn std::error::Error>> {
    let mut batches = Vec::new();
    let mut after = Position::START;
    loop {
        let read = store.read_all(after, batch, &EventFilter::all()).await?;
        if read.events.is_empty() {
            return Ok(batches);
        }
        after = read.next;
        batches.push(read.events);
    }
}

async fn timed<'a, F, Fut>(
    feed: &'a [Vec<RecordedEvent>],
    apply: F,
) -> Result<Duration, Box<dyn std::error::Error>>
where
    F: Fn(&'a [RecordedEvent]) -> Fut,
    Fut: std::future::Future<Output = Result<(), cqrs_core::projection::ProjectionError>>,
{
    let started = Instant::now();
    for batch in feed {
        apply(batch).await?;
    }
    Ok(started.elapsed())
}

/// One NDJSON body per batch: the documents as they stand after the batch, in the projector's
/// stored shape, indexed without preconditions.
fn raw_bodies(feed: &[Vec<RecordedEvent>]) -> Vec<String> {
    let projection = Accounts(String::new());
    let mut state: HashMap<String, Account> = HashMap::new();
    let mut bodies = Vec::with_capacity(feed.len());
    for batch in feed {
        let mut touched: Vec<String> = Vec::new();
        for event in batch {
            let id = event.stream_id.to_string();
            if let Ok(Change::Upsert(account)) = projection.apply(state.get(&id), event) {
                if !touched.contains(&id) {
                    touched.push(id.clone());
                }
                state.insert(id, account);
            }
        }
        let mut body = String::new();
        let last = batch.last().map_or(Position::START, |e| e.position);
        for id in touched {
            let mut source = serde_json::to_value(&state[&id]).unwrap_or(Value::Null);
            source["cqrs"] = json!({ "id": id, "position": last.to_string(), "deleted": false });
            body.push_str(&json!({ "index": { "_id": id } }).to_string());
            body.push('\n');
            body.push_str(&source.to_string());
            body.push('\n');
        }
        bodies.push(body);
    }
    bodies
}

fn report(label: &str, events: usize, elapsed: Duration) {
    let per_second = events as f64 / elapsed.as_secs_f64();
    println!(
        "{label:<58} {:>8.2} {per_second:>10.0}",
        elapsed.as_secs_f64()
    );
}

async fn delete(client: &Elasticsearch, index: &str) {
    let _ = client
        .indices()
        .delete(elasticsearch::indices::IndicesDeleteParts::Index(&[index]))
        .send()
        .await;
}
