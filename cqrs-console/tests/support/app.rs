//! A test app: a real PostgreSQL store in a schema of its own, a real projection runner whose
//! projection parks "poison" events until the test fixes it, and the console mounted in an
//! axum router served on a free loopback port.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cqrs_console::{ConsoleConfig, LiveStatus};
use cqrs_core::projection::{
    Projection, ProjectionError, ProjectionHandle, ProjectionRunner, ProjectionStatus, Rejected,
    RunnerOptions,
};
use cqrs_core::{AppendEvents, ExpectedVersion, Metadata, NewEvent, RecordedEvent, StreamId};
use cqrs_postgres::testing::PgTestStore;
use serde_json::Value;
use tokio::net::TcpListener;

/// The projection's name.
pub const PROJECTION: &str = "console-test-orders";
/// The token the test console needs.
pub const TOKEN: &str = "test-token-0f3b9c2e5d";

/// What the read model holds, and whether poison is cured.
#[derive(Default)]
pub struct Model {
    pub applied: Mutex<Vec<String>>,
    pub fixed: AtomicBool,
}

struct Orders(Arc<Model>);

#[async_trait]
impl Projection for Orders {
    fn name(&self) -> &str {
        PROJECTION
    }

    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let mut rejected = Vec::new();
        for event in events {
            let poison = event.payload.get("poison") == Some(&Value::Bool(true));
            if poison && !self.0.fixed.load(Ordering::SeqCst) {
                rejected.push(Rejected::new(
                    event.position,
                    format!("cannot apply {}: {}", event.event_type, event.payload),
                ));
            } else {
                self.0
                    .applied
                    .lock()
                    .unwrap()
                    .push(event.stream_id.to_string());
            }
        }
        if rejected.is_empty() {
            Ok(())
        } else {
            Err(ProjectionError::Poison(rejected))
        }
    }
}

struct Live(Arc<Mutex<Option<ProjectionHandle>>>);

#[async_trait]
impl LiveStatus for Live {
    async fn statuses(&self) -> Vec<ProjectionStatus> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(ProjectionHandle::status)
            .collect()
    }
}

/// The running app.
pub struct App {
    pub store: PgTestStore,
    pub model: Arc<Model>,
    pub base: String,
    handle: Arc<Mutex<Option<ProjectionHandle>>>,
    server: tokio::task::JoinHandle<()>,
}

impl App {
    /// Starts the store, the runner and the console (enabled with [`TOKEN`]).
    pub async fn start() -> Self {
        let store = cqrs_postgres::testing::fresh_store()
            .await
            .expect("a fresh schema on DATABASE_URL");
        let model = Arc::new(Model::default());
        let handle = ProjectionRunner::for_store(Orders(Arc::clone(&model)), &*store)
            .with_options(
                RunnerOptions::new()
                    .poll_interval(Duration::from_millis(100))
                    .checkpoint_interval(Duration::from_millis(50)),
            )
            .spawn();
        let handle = Arc::new(Mutex::new(Some(handle)));
        let config = ConsoleConfig::enabled(TOKEN)
            .live_status(Live(Arc::clone(&handle)))
            .samples(Duration::from_millis(200), 60);
        let inspector = cqrs_admin::Inspector::new((*store).clone());
        let router = axum::Router::new().merge(cqrs_console::router(config, inspector));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let base = format!(
            "http://{}/console",
            listener.local_addr().expect("an address")
        );
        let server = tokio::spawn(async move {
            axum::serve(listener, router)
                .await
                .expect("the test server serves");
        });
        Self {
            store,
            model,
            base,
            handle,
            server,
        }
    }

    /// Appends one event to `stream` with `payload` and a correlation id.
    pub async fn append(
        &self,
        stream: &str,
        event_type: &str,
        payload: Value,
        correlation: uuid::Uuid,
    ) {
        let event = NewEvent::new(event_type, 1, payload).with_metadata(
            Metadata::new(cqrs_core::EventId::new()).with_correlation_id(correlation),
        );
        self.store
            .append(
                &StreamId::new(stream).unwrap(),
                ExpectedVersion::Any,
                vec![event],
            )
            .await
            .expect("appended");
    }

    /// Polls `check` until it holds, at most 30 s.
    pub async fn eventually<F, Fut>(&self, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !check().await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "not within 30 s: {what}; the runner: {:?}",
                self.status()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The runner's status.
    pub fn status(&self) -> ProjectionStatus {
        self.handle
            .lock()
            .unwrap()
            .as_ref()
            .expect("running")
            .status()
    }

    /// Stops the runner and the server.
    pub async fn stop(self) {
        let handle = self.handle.lock().unwrap().take();
        if let Some(handle) = handle {
            handle.shutdown().await;
        }
        self.server.abort();
    }
}
