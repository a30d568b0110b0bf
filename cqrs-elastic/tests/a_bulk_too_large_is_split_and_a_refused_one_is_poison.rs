//! A `_bulk` request that fails as a whole is classified, not retried as it is forever: a
//! request the node finds too large (413), or too large for its memory now (429 from its
//! circuit breaker or its indexing pressure, long before `http.max_content_length`), is sent
//! again in halves until each fits; one the node refuses for one of its documents (a 400 that
//! blames a line) is sent in halves too, down to that document, whose events are poison for
//! the runner's policy to stop or park; one it refuses for itself (another 400) makes all its
//! documents' events poison at once. A batch is sent in requests of at most `max_bulk_bytes` in the first place.
//! The node here is a small HTTP server of the test's own (a real node answers these only
//! under settings or loads a test cannot set up cheaply), spoken to by the real client.

mod support;

use std::sync::{Arc, Mutex};

use cqrs_core::projection::{Projection, ProjectionError};
use cqrs_core::{EventFilter, InMemoryEventStore, Position, ReadAll};
use serde_json::{json, Value};
use support::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// What the fake node refuses, and the documents of each `_bulk` it got.
struct Node {
    /// Bulk bodies over this many bytes get 413.
    max_body: usize,
    /// Bulk bodies over this many bytes get 429 from the parent circuit breaker.
    breaker_body: usize,
    /// A bulk holding this document id gets 400 ...
    refused_id: &'static str,
    /// ... of this error type.
    refused_type: &'static str,
    bulks: Mutex<Vec<usize>>,
}

impl Node {
    async fn start(max_body: usize, refused_id: &'static str) -> (Arc<Self>, String) {
        Self::start_with(
            max_body,
            usize::MAX,
            refused_id,
            "illegal_argument_exception",
        )
        .await
    }

    async fn start_with(
        max_body: usize,
        breaker_body: usize,
        refused_id: &'static str,
        refused_type: &'static str,
    ) -> (Arc<Self>, String) {
        let node = Arc::new(Self {
            max_body,
            breaker_body,
            refused_id,
            refused_type,
            bulks: Mutex::default(),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let serving = node.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serving.clone().serve(socket));
            }
        });
        (node, url)
    }

    async fn serve(self: Arc<Self>, socket: TcpStream) {
        let mut socket = BufReader::new(socket);
        loop {
            let mut line = String::new();
            if socket.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
            let mut length = 0;
            loop {
                let mut header = String::new();
                socket.read_line(&mut header).await.unwrap();
                let header = header.trim_end();
                if header.is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap();
                    }
                }
            }
            let mut body = vec![0; length];
            socket.read_exact(&mut body).await.unwrap();
            let (status, answer) = self.answer(&path, &body);
            let answer = answer.to_string();
            let reply = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                answer.len()
            );
            socket.get_mut().write_all(reply.as_bytes()).await.unwrap();
        }
    }

    fn answer(&self, path: &str, body: &[u8]) -> (u16, Value) {
        if path.contains("_mget") {
            let ids: Value = serde_json::from_slice(body).unwrap();
            let docs: Vec<Value> = ids["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|id| json!({ "_id": id, "found": false }))
                .collect();
            return (200, json!({ "docs": docs }));
        }
        assert!(path.contains("_bulk"), "unexpected request {path}");
        let documents = body.iter().filter(|&&b| b == b'\n').count() / 2;
        self.bulks.lock().unwrap().push(documents);
        if body.len() > self.max_body {
            return (
                413,
                json!({ "error": "request entity too large", "status": 413 }),
            );
        }
        if body.len() > self.breaker_body {
            let error = json!({
                "type": "circuit_breaking_exception",
                "reason": "[parent] Data too large, data for [<http_request>] would be larger than the limit",
            });
            return (429, json!({ "error": error, "status": 429 }));
        }
        let refused = format!("\"_id\":\"{}\"", self.refused_id);
        if String::from_utf8_lossy(body).contains(&refused) {
            let error = json!({ "type": self.refused_type, "reason": "refused" });
            return (400, json!({ "error": error, "status": 400 }));
        }
        let items: Vec<Value> = (0..documents)
            .map(|n| json!({ "create": { "status": 201, "_seq_no": n, "_primary_term": 1 } }))
            .collect();
        (200, json!({ "errors": false, "items": items }))
    }
}

async fn batch(store: &InMemoryEventStore) -> Vec<cqrs_core::RecordedEvent> {
    store
        .read_all(Position::START, 100, &EventFilter::all())
        .await
        .unwrap()
        .events
}

#[tokio::test]
async fn a_bulk_too_large_is_sent_in_halves_until_each_fits() {
    let store = InMemoryEventStore::new();
    for i in 0..8 {
        open_account(&store, &format!("account-{i}"), "ada", "c1").await;
    }
    let events = batch(&store).await;
    // Each document's two lines take about 150 bytes: the whole bulk does not fit, halves do.
    let (node, url) = Node::start(700, "none").await;
    let accounts = Accounts {
        name: unique_name("split"),
    };
    let projector =
        cqrs_elastic::EsProjector::new(cqrs_elastic::connect(&url).unwrap(), accounts).unwrap();
    let applied = projector.apply(&events).await;
    assert!(applied.is_ok(), "{applied:?}");
    assert_eq!(*node.bulks.lock().unwrap(), [8, 4, 4]);
}

#[tokio::test]
async fn a_bulk_too_large_for_the_nodes_memory_now_is_sent_in_halves() {
    let store = InMemoryEventStore::new();
    for i in 0..8 {
        open_account(&store, &format!("account-{i}"), "ada", "c1").await;
    }
    let events = batch(&store).await;
    let (node, url) = Node::start_with(100_000, 700, "none", "-").await;
    let accounts = Accounts {
        name: unique_name("breaker"),
    };
    let projector =
        cqrs_elastic::EsProjector::new(cqrs_elastic::connect(&url).unwrap(), accounts).unwrap();
    let applied = projector.apply(&events).await;
    assert!(applied.is_ok(), "{applied:?}");
    assert_eq!(*node.bulks.lock().unwrap(), [8, 4, 4]);
}

#[tokio::test]
async fn a_batch_goes_out_in_requests_of_at_most_max_bulk_bytes() {
    let store = InMemoryEventStore::new();
    for i in 0..8 {
        open_account(&store, &format!("account-{i}"), "ada", "c1").await;
    }
    let events = batch(&store).await;
    let (node, url) = Node::start(100_000, "none").await;
    let accounts = Accounts {
        name: unique_name("bytes"),
    };
    let projector = cqrs_elastic::EsProjector::new(cqrs_elastic::connect(&url).unwrap(), accounts)
        .unwrap()
        .with_options(cqrs_elastic::ProjectorOptions::default().max_bulk_bytes(700));
    let applied = projector.apply(&events).await;
    assert!(applied.is_ok(), "{applied:?}");
    let bulks = node.bulks.lock().unwrap().clone();
    assert_eq!(bulks.iter().sum::<usize>(), 8, "{bulks:?}");
    assert!(
        bulks.iter().all(|&n| n < 8),
        "split before sending: {bulks:?}"
    );
}

#[tokio::test]
async fn a_bulk_refused_as_a_whole_makes_its_events_poison() {
    let store = InMemoryEventStore::new();
    for i in 0..3 {
        open_account(&store, &format!("account-{i}"), "ada", "c1").await;
    }
    let events = batch(&store).await;
    let (node, url) = Node::start(100_000, "account-1").await;
    let accounts = Accounts {
        name: unique_name("refused"),
    };
    let projector =
        cqrs_elastic::EsProjector::new(cqrs_elastic::connect(&url).unwrap(), accounts).unwrap();
    match projector.apply(&events).await {
        Err(ProjectionError::Poison(rejected)) => {
            let positions: Vec<Position> = rejected.iter().map(|r| r.position).collect();
            let all: Vec<Position> = events.iter().map(|e| e.position).collect();
            assert_eq!(positions, all, "{rejected:?}");
            assert!(rejected[0].error.contains("400"), "{rejected:?}");
        }
        other => panic!("a refused bulk must be poison, not retried: {other:?}"),
    }
    assert_eq!(*node.bulks.lock().unwrap(), [3], "sent once");
}

#[tokio::test]
async fn a_bulk_refused_for_one_of_its_documents_is_halved_down_to_it() {
    let store = InMemoryEventStore::new();
    for i in 0..3 {
        open_account(&store, &format!("account-{i}"), "ada", "c1").await;
    }
    let events = batch(&store).await;
    let (node, url) = Node::start_with(
        100_000,
        usize::MAX,
        "account-1",
        "x_content_parse_exception",
    )
    .await;
    let accounts = Accounts {
        name: unique_name("line"),
    };
    let projector =
        cqrs_elastic::EsProjector::new(cqrs_elastic::connect(&url).unwrap(), accounts).unwrap();
    match projector.apply(&events).await {
        Err(ProjectionError::Poison(rejected)) => {
            // Halved down to the document the node refuses: the others are written.
            let positions: Vec<Position> = rejected.iter().map(|r| r.position).collect();
            assert_eq!(positions, [events[1].position], "{rejected:?}");
            assert!(rejected[0].error.contains("400"), "{rejected:?}");
        }
        other => panic!("a refused document must be poison, not retried: {other:?}"),
    }
    assert_eq!(*node.bulks.lock().unwrap(), [3, 1, 2, 1, 1]);
}
