//! [`ProjectionHandle`]: a running projection's status and stop switch, and the supervisor
//! that turns a worker's panic into a `Failed` status.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::projection::{ProjectionState, ProjectionStatus};
use crate::Position;

/// Why [`ProjectionHandle::wait_for`] returned before the projection reached the position,
/// with its status then.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum WaitError {
    /// The projection failed: it will not get there without an operator.
    #[error(
        "projection {} failed at {}: {}",
        .0.name,
        .0.position,
        .0.last_error.as_deref().unwrap_or("no error recorded")
    )]
    Failed(Box<ProjectionStatus>),
    /// The projection was shut down.
    #[error("projection {} stopped at {}", .0.name, .0.position)]
    Stopped(Box<ProjectionStatus>),
    /// It did not get there in time.
    #[error(
        "projection {} did not get there in time: it is {} at {}{}",
        .0.name,
        .0.state,
        .0.position,
        .0.last_error.as_deref().map(|e| format!(", last error: {e}")).unwrap_or_default()
    )]
    TimedOut(Box<ProjectionStatus>),
}

impl WaitError {
    /// The projection's status when waiting ended.
    pub fn status(&self) -> &ProjectionStatus {
        match self {
            WaitError::Failed(status)
            | WaitError::Stopped(status)
            | WaitError::TimedOut(status) => status,
        }
    }
}

/// A running projection: its status, and how to stop it.
#[derive(Debug)]
pub struct ProjectionHandle {
    pub(super) status: watch::Receiver<ProjectionStatus>,
    pub(super) stop: watch::Sender<bool>,
    pub(super) task: JoinHandle<()>,
}

impl ProjectionHandle {
    /// The status now.
    pub fn status(&self) -> ProjectionStatus {
        self.status.borrow().clone()
    }

    /// A receiver of the status as it changes (partitioned workers read it live).
    pub(crate) fn watch(&self) -> watch::Receiver<ProjectionStatus> {
        self.status.clone()
    }

    /// Waits until the checkpoint reaches `position` (read-your-writes after a command), at
    /// most `timeout`: the status then.
    ///
    /// # Errors
    ///
    /// [`WaitError::Failed`] as soon as the projection has failed (waiting longer could not
    /// help), [`WaitError::Stopped`] if it was shut down first, [`WaitError::TimedOut`]; each
    /// with the status at that moment.
    pub async fn wait_for(
        &self,
        position: Position,
        timeout: Duration,
    ) -> Result<ProjectionStatus, WaitError> {
        let reached = self.wait_until(|s| s.position >= position);
        match tokio::time::timeout(timeout, reached).await {
            Ok(Some(status)) => Ok(status),
            Err(_) => Err(WaitError::TimedOut(Box::new(self.status()))),
            Ok(None) => {
                let status = Box::new(self.status());
                Err(match status.state {
                    ProjectionState::Failed => WaitError::Failed(status),
                    _ => WaitError::Stopped(status),
                })
            }
        }
    }

    /// Waits until the status satisfies `condition`, or the projection task ends (then `None`).
    pub async fn wait_until(
        &self,
        condition: impl Fn(&ProjectionStatus) -> bool,
    ) -> Option<ProjectionStatus> {
        let mut status = self.status.clone();
        loop {
            {
                let now = status.borrow_and_update();
                if condition(&now) {
                    return Some(now.clone());
                }
                if matches!(
                    now.state,
                    ProjectionState::Stopped | ProjectionState::Failed
                ) {
                    return None;
                }
            }
            if status.changed().await.is_err() {
                let last = status.borrow().clone();
                return condition(&last).then_some(last);
            }
        }
    }

    /// Stops gracefully: the batch in hand is finished (or abandoned mid-retry, its checkpoint
    /// not moved), the lease released.
    pub async fn shutdown(mut self) {
        self.stop_and_wait().await;
    }

    /// Asks the task to stop, and waits until it has.
    pub(super) async fn stop_and_wait(&mut self) {
        let _ = self.stop.send(true);
        if let Err(error) = (&mut self.task).await {
            tracing::error!(%error, "projection task ended abnormally");
        }
    }

    /// Kills the task at once, as a crash would: no checkpoint saved, no lease released.
    pub fn abort(self) {
        self.task.abort();
    }
}

/// Waits for the worker task; a panic in it leaves the status `Failed` with the panic's
/// message (health checks see it), where it would otherwise stay at whatever it said last.
/// Aborting this task aborts the worker too, even before its first poll: the worker comes
/// already wrapped, so dropping the unpolled future aborts it.
pub(super) async fn supervise(
    mut worker: AbortOnDrop,
    status: Arc<watch::Sender<ProjectionStatus>>,
) {
    let Err(error) = (&mut worker.0).await else {
        return;
    };
    let Ok(panic) = error.try_into_panic() else {
        return; // Cancelled: only by an abort, which ends this task too.
    };
    let message = panic_message(&*panic);
    tracing::error!(panic = %message, "projection worker panicked");
    status.send_modify(|s| {
        s.state = ProjectionState::Failed;
        s.error(format!("worker panicked: {message}"));
    });
}

/// The message a panic was raised with.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|m| (*m).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// A task aborted when this is dropped.
pub(super) struct AbortOnDrop<T = ()>(pub(super) JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tells when it is dropped.
    struct DropSignal(Option<tokio::sync::oneshot::Sender<()>>);

    impl Drop for DropSignal {
        fn drop(&mut self) {
            if let Some(dropped) = self.0.take() {
                let _ = dropped.send(());
            }
        }
    }

    // One thread: the supervisor is aborted before the runtime ever polled it, as a caller
    // giving up on a catch-up at once (or a loaded machine) can do. Its worker must die too.
    #[tokio::test(flavor = "current_thread")]
    async fn a_supervisor_aborted_before_its_first_poll_aborts_its_worker() {
        let (dropped, on_drop) = tokio::sync::oneshot::channel();
        let signal = DropSignal(Some(dropped));
        let worker = tokio::spawn(async move {
            let _signal = signal;
            std::future::pending::<()>().await;
        });
        let status = Arc::new(watch::channel(ProjectionStatus::new("p")).0);
        let supervisor = tokio::spawn(supervise(AbortOnDrop(worker), status));
        supervisor.abort();

        let ended = tokio::time::timeout(Duration::from_secs(5), on_drop).await;
        assert!(
            matches!(ended, Ok(Ok(()))),
            "the worker outlived its aborted supervisor"
        );
    }
}
