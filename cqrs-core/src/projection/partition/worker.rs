//! [`PartitionedRunner`]: one worker of a partitioned projection. It keeps a member lease,
//! lists the live members, and runs (each on an ordinary [`ProjectionRunner`]) the partitions
//! the assignment gives it, stopping gracefully those it no longer owns.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument;

use crate::projection::{
    Lease, LeaseStore, Projection, ProjectionHandle, ProjectionRunner, ProjectionStatus,
    ProjectionStore, RunnerOptions,
};

use super::assign::assign;
use super::wrapper::PartitionProjection;
use super::{PartitionedStatus, Partitions, PARTITIONS};
use crate::projection::runner::Stop;

/// Makes the runner of one partition.
type MakeRunner = Arc<dyn Fn(PartitionProjection) -> ProjectionRunner + Send + Sync>;

/// The live status of each partition a worker runs.
type Live = Arc<Mutex<BTreeMap<u32, watch::Receiver<ProjectionStatus>>>>;

/// Gives the projection instance of one partition.
type MakeProjection = Arc<dyn Fn(u32) -> Arc<dyn Projection> + Send + Sync>;

/// One worker of a projection split into [`Partitions`]. Start one in each process (each
/// with its own worker id, [`RunnerOptions::owner`], unique among the workers); they share
/// only the store, and split the partitions between them as they join, leave and die.
///
/// Each partition is the projection under the partition's name
/// ([`Partitions::name`]: its own checkpoint, lease and dead letters), run by an ordinary
/// [`ProjectionRunner`] with the options given here, so it behaves as an unpartitioned one
/// does: batches, retries, breaker, dead letters, fenced saves. A partition newly given to
/// this worker stands by until its old holder released it or its lease expired.
///
/// Every `lease_ttl / 3` the worker renews its member lease
/// (`{projection}/members/{worker}`), lists the live members and runs what the assignment
/// gives it. After a worker dies, its partitions run elsewhere within about one lease time
/// to live plus two such ticks.
///
/// At each look it first counts the partitions led of each layout (each count, and by stream
/// against by key: a change of layout is a migration, and workers of two layouts would split
/// the events differently). A worker running nothing waits while another layout leads any:
/// it stays out of the membership, runs nothing and says so
/// ([`PartitionedStatus::waiting_for`]), and joins once the old layout's workers let every
/// partition go. Two layouts running at once (their workers looked at the same moment) see
/// each other at the next look, and every worker of the layout leading fewer partitions stops
/// and waits: they overlap for at most a look.
///
/// With [`for_store`](Self::for_store) the projection is shared by the partitions this
/// worker runs: `apply` may be called concurrently, for different partitions (by stream:
/// different streams; by key: different keys), and `leadership_changed` comes from each.
/// A projection that keeps per-term state (a cache, a timer pump, a retry memo: process
/// managers, the Kafka publisher) gets an instance per partition from
/// [`for_store_each`](Self::for_store_each).
///
/// ```
/// use async_trait::async_trait;
/// use cqrs_core::projection::{PartitionedRunner, Partitions, Projection, ProjectionError, RunnerOptions};
/// use cqrs_core::{AppendEvents, ExpectedVersion, InMemoryEventStore, NewEvent, RecordedEvent, StreamId};
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
///
/// #[derive(Clone)]
/// struct LastVersion(Arc<Mutex<std::collections::HashMap<String, u64>>>);
///
/// #[async_trait]
/// impl Projection for LastVersion {
///     fn name(&self) -> &str { "last-version" }
///     async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
///         let mut seen = self.0.lock().unwrap();
///         for event in events {
///             seen.insert(event.stream_id.to_string(), event.version.get());
///         }
///         Ok(())
///     }
/// }
///
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let store = InMemoryEventStore::new();
/// let seen = LastVersion(Default::default());
/// let options = RunnerOptions::new().lease_ttl(Duration::from_millis(600));
/// // Two workers (in one process here; in several processes in production).
/// let workers: Vec<_> = ["a", "b"]
///     .into_iter()
///     .map(|id| {
///         PartitionedRunner::for_store(seen.clone(), Partitions::by_stream(4), &store)
///             .with_options(options.clone().owner(id))
///             .spawn()
///     })
///     .collect();
/// for i in 0..20 {
///     let stream = StreamId::new(format!("order-{i}"))?;
///     store.append(&stream, ExpectedVersion::Any, vec![NewEvent::new("Placed", 1, serde_json::json!({}))]).await?;
/// }
/// let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
/// while seen.0.lock().unwrap().len() < 20 && tokio::time::Instant::now() < deadline {
///     tokio::time::sleep(Duration::from_millis(20)).await;
/// }
/// assert_eq!(seen.0.lock().unwrap().len(), 20);
/// for worker in workers {
///     worker.shutdown().await;
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub struct PartitionedRunner {
    name: String,
    projection: MakeProjection,
    partitions: Partitions,
    leases: Arc<dyn LeaseStore>,
    make: MakeRunner,
    options: RunnerOptions,
}

impl PartitionedRunner {
    /// A worker of `projection` split into `partitions`, with every role played by `store`
    /// (as [`ProjectionRunner::for_store`]); the store's leases also keep the membership.
    pub fn for_store<S: ProjectionStore>(
        projection: impl Projection + 'static,
        partitions: Partitions,
        store: &S,
    ) -> Self {
        let projection: Arc<dyn Projection> = Arc::new(projection);
        Self::new(
            projection.name().to_owned(),
            Arc::new(move |_| projection.clone()),
            partitions,
            store,
        )
    }

    /// Like [`for_store`](Self::for_store), with an instance of the projection per partition,
    /// made by `make` (given the partition's index) each time this worker starts running the
    /// partition: for projections that keep state per term, such as a
    /// [`ProcessManagerProjection`](crate::process::ProcessManagerProjection) (its instance
    /// cache and timer pump; the pumps of several partitions race, and each timeout still
    /// fires once) or a publisher's retry memo. Every instance must have the same name.
    pub fn for_store_each<S, P, F>(partitions: Partitions, store: &S, make: F) -> Self
    where
        S: ProjectionStore,
        P: Projection + 'static,
        F: Fn(u32) -> P + Send + Sync + 'static,
    {
        let name = make(0).name().to_owned();
        let make: MakeProjection = Arc::new(move |index| Arc::new(make(index)));
        Self::new(name, make, partitions, store)
    }

    fn new<S: ProjectionStore>(
        name: String,
        projection: MakeProjection,
        partitions: Partitions,
        store: &S,
    ) -> Self {
        let runners = store.clone();
        Self {
            name,
            projection,
            partitions,
            leases: Arc::new(store.clone()),
            make: Arc::new(move |partition| ProjectionRunner::for_store(partition, &runners)),
            options: RunnerOptions::default(),
        }
    }

    /// The options of each partition's runner. Its owner is this worker's id, unique among
    /// the workers; its lease time to live also paces the membership. The checkpoint name is
    /// each partition's own.
    #[must_use]
    pub fn with_options(mut self, options: RunnerOptions) -> Self {
        self.options = options;
        self
    }

    /// Keeps the membership and the partitions' leases in `leases`: the store itself behind
    /// a wrapper (to watch or fault its calls), since the store checks the partitions' fenced
    /// checkpoint saves against its own leases (a runner whose saves are refused under a lease
    /// `leases` holds fails, saying so).
    #[must_use]
    pub fn with_leases(mut self, leases: impl LeaseStore + 'static) -> Self {
        self.leases = Arc::new(leases);
        self
    }

    /// Starts the worker in its own task. Needs a tokio runtime.
    pub fn spawn(mut self) -> PartitionedHandle {
        // One lease owner for the member lease and every partition's runner of this worker.
        self.options = self.options.instance();
        let name = self.name.clone();
        let (status_tx, status) =
            watch::channel(PartitionedStatus::new(&name, &self.options.owner));
        let (stop, stop_rx) = watch::channel(false);
        let span = tracing::info_span!("partitioned", name = %name, worker = %self.options.owner);
        let live = Live::default();
        let task = tokio::spawn(self.run(stop_rx, status_tx, live.clone()).instrument(span));
        PartitionedHandle {
            status,
            live,
            stop,
            task,
        }
    }

    /// Runs a partition's runner.
    fn start(&self, index: u32) -> Option<ProjectionHandle> {
        let partition = self.partitions.partition(index)?;
        let name = self.partitions.name(&self.name, index);
        let wrapper = PartitionProjection {
            inner: (self.projection)(index),
            name: name.clone(),
            partition,
            by: self.partitions.by(),
        };
        let runner = (self.make)(wrapper)
            .with_options(self.options.clone().checkpoint_name(name))
            .with_shared_leases(self.leases.clone());
        Some(runner.spawn())
    }

    async fn run(
        self,
        stop: watch::Receiver<bool>,
        status: watch::Sender<PartitionedStatus>,
        live: Live,
    ) {
        let owner = self.options.owner.clone();
        let instance = self.options.lease_owner().to_owned();
        let ttl = self.options.lease_ttl;
        let prefix = Partitions::members_prefix(&self.name);
        let member_name = format!("{prefix}{owner}");
        let mut running = Running::default();
        let mut member: Option<Lease> = None;
        // A dropped handle stops it too, as a dropped `ProjectionHandle` stops its runner.
        let mut stop = Stop::new(stop);
        while !stop.stopping() {
            running.reap();
            let mut error = None;
            let runs = running.runs_any();
            let waiting = match bounded(ttl, self.led_by_layout()).await {
                Ok(led) => gives_way_to(&led, self.partitions, runs),
                // Running, it goes on; idle, it cannot tell whether it may start.
                Err(_) if runs => None,
                Err(e) => {
                    error = Some(format!("could not list the partitions led: {e}"));
                    None
                }
            };
            if waiting.is_some() || error.is_some() {
                // Out of the membership: the running workers must give this one nothing. What
                // it ran stops (another layout leads more partitions: both cannot run).
                if runs {
                    tracing::info!("another layout leads: stopping every partition");
                }
                running.stop_all();
                live.lock().unwrap_or_else(PoisonError::into_inner).clear();
                if let Some(lease) = member.take() {
                    if let Err(e) = bounded(ttl, self.leases.release(&lease)).await {
                        tracing::warn!(error = %e, "could not release the member lease");
                    }
                }
                let told = status.borrow().waiting_for == waiting;
                if let (Some(layout), false) = (waiting, told) {
                    tracing::warn!(
                        count = layout.count(),
                        by = ?layout.by(),
                        "partitions of another layout are led: waiting until they are let go"
                    );
                }
                status.send_modify(|s| {
                    s.members.clear();
                    s.assigned.clear();
                    s.partitions.clear();
                    s.stopping = running.stopping();
                    s.waiting_for = waiting;
                    if error.is_some() {
                        s.last_error = error;
                    }
                });
                if !stop.pause(ttl / 3).await {
                    break;
                }
                continue;
            }
            status.send_modify(|s| s.waiting_for = None);
            match bounded(ttl, self.leases.try_acquire(&member_name, &instance, ttl)).await {
                Ok(Some(lease)) => member = Some(lease),
                Ok(None) => {
                    member = None;
                    error = Some(format!(
                        "another worker holds the member lease of {owner}: worker ids must be unique"
                    ));
                }
                Err(e) => error = Some(format!("could not renew the member lease: {e}")),
            }
            let listed = bounded(ttl, self.leases.leases(&prefix)).await;
            match listed {
                Ok(leases) => {
                    // Members by worker id (their member leases' names): a second worker
                    // given a taken id holds no member lease, and takes none of the partitions.
                    let mut members: Vec<String> = leases
                        .iter()
                        .filter_map(|l| l.name.strip_prefix(&prefix).map(str::to_owned))
                        .collect();
                    members.sort();
                    members.dedup();
                    let owners = assign(&members, self.partitions.count());
                    let mine: BTreeSet<u32> = (0..self.partitions.count())
                        .zip(owners)
                        .filter(|(_, o)| member.is_some() && members.get(*o) == Some(&owner))
                        .map(|(i, _)| i)
                        .collect();
                    let gone: Vec<u32> = (running.runs.keys().copied())
                        .filter(|i| !mine.contains(i))
                        .collect();
                    for index in gone {
                        tracing::info!(partition = index, "no longer ours: stopping");
                        running.stop(index);
                    }
                    for index in &mine {
                        if !running.has(*index) {
                            if let Some(handle) = self.start(*index) {
                                tracing::info!(partition = index, "ours: starting");
                                running.runs.insert(*index, handle);
                            }
                        }
                    }
                    status.send_modify(|s| {
                        s.members = members;
                        s.assigned = mine.into_iter().collect();
                    });
                }
                Err(e) => error = Some(format!("could not list the members: {e}")),
            }
            if let Some(error) = &error {
                tracing::warn!(%error, "partition membership");
            }
            *live.lock().unwrap_or_else(PoisonError::into_inner) =
                running.runs.iter().map(|(i, h)| (*i, h.watch())).collect();
            status.send_modify(|s| {
                s.partitions = running.runs.iter().map(|(i, h)| (*i, h.status())).collect();
                s.stopping = running.stopping();
                if error.is_some() {
                    s.last_error = error;
                }
            });
            if !stop.pause(ttl / 3).await {
                break;
            }
        }
        running.stop_all();
        live.lock().unwrap_or_else(PoisonError::into_inner).clear();
        running.stopped().await;
        if let Some(lease) = member {
            if let Err(error) = bounded(ttl, self.leases.release(&lease)).await {
                tracing::warn!(%error, "could not release the member lease; it will expire");
            }
        }
        status.send_modify(|s| {
            s.partitions.clear();
            s.assigned.clear();
            s.stopping.clear();
            s.stopped = true;
        });
    }
}

impl PartitionedRunner {
    /// How many partitions of each layout of this projection are led now, from the
    /// partitions' lease names.
    async fn led_by_layout(&self) -> crate::Result<BTreeMap<Partitions, usize>> {
        let prefix = format!("{}{PARTITIONS}", self.name);
        let mut led = BTreeMap::new();
        for lease in self.leases.leases(&prefix).await? {
            if let Some((projection, layout, _)) = Partitions::parse_name(&lease.name) {
                if projection == self.name {
                    *led.entry(layout).or_default() += 1;
                }
            }
        }
        Ok(led)
    }
}

/// The layout (a count, or [`Partitions`]) a worker of layout `ours` gives way to, given how
/// many partitions of each layout are `led`: while it runs nothing, any other layout leading
/// one; while it `runs`, a layout leading more partitions than its own does (or as many, and
/// ordered after it: of more partitions in all, or by key against by stream), so that of two
/// layouts running at once, every worker of one stops and those of the other go on. The
/// first such layout, if several.
fn gives_way_to<L: Ord + Copy>(led: &BTreeMap<L, usize>, ours: L, runs: bool) -> Option<L> {
    let mine = led.get(&ours).copied().unwrap_or(0);
    led.iter()
        .filter(|(layout, _)| **layout != ours)
        .filter(|(layout, n)| !runs || **n > mine || (**n == mine && **layout > ours))
        .map(|(layout, _)| *layout)
        .min()
}

/// A store call bounded by `limit`: one that does not answer is an error.
async fn bounded<T>(
    limit: Duration,
    call: impl std::future::Future<Output = crate::Result<T>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("the store did not answer in time".to_owned()),
    }
}

/// The partitions a worker runs, and those it is stopping; the running ones are killed (as a
/// crash would) when dropped, so aborting the worker aborts them too.
#[derive(Default)]
struct Running {
    runs: BTreeMap<u32, ProjectionHandle>,
    /// The partitions stopping gracefully (they settle, save and release), each its index.
    stopping: JoinSet<u32>,
    stopping_ids: BTreeSet<u32>,
}

impl Running {
    /// Whether it runs any partition (stopping ones aside).
    fn runs_any(&self) -> bool {
        !self.runs.is_empty()
    }

    /// Whether partition `index` runs or is still stopping.
    fn has(&self, index: u32) -> bool {
        self.runs.contains_key(&index) || self.stopping_ids.contains(&index)
    }

    /// Stops partition `index` gracefully, in the background.
    fn stop(&mut self, index: u32) {
        if let Some(handle) = self.runs.remove(&index) {
            self.stopping_ids.insert(index);
            self.stopping.spawn(async move {
                handle.shutdown().await;
                index
            });
        }
    }

    /// Stops every partition it runs, gracefully, in the background.
    fn stop_all(&mut self) {
        let indices: Vec<u32> = self.runs.keys().copied().collect();
        for index in indices {
            self.stop(index);
        }
    }

    /// Forgets the partitions that have stopped.
    fn reap(&mut self) {
        while let Some(done) = self.stopping.try_join_next() {
            if let Ok(index) = done {
                self.stopping_ids.remove(&index);
            }
        }
    }

    /// The partitions stopping now.
    fn stopping(&self) -> Vec<u32> {
        self.stopping_ids.iter().copied().collect()
    }

    /// Waits until every partition stopping has stopped.
    async fn stopped(&mut self) {
        while self.stopping.join_next().await.is_some() {}
        self.stopping_ids.clear();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for (_, handle) in std::mem::take(&mut self.runs) {
            handle.abort();
        }
    }
}

/// A running partitioned worker: its status, and how to stop it. Dropping it stops the worker
/// as [`shutdown`](Self::shutdown) does (its partitions stop, its leases are let go), without
/// waiting for it.
#[derive(Debug)]
pub struct PartitionedHandle {
    status: watch::Receiver<PartitionedStatus>,
    live: Live,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl PartitionedHandle {
    /// The status now: the membership and assignment as of the last look (every
    /// `lease_ttl / 3`), each partition's status as it is now.
    pub fn status(&self) -> PartitionedStatus {
        let mut status = self.status.borrow().clone();
        let live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        if !live.is_empty() {
            status.partitions = live.iter().map(|(i, s)| (*i, s.borrow().clone())).collect();
        }
        status
    }

    /// Waits until the status (as [`status`](Self::status) gives it) satisfies `condition`,
    /// at most `timeout`: the status then, or `None` when it did not (or the worker ended
    /// first).
    pub async fn wait_until(
        &self,
        timeout: Duration,
        condition: impl Fn(&PartitionedStatus) -> bool,
    ) -> Option<PartitionedStatus> {
        let mut status = self.status.clone();
        let reached = async {
            loop {
                let now = self.status();
                if condition(&now) {
                    return Some(now);
                }
                // The membership changes at each look; the partitions' statuses in between:
                // looked at every 10 ms.
                tokio::select! {
                    changed = status.changed() => if changed.is_err() { return None },
                    () = tokio::time::sleep(Duration::from_millis(10)) => {}
                }
            }
        };
        tokio::time::timeout(timeout, reached).await.ok().flatten()
    }

    /// Stops gracefully: each partition settles its batch, saves its checkpoint and releases
    /// its lease, then the member lease is released, so the others take over at their next
    /// look rather than after a lease time.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "partitioned worker ended abnormally");
        }
    }

    /// Kills the worker and its partitions at once, as a crash would: nothing saved, no lease
    /// released.
    pub fn abort(self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::gives_way_to;

    #[test]
    fn an_idle_worker_waits_on_any_other_count_and_a_running_one_on_a_count_leading_more() {
        let led = |pairs: &[(u32, usize)]| pairs.iter().copied().collect::<BTreeMap<_, _>>();
        // Idle: any other count led.
        assert_eq!(gives_way_to(&led(&[(4, 1)]), 8, false), Some(4));
        assert_eq!(gives_way_to(&led(&[(8, 3)]), 8, false), None);
        // Running: only to a count leading more, or as many of more partitions in all, so
        // of two counts running at once exactly one gives way.
        assert_eq!(gives_way_to(&led(&[(4, 4), (8, 8)]), 4, true), Some(8));
        assert_eq!(gives_way_to(&led(&[(4, 4), (8, 8)]), 8, true), None);
        assert_eq!(gives_way_to(&led(&[(4, 2), (8, 2)]), 4, true), Some(8));
        assert_eq!(gives_way_to(&led(&[(4, 2), (8, 2)]), 8, true), None);
        assert_eq!(gives_way_to(&led(&[(8, 8)]), 8, true), None);
    }

    #[test]
    fn of_two_splits_of_one_count_leading_as_many_exactly_one_gives_way() {
        use crate::projection::Partitions;
        let (stream, key) = (Partitions::by_stream(4), Partitions::by_key(4));
        let led: BTreeMap<Partitions, usize> = [(stream, 2), (key, 2)].into_iter().collect();
        assert_eq!(gives_way_to(&led, stream, true), Some(key));
        assert_eq!(gives_way_to(&led, key, true), None);
        // Idle, either waits on the other.
        let led: BTreeMap<Partitions, usize> = [(stream, 1)].into_iter().collect();
        assert_eq!(gives_way_to(&led, key, false), Some(stream));
    }
}
