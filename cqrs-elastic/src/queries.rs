//! [`EsQueries`]: typed queries on a read model's alias.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use cqrs_core::{CheckpointStore, Position};
use elasticsearch::{CountParts, Elasticsearch, GetParts, SearchParts};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::client::RedactedClient;
use crate::document::Stored;
use crate::index::validate_name;
use crate::search::live_only;
use crate::{http, ElasticProjection, EsError, Hit, Page, Query, Result, Search};

/// Typed queries on the read model `name` (its alias), returning documents of type `T`: the
/// query half of an [`EsReadModel`](crate::EsReadModel), for code that only reads (an HTTP
/// handler) and does not need the projection.
///
/// Every query goes through the alias, so it keeps working across rebuilds; deleted documents
/// (tombstones) are never returned. Cloning is cheap.
pub struct EsQueries<T> {
    client: Elasticsearch,
    alias: String,
    document: PhantomData<fn() -> T>,
}

impl<T> Clone for EsQueries<T> {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            alias: self.alias.clone(),
            document: PhantomData,
        }
    }
}

impl<T> fmt::Debug for EsQueries<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EsQueries")
            .field("client", &RedactedClient)
            .field("alias", &self.alias)
            .finish()
    }
}

impl<T: DeserializeOwned> EsQueries<T> {
    /// Queries on the read model `name`.
    pub fn new(client: Elasticsearch, name: impl Into<String>) -> Result<Self> {
        let alias = name.into();
        validate_name(&alias)?;
        Ok(Self {
            client,
            alias,
            document: PhantomData,
        })
    }

    /// Queries on `projection`'s read model.
    pub fn for_projection<P>(client: Elasticsearch, projection: &P) -> Result<Self>
    where
        P: ElasticProjection<Document = T>,
    {
        Self::new(client, projection.name())
    }

    /// The alias it queries.
    pub fn name(&self) -> &str {
        &self.alias
    }

    /// The document `id`, `None` when absent or deleted. Real-time: it sees writes that are not
    /// yet searchable.
    pub async fn get(&self, id: &str) -> Result<Option<T>> {
        if matches!(id, "." | "..") {
            // In a path, the client's URL handling resolves them as segments (`_doc/..` is
            // `/`); an `_mget` names the id in its body.
            let mut found = crate::mget::mget(&self.client, &self.alias, &[id]).await?;
            let stored = found
                .remove(id)
                .map(|current| current.stored)
                .unwrap_or(Ok(None))
                .map_err(|detail| http::unexpected("get", detail))?;
            return match stored {
                Some(stored) => stored.document(id),
                None => Ok(None),
            };
        }
        let response = self
            .client
            .get(GetParts::IndexId(&self.alias, id))
            .send()
            .await?;
        let (status, body) = http::json_any(response).await?;
        match status {
            200 => {}
            // A missing document answers 404 with `found: false`; a missing index, 404 with an
            // error, which is not "no such document".
            404 if body.get("found") == Some(&Value::Bool(false)) => return Ok(None),
            _ => {
                return Err(EsError::Status {
                    operation: "get",
                    status,
                    reason: http::reason(&body),
                })
            }
        }
        let source = body.get("_source").cloned().unwrap_or(Value::Null);
        Stored::from_source(id, source)
            .map_err(|detail| http::unexpected("get", detail))?
            .document(id)
    }

    /// One page of documents matching `search`.
    pub async fn search(&self, search: &Search) -> Result<Page<T>> {
        let response = self
            .client
            .search(SearchParts::Index(&[&self.alias]))
            .body(search.to_body())
            .send()
            .await?;
        let answer = http::json_ok(response, "search").await?;
        check_shards(&answer, "search")?;
        parse_page(&answer)
    }

    /// How many documents match `query`.
    pub async fn count(&self, query: &Query) -> Result<u64> {
        let response = self
            .client
            .count(CountParts::Index(&[&self.alias]))
            .body(json!({ "query": live_only(query) }))
            .send()
            .await?;
        let answer = http::json_ok(response, "count").await?;
        check_shards(&answer, "count")?;
        answer
            .get("count")
            .and_then(Value::as_u64)
            .ok_or_else(|| http::unexpected("count", "no count in the answer"))
    }

    /// Waits until projection `projection_name` has checkpointed `position` (typically a
    /// command's [`CommandOutcome::position`](cqrs_core::CommandOutcome)), polling `checkpoints`
    /// until `timeout` has passed. `true` when it got there: with the projector's default
    /// [`RefreshPolicy::Immediate`](crate::RefreshPolicy::Immediate), searches then see the
    /// command's effect (`get` always does).
    pub async fn wait_for_position(
        &self,
        checkpoints: &dyn CheckpointStore,
        projection_name: &str,
        position: Position,
        timeout: Duration,
    ) -> Result<bool> {
        wait_for_position(checkpoints, projection_name, position, timeout).await
    }
}

/// Polls `checkpoints` until `projection_name` reaches `position` or `timeout` passes.
pub(crate) async fn wait_for_position(
    checkpoints: &dyn CheckpointStore,
    projection_name: &str,
    position: Position,
    timeout: Duration,
) -> Result<bool> {
    // `None`: too far off to fall due (a timeout of `Duration::MAX`).
    let deadline = Instant::now().checked_add(timeout);
    let mut pause = Duration::from_millis(2);
    loop {
        let reached = checkpoints
            .load_checkpoint(projection_name)
            .await?
            .is_some_and(|checkpoint| checkpoint >= position);
        if reached {
            return Ok(true);
        }
        let left = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
        if left.is_some_and(|left| left.is_zero()) {
            return Ok(false);
        }
        tokio::time::sleep(left.map_or(pause, |left| pause.min(left))).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

fn check_shards(answer: &Value, operation: &'static str) -> Result<()> {
    let failed = answer
        .pointer("/_shards/failed")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if failed == 0 {
        return Ok(());
    }
    let reason = answer
        .pointer("/_shards/failures/0/reason")
        .map_or_else(String::new, http::reason);
    Err(http::unexpected(
        operation,
        format!("{failed} shard(s) failed: {reason}"),
    ))
}

/// The page of a search answer.
pub(crate) fn parse_page<T: DeserializeOwned>(answer: &Value) -> Result<Page<T>> {
    let hits = answer
        .pointer("/hits/hits")
        .and_then(Value::as_array)
        .ok_or_else(|| http::unexpected("search", "no hits in the answer"))?;
    let (total, total_is_exact) = match answer.pointer("/hits/total") {
        Some(Value::Number(n)) => (n.as_u64().unwrap_or(0), true),
        Some(total) => (
            total.get("value").and_then(Value::as_u64).unwrap_or(0),
            total.get("relation").and_then(Value::as_str) != Some("gte"),
        ),
        None => (0, false),
    };
    let mut page = Page {
        hits: Vec::with_capacity(hits.len()),
        total,
        total_is_exact,
    };
    for hit in hits {
        let id = hit
            .get("_id")
            .and_then(Value::as_str)
            .ok_or_else(|| http::unexpected("search", "a hit without an id"))?;
        let source = hit.get("_source").cloned().unwrap_or(Value::Null);
        let stored =
            Stored::from_source(id, source).map_err(|detail| http::unexpected("search", detail))?;
        let position = stored.position;
        let Some(document) = stored.document(id)? else {
            continue;
        };
        let sort = match hit.get("sort") {
            Some(Value::Array(values)) => values.clone(),
            _ => Vec::new(),
        };
        page.hits.push(Hit {
            id: id.to_owned(),
            document,
            sort,
            position,
        });
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Deserialize)]
    struct Doc {
        n: u32,
    }

    #[tokio::test]
    async fn a_wait_as_long_as_duration_allows_returns_once_the_position_is_reached() {
        let store = cqrs_core::InMemoryEventStore::new();
        let position = Position::from_parts(1, 1);
        store.save_checkpoint("p", position).await.expect("saved");
        let reached = wait_for_position(&store, "p", position, Duration::MAX).await;
        assert!(reached.expect("read"));
    }

    #[test]
    fn pages_carry_ids_documents_sort_values_and_totals() {
        let answer = json!({
            "_shards": { "total": 1, "successful": 1, "failed": 0 },
            "hits": { "total": { "value": 10000, "relation": "gte" }, "hits": [
                { "_id": "a", "_source": { "n": 1, "cqrs": { "id": "a", "position": "3/1", "deleted": false } },
                  "sort": [1, "a"] },
                { "_id": "b", "_source": { "n": 2, "cqrs": { "id": "b", "position": "4/0", "deleted": false } },
                  "sort": [2, "b"] }
            ] }
        });
        let page: Page<Doc> = parse_page(&answer).unwrap();
        assert_eq!(page.total, 10000);
        assert!(!page.total_is_exact);
        assert_eq!(page.hits[1].document, Doc { n: 2 });
        assert_eq!(page.hits[0].position, Some(Position::from_parts(3, 1)));
        assert_eq!(page.next_after(), Some(vec![json!(2), json!("b")]));
        assert!(matches!(check_shards(&answer, "search"), Ok(())));
    }

    #[test]
    fn partial_results_are_errors() {
        let answer = json!({ "_shards": { "total": 2, "failed": 1,
            "failures": [{ "reason": { "type": "x", "reason": "boom" } }] } });
        let error = check_shards(&answer, "search").unwrap_err();
        // A partial answer is not retried: the caller gets it, with the shard's reason.
        assert!(!error.is_transient(), "{error:?}");
        assert!(
            matches!(&error, EsError::UnexpectedResponse { operation: "search", detail }
                if detail == "1 shard(s) failed: x: boom"),
            "{error:?}"
        );
    }
}
