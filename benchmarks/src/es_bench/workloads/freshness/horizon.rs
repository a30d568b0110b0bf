//! Watching what holds the gap-safe feed back while samples run: the oldest transaction open
//! anywhere in the PostgreSQL cluster, and our committed events that readers cannot see yet.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use cqrs_postgres::{FeedHorizon, PgEventStore};
use tokio::task::JoinHandle;

/// How often the horizon is read.
const EVERY: Duration = Duration::from_millis(50);

/// Reads `PgEventStore::feed_horizon` every 50 ms until stopped.
pub(crate) struct HorizonWatch {
    stop: Arc<AtomicBool>,
    task: JoinHandle<Result<Vec<FeedHorizon>>>,
}

/// What the readings showed.
pub(crate) struct HorizonSummary {
    readings: usize,
    held: usize,
    max_waiting: u64,
    max_open: Duration,
}

impl HorizonWatch {
    /// Starts reading.
    pub(crate) fn start(store: PgEventStore) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut readings = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                readings.push(store.feed_horizon().await?);
                tokio::time::sleep(EVERY).await;
            }
            Ok(readings)
        });
        Self { stop, task }
    }

    /// Stops, and sums up.
    pub(crate) async fn stop(self) -> Result<HorizonSummary> {
        self.stop.store(true, Ordering::Relaxed);
        let readings = self.task.await.context("the horizon watch panicked")??;
        Ok(HorizonSummary {
            readings: readings.len(),
            held: readings.iter().filter(|r| r.waiting_events > 0).count(),
            max_waiting: readings.iter().map(|r| r.waiting_events).max().unwrap_or(0),
            max_open: readings
                .iter()
                .filter_map(|r| r.oldest_open_transaction)
                .max()
                .unwrap_or_default(),
        })
    }
}

impl fmt::Display for HorizonSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "feed horizon every {} ms: events held back in {} of {} readings (max {}), \
             oldest open transaction in the cluster up to {:.0} ms",
            EVERY.as_millis(),
            self.held,
            self.readings,
            self.max_waiting,
            self.max_open.as_secs_f64() * 1000.0
        )
    }
}
