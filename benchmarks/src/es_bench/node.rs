//! The search node: what it is, its CPU clock, per-workload index names and their cleanup,
//! and the plain requests the baselines make (every answer's status checked, and every item
//! of a `_bulk`).

use std::future::Future;

use anyhow::{bail, ensure, Context as _, Result};
use elasticsearch::cat::CatIndicesParts;
use elasticsearch::http::response::Response;
use elasticsearch::indices::{IndicesDeleteParts, IndicesRefreshParts, IndicesStatsParts};
use elasticsearch::nodes::{NodesInfoParts, NodesStatsParts};
use elasticsearch::params::Refresh;
use elasticsearch::{BulkParts, Elasticsearch, IndexParts, MgetParts, SearchParts};
use serde_json::{json, Value};

use crate::model::{Totals, LAST_REF};

/// One node, through the official client.
#[derive(Clone)]
pub(crate) struct Node {
    client: Elasticsearch,
    run_id: u32,
    /// The node's process id, when it is a single node (then `/proc` may show its CPU time).
    pid: Option<u32>,
}

/// What the node is.
pub(crate) struct NodeInfo {
    /// Distribution and version, from `GET /`.
    pub(crate) version: String,
    /// Lucene's version.
    pub(crate) lucene: String,
    /// The JVM's maximum heap, in MiB.
    pub(crate) heap_mib: u64,
}

/// Names of one workload's indices: `es-bench-{process id}-{label}-{what}`.
pub(crate) struct Names {
    prefix: String,
}

impl Names {
    /// The name of the workload's index (or read model) `what`.
    pub(crate) fn name(&self, what: &str) -> String {
        format!("{}-{what}", self.prefix)
    }
}

impl Node {
    /// The node at `url`.
    pub(crate) async fn connect(url: &str) -> Result<Self> {
        let client = cqrs_elastic::connect(url).context("connecting to the search node")?;
        let mut node = Self {
            client,
            run_id: std::process::id(),
            pid: None,
        };
        let info = node.nodes_info("process").await?;
        let pids: Vec<u64> = info["nodes"]
            .as_object()
            .map(|nodes| {
                let pid = |n: &Value| n.pointer("/process/id").and_then(Value::as_u64);
                nodes.values().filter_map(pid).collect()
            })
            .unwrap_or_default();
        if let [pid] = pids[..] {
            node.pid = u32::try_from(pid)
                .ok()
                .filter(|&pid| is_local_search_node(pid));
        }
        Ok(node)
    }

    /// The node's process id, if it is a single node.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// The client.
    pub(crate) fn client(&self) -> &Elasticsearch {
        &self.client
    }

    /// The node's version and heap.
    pub(crate) async fn info(&self) -> Result<NodeInfo> {
        let root = ok_json(self.client.info().send().await?, "GET /").await?;
        let text = |pointer: &str, absent: &'static str| {
            root.pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or(absent)
                .to_owned()
        };
        // Elasticsearch has no `distribution`; OpenSearch says so there.
        let version = format!(
            "{} {}",
            text("/version/distribution", "elasticsearch"),
            text("/version/number", "?")
        );
        let lucene = text("/version/lucene_version", "?");
        let stats = self.stats("jvm").await?;
        let heap = sum_nodes(&stats, "/jvm/mem/heap_max_in_bytes");
        Ok(NodeInfo {
            version,
            lucene,
            heap_mib: heap / (1024 * 1024),
        })
    }

    /// CPU time the node's process has used, in milliseconds, as the node reports it (its
    /// figure is refreshed once a second).
    pub(crate) async fn cpu_millis(&self) -> Result<u64> {
        let stats = self.stats("process").await?;
        Ok(sum_nodes(&stats, "/process/cpu/total_in_millis"))
    }

    async fn nodes_info(&self, metric: &str) -> Result<Value> {
        let response = self
            .client
            .nodes()
            .info(NodesInfoParts::Metric(&[metric]))
            .send()
            .await?;
        ok_json(response, "nodes info").await
    }

    async fn stats(&self, metric: &str) -> Result<Value> {
        let response = self
            .client
            .nodes()
            .stats(NodesStatsParts::Metric(&[metric]))
            .send()
            .await?;
        ok_json(response, "nodes stats").await
    }

    /// Runs `f` with the names of a workload's indices, then deletes every index under those
    /// names, whether `f` succeeded or not.
    pub(crate) async fn with_indices<T, F, Fut>(&self, label: &str, f: F) -> Result<T>
    where
        F: FnOnce(Names) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let prefix = format!("es-bench-{}-{label}", self.run_id);
        let outcome = f(Names {
            prefix: prefix.clone(),
        })
        .await;
        let deleted = self.delete_under(&prefix).await;
        let value = outcome.with_context(|| format!("in indices {prefix}-*"))?;
        deleted?;
        Ok(value)
    }

    async fn delete_under(&self, prefix: &str) -> Result<()> {
        let pattern = format!("{prefix}-*");
        let response = self
            .client
            .cat()
            .indices(CatIndicesParts::Index(&[&pattern]))
            .format("json")
            .send()
            .await?;
        let listed = ok_json(response, "cat indices").await?;
        let names: Vec<&str> = listed
            .as_array()
            .map(|rows| rows.iter().filter_map(|r| r["index"].as_str()).collect())
            .unwrap_or_default();
        for name in names {
            let response = self
                .client
                .indices()
                .delete(IndicesDeleteParts::Index(&[name]))
                .send()
                .await?;
            ok_json(response, "delete index").await?;
        }
        Ok(())
    }

    /// One raw `_bulk` of `actions` actions into `index`, refreshing after it when `refresh`;
    /// fails unless every item succeeded.
    pub(crate) async fn bulk(
        &self,
        index: &str,
        body: &str,
        actions: usize,
        refresh: bool,
    ) -> Result<()> {
        let mut request = self
            .client
            .bulk(BulkParts::Index(index))
            .filter_path(&["errors", "items.*.status"]);
        if refresh {
            request = request.refresh(Refresh::True);
        }
        let answer = ok_json(request.body(vec![body]).send().await?, "bulk").await?;
        let items = answer["items"].as_array().map_or(0, Vec::len);
        ensure!(
            answer["errors"] == json!(false) && items == actions,
            "raw bulk: {items} items answered for {actions} actions, errors: {}",
            answer["errors"]
        );
        Ok(())
    }

    /// Indexes one document (no refresh).
    pub(crate) async fn index(&self, index: &str, id: &str, source: &Value) -> Result<()> {
        let response = self
            .client
            .index(IndexParts::IndexId(index, id))
            .body(source)
            .send()
            .await?;
        ok_json(response, "index").await.map(drop)
    }

    /// Makes everything written to `index` (or an alias) searchable.
    pub(crate) async fn refresh(&self, index: &str) -> Result<()> {
        let response = self
            .client
            .indices()
            .refresh(IndicesRefreshParts::Index(&[index]))
            .send()
            .await?;
        ok_json(response, "refresh").await.map(drop)
    }

    /// How many refreshes `index` (or the index behind an alias) has had: requested ones,
    /// periodic ones, and those a real-time get of unrefreshed documents forces.
    pub(crate) async fn refreshes(&self, index: &str) -> Result<u64> {
        let response = self
            .client
            .indices()
            .stats(IndicesStatsParts::IndexMetric(&[index], &["refresh"]))
            .send()
            .await?;
        let answer = ok_json(response, "index stats").await?;
        answer
            .pointer("/_all/primaries/refresh/total")
            .and_then(Value::as_u64)
            .context("index stats: no refresh total")
    }

    /// One `_mget` of `ids` from `index`; fails unless every document is found.
    pub(crate) async fn mget(&self, index: &str, ids: &[String]) -> Result<()> {
        let response = self
            .client
            .mget(MgetParts::Index(index))
            .body(json!({ "ids": ids }))
            .send()
            .await?;
        let answer = ok_json(response, "mget").await?;
        let found = answer["docs"].as_array().map_or(0, |docs| {
            docs.iter().filter(|d| d["found"] == json!(true)).count()
        });
        ensure!(
            found == ids.len(),
            "mget: {found} of {} documents found",
            ids.len()
        );
        Ok(())
    }

    /// How many documents `index` holds and the sums of their fields, in one search.
    pub(crate) async fn totals(&self, index: &str) -> Result<Totals> {
        let response = self
            .client
            .search(SearchParts::Index(&[index]))
            .body(json!({
                "size": 0,
                "track_total_hits": true,
                "aggs": {
                    "deposits": { "sum": { "field": "deposits" } },
                    "balance": { "sum": { "field": "balance" } },
                    "refs": { "value_count": { "field": LAST_REF } }
                }
            }))
            .send()
            .await?;
        let answer = ok_json(response, "search").await?;
        ensure!(
            answer.pointer("/_shards/failed") == Some(&json!(0)),
            "search: shards failed: {}",
            answer["_shards"]
        );
        let documents = answer
            .pointer("/hits/total/value")
            .and_then(Value::as_u64)
            .context("search: no total")?;
        let refs = answer
            .pointer("/aggregations/refs/value")
            .and_then(Value::as_u64);
        ensure!(
            refs == Some(documents),
            "search: {refs:?} refs in {documents} documents"
        );
        Ok(Totals {
            documents,
            deposits: exact_sum(&answer, "deposits")?,
            balance: exact_sum(&answer, "balance")?,
        })
    }
}

/// A `sum` aggregation's value, which the node computes as a double: exact below 2^53.
fn exact_sum(answer: &Value, name: &str) -> Result<u64> {
    let value = answer
        .pointer(&format!("/aggregations/{name}/value"))
        .and_then(Value::as_f64)
        .with_context(|| format!("search: no sum of {name}"))?;
    let text = format!("{value:.0}");
    text.parse()
        .with_context(|| format!("search: the sum of {name} is {value}"))
}

/// Sums `pointer` over the nodes of a nodes-stats answer.
fn sum_nodes(stats: &Value, pointer: &str) -> u64 {
    stats["nodes"]
        .as_object()
        .map(|nodes| {
            nodes
                .values()
                .filter_map(|n| n.pointer(pointer).and_then(Value::as_u64))
                .sum()
        })
        .unwrap_or(0)
}

/// The JSON body of a 2xx answer; any other status is an error with the body.
async fn ok_json(response: Response, what: &str) -> Result<Value> {
    let status = response.status_code().as_u16();
    let text = response
        .text()
        .await
        .with_context(|| format!("{what}: reading the answer"))?;
    if !(200..300).contains(&status) {
        bail!("{what}: HTTP {status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("{what}: an answer that is not JSON"))
}

/// Whether process `pid` of this machine is a search node (a JVM running OpenSearch or
/// Elasticsearch): a node in a container reports a pid of its own namespace.
fn is_local_search_node(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|title| {
        let title = String::from_utf8_lossy(&title).to_lowercase();
        title.contains("java") && (title.contains("opensearch") || title.contains("elasticsearch"))
    })
}
