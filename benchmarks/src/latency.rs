//! Latency percentiles: the one rule every benchmark prints them by.

use std::time::Duration;

/// The `per_mille`-th percentile of `sorted` (ascending) by nearest rank: the smallest sample
/// with at least `per_mille` thousandths of the samples at or below it. Zero without samples.
///
/// ```
/// use std::time::Duration;
/// use cqrs_benchmarks::latency::percentile;
///
/// let sorted: Vec<Duration> = (1..=101).map(Duration::from_millis).collect();
/// assert_eq!(percentile(&sorted, 500), Duration::from_millis(51));
/// assert_eq!(percentile(&sorted, 990), Duration::from_millis(100));
/// assert_eq!(percentile(&sorted, 1000), Duration::from_millis(101));
/// assert_eq!(percentile(&[], 500), Duration::ZERO);
/// ```
pub fn percentile(sorted: &[Duration], per_mille: usize) -> Duration {
    let rank = (sorted.len() * per_mille).div_ceil(1000);
    sorted
        .get(rank.saturating_sub(1))
        .copied()
        .unwrap_or_default()
}
