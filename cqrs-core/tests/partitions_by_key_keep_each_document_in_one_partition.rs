//! Partitions by key: a document fed by several streams is written by the one partition its
//! key hashes to, never by two at once, and gets every event of every stream that feeds it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::projection::{
    Lease, PartitionedRunner, Partitions, Projection, ProjectionError, RunnerOptions,
    StreamPartition,
};
use cqrs_core::{
    AppendEvents, ExpectedVersion, InMemoryEventStore, NewEvent, RecordedEvent, StreamId,
};

const DOCS: u64 = 12;
const STREAMS: u64 = 30;

#[derive(Default)]
struct Docs {
    /// Per document: events applied, and the partitions (lease names) that wrote it.
    applied: HashMap<String, u64>,
    writers: HashMap<String, HashSet<String>>,
    /// Per document, applies in flight; and how often two overlapped.
    in_flight: HashMap<String, u32>,
    overlaps: u64,
}

/// Each event names the document it changes (`doc` in its payload); the key is that document.
#[derive(Clone)]
struct PerDocument(Arc<Mutex<Docs>>);

fn doc_of(event: &RecordedEvent) -> String {
    format!("doc-{}", event.payload["doc"])
}

#[async_trait]
impl Projection for PerDocument {
    fn name(&self) -> &str {
        "per-document"
    }

    fn key(&self, event: &RecordedEvent) -> Option<String> {
        Some(doc_of(event))
    }

    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        self.apply_fenced(events, None).await
    }

    async fn apply_fenced(
        &self,
        events: &[RecordedEvent],
        lease: Option<&Lease>,
    ) -> Result<(), ProjectionError> {
        let docs: HashSet<String> = events.iter().map(doc_of).collect();
        {
            let mut book = self.0.lock().unwrap();
            for doc in &docs {
                let n = book.in_flight.entry(doc.clone()).or_default();
                *n += 1;
                if *n > 1 {
                    book.overlaps += 1;
                }
            }
        }
        tokio::task::yield_now().await;
        let mut book = self.0.lock().unwrap();
        let partition = lease.map_or_else(String::new, |l| l.name.clone());
        for event in events {
            let doc = doc_of(event);
            *book.applied.entry(doc.clone()).or_default() += 1;
            book.writers
                .entry(doc)
                .or_default()
                .insert(partition.clone());
        }
        for doc in docs {
            if let Some(n) = book.in_flight.get_mut(&doc) {
                *n -= 1;
            }
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partitions_by_key_keep_each_document_in_one_partition() {
    let store = InMemoryEventStore::new();
    let book = Arc::new(Mutex::new(Docs::default()));
    let options = |id: &str| {
        RunnerOptions::new()
            .owner(id)
            // Long enough that no stall of a loaded machine ends a term (which would apply
            // events again, and the count is exact).
            .lease_ttl(Duration::from_secs(3))
            .batch_size(25)
            .poll_interval(Duration::from_millis(50))
    };
    let workers: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|id| {
            PartitionedRunner::for_store(PerDocument(book.clone()), Partitions::by_key(4), &store)
                .with_options(options(id))
                .spawn()
        })
        .collect();
    // Every stream feeds several documents; every document is fed by several streams.
    let mut expected: HashMap<String, u64> = HashMap::new();
    for n in 0..600u64 {
        let stream = StreamId::new(format!("order-{}", n % STREAMS)).unwrap();
        let doc = (n * 7) % DOCS;
        store
            .append(
                &stream,
                ExpectedVersion::Any,
                vec![NewEvent::new(
                    "Touched",
                    1,
                    serde_json::json!({ "doc": doc }),
                )],
            )
            .await
            .unwrap();
        *expected.entry(format!("doc-{doc}")).or_default() += 1;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while book.lock().unwrap().applied != expected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not every event was applied: {:?} of {expected:?}",
            book.lock().unwrap().applied
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let leading: Vec<Vec<u32>> = workers.iter().map(|w| w.status().leading()).collect();
    {
        let book = book.lock().unwrap();
        println!(
            "leading {leading:?}; writers per document {:?}",
            book.writers
        );
        assert_eq!(
            book.overlaps, 0,
            "a document was written by two partitions at once"
        );
        for (doc, writers) in &book.writers {
            let index = StreamPartition::index_of(doc, 4);
            assert_eq!(
                writers.iter().collect::<Vec<_>>(),
                [&Partitions::by_key(4).name("per-document", index)],
                "{doc} was written by its own partition only"
            );
        }
    }
    for worker in workers {
        worker.shutdown().await;
    }
}
