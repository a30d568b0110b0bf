//! The append latency figure: single-event appends timed on the grown table and, in alternate
//! rounds, on a table kept at the first size. The two sides run minutes apart otherwise, and a
//! host's passing stall (or a quiet minute) moved one size's p99 by 2x to 8x between runs of the
//! same build; in turns, whatever the machine does to one side it does to the other, and the
//! ratio says what the table's size does. Each round's percentiles are taken on their own and
//! the median round reported, with the range of the rounds' p99, so one stall shows in the range
//! and does not decide the figure.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _, Result};
use cqrs_core::{AppendEvents, ExpectedVersion};
use cqrs_postgres::PgEventStore;
use tokio::task::JoinSet;

use crate::systems::ours;
use cqrs_benchmarks::latency::percentile;

/// Rounds per side; the sides take turns, the first side alternating.
const ROUNDS: u64 = 5;

/// One side's latency: the median round's percentiles, and the range of the rounds' p99.
#[derive(Debug, Clone, Copy)]
pub(super) struct Percentiles {
    pub(super) p50: Duration,
    pub(super) p99: Duration,
    pub(super) p99_low: Duration,
    pub(super) p99_high: Duration,
}

impl Percentiles {
    /// The median round's p50 and p99 (each taken on its own) of `rounds`, each sorted.
    fn of(rounds: &[Vec<Duration>]) -> Self {
        let p50s = rounds.iter().map(|r| percentile(r, 500)).collect();
        let mut p99s: Vec<Duration> = rounds.iter().map(|r| percentile(r, 990)).collect();
        p99s.sort();
        Self {
            p50: median(p50s),
            p99: percentile(&p99s, 500),
            p99_low: p99s.first().copied().unwrap_or_default(),
            p99_high: p99s.last().copied().unwrap_or_default(),
        }
    }
}

/// The median of `times`, by the benchmarks' one percentile rule.
pub(super) fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    percentile(&times, 500)
}

/// Append latency on the grown table, and on the table of the first size at the same time.
#[derive(Debug, Clone, Copy)]
pub(super) struct AppendLatency {
    pub(super) grown: Percentiles,
    pub(super) base: Percentiles,
}

/// `appends` single-event appends to new streams on each of `grown` and `base`, in
/// [`ROUNDS`] turns each, at `rate` per second, after a round on each that is not recorded;
/// `step` names this size's streams.
pub(super) async fn alternated(
    grown: &PgEventStore,
    base: &PgEventStore,
    step: usize,
    rate: u64,
    appends: u64,
) -> Result<AppendLatency> {
    let per_round = (appends / ROUNDS).max(1);
    // Unrecorded: the pools open their connections here, not in the first round.
    for store in [grown, base] {
        let prefix = format!("latency{step}-warm-");
        timed(store, &prefix, rate, per_round)
            .await
            .context("warming up")?;
    }
    let (mut on_grown, mut on_base) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let prefix = format!("latency{step}-{round}-");
        let mut turns = [
            (grown, &mut on_grown, "on the grown table"),
            (base, &mut on_base, "on the first size's table"),
        ];
        if round % 2 == 1 {
            turns.reverse();
        }
        for (store, rounds, side) in turns {
            rounds.push(timed(store, &prefix, rate, per_round).await.context(side)?);
        }
    }
    Ok(AppendLatency {
        grown: Percentiles::of(&on_grown),
        base: Percentiles::of(&on_base),
    })
}

/// `appends` single-event appends to new streams `{prefix}{k}`, started at `rate` per second
/// whatever the earlier ones do (open loop), each timed from its start to its answer; sorted.
async fn timed(
    store: &PgEventStore,
    prefix: &str,
    rate: u64,
    appends: u64,
) -> Result<Vec<Duration>> {
    let interval = Duration::from_secs_f64(1.0 / f64::from(u32::try_from(rate.max(1))?));
    let start = tokio::time::Instant::now() + Duration::from_millis(10);
    let mut tasks = JoinSet::new();
    for k in 0..appends {
        let store = store.clone();
        let at = start + interval * u32::try_from(k)?;
        let stream = ours::stream_of(&format!("{prefix}{k}"))?;
        tasks.spawn(async move {
            tokio::time::sleep_until(at).await;
            let started = Instant::now();
            let outcome = store
                .append(&stream, ExpectedVersion::NoStream, ours::new_events(1, 1))
                .await?;
            let took = started.elapsed();
            ensure!(outcome.last_version.get() == 1, "{stream} is not at 1");
            Ok::<_, anyhow::Error>(took)
        });
    }
    let mut latencies = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        latencies.push(joined.context("an append task panicked")??);
    }
    latencies.sort();
    Ok(latencies)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn one_stalled_round_shows_in_the_range_and_does_not_decide_the_p99() {
        let quiet: Vec<Duration> = (1..=100).map(|_| ms(1)).collect();
        let mut stalled = quiet.clone();
        stalled[95..].fill(ms(50));
        let rounds = [quiet.clone(), quiet.clone(), stalled, quiet.clone(), quiet];

        let got = Percentiles::of(&rounds);

        assert_eq!((got.p50, got.p99), (ms(1), ms(1)));
        assert_eq!((got.p99_low, got.p99_high), (ms(1), ms(50)));
    }
}
