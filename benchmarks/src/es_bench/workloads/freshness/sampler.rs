//! Latency samples at a steady rate: each sample runs in its own task, started on a fixed
//! schedule whatever the samples before it are doing.

use std::future::Future;
use std::ops::Range;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

/// One write, timed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sample {
    /// From the write's start until it returned.
    pub(crate) write: Duration,
    /// From the write's start until a search found it.
    pub(crate) total: Duration,
}

impl Sample {
    /// From the write's return until a search found it.
    pub(crate) fn after_write(&self) -> Duration {
        self.total.saturating_sub(self.write)
    }
}

/// Samples of one run, and the rate they were started at.
pub(crate) struct Samples<T> {
    /// The samples, in no particular order.
    pub(crate) samples: Vec<T>,
    /// Samples started per second.
    pub(crate) rate: f64,
}

/// Starts `sample(k)` for every `k` in `keys`, `rate` per second, each in its own task; waits
/// for them all.
pub(crate) async fn at_rate<T, F, Fut>(
    rate: u32,
    keys: Range<u64>,
    mut sample: F,
) -> Result<Samples<T>>
where
    T: Send + 'static,
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<T>> + Send + 'static,
{
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / rate.max(1));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut tasks = JoinSet::new();
    let count = keys.end.saturating_sub(keys.start);
    let started = Instant::now();
    for k in keys {
        ticker.tick().await;
        tasks.spawn(sample(k));
    }
    // The schedule's span: `count - 1` intervals between the first start and the last.
    let span = started.elapsed().as_secs_f64();
    let mut samples = Vec::new();
    while let Some(done) = tasks.join_next().await {
        samples.push(done.context("a sample's task panicked")??);
    }
    Ok(Samples {
        samples,
        rate: count.saturating_sub(1) as f64 / span.max(1e-9),
    })
}
