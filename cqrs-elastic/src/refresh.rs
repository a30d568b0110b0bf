//! When a projector's writes become searchable: the [`RefreshPolicy`] users choose, and
//! [`Refresher`]: refreshes that callers share, at most one in flight per projector.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use elasticsearch::params::Refresh;
use tokio::sync::Mutex;

/// When the documents a batch wrote become visible to searches (`get` sees them at once
/// whatever the policy).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefreshPolicy {
    /// Refresh before the checkpoint moves past a batch: a caller waiting on the checkpoint
    /// reads its own write. The default. The refresh is
    /// [`make_visible`](cqrs_core::projection::Projection::make_visible), which the runner calls while it applies the
    /// next batch, so bulks never wait for refreshes; while catching up, once per checkpoint
    /// interval for all the batches applied since. Code that calls `apply` without a runner
    /// calls `make_visible` after it.
    #[default]
    Immediate,
    /// Wait for the next periodic refresh before answering (`refresh=wait_for`). Never use it on
    /// an index whose refresh is disabled.
    WaitFor,
    /// Do not refresh: the index's own refresh interval decides. For rebuilds and bulk loads.
    None,
}

impl RefreshPolicy {
    /// The bulk's own `refresh` parameter.
    pub(crate) fn param(self) -> Option<Refresh> {
        match self {
            RefreshPolicy::WaitFor => Some(Refresh::WaitFor),
            RefreshPolicy::Immediate | RefreshPolicy::None => None,
        }
    }
}

/// Shares refreshes between concurrent callers. Each caller needs a refresh that *started
/// after* its call (one already running may not cover its writes): the first to get the turn
/// runs one, and everyone who was waiting while it ran is served by it instead of sending
/// their own. Under load that is one refresh per refresh time rather than one per batch, and
/// the node's single refresh thread never has a queue of ours to work through.
#[derive(Debug, Default)]
pub(crate) struct Refresher {
    /// Refreshes started so far; the number of the newest one.
    started: AtomicU64,
    /// The turn to refresh, holding the number of the newest refresh that succeeded.
    succeeded: Mutex<u64>,
}

impl Refresher {
    /// Returns once a refresh that started after this call has succeeded, running it with
    /// `refresh` when no one else does; an error is this call's own refresh failing.
    pub(crate) async fn after_call<E, F, Fut>(&self, refresh: F) -> Result<(), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(), E>>,
    {
        // Refreshes numbered up to `seen` started before this call.
        let seen = self.started.load(Ordering::SeqCst);
        let mut succeeded = self.succeeded.lock().await;
        if *succeeded > seen {
            return Ok(());
        }
        // Numbered under the turn, so numbers follow start order.
        let number = self.started.fetch_add(1, Ordering::SeqCst) + 1;
        refresh().await?;
        *succeeded = number;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::sync::Notify;

    use super::*;

    #[tokio::test]
    async fn callers_waiting_on_a_running_refresh_share_the_next_one() {
        let refresher = Arc::new(Refresher::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(Notify::new());
        let refresh = |runs: Arc<AtomicUsize>, release: Arc<Notify>| {
            move || async move {
                runs.fetch_add(1, Ordering::SeqCst);
                release.notified().await;
                Ok::<(), ()>(())
            }
        };
        // One refresh runs and blocks.
        let first = tokio::spawn({
            let (refresher, f) = (refresher.clone(), refresh(runs.clone(), release.clone()));
            async move { refresher.after_call(f).await }
        });
        while runs.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        // Ten callers arrive meanwhile: the running one cannot cover them.
        let waiting: Vec<_> = (0..10)
            .map(|_| {
                let (refresher, f) = (refresher.clone(), refresh(runs.clone(), release.clone()));
                tokio::spawn(async move { refresher.after_call(f).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(waiting.iter().all(|w| !w.is_finished()));
        release.notify_one();
        first.await.unwrap().unwrap();
        // The next refresh starts for them all; none of them returns before it ends.
        while runs.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(waiting.iter().all(|w| !w.is_finished()));
        release.notify_one();
        for waiter in waiting {
            waiter.await.unwrap().unwrap();
        }
        assert_eq!(runs.load(Ordering::SeqCst), 2, "one refresh served all ten");
    }

    #[tokio::test]
    async fn a_failed_refresh_is_run_again_by_the_next_caller() {
        let refresher = Refresher::default();
        let runs = AtomicUsize::new(0);
        let failing = || async {
            runs.fetch_add(1, Ordering::SeqCst);
            Err::<(), &str>("node down")
        };
        assert_eq!(refresher.after_call(failing).await, Err("node down"));
        let working = || async {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok::<(), &str>(())
        };
        assert_eq!(refresher.after_call(working).await, Ok(()));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        // Sequential callers each need their own refresh.
        assert_eq!(refresher.after_call(working).await, Ok(()));
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }
}
