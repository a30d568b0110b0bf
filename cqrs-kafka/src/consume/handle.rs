//! [`ConsumerHandle`]: a running consumer's status, waits, and shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::runner::Core;
use super::{ConsumerState, ConsumerStatus};

/// Why a wait on a consumer ended without what was waited for; each carries the status then.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ConsumerWaitError {
    /// The consumer failed: it will not get there without an operator.
    #[error(
        "consumer {} failed: {}",
        .0.name,
        .0.last_error.as_deref().unwrap_or("no error recorded")
    )]
    Failed(Box<ConsumerStatus>),
    /// The consumer was shut down.
    #[error("consumer {} stopped", .0.name)]
    Stopped(Box<ConsumerStatus>),
    /// It did not get there in time.
    #[error("consumer did not get there in time: {0}")]
    TimedOut(Box<ConsumerStatus>),
}

/// A running [`IntegrationConsumer`](super::IntegrationConsumer). Dropping it stops the
/// consumer (without waiting); [`shutdown`](Self::shutdown) stops it and waits until what was
/// handled is committed.
#[derive(Debug)]
pub struct ConsumerHandle {
    core: Arc<Core>,
    task: Option<JoinHandle<()>>,
}

impl ConsumerHandle {
    pub(crate) fn new(core: Arc<Core>, task: JoinHandle<()>) -> Self {
        Self {
            core,
            task: Some(task),
        }
    }

    /// The status now.
    pub fn status(&self) -> ConsumerStatus {
        let (state, trips) = {
            let breaker = self.core.breaker();
            (breaker.state(), breaker.trips())
        };
        let mut status = self.core.board().status(state, trips);
        self.core.fill_buffers(&mut status);
        status
    }

    /// Waits until `done` holds for the status (checked at each change), up to `timeout`.
    /// Fails as soon as the consumer failed or stopped without it.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        done: impl Fn(&ConsumerStatus) -> bool,
    ) -> Result<ConsumerStatus, ConsumerWaitError> {
        // `None`: too far off to fall due (a timeout of `Duration::MAX`).
        let deadline = tokio::time::Instant::now().checked_add(timeout);
        let mut changes = self.core.changes();
        loop {
            let status = self.status();
            if done(&status) {
                return Ok(status);
            }
            match status.state {
                ConsumerState::Failed => return Err(ConsumerWaitError::Failed(Box::new(status))),
                ConsumerState::Stopped => return Err(ConsumerWaitError::Stopped(Box::new(status))),
                _ => {}
            }
            let changed = match deadline {
                Some(deadline) => tokio::time::timeout_at(deadline, changes.changed()).await,
                None => Ok(changes.changed().await),
            };
            match changed {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => {
                    let status = self.status();
                    if done(&status) {
                        return Ok(status);
                    }
                    return Err(ConsumerWaitError::TimedOut(Box::new(status)));
                }
            }
        }
    }

    /// Waits until the message at `offset` of `topic`/`partition` was handled or parked.
    pub async fn wait_for(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        timeout: Duration,
    ) -> Result<ConsumerStatus, ConsumerWaitError> {
        let tp = (topic.to_owned(), partition);
        self.wait_until(timeout, |_| {
            self.core
                .board()
                .handled_ever(&tp)
                .is_some_and(|next| next > offset)
        })
        .await
    }

    /// Stops reading, lets each partition finish the message in hand, commits what was
    /// handled, leaves the group, and returns the final status.
    pub async fn shutdown(mut self) -> ConsumerStatus {
        self.core.request_stop();
        if let Some(task) = self.task.take() {
            if let Err(error) = task.await {
                self.core
                    .board()
                    .fail(format!("the consumer task ended abnormally: {error}"));
            }
        }
        self.status()
    }
}

impl Drop for ConsumerHandle {
    fn drop(&mut self) {
        self.core.request_stop();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::ConsumerHandle;
    use crate::consume::runner::Core;
    use crate::consume::ConsumerOptions;

    #[tokio::test]
    async fn a_wait_as_long_as_duration_allows_returns_once_done() {
        let core = Arc::new(Core::new("consumer", &ConsumerOptions::default()));
        let handle = ConsumerHandle::new(core, tokio::spawn(async {}));
        assert!(handle.wait_until(Duration::MAX, |_| true).await.is_ok());
    }
}
