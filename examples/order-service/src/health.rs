//! Health checks: `GET /health/liveness` (the process serves and no worker failed for good)
//! and `GET /health/readiness` (PostgreSQL answers, the search node answers, and every worker
//! runs with its breaker closed and its lag under the thresholds). Each dependency check gives up after the configured
//! dependency timeout, so a node that does not answer fails the probe instead of hanging it.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use cqrs_core::projection::ProjectionStatus;
use serde_json::{json, Value};

use crate::service;

/// What a check that passed says.
pub const OK: &str = "ok";

/// `GET /health/liveness`: 200 `{"status":"ok"}` while the process serves and no worker
/// failed, else 503 `{"status":"failed","checks":{...}}` naming each failed worker with its
/// error. A failed worker ([`ProjectionStatus::is_live`] false: a panic, an error no retry
/// cures) stays failed within the process, so a restart is its cure, which is what an
/// orchestrator does when liveness fails. A dependency outage never fails liveness (a restart
/// would not cure it): readiness reports it.
pub(crate) async fn liveness(
    State(state): State<Arc<service::State>>,
) -> (StatusCode, Json<Value>) {
    let failed: BTreeMap<String, String> = match state.workers.read().await.as_ref() {
        // Stopped by a shutdown, not failed.
        None => BTreeMap::new(),
        Some(workers) => (workers.all().into_iter())
            .map(|handle| handle.status())
            .filter(|status| !status.is_live())
            .map(|status| {
                let error = status.last_error.as_deref().unwrap_or("no error recorded");
                (status.name.clone(), format!("{}: {error}", status.state))
            })
            .collect(),
    };
    if failed.is_empty() {
        (StatusCode::OK, Json(json!({ "status": "ok" })))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "failed", "checks": failed })),
        )
    }
}

/// `GET /health/readiness`: 200 `{"status":"ready","checks":{...}}` when every check is
/// `"ok"`, else 503 `{"status":"not ready","checks":{...}}` with what failed in its check;
/// 503 `{"status":"draining"}` once a shutdown began (the instance still serves, for
/// [`Config::drain`](crate::Config::drain), while the load balancer stops sending).
pub(crate) async fn readiness(
    State(state): State<Arc<service::State>>,
) -> (StatusCode, Json<Value>) {
    if state.draining.load(Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "draining" })),
        );
    }
    let timeout = state.config.dependency_timeout;
    let (postgres, search) = tokio::join!(
        within(timeout, postgres(&state)),
        within(timeout, search(&state))
    );
    let mut checks = BTreeMap::new();
    checks.insert("postgres".to_owned(), postgres);
    checks.insert("search".to_owned(), search);
    match state.workers.read().await.as_ref() {
        None => {
            checks.insert("workers".to_owned(), "stopped".to_owned());
        }
        Some(workers) => {
            for handle in workers.all() {
                let status = handle.status();
                let check = worker(&status, state.config.max_lag_events, state.config.max_lag);
                checks.insert(status.name.clone(), check);
            }
        }
    }
    let ready = checks.values().all(|check| check == OK);
    let (code, status) = if ready {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    };
    (code, Json(json!({ "status": status, "checks": checks })))
}

/// A check's answer, or "no answer within ..." after `timeout`.
async fn within(timeout: Duration, check: impl std::future::Future<Output = String>) -> String {
    tokio::time::timeout(timeout, check)
        .await
        .unwrap_or_else(|_| format!("no answer within {} ms", timeout.as_millis()))
}

/// PostgreSQL answers a trivial query.
async fn postgres(state: &service::State) -> String {
    match sqlx::query("SELECT 1").execute(state.store.pool()).await {
        Ok(_) => OK.to_owned(),
        Err(error) => format!("failed: {error}"),
    }
}

/// The search node answers a ping.
async fn search(state: &service::State) -> String {
    match state.client.ping().send().await {
        Ok(response) if response.status_code().is_success() => OK.to_owned(),
        Ok(response) => format!("answered {}", response.status_code()),
        Err(error) => format!("failed: {error}"),
    }
}

/// A worker is ready when it runs (or catches up) with its breaker closed, at most
/// `max_events` behind, and the oldest event it has not applied yet is at most `max_lag` old
/// (zero at the head: a worker stuck behind an old event shows a lag that keeps growing).
pub(crate) fn worker(status: &ProjectionStatus, max_events: u64, max_lag: Duration) -> String {
    if !status.is_ready() {
        return format!("{}, breaker {}", status.state, status.breaker);
    }
    if status.lag_events > max_events {
        return format!(
            "{} events behind, more than {max_events}",
            status.lag_events
        );
    }
    let behind = status.unapplied_age(time::OffsetDateTime::now_utc());
    if behind > max_lag {
        return format!(
            "{} ms behind, more than {} ms",
            behind.as_millis(),
            max_lag.as_millis()
        );
    }
    OK.to_owned()
}
