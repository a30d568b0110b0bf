//! [`ConsumerOptions`]: how an integration consumer commits, retries and shares work.

use std::time::Duration;

use cqrs_core::projection::PoisonPolicy;

/// How an [`IntegrationConsumer`](super::IntegrationConsumer) commits, retries and shares work.
#[derive(Clone, Debug)]
#[must_use]
pub struct ConsumerOptions {
    pub(crate) concurrency: usize,
    pub(crate) commit_interval: Duration,
    pub(crate) poison: Option<PoisonPolicy>,
    pub(crate) initial_backoff: Duration,
    pub(crate) max_backoff: Duration,
    pub(crate) breaker_threshold: u32,
    pub(crate) breaker_open_for: Duration,
    pub(crate) buffered: usize,
    pub(crate) buffered_bytes: usize,
    pub(crate) redrive_interval: Duration,
    pub(crate) lag_interval: Duration,
}

impl Default for ConsumerOptions {
    fn default() -> Self {
        Self {
            concurrency: 8,
            commit_interval: Duration::from_millis(250),
            poison: None,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
            breaker_threshold: 5,
            breaker_open_for: Duration::from_secs(5),
            buffered: 500,
            buffered_bytes: 16 << 20,
            redrive_interval: Duration::from_secs(1),
            lag_interval: Duration::from_secs(5),
        }
    }
}

/// The shortest interval of the consumer's own timers: a zero one cannot tick.
const SHORTEST: Duration = Duration::from_millis(1);

impl ConsumerOptions {
    /// The most messages handled at once ([`concurrency`](Self::concurrency)).
    pub const MAX_CONCURRENCY: usize = 1 << 16;

    /// How many messages are handled at once, each of a different partition (default 8; at
    /// least 1, at most [`MAX_CONCURRENCY`](Self::MAX_CONCURRENCY)). Messages of one
    /// partition are always handled one after another.
    pub fn concurrency(mut self, partitions: usize) -> Self {
        self.concurrency = partitions.clamp(1, Self::MAX_CONCURRENCY);
        self
    }

    /// How often handled offsets are committed (default 250 ms, at least 1 ms; also on revoke
    /// and shutdown). A crash replays at most this much, and a replay changes nothing.
    pub fn commit_interval(mut self, interval: Duration) -> Self {
        self.commit_interval = interval.max(SHORTEST);
        self
    }

    /// What to do with a message that can never be handled. Default:
    /// [`PoisonPolicy::Park`] with a dead-letter store, [`PoisonPolicy::Stop`] without.
    pub fn poison(mut self, policy: PoisonPolicy) -> Self {
        self.poison = Some(policy);
        self
    }

    /// The backoff between retries of a transient failure: from `initial`, doubling, up to
    /// `max`, jittered (default 50 ms to 5 s).
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// The circuit breaker shared by the partitions: open after `threshold` consecutive
    /// transient failures, for `open_for` (default 5 failures, 5 s).
    pub fn breaker(mut self, threshold: u32, open_for: Duration) -> Self {
        self.breaker_threshold = threshold;
        self.breaker_open_for = open_for;
        self
    }

    /// How many received messages a partition may hold before it is paused (default 500); it
    /// resumes when half are handled. With [`buffered_bytes`](Self::buffered_bytes), the
    /// bulkhead that keeps a slow partition from filling memory.
    ///
    /// A resumed partition is fetched again once the fetch the client had in flight returns:
    /// at once while the log has more to give, after up to `fetch.wait.max.ms` (librdkafka's
    /// 500 ms, [`KafkaConfig::with_setting`](crate::KafkaConfig::with_setting)) when the
    /// client had fetched to its end. Half a queue should outlast that wait, so a queue of a
    /// few messages makes a fast handler wait on every round.
    pub fn buffered(mut self, messages: usize) -> Self {
        self.buffered = messages.max(2);
        self
    }

    /// How many bytes of received messages (keys, payloads, headers) a partition may hold
    /// before it is paused (default 16 MiB), whatever their count; it resumes when half of
    /// them and half of its messages are handled. Counting messages alone, 500 records of
    /// 1 MB held 500 MB a partition while a handler retried.
    pub fn buffered_bytes(mut self, bytes: usize) -> Self {
        self.buffered_bytes = bytes.max(1);
        self
    }

    /// How often each partition's worker looks for operators' retry / skip requests on its
    /// parked messages (default 1 s, at least 1 ms).
    pub fn redrive_interval(mut self, interval: Duration) -> Self {
        self.redrive_interval = interval.max(SHORTEST);
        self
    }

    /// How often the assigned partitions' high-water marks are fetched for the status's lag
    /// (default 5 s, at least 1 ms; one request per partition, off the consuming task).
    pub fn lag_interval(mut self, interval: Duration) -> Self {
        self.lag_interval = interval.max(SHORTEST);
        self
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::ConsumerOptions;

    #[tokio::test]
    async fn zero_intervals_and_a_huge_concurrency_become_values_a_consumer_runs_with() {
        let options = ConsumerOptions::default()
            .commit_interval(Duration::ZERO)
            .redrive_interval(Duration::ZERO)
            .lag_interval(Duration::ZERO)
            .concurrency(usize::MAX);
        // What the consumer's tasks build from them; each panicked.
        for every in [
            options.commit_interval,
            options.redrive_interval,
            options.lag_interval,
        ] {
            let _tick = tokio::time::interval(every);
        }
        let _permits = tokio::sync::Semaphore::new(options.concurrency);
    }
}
