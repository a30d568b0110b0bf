//! Filling the new index with the subscription engine: each catch-up is a
//! [`ProjectionRunner::catch_up`] of the rebuild's projector, under the rebuild's checkpoint,
//! with its batch size, checkpoint interval, upcasters and retries. Poison is parked in an
//! in-process dead-letter store ([`Letters`]) that the report reads, or stops the rebuild.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::projection::{
    DeadLetter, DeadLetterStore, Lease, LetterTarget, PoisonPolicy, Projection, ProjectionError,
    ProjectionRunner, Redrive, Rejected, RunnerOptions,
};
use cqrs_core::{
    BoxError, CheckpointStore, EventFilter, FeedBatch, FencedSave, Position, ReadAll, ReadStream,
    RecordedEvent, RetryPolicy, StreamId, Version,
};

use crate::{ElasticProjection, EsError, EsProjector, RebuildOptions, Result};

/// The rebuild's engine parts, shared by its catch-ups.
pub(super) struct Filler<P: ElasticProjection> {
    projector: Tracked<P>,
    feed: Arc<dyn ReadAll>,
    checkpoints: Arc<dyn CheckpointStore>,
    letters: Letters,
    options: RunnerOptions,
}

impl<P: ElasticProjection + 'static> Filler<P> {
    /// Fills with `projector` (saving under its checkpoint name), as `options` say.
    pub(super) fn new(
        projector: EsProjector<P>,
        feed: Arc<dyn ReadAll>,
        checkpoints: Arc<dyn CheckpointStore>,
        options: &RebuildOptions,
    ) -> Self {
        let marker = Marker {
            checkpoints: checkpoints.clone(),
            name: skipped_marker(projector.name()),
        };
        let retries = options.max_retries;
        let runner = RunnerOptions::new()
            .checkpoint_name(projector.name())
            .batch_size(options.batch_size)
            .checkpoint_interval(options.checkpoint_interval)
            .upcasters(options.upcasters.clone())
            // Always parked, here in memory: with `skip_poison` the rebuild goes on; without,
            // the first letter is refused, which stops the catch-up before its batch is saved
            // (the next rebuild resumes there).
            .poison(PoisonPolicy::Park)
            .retry(
                RetryPolicy::new(retries.saturating_add(1))
                    .delays(Duration::from_millis(100), Duration::from_secs(60))
                    .jitter(false),
            )
            // The rebuild gives up after its retries: its breaker never holds them back.
            .breaker(retries.saturating_add(2), Duration::from_secs(5));
        Self {
            projector: Tracked::new(projector),
            feed,
            checkpoints,
            letters: Letters::new(options.skip_poison, marker),
            options: runner,
        }
    }

    /// Applies the feed from the rebuild's checkpoint up to the head as it is now: the
    /// position reached.
    ///
    /// # Errors
    ///
    /// [`ProjectionError::Poison`] with the event that stopped it (without `skip_poison`),
    /// the projector's transient error once the retries are spent, or the store's error.
    pub(super) async fn catch_up(&self) -> Result<Position> {
        let feed = AtHead {
            feed: self.feed.clone(),
            head: tokio::sync::OnceCell::new(),
        };
        let runner = ProjectionRunner::new(
            self.projector.clone(),
            feed,
            Shared(self.checkpoints.clone()),
        )
        .with_dead_letters(self.letters.clone())
        .with_options(self.options.clone());
        match runner.catch_up().await {
            Ok(position) => Ok(position),
            Err(failed) => Err(self.why(failed)),
        }
    }

    /// The typed cause of a catch-up that failed with `failed`.
    fn why(&self, failed: cqrs_core::Error) -> EsError {
        let refused = std::mem::take(&mut lock(&self.letters.0).refused);
        if !refused.is_empty() {
            return EsError::Projection(ProjectionError::Poison(refused));
        }
        match lock(&self.projector.last_error).take() {
            Some(error) => EsError::Projection(ProjectionError::Transient(error)),
            None => EsError::Store(failed),
        }
    }

    /// Events handed to the projector: applied, or parked as poison.
    pub(super) fn events(&self) -> u64 {
        let parked = u64::try_from(lock(&self.letters.0).parked.len()).unwrap_or(u64::MAX);
        self.projector.applied.load(Ordering::Relaxed) + parked
    }

    /// Forgets the marker of skipped poison once the rebuild is done (nothing resumes it), so
    /// operators' views do not list it; a failure is logged, the marker is harmless.
    pub(super) async fn forget_marker(&self) {
        let Marker { checkpoints, name } = &*self.letters.1;
        if !lock(&self.letters.0).marked {
            // Nothing skipped in this attempt (a resumed one marks itself again if it skips).
            return;
        }
        if let Err(error) = checkpoints.reset_checkpoint(name).await {
            tracing::warn!(%error, marker = %name, "could not forget the skipped-poison marker");
        }
    }

    /// The poison events parked (with `skip_poison`), in feed order.
    pub(super) fn skipped(&self) -> Vec<Rejected> {
        let mut letters = lock(&self.letters.0).parked.clone();
        letters.sort_by_key(|l| l.position);
        letters
            .into_iter()
            .map(|l| Rejected::new(l.position, l.error))
            .collect()
    }
}

/// Locks `mutex`, whatever a panicking holder left (the data stays consistent: every
/// change is one push or one take).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The rebuild's projector, counting what it applied and keeping its last transient error
/// (the runner gets a copy of its text): a rebuild that gives up returns the error itself.
struct Tracked<P: ElasticProjection> {
    projector: Arc<EsProjector<P>>,
    applied: Arc<AtomicU64>,
    last_error: Arc<Mutex<Option<BoxError>>>,
}

impl<P: ElasticProjection> Clone for Tracked<P> {
    fn clone(&self) -> Self {
        Self {
            projector: self.projector.clone(),
            applied: self.applied.clone(),
            last_error: self.last_error.clone(),
        }
    }
}

impl<P: ElasticProjection> Tracked<P> {
    fn new(projector: EsProjector<P>) -> Self {
        Self {
            projector: Arc::new(projector),
            applied: Arc::default(),
            last_error: Arc::default(),
        }
    }

    fn count(&self, events: usize) {
        let events = u64::try_from(events).unwrap_or(u64::MAX);
        self.applied.fetch_add(events, Ordering::Relaxed);
    }
}

#[async_trait]
impl<P: ElasticProjection + 'static> Projection for Tracked<P> {
    fn name(&self) -> &str {
        Projection::name(&*self.projector)
    }

    fn filter(&self) -> EventFilter {
        Projection::filter(&*self.projector)
    }

    fn key(&self, event: &RecordedEvent) -> Option<String> {
        Projection::key(&*self.projector, event)
    }

    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let outcome = Projection::apply(&*self.projector, events).await;
        match outcome {
            Ok(()) => self.count(events.len()),
            Err(ProjectionError::Poison(ref rejected)) => {
                self.count(events.len().saturating_sub(rejected.len()));
            }
            Err(ProjectionError::Transient(error)) => {
                let text = error.to_string();
                *lock(&self.last_error) = Some(error);
                return Err(ProjectionError::Transient(text.into()));
            }
            Err(other) => return Err(other),
        }
        *lock(&self.last_error) = None;
        outcome
    }

    async fn make_visible(&self) -> Result<(), BoxError> {
        self.projector.make_visible().await
    }

    async fn leadership_changed(&self, leading: bool) {
        self.projector.leadership_changed(leading).await;
    }
}

/// The rebuild's feed as one catch-up sees it: its head is read once, when the catch-up
/// starts (its target), and the engine's later questions (the lag it reports) get that
/// answer. So each catch-up asks the feed for its head once, as a rebuild always did.
struct AtHead {
    feed: Arc<dyn ReadAll>,
    head: tokio::sync::OnceCell<Position>,
}

#[async_trait]
impl ReadAll for AtHead {
    async fn read_all(
        &self,
        after: Position,
        limit: usize,
        filter: &EventFilter,
    ) -> cqrs_core::Result<FeedBatch> {
        self.feed.read_all(after, limit, filter).await
    }

    async fn head(&self) -> cqrs_core::Result<Position> {
        self.head
            .get_or_try_init(|| self.feed.head())
            .await
            .copied()
    }
}

/// The rebuild's checkpoint store, lent to each catch-up's runner.
struct Shared(Arc<dyn CheckpointStore>);

#[async_trait]
impl CheckpointStore for Shared {
    async fn load_checkpoint(&self, name: &str) -> cqrs_core::Result<Option<Position>> {
        self.0.load_checkpoint(name).await
    }

    async fn save_checkpoint(&self, name: &str, position: Position) -> cqrs_core::Result<()> {
        self.0.save_checkpoint(name, position).await
    }

    async fn save_checkpoint_fenced(
        &self,
        name: &str,
        position: Position,
        lease: &Lease,
    ) -> cqrs_core::Result<FencedSave> {
        self.0.save_checkpoint_fenced(name, position, lease).await
    }

    async fn reset_checkpoint(&self, name: &str) -> cqrs_core::Result<()> {
        self.0.reset_checkpoint(name).await
    }
}

/// The name of the checkpoint that marks a rebuild (checkpoint `rebuild`) as having skipped
/// poison: its list is in memory, so a rebuild resumed after it starts over to find it again.
pub(super) fn skipped_marker(rebuild: &str) -> String {
    format!("{rebuild}!skipped")
}

/// Where a rebuild records that it skipped poison, before its checkpoint moves past any.
struct Marker {
    checkpoints: Arc<dyn CheckpointStore>,
    name: String,
}

/// The rebuild's dead letters, in memory, for its report: parked (with `skip_poison`), or
/// refused (the rebuild stops at the first). No operator asks for a redrive here.
#[derive(Clone)]
struct Letters(Arc<Mutex<Kept>>, Arc<Marker>);

#[derive(Default)]
struct Kept {
    skip_poison: bool,
    /// Whether the rebuild's marker is saved (before the first letter is kept).
    marked: bool,
    parked: Vec<DeadLetter>,
    refused: Vec<Rejected>,
}

impl Letters {
    fn new(skip_poison: bool, marker: Marker) -> Self {
        let kept = Kept {
            skip_poison,
            ..Kept::default()
        };
        Self(Arc::new(Mutex::new(kept)), Arc::new(marker))
    }
}

#[async_trait]
impl DeadLetterStore for Letters {
    async fn park(&self, letter: DeadLetter) -> cqrs_core::Result<()> {
        let marked = {
            let mut kept = lock(&self.0);
            if !kept.skip_poison {
                let reason = format!("poison event at {}: {}", letter.position, letter.error);
                kept.refused
                    .push(Rejected::new(letter.position, letter.error));
                return Err(cqrs_core::Error::ProjectionFailed {
                    projection: letter.projection,
                    reason,
                });
            }
            kept.marked
        };
        if !marked {
            // Durable before the letter is kept, so before the checkpoint can pass it (the
            // runner saves after it parks); a failed save fails the park, which is retried.
            let Marker { checkpoints, name } = &*self.1;
            checkpoints.save_checkpoint(name, letter.position).await?;
            lock(&self.0).marked = true;
        }
        let mut kept = lock(&self.0);
        if !kept.parked.iter().any(|l| l.position == letter.position) {
            kept.parked.push(letter);
        }
        Ok(())
    }

    async fn dead_letters(
        &self,
        _projection: &str,
        after: Position,
        limit: usize,
    ) -> cqrs_core::Result<Vec<DeadLetter>> {
        let mut letters: Vec<_> = (lock(&self.0).parked.iter())
            .filter(|l| l.position > after)
            .cloned()
            .collect();
        letters.sort_by_key(|l| l.position);
        letters.truncate(limit);
        Ok(letters)
    }

    async fn parked_keys(&self, _projection: &str) -> cqrs_core::Result<Vec<String>> {
        let mut keys: Vec<_> = (lock(&self.0).parked.iter())
            .filter_map(|l| l.key.clone())
            .collect();
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    async fn key_letters(
        &self,
        _projection: &str,
        key: &str,
        limit: usize,
    ) -> cqrs_core::Result<Vec<DeadLetter>> {
        let mut letters: Vec<_> = (lock(&self.0).parked.iter())
            .filter(|l| l.key.as_deref() == Some(key))
            .cloned()
            .collect();
        letters.sort_by_key(|l| l.position);
        letters.truncate(limit);
        Ok(letters)
    }

    async fn request(
        &self,
        _projection: &str,
        _target: &LetterTarget,
        _request: Option<Redrive>,
    ) -> cqrs_core::Result<u64> {
        Ok(0)
    }

    async fn requested(
        &self,
        _projection: &str,
        _limit: usize,
    ) -> cqrs_core::Result<Vec<DeadLetter>> {
        Ok(Vec::new())
    }

    async fn remove(&self, _projection: &str, positions: &[Position]) -> cqrs_core::Result<u64> {
        let mut kept = lock(&self.0);
        let before = kept.parked.len();
        kept.parked.retain(|l| !positions.contains(&l.position));
        Ok(u64::try_from(before - kept.parked.len()).unwrap_or(u64::MAX))
    }

    async fn redrive_failed(
        &self,
        _projection: &str,
        _position: Position,
        _error: &str,
    ) -> cqrs_core::Result<()> {
        Ok(())
    }
}

#[async_trait]
impl ReadStream for Letters {
    /// Never asked: no redrive is requested of a rebuild's letters.
    async fn read_stream(
        &self,
        _stream_id: &StreamId,
        _from: Version,
        _limit: usize,
    ) -> cqrs_core::Result<Vec<RecordedEvent>> {
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(major: u64, key: &str) -> DeadLetter {
        cqrs_core::backend::dead_letter(
            "accounts@v2#u",
            Position::from_parts(major, 0),
            StreamId::new(key).unwrap(),
            Version::new(major),
            "Corrupt",
            Some(key.to_owned()),
            "no such event",
            time::OffsetDateTime::UNIX_EPOCH,
        )
    }

    fn marker(store: &cqrs_core::InMemoryEventStore) -> Marker {
        Marker {
            checkpoints: Arc::new(store.clone()),
            name: skipped_marker("x@v2#u"),
        }
    }

    #[tokio::test]
    async fn with_skip_poison_letters_are_kept_once_and_hold_their_keys_back() {
        let store = cqrs_core::InMemoryEventStore::new();
        let letters = Letters::new(true, marker(&store));
        for l in [
            letter(3, "a-1"),
            letter(3, "a-1"),
            letter(5, "a-1"),
            letter(4, "b-1"),
        ] {
            letters.park(l).await.unwrap();
        }
        let positions: Vec<_> = (letters
            .dead_letters("x", Position::START, 10)
            .await
            .unwrap())
        .iter()
        .map(|l| l.position)
        .collect();
        assert_eq!(positions, [3, 4, 5].map(|m| Position::from_parts(m, 0)));
        assert_eq!(letters.parked_keys("x").await.unwrap(), ["a-1", "b-1"]);
        assert!(letters.requested("x", 10).await.unwrap().is_empty());
        let marked = store.load_checkpoint(&skipped_marker("x@v2#u")).await;
        assert!(
            marked.unwrap().is_some(),
            "the first letter marks the rebuild"
        );
    }

    /// Checkpoints whose first save fails, as a connection lost would.
    struct FailingOnce {
        inner: cqrs_core::InMemoryEventStore,
        failed: std::sync::atomic::AtomicBool,
    }

    #[async_trait]
    impl CheckpointStore for FailingOnce {
        async fn load_checkpoint(&self, name: &str) -> cqrs_core::Result<Option<Position>> {
            self.inner.load_checkpoint(name).await
        }

        async fn save_checkpoint(&self, name: &str, position: Position) -> cqrs_core::Result<()> {
            if !self.failed.swap(true, Ordering::SeqCst) {
                return Err(cqrs_core::Error::unavailable("connection lost"));
            }
            self.inner.save_checkpoint(name, position).await
        }
    }

    #[tokio::test]
    async fn a_marker_that_failed_to_save_is_saved_when_the_park_is_retried() {
        let store = cqrs_core::InMemoryEventStore::new();
        let failing = FailingOnce {
            inner: store.clone(),
            failed: Default::default(),
        };
        let marker = Marker {
            checkpoints: Arc::new(failing),
            name: skipped_marker("x@v2#u"),
        };
        let letters = Letters::new(true, marker);
        let failed = letters.park(letter(3, "a-1")).await.unwrap_err();
        assert!(failed.is_transient(), "{failed}");
        assert!(
            lock(&letters.0).parked.is_empty(),
            "not kept before it is marked"
        );
        letters.park(letter(3, "a-1")).await.unwrap();
        let marked = store.load_checkpoint(&skipped_marker("x@v2#u")).await;
        assert!(
            marked.unwrap().is_some(),
            "the retried park marks the rebuild"
        );
        assert_eq!(lock(&letters.0).parked.len(), 1);
    }

    #[tokio::test]
    async fn without_skip_poison_the_first_letter_is_refused_and_kept_for_the_error() {
        let store = cqrs_core::InMemoryEventStore::new();
        let letters = Letters::new(false, marker(&store));
        let refused = letters.park(letter(3, "a-1")).await.unwrap_err();
        assert!(
            !refused.is_transient(),
            "the runner must not retry it: {refused}"
        );
        {
            let kept = lock(&letters.0);
            assert!(kept.parked.is_empty());
            assert_eq!(
                kept.refused,
                [Rejected::new(Position::from_parts(3, 0), "no such event")]
            );
        }
        let marked = store.load_checkpoint(&skipped_marker("x@v2#u")).await;
        assert!(marked.unwrap().is_none(), "nothing was skipped");
    }
}
