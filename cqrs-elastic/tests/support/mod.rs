//! Shared helpers for the tests against a real search node: each test gets its own read-model
//! names, a small account domain, and a projector driver.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;

use cqrs_core::projection::{Projection, ProjectionError, Rejected};
use cqrs_core::{
    AppendEvents, BoxError, EventFilter, ExpectedVersion, InMemoryEventStore, NewEvent, Position,
    ReadAll, RecordedEvent, StreamId,
};
use std::sync::Arc;

use cqrs_elastic::{Change, ElasticProjection, EsProjector, EsReadModel};
use elasticsearch::{Elasticsearch, SearchParts};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

mod held;
pub mod holding_proxy;
// Each test binary compiles the support module whole; only some use these.
#[allow(unused_imports)]
pub use held::{Held, HANDSHAKE};

/// A client for the test node (`ELASTICSEARCH_URL`).
pub fn client() -> Elasticsearch {
    match cqrs_elastic::testing::TestNode::from_env() {
        Ok(node) => node.client().clone(),
        Err(e) => panic!(
            "{e}. These tests need a real Elasticsearch or OpenSearch node: run scripts/test.sh, \
             or `scripts/opensearch.sh start 9200` and export the ELASTICSEARCH_URL=... line it \
             prints"
        ),
    }
}

/// A read-model name no other test uses.
pub fn unique_name(prefix: &str) -> String {
    cqrs_elastic::testing::unique_name(&format!("t-{prefix}"))
}

/// An account as the read model shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccountView {
    pub owner: String,
    pub customer: String,
    pub balance: i64,
    pub deposits: u32,
    /// Not in the mappings: setting it makes the strict mapping refuse the document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nickname: Option<String>,
}

/// Accounts, one document per `account-*` stream. Events: `Opened {owner, customer}`,
/// `Deposited {cents}`, `Withdrawn {cents}`, `Closed`, `Nicknamed {nickname}` (a field the
/// mapping lacks) and `Corrupt` (which `apply` refuses).
#[derive(Clone, Debug)]
pub struct Accounts {
    pub name: String,
}

impl ElasticProjection for Accounts {
    type Document = AccountView;

    fn name(&self) -> &str {
        &self.name
    }

    fn mappings(&self) -> Value {
        json!({
            "owner": { "type": "text", "fields": { "raw": { "type": "keyword" } } },
            "customer": { "type": "keyword" },
            "balance": { "type": "long" },
            "deposits": { "type": "integer" }
        })
    }

    fn filter(&self) -> EventFilter {
        EventFilter::all().category("account")
    }

    fn document_id(&self, event: &RecordedEvent) -> Result<Option<String>, BoxError> {
        Ok(Some(event.stream_id.to_string()))
    }

    fn apply(
        &self,
        current: Option<&AccountView>,
        event: &RecordedEvent,
    ) -> Result<Change<AccountView>, BoxError> {
        apply_account(current, event)
    }
}

/// The accounts fold, shared by the projection and the tests' expectations.
pub fn apply_account(
    current: Option<&AccountView>,
    event: &RecordedEvent,
) -> Result<Change<AccountView>, BoxError> {
    let cents = || event.payload["cents"].as_i64().ok_or("cents missing");
    Ok(match (event.event_type.as_str(), current) {
        ("Opened", _) => Change::Upsert(AccountView {
            owner: event.payload["owner"]
                .as_str()
                .ok_or("owner missing")?
                .to_owned(),
            customer: event.payload["customer"]
                .as_str()
                .ok_or("customer missing")?
                .to_owned(),
            balance: 0,
            deposits: 0,
            nickname: None,
        }),
        ("Deposited", Some(view)) => Change::Upsert(AccountView {
            balance: view.balance + cents()?,
            deposits: view.deposits + 1,
            ..view.clone()
        }),
        ("Withdrawn", Some(view)) => Change::Upsert(AccountView {
            balance: view.balance - cents()?,
            ..view.clone()
        }),
        ("Nicknamed", Some(view)) => Change::Upsert(AccountView {
            nickname: Some(event.payload["nickname"].as_str().unwrap_or("?").to_owned()),
            ..view.clone()
        }),
        ("Closed", Some(_)) => Change::Delete,
        ("Corrupt", _) => return Err("corrupt event".into()),
        _ => Change::Unchanged,
    })
}

/// The documents a full fold of `events` gives, by id (`None`: deleted).
pub fn expected_accounts(events: &[RecordedEvent]) -> BTreeMap<String, Option<AccountView>> {
    let mut docs: BTreeMap<String, Option<AccountView>> = BTreeMap::new();
    for event in events
        .iter()
        .filter(|e| e.stream_id.category() == "account")
    {
        let id = event.stream_id.to_string();
        let current = docs.get(&id).cloned().flatten();
        match apply_account(current.as_ref(), event).expect("valid test events") {
            Change::Upsert(view) => {
                docs.insert(id, Some(view));
            }
            Change::Delete => {
                docs.insert(id, None);
            }
            Change::Unchanged => {}
        }
    }
    docs
}

/// Appends one event.
pub async fn append(
    store: &InMemoryEventStore,
    stream: &str,
    kind: &str,
    payload: Value,
) -> Position {
    let stream = StreamId::new(stream).expect("valid stream id");
    store
        .append(
            &stream,
            ExpectedVersion::Any,
            vec![NewEvent::new(kind, 1, payload)],
        )
        .await
        .expect("append")
        .position
}

/// Appends the `Opened` event of account stream `stream`.
pub async fn open_account(
    store: &InMemoryEventStore,
    stream: &str,
    owner: &str,
    customer: &str,
) -> Position {
    let payload = serde_json::json!({ "owner": owner, "customer": customer });
    append(store, stream, "Opened", payload).await
}

/// Opens `accounts` accounts and gives each a few deposits and withdrawals, interleaved.
pub async fn seed_accounts(store: &InMemoryEventStore, accounts: usize, rounds: usize) {
    for i in 0..accounts {
        let owner = format!("owner {} {}", ["ada", "bob", "cy"][i % 3], i);
        let customer = format!("c{}", i % 5);
        append(
            store,
            &format!("account-{i}"),
            "Opened",
            json!({ "owner": owner, "customer": customer }),
        )
        .await;
    }
    for round in 0..rounds {
        for i in 0..accounts {
            let cents = i64::try_from((i * 7 + round * 13) % 50 + 1).unwrap_or(1);
            let kind = if round % 3 == 2 {
                "Withdrawn"
            } else {
                "Deposited"
            };
            append(
                store,
                &format!("account-{i}"),
                kind,
                json!({ "cents": cents }),
            )
            .await;
        }
    }
}

/// Every event of the store, in feed order.
pub async fn all_events(store: &InMemoryEventStore) -> Vec<RecordedEvent> {
    let mut events = Vec::new();
    let mut after = Position::START;
    loop {
        let batch = store
            .read_all(after, 1000, &EventFilter::all())
            .await
            .expect("read_all");
        if batch.events.is_empty() {
            return events;
        }
        after = batch.next;
        events.extend(batch.events);
    }
}

/// Applies the feed from `after` in batches of `batch` and makes each visible, as the runner
/// would, and returns the poison events met on the way.
pub async fn drive<P: ElasticProjection>(
    projector: &EsProjector<P>,
    store: &InMemoryEventStore,
    after: Position,
    batch: usize,
) -> Vec<Rejected> {
    let filter = projector.filter();
    let mut checkpoint = after;
    let mut rejected = Vec::new();
    loop {
        let read = store
            .read_all(checkpoint, batch, &filter)
            .await
            .expect("read_all");
        if read.events.is_empty() {
            return rejected;
        }
        match projector.apply(&read.events).await {
            Ok(()) => {}
            Err(ProjectionError::Poison(poison)) => rejected.extend(poison),
            Err(other) => panic!("batch failed: {other:?}"),
        }
        projector.make_visible().await.expect("refresh");
        checkpoint = read.next;
    }
}

/// The read model of `projection`, its index created.
pub async fn read_model<P: ElasticProjection>(
    client: &Elasticsearch,
    projection: P,
) -> EsReadModel<P> {
    let model = EsReadModel::new(client.clone(), projection).expect("valid read model");
    model.ensure().await.expect("ensure the index");
    model
}

/// A projector for `projection`, after creating its index.
pub async fn projector<P: ElasticProjection>(
    client: &Elasticsearch,
    projection: P,
) -> EsProjector<Arc<P>> {
    read_model(client, projection).await.projector()
}

/// Every stored document of `index` (tombstones included), by id: its `_source` and `_seq_no`.
pub async fn raw_documents(client: &Elasticsearch, index: &str) -> BTreeMap<String, (Value, u64)> {
    let response = client
        .search(SearchParts::Index(&[index]))
        .body(json!({ "query": { "match_all": {} }, "size": 10000, "seq_no_primary_term": true }))
        .send()
        .await
        .expect("search");
    assert!(
        response.status_code().is_success(),
        "raw search failed: {}",
        response.status_code()
    );
    let body: Value = response.json().await.expect("search answer");
    body["hits"]["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|hit| {
            (
                hit["_id"].as_str().expect("id").to_owned(),
                (
                    hit["_source"].clone(),
                    hit["_seq_no"].as_u64().expect("seq_no"),
                ),
            )
        })
        .collect()
}

/// Whether `index` exists.
pub async fn index_exists(client: &Elasticsearch, index: &str) -> bool {
    let response = client
        .indices()
        .exists(elasticsearch::indices::IndicesExistsParts::Index(&[index]))
        .send()
        .await
        .expect("exists");
    response.status_code().is_success()
}

/// A feed over an in-memory store that holds a rebuild at a known step: the `n`-th call of
/// `read_all` or of `head` (counting from 1) tells the test so through the receiver
/// [`PausingFeed::new`] returns and never answers. The test then drops the rebuild's future.
pub struct PausingFeed {
    store: InMemoryEventStore,
    at_read: Option<usize>,
    at_head: Option<usize>,
    reads: std::sync::atomic::AtomicUsize,
    heads: std::sync::atomic::AtomicUsize,
    paused: tokio::sync::mpsc::UnboundedSender<&'static str>,
}

impl PausingFeed {
    /// A feed over `store` pausing at read `at_read` or at head `at_head`.
    pub fn new(
        store: InMemoryEventStore,
        at_read: Option<usize>,
        at_head: Option<usize>,
    ) -> (Self, tokio::sync::mpsc::UnboundedReceiver<&'static str>) {
        let (paused, receiver) = tokio::sync::mpsc::unbounded_channel();
        let feed = Self {
            store,
            at_read,
            at_head,
            reads: Default::default(),
            heads: Default::default(),
            paused,
        };
        (feed, receiver)
    }

    async fn maybe_pause(
        &self,
        count: &std::sync::atomic::AtomicUsize,
        at: Option<usize>,
        what: &'static str,
    ) {
        let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if at == Some(n) {
            let _ = self.paused.send(what);
            std::future::pending::<()>().await;
        }
    }
}

#[async_trait::async_trait]
impl ReadAll for PausingFeed {
    async fn read_all(
        &self,
        after: Position,
        limit: usize,
        filter: &EventFilter,
    ) -> cqrs_core::Result<cqrs_core::FeedBatch> {
        self.maybe_pause(&self.reads, self.at_read, "read_all")
            .await;
        self.store.read_all(after, limit, filter).await
    }

    async fn head(&self) -> cqrs_core::Result<Position> {
        self.maybe_pause(&self.heads, self.at_head, "head").await;
        self.store.head().await
    }
}

/// Asserts that `index` holds exactly the documents a full fold of `store`'s feed gives.
pub async fn assert_index_is_the_fold(
    client: &Elasticsearch,
    index: &str,
    store: &InMemoryEventStore,
) {
    let expected = expected_accounts(&all_events(store).await);
    let stored = raw_documents(client, index).await;
    let mut wrong = Vec::new();
    for (id, doc) in &expected {
        let got = stored.get(id).map(|(source, _)| source);
        let live = got.filter(|s| s["cqrs"]["deleted"] != json!(true));
        let got: Option<AccountView> =
            live.map(|s| serde_json::from_value(s.clone()).expect("an account"));
        if &got != doc {
            wrong.push(format!("{id}: expected {doc:?}, stored {got:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} documents of {index} differ from the fold, e.g. {:#?}",
        wrong.len(),
        expected.len(),
        &wrong[..wrong.len().min(3)]
    );
}
