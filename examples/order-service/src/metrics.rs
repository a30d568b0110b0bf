//! `GET /metrics`: the Prometheus text of every metric recorded in the process, the
//! framework's (through [`cqrs_core::telemetry::metrics`]) and the HTTP layer's.
//!
//! The recorder of the `metrics` facade is process-global: [`install`] builds and installs
//! the Prometheus recorder once per process and keeps its handle, so every [`Service`] in the
//! process renders the same registry (the HTTP metrics are not labelled by service). When
//! another recorder was installed first, `/metrics` answers 503.
//!
//! [`Service`]: crate::Service

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use cqrs_core::process::{ProcessManager, Processes};
use cqrs_core::{Clock, SystemClock};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use quickstart::saga::orchestrated::OrderFulfilment;

use crate::http::Problem;
use crate::service;

/// Requests served, by `method`, `route` (the route's template, `/orders/{id}`) and `status`.
pub const HTTP_REQUESTS: &str = "http_requests_total";

/// Request latency in seconds, by `method` and `route` (a histogram).
pub const HTTP_DURATION: &str = "http_request_duration_seconds";

/// The `source` of the saga's instance counts in `cqrs_gauges_refreshed`.
pub const PROCESS_INSTANCES_SOURCE: &str = "process_instances";

/// The `source` of the feed horizon's gauges in `cqrs_gauges_refreshed`.
pub const FEED_HORIZON_SOURCE: &str = "feed_horizon";

/// How long an instance may go without progress before it counts as stuck.
pub const STUCK_AFTER: Duration = Duration::from_secs(60);

/// The histogram buckets of [`HTTP_DURATION`], in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// The Content-Type of the Prometheus text format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder as the process's `metrics` recorder, once; later calls
/// return the same handle. `None` when another recorder was installed first.
pub fn install() -> Option<&'static PrometheusHandle> {
    RECORDER
        .get_or_init(|| {
            let mut builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.to_owned()), &BUCKETS)
                .ok()?;
            // Without bounds the exporter renders a histogram as a summary, which no query
            // can combine across replicas.
            for (name, bounds) in cqrs_core::telemetry::metrics::HISTOGRAMS {
                builder = builder
                    .set_buckets_for_metric(Matcher::Full(name.to_owned()), bounds)
                    .ok()?;
            }
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed: /metrics answers 503");
                return None;
            }
            describe();
            keep_up(handle.clone());
            Some(handle)
        })
        .as_ref()
}

/// How often the recorder's upkeep runs between scrapes (the exporter's own default).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Runs the recorder's upkeep every [`UPKEEP_EVERY`] on a thread of its own, for the process's
/// life. A histogram keeps each value recorded until an upkeep (or a render) folds it into its
/// buckets: with a recorder built alone, that happened only when `/metrics` was scraped, so a
/// service nobody scraped (Prometheus down, or not set up yet) kept every latency it recorded,
/// several per command, for good.
fn keep_up(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".to_owned())
        .spawn(move || loop {
            std::thread::sleep(UPKEEP_EVERY);
            handle.run_upkeep();
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "no metrics upkeep thread: histograms drain only when scraped");
    }
}

/// Describes the HTTP metrics and the framework's.
fn describe() {
    cqrs_core::telemetry::metrics::describe();
    metrics::describe_counter!(HTTP_REQUESTS, "HTTP requests served");
    metrics::describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "HTTP request latency"
    );
}

/// Counts one request and records its latency (the labels' strings are the middleware's own:
/// one copy each for the histogram, none for the counter).
pub(crate) fn http_request(method: String, route: String, status: u16, took: Duration) {
    metrics::histogram!(HTTP_DURATION, "method" => method.clone(), "route" => route.clone())
        .record(took.as_secs_f64());
    metrics::counter!(HTTP_REQUESTS, "method" => method, "route" => route, "status" => status.to_string())
        .increment(1);
}

/// `GET /metrics`: refreshes the gauges from each worker's status, and those read from
/// PostgreSQL (the saga's instance counts, the feed's horizon) at most once a second
/// ([`GaugeRefresh`]), then renders the registry.
pub(crate) async fn scrape(State(state): State<Arc<service::State>>) -> Response {
    let Some(handle) = install() else {
        return Problem::unavailable("another metrics recorder is installed").into_response();
    };
    if let Some(workers) = state.workers.read().await.as_ref() {
        for worker in workers.all() {
            cqrs_core::telemetry::metrics::record_projection(&worker.status());
        }
    }
    state
        .gauges
        .run(async {
            let processes = Processes::new(state.store.clone());
            let counts = processes.counts(OrderFulfilment::TYPE, SystemClock.now(), STUCK_AFTER);
            refresh(&state, PROCESS_INSTANCES_SOURCE, counts, |counts| {
                cqrs_core::telemetry::metrics::record_processes(OrderFulfilment::TYPE, &counts);
            })
            .await;
            refresh(
                &state,
                FEED_HORIZON_SOURCE,
                state.store.feed_horizon(),
                |horizon| cqrs_postgres::record_feed_horizon(&horizon),
            )
            .await;
        })
        .await;
    handle.run_upkeep();
    ([(header::CONTENT_TYPE, PROMETHEUS_TEXT)], handle.render()).into_response()
}

/// How often at most the gauges read from the stores are refreshed.
pub(crate) const REFRESH_EVERY: Duration = Duration::from_secs(1);

/// Scrapes share a refresh of the gauges read from the stores: one at a time, at most one per
/// interval. Each refresh reads the database (the saga's instances counted by state, the
/// feed's horizon), each read holding a pooled connection up to the dependency timeout, and
/// `/metrics` answers whoever asks: a client calling it in a loop, or many at once, made as
/// many reads and starved the commands of connections.
pub(crate) struct GaugeRefresh {
    every: Duration,
    last: tokio::sync::Mutex<Option<tokio::time::Instant>>,
}

impl GaugeRefresh {
    /// At most one refresh per `every`.
    pub(crate) fn new(every: Duration) -> Self {
        Self {
            every,
            last: tokio::sync::Mutex::new(None),
        }
    }

    /// Runs `refresh` unless one ended within the interval; a scrape arriving while one runs
    /// waits for it and renders what it read.
    pub(crate) async fn run(&self, refresh: impl std::future::Future<Output = ()>) {
        let mut last = self.last.lock().await;
        if last.is_some_and(|at| at.elapsed() < self.every) {
            return;
        }
        refresh.await;
        *last = Some(tokio::time::Instant::now());
    }
}

/// Reads what `source`'s gauges show, within the dependency timeout, and sets them with
/// `record`; says in `cqrs_gauges_refreshed` whether that worked (else they keep their last
/// values), and logs why not.
async fn refresh<T, E: std::error::Error + 'static>(
    state: &service::State,
    source: &str,
    read: impl std::future::Future<Output = Result<T, E>>,
    record: impl FnOnce(T),
) {
    let refreshed = match tokio::time::timeout(state.config.dependency_timeout, read).await {
        Ok(Ok(value)) => {
            record(value);
            true
        }
        Ok(Err(error)) => {
            tracing::warn!(
                source,
                error = &error as &dyn std::error::Error,
                "refreshing gauges failed"
            );
            false
        }
        Err(_) => {
            tracing::warn!(source, "refreshing gauges timed out");
            false
        }
    };
    cqrs_core::telemetry::metrics::record_refresh(source, refreshed);
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::GaugeRefresh;

    async fn scrapes(refresh: &Arc<GaugeRefresh>, n: usize) -> usize {
        let reads = Arc::new(AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..n {
            let (refresh, reads) = (Arc::clone(refresh), Arc::clone(&reads));
            tasks.spawn(async move {
                refresh
                    .run(async {
                        reads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    })
                    .await;
            });
        }
        while tasks.join_next().await.is_some() {}
        reads.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn scrapes_at_once_share_one_read_of_the_stores() {
        let refresh = Arc::new(GaugeRefresh::new(Duration::from_secs(3600)));
        assert_eq!(scrapes(&refresh, 10).await, 1);
        assert_eq!(scrapes(&refresh, 10).await, 0, "within the interval: none");
    }

    #[tokio::test]
    async fn past_the_interval_each_scrape_reads_again_one_at_a_time() {
        let refresh = Arc::new(GaugeRefresh::new(Duration::ZERO));
        assert_eq!(scrapes(&refresh, 5).await, 5);
    }
}
