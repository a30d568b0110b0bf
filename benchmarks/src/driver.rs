//! Runs units of work on concurrent clients and times them.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use cqrs_benchmarks::cpu;

/// Work split into numbered units that clients take in turn.
pub(crate) trait Job: Send + Sync + 'static {
    /// How many units there are.
    fn units(&self) -> u64;

    /// Does unit `k`; returns how many concurrency conflicts it retried.
    fn run(&self, k: u64) -> impl Future<Output = Result<u64>> + Send;
}

/// What a timed run did.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Run {
    /// Units done.
    pub(crate) units: u64,
    /// Wall time from the first unit taken to the last one done.
    pub(crate) elapsed: Duration,
    /// Conflicts retried, summed over units.
    pub(crate) conflicts: u64,
    /// This process's CPU time over the run (every client and whatever the system under test
    /// runs in the background), where it can be read.
    pub(crate) client_cpu: Option<Duration>,
}

impl Run {
    /// `rest` after `client CPU 2.44 us/event; `: this process's CPU over the run per `unit`,
    /// `units` of them; `rest` alone where the CPU time could not be read.
    pub(crate) fn client_cpu_then(&self, units: u64, unit: &str, rest: &str) -> String {
        match self.client_cpu {
            Some(cpu) => format!(
                "client CPU {:.2} us/{unit}; {rest}",
                cpu::micros_per_unit(cpu, units)
            ),
            None => rest.to_owned(),
        }
    }
}

/// Runs every unit of `job` on `clients` concurrent clients. Each client takes the next unit as
/// soon as it is done with its last, so the order of units is the same for every system. The
/// first error stops the run.
pub(crate) async fn drive<J: Job>(job: Arc<J>, clients: u32) -> Result<Run> {
    let next = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let cpu_before = cpu::process_cpu();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (job, next, failed) = (job.clone(), next.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0;
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= job.units() || failed.load(Ordering::Relaxed) {
                    return Ok(conflicts);
                }
                match job.run(k).await {
                    Ok(retried) => conflicts += retried,
                    Err(error) => {
                        failed.store(true, Ordering::Relaxed);
                        return Err(error.context(format!("unit {k}")));
                    }
                }
            }
        }));
    }
    let mut conflicts = 0;
    let mut first_error = None;
    for task in tasks {
        match task.await.context("a client task panicked")? {
            Ok(retried) => conflicts += retried,
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    let elapsed = started.elapsed();
    let client_cpu = cpu::process_cpu()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    if let Some(error) = first_error {
        return Err(error);
    }
    Ok(Run {
        units: job.units(),
        elapsed,
        conflicts,
        client_cpu,
    })
}
