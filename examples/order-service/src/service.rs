//! [`Service`]: the servers connected, the workers started, and the HTTP API on top.
//!
//! [`Service::start`] connects to PostgreSQL (and migrates its schema) and to the search node
//! (and creates the read model unless it exists), then starts three workers as the quick start
//! does: the order summaries' projection runner, the orchestrated saga's process manager (its
//! runner and timer pump) and the simulated carrier. [`Service::serve`] answers HTTP until its
//! shutdown future completes, then stops the workers, so that each saves its checkpoint and
//! releases its lease. Nothing is global but the metrics recorder (see [`crate::metrics`]):
//! several services run side by side in one process.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::serve::ListenerExt as _;
use cqrs_core::process::ProcessOptions;
use cqrs_core::projection::{ProjectionHandle, ProjectionRunner, ProjectionStatus};
use cqrs_core::{Repository, RetryPolicy, SnapshotPolicy};
use cqrs_elastic::{EsError, EsReadModel};
use cqrs_postgres::{PgError, PgEventStore, PgSchema};
use elasticsearch::Elasticsearch;
use quickstart::carrier::{Answers, Carrier};
use quickstart::payment::CardLimits;
use quickstart::read_side::EsOrderSummaries;
use quickstart::saga::{self, orchestrated::OrderFulfilment};
use quickstart::shop::Shop;
use tokio::net::TcpListener;
use tokio::sync::RwLock;

use crate::Config;

/// Connections in the service's PostgreSQL pool.
const POOL_SIZE: u32 = 10;

/// Aggregate states the stock repository keeps between commands.
const STOCK_CACHE: usize = 1024;

/// Why [`Service::start`] failed. The messages never show a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A setting holds what it may not (see [`Config::validate`](crate::Config::validate)).
    #[error("invalid configuration")]
    Config(#[source] crate::config::ConfigError),
    /// The schema name is not a plain lowercase identifier.
    #[error("invalid schema name")]
    Schema(#[source] PgError),
    /// PostgreSQL could not be reached, or refused the login.
    #[error("could not connect to postgresql")]
    Database(#[source] PgError),
    /// The schema could not be migrated.
    #[error("could not migrate the event store's schema")]
    Migrate(#[source] PgError),
    /// The search node's URL or the read model's name was refused.
    #[error("invalid search node settings")]
    Search(#[source] EsError),
    /// The read model could not be created on the search node.
    #[error("could not prepare the read model on the search node")]
    ReadModel(#[source] EsError),
}

/// The order service: its servers, its workers and its HTTP API. Stop it with
/// [`serve`](Service::serve)'s shutdown future or [`shutdown`](Service::shutdown); dropping it
/// aborts the workers.
pub struct Service {
    pub(crate) state: Arc<State>,
    /// The web console's routes (none unless `console_token` is set), made once: its
    /// sessions and lag samples live as long as the service.
    console: axum::Router,
}

/// What the HTTP handlers share.
pub(crate) struct State {
    pub(crate) config: Config,
    pub(crate) shop: Shop<PgEventStore>,
    pub(crate) store: PgEventStore,
    pub(crate) client: Elasticsearch,
    pub(crate) summaries: EsReadModel<EsOrderSummaries>,
    /// `None` once shut down. Handlers read it (a status, a wait); shutdown takes it once
    /// the server has finished every request.
    pub(crate) workers: RwLock<Option<Workers>>,
    /// Shared by the scrapes of `/metrics`.
    pub(crate) gauges: crate::metrics::GaugeRefresh,
    /// Set once a shutdown began: readiness answers 503 `draining` while requests are still
    /// served (see [`Config::drain`]).
    pub(crate) draining: AtomicBool,
}

/// The running workers.
pub(crate) struct Workers {
    /// The order summaries in the search node.
    pub(crate) read_side: ProjectionHandle,
    /// The orchestrated saga (runner and timer pump).
    pub(crate) saga: ProjectionHandle,
    /// The simulated carrier.
    pub(crate) carrier: ProjectionHandle,
}

impl Workers {
    /// Each worker's handle, the read side first.
    pub(crate) fn all(&self) -> [&ProjectionHandle; 3] {
        [&self.read_side, &self.saga, &self.carrier]
    }
}

impl Service {
    /// Connects, migrates, prepares the read model and starts the workers.
    ///
    /// # Errors
    ///
    /// A [`StartError`] naming the step that failed.
    pub async fn start(config: Config) -> Result<Self, StartError> {
        config.validate().map_err(StartError::Config)?;
        let schema = PgSchema::new(&config.schema).map_err(StartError::Schema)?;
        // Connecting checks the URL and makes one connection at once (a wrong address fails
        // here, within seconds); the service then uses its own pool, whose requests give up
        // after the dependency timeout instead of sqlx's 30 s (from the store's pool options:
        // a connection is checked before use only after a second idle).
        let checked = PgEventStore::connect(&config.database_url)
            .await
            .map_err(StartError::Database)?;
        let options = (*checked.pool().connect_options()).clone();
        checked.pool().close().await;
        let pool = cqrs_postgres::pool_options()
            .max_connections(POOL_SIZE)
            .acquire_timeout(config.dependency_timeout)
            .connect_lazy_with(options);
        // Groups concurrent appends by default (`cqrs_postgres::GroupCommit`).
        let store = PgEventStore::new(pool).with_schema(schema);
        store.migrate().await.map_err(StartError::Migrate)?;

        let client =
            cqrs_elastic::connect(&config.elasticsearch_url).map_err(StartError::Search)?;
        let summaries = EsReadModel::new(client.clone(), EsOrderSummaries::new(&config.index))
            .map_err(StartError::Search)?;
        summaries.ensure().await.map_err(StartError::ReadModel)?;

        crate::metrics::install();
        let cards = CardLimits::new();
        let retry = RetryPolicy::new(config.command_attempts);
        let shop = Shop {
            orders: Repository::new(store.clone()).with_retry(retry),
            stock: Repository::new(store.clone())
                .with_snapshots(SnapshotPolicy::every(100))
                .with_cache(STOCK_CACHE)
                .with_retry(retry),
            payments: Repository::with_services(store.clone(), cards.clone()).with_retry(retry),
            shipments: Repository::new(store.clone()).with_retry(retry),
        };
        let read_side = ProjectionRunner::for_store(summaries.projector(), &store).spawn();
        let saga =
            saga::runner::<OrderFulfilment, _>(&store, cards, ProcessOptions::default()).spawn();
        let carrier = Carrier::new(store.clone(), Answers::All).runner().spawn();
        let workers = Workers {
            read_side,
            saga,
            carrier,
        };
        tracing::info!(
            schema = %config.schema,
            index = %config.index,
            "order service started"
        );
        let state = Arc::new(State {
            config,
            shop,
            store,
            client,
            summaries,
            workers: RwLock::new(Some(workers)),
            gauges: crate::metrics::GaugeRefresh::new(crate::metrics::REFRESH_EVERY),
            draining: AtomicBool::new(false),
        });
        let console = crate::console::router(&state);
        Ok(Self { state, console })
    }

    /// The HTTP API (see the crate's docs for its routes). Cheap: every router shares this
    /// service.
    pub fn router(&self) -> axum::Router {
        crate::http::router(Arc::clone(&self.state)).merge(self.console.clone())
    }

    /// The repositories the HTTP commands go through: a benchmark can send the same commands
    /// directly.
    pub fn shop(&self) -> &Shop<PgEventStore> {
        &self.state.shop
    }

    /// The event store.
    pub fn store(&self) -> &PgEventStore {
        &self.state.store
    }

    /// The read side's projection status (`None` once shut down): where its checkpoint is,
    /// what it applied since start, its lag and breaker.
    pub async fn read_side_status(&self) -> Option<ProjectionStatus> {
        let workers = self.state.workers.read().await;
        workers.as_ref().map(|w| w.read_side.status())
    }

    /// Every worker's status (read side, saga, carrier); empty once shut down.
    pub async fn worker_statuses(&self) -> Vec<ProjectionStatus> {
        let workers = self.state.workers.read().await;
        workers.as_ref().map_or_else(Vec::new, |w| {
            w.all().iter().map(|handle| handle.status()).collect()
        })
    }

    /// The config it runs with.
    pub fn config(&self) -> &Config {
        &self.state.config
    }

    /// Serves the API on `listener` until `shutdown` completes; then drains for
    /// [`Config::drain`] (readiness answers 503 `draining`, every request is still served),
    /// stops accepting, lets the requests in flight finish for at most
    /// [`Config::shutdown_grace`] (then stops waiting for them: their connections end with the
    /// process, and whatever they still ask of a worker answers 503), and shuts the workers
    /// down ([`Service::shutdown`]).
    ///
    /// # Errors
    ///
    /// The listener's I/O error; the workers are shut down all the same.
    pub async fn serve<F>(self, listener: TcpListener, shutdown: F) -> std::io::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (signalled, heard) = tokio::sync::oneshot::channel::<()>();
        let state = self.state.clone();
        let shutdown = async move {
            shutdown.await;
            state.draining.store(true, Ordering::SeqCst);
            let drain = state.config.drain;
            if !drain.is_zero() {
                tracing::info!(
                    drain_ms = drain.as_millis(),
                    "draining: not ready, still serving, before accepting no more connections"
                );
                tokio::time::sleep(drain).await;
            }
            let _ = signalled.send(());
        };
        let grace = self.state.config.shutdown_grace;
        let served = {
            let serving = self.serve_http(listener, shutdown);
            tokio::pin!(serving);
            tokio::select! {
            served = &mut serving => served,
            () = async {
                match heard.await {
                    Ok(()) => tokio::time::sleep(grace).await,
                    // Serving ended before any signal: the other branch is ready.
                    Err(_) => std::future::pending().await,
                }
            } => {
                tracing::warn!(
                    grace_ms = grace.as_millis(),
                    "requests still in flight after the shutdown grace: no longer waiting for \
                     them (the workers stop; their connections end with the process)"
                );
                Ok(())
            }
            }
        };
        self.shutdown().await;
        served
    }

    /// Serves the API on `listener` until `shutdown` completes, then stops accepting and lets
    /// every request in flight finish; the workers keep running (see [`Service::serve`], which
    /// shuts them down too). Connections send each response at once (`TCP_NODELAY`): without
    /// it, a response written in two segments can wait for the client's delayed ack.
    ///
    /// # Errors
    ///
    /// The listener's I/O error.
    pub async fn serve_http<F>(&self, listener: TcpListener, shutdown: F) -> std::io::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let listener = listener.tap_io(|tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "could not set TCP_NODELAY");
            }
        });
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
    }

    /// Stops the workers gracefully: the saga and the carrier first (they send commands), then the read
    /// side. Each finishes its batch in hand, saves its checkpoint and releases its lease.
    /// Requests still running get 503 for anything that needs a worker.
    pub async fn shutdown(self) {
        let workers = self.state.workers.write().await.take();
        if let Some(workers) = workers {
            workers.saga.shutdown().await;
            workers.carrier.shutdown().await;
            workers.read_side.shutdown().await;
            tracing::info!("order service stopped: workers saved their checkpoints");
        }
    }
}

impl Drop for Service {
    /// A service dropped without [`serve`](Service::serve) or [`shutdown`](Service::shutdown)
    /// aborts its workers, as a crash would (no checkpoint saved, leases left to expire),
    /// rather than leave them running unowned.
    fn drop(&mut self) {
        let Ok(mut workers) = self.state.workers.try_write() else {
            return;
        };
        if let Some(workers) = workers.take() {
            workers.saga.abort();
            workers.carrier.abort();
            workers.read_side.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Service, StartError};
    use crate::Config;

    #[tokio::test]
    async fn a_zero_dependency_timeout_set_in_code_is_refused_before_connecting() {
        // The variable refuses 0; a config built in code (`with_dependency_timeout`, or the
        // public field) did not, and every command and query then failed at once.
        let config = Config::new("postgres://app@127.0.0.1:1/app", "http://127.0.0.1:1")
            .with_dependency_timeout(Duration::ZERO);
        match Service::start(config).await {
            Err(StartError::Config(error)) => {
                assert!(error.to_string().contains("DEPENDENCY_TIMEOUT"), "{error}");
            }
            Err(other) => panic!("refused for the timeout, before connecting: {other:?}"),
            Ok(_) => panic!("started with a zero timeout"),
        }
    }
}
