//! Shared by the command-line tests: run the `cqrs` binary as a process, write events, and a
//! projection that parks what it is told to.

#![allow(dead_code, unreachable_pub)]

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cqrs_core::projection::{Projection, ProjectionError, Rejected};
use cqrs_core::{
    AppendEvents, EventId, ExpectedVersion, Metadata, NewEvent, Position, RecordedEvent, StreamId,
};
use cqrs_postgres::PgEventStore;
use serde_json::json;
use uuid::Uuid;

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Its stdout parsed as `T`, or a failure showing what it printed.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        assert_eq!(self.code, 0, "the command failed: {self:?}");
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not the expected JSON ({e}): {}", self.stdout))
    }
}

/// The test database's URL; the tests fail without it, as every service-backed test does.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .expect("DATABASE_URL must name a PostgreSQL for these tests (scripts/test.sh sets it)")
}

/// Runs `cqrs` with `args` and only the environment given (plus PATH).
pub async fn cqrs_with(env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cqrs"));
    command.env_clear().args(args);
    if let Ok(path) = std::env::var("PATH") {
        command.env("PATH", path);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("the process task ran")
        .expect("the cqrs binary starts");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `cqrs` with `args` against `store`'s schema (through `DATABASE_URL` and
/// `CQRS_SCHEMA`).
pub async fn cqrs(store: &PgEventStore, args: &[&str]) -> Run {
    let url = database_url();
    cqrs_with(
        &[
            ("DATABASE_URL", &url),
            ("CQRS_SCHEMA", store.schema().as_str()),
        ],
        args,
    )
    .await
}

/// Appends one event of `event_type` to `stream`, with `correlation`; its position.
pub async fn append(
    store: &PgEventStore,
    stream: &str,
    event_type: &str,
    correlation: Uuid,
) -> Position {
    let metadata = Metadata::new(EventId::new())
        .with_correlation_id(correlation)
        .with_header("source", "test");
    let event = NewEvent::new(
        event_type,
        1,
        json!({ "stream": stream, "note": "<b>x</b>" }),
    )
    .with_metadata(metadata);
    let stream = StreamId::new(stream).expect("a valid stream id");
    store
        .append(&stream, ExpectedVersion::Any, vec![event])
        .await
        .expect("the append succeeds")
        .position
}

/// Polls `check` until it holds or `deadline` passes.
pub async fn eventually<F, Fut>(what: &str, deadline: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = Instant::now() + deadline;
    while !check().await {
        assert!(
            Instant::now() < until,
            "{what} did not happen within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A projection that parks every event of type `Bad` while `reject` holds, and remembers the
/// streams and types of the events it applied.
#[derive(Clone, Default)]
pub struct Picky {
    pub name: String,
    pub reject: Arc<AtomicBool>,
    pub applied: Arc<Mutex<Vec<(String, String)>>>,
}

impl Picky {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            reject: Arc::new(AtomicBool::new(true)),
            applied: Arc::default(),
        }
    }

    pub fn applied(&self) -> Vec<(String, String)> {
        self.applied.lock().expect("not poisoned").clone()
    }
}

#[async_trait]
impl Projection for Picky {
    fn name(&self) -> &str {
        &self.name
    }

    fn key(&self, event: &RecordedEvent) -> Option<String> {
        Some(event.stream_id.as_str().to_owned())
    }

    /// Applies every event but the `Bad` ones (while rejecting) and those after a rejected one
    /// of the same stream, which it lists as rejected: the contract of `ProjectionError::Poison`.
    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let rejecting = self.reject.load(Ordering::SeqCst);
        let mut rejected: Vec<Rejected> = Vec::new();
        let mut blocked: Vec<String> = Vec::new();
        let mut applied = self.applied.lock().expect("not poisoned");
        for e in events {
            let stream = e.stream_id.as_str().to_owned();
            if blocked.contains(&stream) {
                rejected.push(Rejected::new(
                    e.position,
                    "held back behind a rejected event",
                ));
            } else if rejecting && e.event_type == "Bad" {
                rejected.push(Rejected::new(
                    e.position,
                    "bad payload: refused by the test",
                ));
                blocked.push(stream);
            } else {
                applied.push((stream, e.event_type.clone()));
            }
        }
        if rejected.is_empty() {
            Ok(())
        } else {
            Err(ProjectionError::Poison(rejected))
        }
    }
}
