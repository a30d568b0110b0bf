//! The query handlers: order summaries from the search node's read model, after waiting for
//! the read side to reach `min_position` when the request asks for it (read-your-writes).
//!
//! A query with `min_position=<major/minor>` (a command's `position`) waits until the read
//! side's projection has applied that position, at most the configured read wait
//! ([`Config::read_wait`](crate::Config::read_wait)); past it, the answer is **504**
//! (`/problems/read-model-behind`, naming where the read model is): the caller may retry, or
//! ask without `min_position` for an answer that may be stale. A projection that failed or
//! stopped answers 503 at once.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query as Params, State};
use axum::Json;
use cqrs_core::projection::WaitError;
use cqrs_core::Position;
use cqrs_elastic::{EsError, Query, Search, SortOrder};
use quickstart::order::OrderStatus;
use quickstart::summary::OrderSummary;
use serde_json::{json, Value};

use super::Problem;
use crate::service;

type AppState = State<Arc<service::State>>;

/// The most summaries one page holds.
pub const MAX_PAGE: u64 = 100;

/// How far pages reach into a search's matches: the search node's `index.max_result_window`
/// by default, past which it refuses the search.
const RESULT_WINDOW: u64 = 10_000;

/// The summaries a page holds unless `size` says otherwise.
pub const DEFAULT_PAGE: u64 = 20;

/// `GET /orders/{id}[?min_position=]`: the order's summary, 404 when the read model has none.
pub(crate) async fn get(
    State(state): AppState,
    Path(id): Path<String>,
    Params(params): Params<HashMap<String, String>>,
) -> Result<Json<OrderSummary>, Problem> {
    wait(&state, min_position(&params)?).await?;
    match asked(&state, state.summaries.get(&id)).await? {
        Ok(Some(summary)) => Ok(Json(summary)),
        Ok(None) => Err(Problem::not_found(format!(
            "no order {id} in the read model"
        ))),
        Err(error) => Err(search_failed(&error)),
    }
}

/// `GET /orders?status=&customer=&from=&size=[&min_position=]`: a page of summaries by order
/// id, with the total matching.
pub(crate) async fn search(
    State(state): AppState,
    Params(params): Params<HashMap<String, String>>,
) -> Result<Json<Value>, Problem> {
    wait(&state, min_position(&params)?).await?;
    let mut query = Query::bool();
    if let Some(status) = params.get("status") {
        query = query.filter(Query::term("status", status_value(status)?));
    }
    if let Some(customer) = params.get("customer") {
        query = query.filter(Query::term("customer", customer.as_str()));
    }
    let from = number(&params, "from")?.unwrap_or(0);
    let size = number(&params, "size")?.unwrap_or(DEFAULT_PAGE);
    if size > MAX_PAGE {
        return Err(Problem::bad_request(format!("size is at most {MAX_PAGE}")));
    }
    if from.saturating_add(size) > RESULT_WINDOW {
        return Err(Problem::bad_request(format!(
            "pages reach the first {RESULT_WINDOW} orders a search matches (from + size); \
             narrow the search by status or customer"
        )));
    }
    let search = Search::new(query)
        .sort("id", SortOrder::Asc)
        .from(from)
        .size(size)
        .exact_total(true);
    let page = asked(&state, state.summaries.search(&search))
        .await?
        .map_err(|e| search_failed(&e))?;
    let shown = u64::try_from(page.hits.len()).unwrap_or(u64::MAX);
    // No next page past what pages reach: the client narrows the search instead.
    let reached = from.saturating_add(shown);
    let next = (reached < page.total && reached < RESULT_WINDOW).then_some(reached);
    let orders: Vec<OrderSummary> = page.hits.into_iter().map(|hit| hit.document).collect();
    Ok(Json(json!({
        "orders": orders,
        "total": page.total,
        "from": from,
        "size": size,
        "next_from": next,
    })))
}

/// The `min_position` parameter, if given.
fn min_position(params: &HashMap<String, String>) -> Result<Option<Position>, Problem> {
    params
        .get("min_position")
        .map(|p| {
            p.trim().parse().map_err(|_| {
                Problem::bad_request("min_position is a feed position, written major/minor")
            })
        })
        .transpose()
}

/// A number parameter, if given.
fn number(params: &HashMap<String, String>, name: &str) -> Result<Option<u64>, Problem> {
    params
        .get(name)
        .map(|v| {
            (v.trim().parse())
                .map_err(|_| Problem::bad_request(format!("{name} is not a whole number")))
        })
        .transpose()
}

/// A status as the read model stores it, from its lowercase name (`placed`).
fn status_value(name: &str) -> Result<Value, Problem> {
    let status = [
        OrderStatus::Placed,
        OrderStatus::Confirmed,
        OrderStatus::Shipped,
        OrderStatus::Cancelled,
    ]
    .into_iter()
    .find(|s| s.to_string() == name.trim().to_lowercase())
    .ok_or_else(|| {
        Problem::bad_request("status is one of placed, confirmed, shipped, cancelled")
    })?;
    serde_json::to_value(status).map_err(|e| Problem::internal(e.to_string()))
}

/// Waits until the read side has applied `position` (when given), at most the read wait.
async fn wait(state: &service::State, position: Option<Position>) -> Result<(), Problem> {
    let Some(position) = position else {
        return Ok(());
    };
    let workers = state.workers.read().await;
    let Some(workers) = workers.as_ref() else {
        return Err(Problem::unavailable("the service is shutting down"));
    };
    match workers
        .read_side
        .wait_for(position, state.config.read_wait)
        .await
    {
        Ok(_) => Ok(()),
        Err(WaitError::TimedOut(status)) => Err(Problem::stale(format!(
            "the read model is at {}, not at {position} yet, after {} ms",
            status.position,
            state.config.read_wait.as_millis()
        ))),
        Err(error) => {
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                "read-your-write wait failed"
            );
            Err(Problem::dependency_unavailable())
        }
    }
}

/// The search node's answer to `query`, or 503 past the dependency timeout: a node that
/// accepts the connection and never answers would hold the request for the search client's
/// own timeout (30 s).
async fn asked<T>(
    state: &service::State,
    query: impl std::future::Future<Output = T>,
) -> Result<T, Problem> {
    let timeout = state.config.dependency_timeout;
    tokio::time::timeout(timeout, query).await.map_err(|_| {
        let waited = timeout.as_millis();
        tracing::warn!(
            waited_ms = waited,
            "query failed: the search node did not answer"
        );
        Problem::dependency_unavailable()
    })
}

/// The problem of a failed search: 503 when the node is down, 500 otherwise.
fn search_failed(error: &EsError) -> Problem {
    tracing::warn!(error = error as &dyn std::error::Error, "query failed");
    Problem::from_kind(error.kind(), format!("the search node failed: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_named_in_lowercase_and_others_refused() {
        assert_eq!(status_value("shipped").unwrap(), json!("Shipped"));
        assert_eq!(status_value("lost").unwrap_err().status, 400);
    }

    #[test]
    fn a_min_position_is_major_slash_minor() {
        let params = HashMap::from([("min_position".to_owned(), "12/3".to_owned())]);
        assert_eq!(
            min_position(&params).unwrap(),
            Some(Position::from_parts(12, 3))
        );
        let params = HashMap::from([("min_position".to_owned(), "12".to_owned())]);
        assert_eq!(min_position(&params).unwrap_err().status, 400);
    }
}
