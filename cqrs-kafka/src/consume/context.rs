//! The consumer's rdkafka context: on a revoke, the revoked partitions' workers stop and what
//! they handled is committed before the partitions go to another member.

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::ClientContext;

use super::commit::commit_offsets;
use super::runner::Core;
use super::status::Tp;

/// Called by librdkafka, on the thread that polls, around each rebalance.
pub(crate) struct BusContext {
    pub(crate) core: std::sync::Arc<Core>,
}

impl ClientContext for BusContext {}

impl ConsumerContext for BusContext {
    /// A partition paused for back-pressure and revoked may come back paused: every assigned
    /// partition starts resumed (its worker is new, its buffer empty).
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            if let Err(error) = consumer.resume(list) {
                tracing::debug!(consumer = %self.core.name, %error, "resume on assign failed");
            }
        }
    }

    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(list) = rebalance else {
            return;
        };
        let revoked: Vec<Tp> = list
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        self.core.revoke_lanes(&revoked);
        let due = self.core.board().revoke(&revoked);
        match commit_offsets(consumer, &due) {
            Ok(()) => self.core.board().committed(&due),
            Err(error) => {
                // The new owner replays from the last commit; replays change nothing.
                tracing::warn!(consumer = %self.core.name, %error, "commit on revoke failed");
                self.core
                    .board()
                    .error(format!("commit on revoke failed: {error}"));
            }
        }
        self.core.notify();
    }
}
