//! The command pipeline: [`Repository`] loads an aggregate (snapshot + tail), lets it decide, and
//! appends what it decided under the expected version, retrying on conflict.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

use tracing::field::Empty;
use tracing::Instrument;
use uuid::Uuid;

use crate::telemetry::metrics;
use crate::telemetry::{follow_traceparent, span_traceparent, TRACEPARENT};
use crate::{
    Aggregate, CommandContext, CommandError, CommandId, CommandOutcome, Error, ExpectedVersion,
    NewEvent, RetryPolicy, Snapshot, SnapshotPolicy, SnapshotReplay, StreamEvent, StreamId,
    Upcasters, Version,
};
use crate::{AppendOutcome, EventStore, SnapshotStore};

/// Loads aggregates of type `A` from a store `S` and runs commands on them.
///
/// ```
/// # use cqrs_core::{Aggregate, DomainEvent};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Default, Serialize, Deserialize)]
/// # struct Counter { value: u64 }
/// # #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
/// # enum CounterEvent { Incremented { by: u64 } }
/// # #[derive(Debug, thiserror::Error)] #[error("too much")] struct TooMuch;
/// # impl Aggregate for Counter {
/// #     const TYPE: &'static str = "counter";
/// #     type Command = u64; type Event = CounterEvent; type Error = TooMuch; type Services = ();
/// #     fn apply(&mut self, CounterEvent::Incremented { by }: &CounterEvent) { self.value += by }
/// #     async fn handle(&self, by: &u64, _: &()) -> Result<Vec<CounterEvent>, TooMuch> {
/// #         if self.value + by > 100 { Err(TooMuch) } else { Ok(vec![CounterEvent::Incremented { by: *by }]) }
/// #     }
/// # }
/// use cqrs_core::{InMemoryEventStore, Repository, SnapshotPolicy, CommandError};
///
/// # tokio_test_block(async {
/// let counters = Repository::<Counter, _>::new(InMemoryEventStore::new())
///     .with_snapshots(SnapshotPolicy::every(50));
///
/// let outcome = counters.execute("c1", &30).await?;
/// assert_eq!(outcome.version.get(), 1);
/// counters.execute("c1", &30).await?;
///
/// let refused = counters.execute("c1", &50).await;
/// assert!(matches!(refused, Err(CommandError::Rejected(TooMuch))));
///
/// let (state, version) = counters.load("c1").await?;
/// assert_eq!((state.value, version.get()), (60, 2));
/// # Ok::<(), CommandError<TooMuch>>(())
/// # });
/// # fn tokio_test_block<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
/// # }
/// ```
pub struct Repository<A: Aggregate, S> {
    store: S,
    services: A::Services,
    upcasters: Upcasters,
    retry: RetryPolicy,
    snapshots: SnapshotPolicy,
    cache: Option<StateCache<A>>,
    read_batch: usize,
}

impl<A, S> Repository<A, S>
where
    A: Aggregate,
    A::Services: Default,
    S: EventStore + SnapshotStore,
{
    /// A repository over `store`, for aggregates whose services are `()` (or another
    /// `Default`): the default services go to every command. Conflicts are retried per
    /// [`RetryPolicy::default`]; no snapshots, no upcasters, no cache. Aggregates with services
    /// to pass use [`with_services`](Self::with_services).
    pub fn new(store: S) -> Self {
        Self::with_services(store, A::Services::default())
    }
}

impl<A, S> Repository<A, S>
where
    A: Aggregate,
    S: EventStore + SnapshotStore,
{
    /// A repository over `store`, handing `services` to every command (a payment gateway, a
    /// clock...). Otherwise as [`new`](Self::new).
    pub fn with_services(store: S, services: A::Services) -> Self {
        Self {
            store,
            services,
            upcasters: Upcasters::new(),
            retry: RetryPolicy::default(),
            snapshots: SnapshotPolicy::Never,
            cache: None,
            read_batch: 100_000,
        }
    }

    /// Upcasts old event payloads on load.
    #[must_use]
    pub fn with_upcasters(mut self, upcasters: Upcasters) -> Self {
        self.upcasters = upcasters;
        self
    }

    /// How conflicts are retried.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// When snapshots are taken (and whether loads look for one).
    #[must_use]
    pub fn with_snapshots(mut self, snapshots: SnapshotPolicy) -> Self {
        self.snapshots = snapshots;
        self
    }

    /// Keeps up to `capacity` aggregate states in memory between commands, so a command on a
    /// known aggregate needs a single round trip to the store: the append. The append's
    /// expected-version check keeps the cache honest; after a conflict the state catches up
    /// on the events it missed. A refusal or a decision to record nothing appends nothing, so
    /// it costs one read instead: the events written after the cached state, if another
    /// process wrote any, on which the command is decided again.
    /// Commands on one aggregate take turns within this repository (they would conflict
    /// anyway), so a hot aggregate stays warm instead of being reloaded by each racer.
    #[must_use]
    pub fn with_cache(mut self, capacity: usize) -> Self {
        self.cache = (capacity > 0).then(|| StateCache::new(capacity));
        self
    }

    /// How many events one stream read covers while loading (default 100,000): a longer
    /// stream is replayed in several reads. PostgreSQL folds a read's rows as they arrive and
    /// the in-memory store in place, so their memory does not grow with it; a store that keeps
    /// [`ReadStream::replay`](crate::ReadStream::replay)'s default holds up to this many
    /// events at once.
    #[must_use]
    pub fn with_read_batch(mut self, events: usize) -> Self {
        self.read_batch = events.max(1);
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The stream of aggregate `id`: `"{A::TYPE}-{id}"`. `id` may not be empty, and may be at
    /// most [`StreamId::MAX_LEN`]` - A::TYPE.len() - 1` bytes long (see
    /// [`StreamId::with_category`]).
    pub fn stream_id(&self, id: &str) -> Result<StreamId, Error> {
        Ok(StreamId::with_category(A::TYPE, id)?)
    }

    /// The current state of aggregate `id` and its version ([`Version::ZERO`] if it has no
    /// events yet). Uses the newest usable snapshot, then the events after it.
    pub async fn load(&self, id: &str) -> Result<(A, Version), Error> {
        let stream_id = self.stream_id(id)?;
        self.load_stream(&stream_id).await
    }

    /// Runs `command` on aggregate `id`.
    pub async fn execute(
        &self,
        id: &str,
        command: &A::Command,
    ) -> Result<CommandOutcome<A::Event>, CommandError<A::Error>> {
        self.execute_with(id, command, CommandContext::new()).await
    }

    /// Runs `command` on aggregate `id` with a command id, correlation, causation or headers.
    ///
    /// The command runs in an info span `command` (aggregate, stream, command id, correlation
    /// id; attempts and outcome once it ends). With the `opentelemetry` feature, its events
    /// carry that span's trace context in their [`TRACEPARENT`] header. A [`TRACEPARENT`]
    /// header in `context` wins over the current span: the command's span continues the
    /// trace it names (and the events name the command's span); when the command's span is
    /// not traced, the events carry the header as it is.
    pub async fn execute_with(
        &self,
        id: &str,
        command: &A::Command,
        mut context: CommandContext,
    ) -> Result<CommandOutcome<A::Event>, CommandError<A::Error>> {
        let stream_id = self.stream_id(id)?;
        let started = std::time::Instant::now();
        // Resolved once, so the span (and every log line inside) and all events agree.
        let correlation_id = *context.correlation_id.get_or_insert_with(Uuid::now_v7);
        let span = tracing::info_span!(
            "command",
            aggregate = A::TYPE,
            stream = %stream_id,
            command_id = context.command_id.map(tracing::field::display),
            %correlation_id,
            attempts = Empty,
            outcome = Empty,
            // A failure (not a refusal: that is an answer) marks the span as an error in the
            // trace, with why, so a search for errors finds it.
            otel.status_description = Empty,
        );
        // An explicit trace wins: the span continues it. Either way the events name the span
        // that wrote them; an explicit header stays as it is only when that span is not
        // traced (a caller without tracing passing a trace on).
        if let Some(explicit) = context.headers.get(TRACEPARENT) {
            follow_traceparent(&span, explicit);
        }
        // Once per command: events of a command without a trace allocate nothing for it.
        if let Some(traceparent) = span_traceparent(&span) {
            context.headers.insert(TRACEPARENT.to_owned(), traceparent);
        }
        // Counted as cancelled if the caller drops this future first (it gave up waiting).
        let unfinished = metrics::record::Unfinished::command(A::TYPE, started);
        let result = self
            .run(&stream_id, command, &context)
            .instrument(span.clone())
            .await;
        unfinished.finished();
        if let Ok(outcome) = &result {
            span.record("attempts", outcome.attempts);
        }
        let outcome = metrics::record::command_outcome(&result);
        span.record("outcome", outcome);
        if let Err(CommandError::Store(error)) = &result {
            span.record("otel.status_description", tracing::field::display(error));
        }
        metrics::record::command(A::TYPE, started, outcome);
        result
    }

    async fn run(
        &self,
        stream_id: &StreamId,
        command: &A::Command,
        context: &CommandContext,
    ) -> Result<CommandOutcome<A::Event>, CommandError<A::Error>> {
        if let Some(command_id) = context.command_id.filter(|_| !context.first_delivery) {
            if let Some(first) = self.store.command_outcome(command_id).await? {
                return Ok(self
                    .first_outcome(stream_id, Some(command_id), first, 1)
                    .await?);
            }
        }
        // With a cache, commands on one stream take turns in this process: the state stays warm
        // and they do not conflict with each other.
        let mut slot = match &self.cache {
            Some(cache) => Some(cache.slot(stream_id).lock_owned().await),
            None => None,
        };
        let (mut attempt, mut budget) = (0, self.retry.max_attempts());
        // The caller's claim that the stream is new holds for the first attempt only.
        let mut claimed_new = context.new_stream;
        // The state a conflicting attempt decided on: still right at its version (a stream's
        // events never change), so the retry folds in only the events it missed.
        let mut behind: Option<(A, Version)> = None;
        // A cached state caught up to the stream's head after it decided to append nothing.
        let mut confirmed: Option<(A, Version)> = None;
        loop {
            attempt += 1;
            tracing::Span::current().record("attempts", attempt);
            let cached = slot.as_mut().and_then(|s| s.take());
            let from_cache = cached.is_some();
            let guessed = std::mem::take(&mut claimed_new) && cached.is_none();
            let (mut state, version) = match cached.or_else(|| confirmed.take()) {
                Some(ready) => ready,
                None if guessed => (A::default(), Version::ZERO),
                None => match behind.take() {
                    Some((state, version)) => self.catch_up(stream_id, state, version).await?,
                    None => self.load_stream(stream_id).await?,
                },
            };
            let handled = state
                .handle(command, &self.services)
                .instrument(tracing::debug_span!("handle"))
                .await;
            let appends = matches!(&handled, Ok(events) if !events.is_empty());
            // Only an append expecting no events proves a stream new: a refusal or a decision
            // to record nothing, taken on the guessed initial state, is taken again on the
            // stream's own.
            if !appends && guessed {
                budget = budget.saturating_add(1);
                continue;
            }
            // Only an append's expected version proves a cached state current (another
            // process may have written since): a refusal or a decision to record nothing taken
            // on one stands only if no event was written after it, else it is taken again on
            // the caught-up state. Neither is a retry.
            if !appends && from_cache {
                let (caught_up, head) = self.catch_up(stream_id, state, version).await?;
                if head != version {
                    budget = budget.saturating_add(1);
                    confirmed = Some((caught_up, head));
                    continue;
                }
                state = caught_up;
            }
            let events = match handled {
                Ok(events) => events,
                Err(rejection) => {
                    keep(&mut slot, state, version);
                    if let Some(first) = self.delivered_before(stream_id, context, attempt).await? {
                        return Ok(first);
                    }
                    return Err(CommandError::Rejected(rejection));
                }
            };
            if events.is_empty() {
                keep(&mut slot, state, version);
                return Ok(CommandOutcome {
                    events,
                    version,
                    position: None,
                    duplicate: false,
                    attempts: attempt,
                });
            }
            let metadata = context.metadata_factory();
            let new_events = events
                .iter()
                .map(|e| NewEvent::from_domain(e, metadata()))
                .collect::<Result<Vec<_>, _>>()?;
            let span = tracing::debug_span!("append", events = new_events.len(), %version);
            let appended = self
                .store
                .append(stream_id, ExpectedVersion::Exact(version), new_events)
                .instrument(span)
                .await;
            match appended {
                Ok(outcome) if outcome.duplicate => {
                    // Another run of the same command (or of these very events) won the race.
                    return Ok(self
                        .first_outcome(stream_id, context.command_id, outcome, attempt)
                        .await?);
                }
                Ok(outcome) => {
                    for event in &events {
                        state.apply(event);
                    }
                    self.maybe_snapshot(stream_id, &state, version, outcome.last_version)
                        .await;
                    keep(&mut slot, state, outcome.last_version);
                    return Ok(CommandOutcome {
                        events,
                        version: outcome.last_version,
                        position: Some(outcome.position),
                        duplicate: false,
                        attempts: attempt,
                    });
                }
                Err(conflict @ Error::Conflict { .. }) => {
                    if guessed {
                        // Nothing was written: the stream claimed new has events. Load it and
                        // run again at once; the wrong guess is not one of the retries.
                        budget = budget.saturating_add(1);
                        tracing::debug!(attempt, "the stream claimed new has events, loading it");
                    } else {
                        let retrying = attempt < budget;
                        metrics::record::command_conflict(A::TYPE, retrying);
                        if !retrying {
                            return Err(conflict.into());
                        }
                        tracing::debug!(attempt, "conflict, retrying");
                        tokio::time::sleep(self.retry.delay(attempt)).await;
                        behind = Some((state, version));
                    }
                    if let Some(command_id) = context.command_id {
                        if let Some(first) = self.store.command_outcome(command_id).await? {
                            return Ok(self
                                .first_outcome(stream_id, Some(command_id), first, attempt + 1)
                                .await?);
                        }
                    }
                }
                Err(other) => return Err(other.into()),
            }
        }
    }

    /// The first outcome of a command refused under a claim of
    /// [`first_delivery`](CommandContext::first_delivery), if it was delivered before after all
    /// (a second worker of a process manager whose term overlapped sent the same step): the
    /// claim spares the lookup when the command lands, not when the state it made refuses it.
    async fn delivered_before(
        &self,
        stream_id: &StreamId,
        context: &CommandContext,
        attempts: u32,
    ) -> Result<Option<CommandOutcome<A::Event>>, Error> {
        let Some(command_id) = context.command_id.filter(|_| context.first_delivery) else {
            return Ok(None);
        };
        match self.store.command_outcome(command_id).await? {
            Some(first) => Ok(Some(
                self.first_outcome(stream_id, Some(command_id), first, attempts)
                    .await?,
            )),
            None => Ok(None),
        }
    }

    /// The outcome of an earlier run of the same command, rebuilt from the store.
    async fn first_outcome(
        &self,
        stream_id: &StreamId,
        command_id: Option<CommandId>,
        first: AppendOutcome,
        attempts: u32,
    ) -> Result<CommandOutcome<A::Event>, Error> {
        if let Some(command_id) = command_id.filter(|_| first.stream_id != *stream_id) {
            return Err(Error::CommandIdReused {
                command_id,
                stream_id: first.stream_id,
            });
        }
        let wanted = first
            .last_version
            .get()
            .checked_sub(first.first_version.get())
            .and_then(|span| usize::try_from(span).ok()?.checked_add(1))
            .ok_or_else(|| {
                Error::Backend(
                    format!(
                        "the store's first outcome of a command on {} ends at version {}, \
                         before its first, {}",
                        first.stream_id, first.last_version, first.first_version
                    )
                    .into(),
                )
            })?;
        let recorded = self
            .store
            .read_stream(&first.stream_id, first.first_version, wanted)
            .await?;
        let mut events = Vec::with_capacity(recorded.len());
        for event in recorded {
            let event = self.upcasters.upcast(event)?;
            events.push(event.into_domain()?);
        }
        Ok(CommandOutcome {
            events,
            version: first.last_version,
            position: Some(first.position),
            duplicate: true,
            attempts,
        })
    }

    async fn load_stream(&self, stream_id: &StreamId) -> Result<(A, Version), Error> {
        let span = tracing::debug_span!(
            "load",
            stream = %stream_id,
            from_snapshot = Empty,
            events = Empty,
        );
        async {
            let (state, version) = match self.snapshots {
                SnapshotPolicy::Never => (A::default(), Version::ZERO),
                SnapshotPolicy::Every(_) => match self.replay_from_snapshot(stream_id).await? {
                    Some(loaded) => return Ok(loaded),
                    None => self.load_snapshot(stream_id).await?,
                },
            };
            tracing::Span::current().record("from_snapshot", version != Version::ZERO);
            self.fold_after(stream_id, Folding::at(state, version))
                .await
        }
        .instrument(span.clone())
        .await
    }

    /// `state` at `version` brought to the stream's head: a retry's load after a conflict.
    async fn catch_up(
        &self,
        stream_id: &StreamId,
        state: A,
        version: Version,
    ) -> Result<(A, Version), Error> {
        self.fold_after(stream_id, Folding::at(state, version))
            .instrument(tracing::debug_span!(
                "catch_up",
                stream = %stream_id,
                %version,
                events = Empty,
            ))
            .await
    }

    /// Folds the stream's events after `folding`'s version into it, in reads of `read_batch`,
    /// to the stream's head.
    async fn fold_after(
        &self,
        stream_id: &StreamId,
        mut folding: Folding<A>,
    ) -> Result<(A, Version), Error> {
        loop {
            let from = folding.version.next();
            let mut fold = |event: StreamEvent<'_>| folding.fold(&self.upcasters, stream_id, event);
            let batch = (self.store)
                .replay(stream_id, from, self.read_batch, &mut fold)
                .await?;
            if batch < self.read_batch {
                return Ok(folding.done());
            }
        }
    }

    /// The stream loaded by one read of its snapshot and the events after it, where the store
    /// can ([`SnapshotStore::replay_from_snapshot`]); `None` where it cannot. A tail longer than
    /// [`SNAPSHOT_TAIL_READ`] (a snapshot policy turned on for long streams) is folded on in
    /// `read_batch` reads; an unusable snapshot costs a second read, by full replay.
    async fn replay_from_snapshot(
        &self,
        stream_id: &StreamId,
    ) -> Result<Option<(A, Version)>, Error> {
        let limit = self.read_batch.min(SNAPSHOT_TAIL_READ);
        let mut folding = Folding::at(A::default(), Version::ZERO);
        let (mut usable, mut from_snapshot) = (true, false);
        let mut fold = |item: SnapshotReplay<'_>| {
            match item {
                SnapshotReplay::Snapshot(snapshot) => match usable_snapshot::<A>(snapshot) {
                    Some((state, version)) => {
                        folding = Folding::at(state, version);
                        from_snapshot = true;
                    }
                    None => usable = false,
                },
                SnapshotReplay::Event(event) if usable => {
                    folding.fold(&self.upcasters, stream_id, event)?;
                }
                SnapshotReplay::Event(_) => {}
            }
            Ok(())
        };
        let read = self
            .store
            .replay_from_snapshot(stream_id, limit, &mut fold)
            .await?;
        let Some(read) = read else { return Ok(None) };
        tracing::Span::current().record("from_snapshot", from_snapshot);
        if !usable {
            let replay = Folding::at(A::default(), Version::ZERO);
            return self.fold_after(stream_id, replay).await.map(Some);
        }
        if read < limit {
            return Ok(Some(folding.done()));
        }
        self.fold_after(stream_id, folding).await.map(Some)
    }

    /// The newest snapshot's state if it is usable; otherwise the initial state.
    async fn load_snapshot(&self, stream_id: &StreamId) -> Result<(A, Version), Error> {
        let snapshot = self.store.load_snapshot(stream_id).await?;
        Ok(snapshot
            .and_then(usable_snapshot::<A>)
            .unwrap_or((A::default(), Version::ZERO)))
    }

    async fn maybe_snapshot(
        &self,
        stream_id: &StreamId,
        state: &A,
        before: Version,
        after: Version,
    ) {
        if !self.snapshots.is_due(before, after) {
            return;
        }
        let snapshot = serde_json::to_value(state)
            .map_err(|source| Error::Snapshot {
                stream_id: stream_id.clone(),
                source,
            })
            .map(|value| Snapshot::new(stream_id.clone(), after, A::SNAPSHOT_VERSION, value));
        let saved = match snapshot {
            Ok(snapshot) => self.store.save_snapshot(snapshot).await,
            Err(error) => Err(error),
        };
        // The command has succeeded; a snapshot is only a shortcut for later loads.
        if let Err(error) = saved {
            tracing::warn!(stream = %stream_id, error = &error as &dyn std::error::Error, "snapshot not saved");
        }
    }
}

/// One stream's cached state; empty while being (re)loaded or after a conflict.
type Slot<A> = Option<(A, Version)>;

/// A state being brought to its stream's head: the state, the version it includes, and how
/// many events this load or catch-up folded into it.
struct Folding<A> {
    state: A,
    version: Version,
    events: usize,
}

impl<A: Aggregate> Folding<A> {
    /// `state` at `version`, nothing folded yet.
    fn at(state: A, version: Version) -> Self {
        Self {
            state,
            version,
            events: 0,
        }
    }

    /// Upcasts, decodes and applies the next event.
    fn fold(
        &mut self,
        upcasters: &Upcasters,
        stream_id: &StreamId,
        event: StreamEvent<'_>,
    ) -> Result<(), Error> {
        let decoded: A::Event = upcasters.decode(stream_id, event)?;
        self.state.apply(&decoded);
        self.version = event.version;
        self.events += 1;
        Ok(())
    }

    /// The state at the head, recording how many events it took on the current span's
    /// `events` (a load's or a catch-up's).
    fn done(self) -> (A, Version) {
        tracing::Span::current().record("events", self.events);
        (self.state, self.version)
    }
}

/// At most how many events a load behind a snapshot reads with the snapshot in one go: the
/// tail is usually shorter than the snapshot interval, and a store may sort what it reads with
/// the snapshot (PostgreSQL's one statement does).
const SNAPSHOT_TAIL_READ: usize = 1_000;

/// A snapshot's state and version if it is usable. A snapshot of another schema, or one that
/// does not deserialize, is ignored with a warning: the load replays the whole stream.
fn usable_snapshot<A: Aggregate>(snapshot: Snapshot) -> Option<(A, Version)> {
    if snapshot.schema_version != A::SNAPSHOT_VERSION {
        tracing::warn!(
            stream = %snapshot.stream_id,
            found = snapshot.schema_version,
            current = A::SNAPSHOT_VERSION,
            "ignoring a snapshot of another schema version; loading by full replay",
        );
        return None;
    }
    match serde_json::from_value(snapshot.state) {
        Ok(state) => Some((state, snapshot.version)),
        Err(error) => {
            tracing::warn!(
                stream = %snapshot.stream_id,
                %error,
                "ignoring a snapshot that does not deserialize; loading by full replay",
            );
            None
        }
    }
}

/// Puts a state back into the stream's slot, if the repository caches.
fn keep<A>(slot: &mut Option<OwnedMutexGuard<Slot<A>>>, state: A, version: Version) {
    if let Some(slot) = slot.as_mut() {
        **slot = Some((state, version));
    }
}

/// Aggregate states between commands, one slot per stream. A command holds its stream's slot
/// for its whole run, so commands on one stream take turns within this process; another
/// process's writes show up as conflicts at append, after which the state catches up.
struct StateCache<A> {
    slots: Mutex<HashMap<StreamId, Arc<tokio::sync::Mutex<Slot<A>>>>>,
    capacity: usize,
}

impl<A> StateCache<A> {
    fn new(capacity: usize) -> Self {
        Self {
            slots: Mutex::new(HashMap::with_capacity(capacity.min(1 << 16))),
            capacity,
        }
    }

    fn slot(&self, stream_id: &StreamId) -> Arc<tokio::sync::Mutex<Slot<A>>> {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(slot) = slots.get(stream_id) {
            return slot.clone();
        }
        if slots.len() >= self.capacity {
            // No recency bookkeeping on the hot path: evict an arbitrary slot. A command still
            // holding it finishes unharmed; the next one on that stream loads from the store.
            if let Some(victim) = slots.keys().next().cloned() {
                slots.remove(&victim);
            }
        }
        let slot = Arc::new(tokio::sync::Mutex::new(None));
        slots.insert(stream_id.clone(), slot.clone());
        slot
    }
}
