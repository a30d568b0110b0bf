//! Noticing when writes become searchable. One task per read model searches for every pending
//! reference at once (a `terms` query on `last_ref`), again and again, so the cost of looking
//! stays one search at a time however many writes are in flight, and both systems are looked
//! at the same way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use cqrs_elastic::{EsQueries, Query, Search};
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;

use crate::model::{AccountView, LAST_REF};

/// The pause between two searches.
pub(crate) const POLL_PAUSE: Duration = Duration::from_millis(1);

/// A write not found by then fails the run.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Watches one read model for references.
pub(crate) struct Watcher {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

struct Shared {
    /// References looked for, and who waits for each.
    pending: Mutex<HashMap<String, oneshot::Sender<Instant>>>,
    wake: Notify,
    /// The last search's failure, for the timeout's message.
    last_error: Mutex<Option<String>>,
}

impl Watcher {
    /// Starts watching `model`.
    pub(crate) fn start(model: EsQueries<AccountView>) -> Self {
        let shared = Arc::new(Shared {
            pending: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            last_error: Mutex::new(None),
        });
        let task = tokio::spawn(watch(model, shared.clone()));
        Self { shared, task }
    }

    /// Looks for a document whose last deposit is `reference`; the returned future gives the
    /// instant a search first found it.
    pub(crate) fn found(
        &self,
        reference: &str,
    ) -> impl std::future::Future<Output = Result<Instant>> {
        let (tx, rx) = oneshot::channel();
        lock(&self.shared.pending).insert(reference.to_owned(), tx);
        self.shared.wake.notify_one();
        let (shared, reference) = (self.shared.clone(), reference.to_owned());
        async move {
            match tokio::time::timeout(TIMEOUT, rx).await {
                Ok(Ok(at)) => Ok(at),
                Ok(Err(_)) => Err(anyhow!("the watcher stopped before finding {reference}")),
                Err(_) => Err(anyhow!(
                    "{reference} is not searchable after {TIMEOUT:?} (last search error: {:?})",
                    lock(&shared.last_error).clone()
                )),
            }
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn watch(model: EsQueries<AccountView>, shared: Arc<Shared>) {
    loop {
        let references: Vec<String> = lock(&shared.pending).keys().cloned().collect();
        if references.is_empty() {
            shared.wake.notified().await;
            continue;
        }
        let size = u64::try_from(references.len()).unwrap_or(u64::MAX);
        let search = Search::new(Query::terms(LAST_REF, references)).size(size);
        match model.search(&search).await {
            Ok(page) => {
                let now = Instant::now();
                let mut pending = lock(&shared.pending);
                for hit in page.hits {
                    if let Some(waiter) = pending.remove(&hit.document.last_ref) {
                        let _ = waiter.send(now);
                    }
                }
            }
            Err(error) => *lock(&shared.last_error) = Some(error.to_string()),
        }
        tokio::time::sleep(POLL_PAUSE).await;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
