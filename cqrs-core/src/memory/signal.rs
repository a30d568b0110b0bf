//! The in-memory store's feed signal: a watch channel bumped on every append.

use async_trait::async_trait;
use tokio::sync::watch;

use crate::projection::{FeedSignal, FeedWaiter};

use super::InMemoryEventStore;

impl FeedSignal for InMemoryEventStore {
    fn subscribe(&self) -> Box<dyn FeedWaiter> {
        Box::new(MemoryWaiter(self.inner.appended.subscribe()))
    }
}

struct MemoryWaiter(watch::Receiver<u64>);

#[async_trait]
impl FeedWaiter for MemoryWaiter {
    async fn wait(&mut self) {
        if self.0.changed().await.is_err() {
            // The store is gone: nothing will ever be appended again.
            std::future::pending::<()>().await;
        }
    }
}
