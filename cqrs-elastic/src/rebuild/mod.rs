//! Blue/green rebuilds: fill `{name}_v{n+1}` from the start of the feed while `{name}_v{n}`
//! serves, then swap the alias atomically and drop the old index. Queries never stop.

mod fill;
mod terms;

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use cqrs_core::projection::Rejected;
use cqrs_core::{CheckpointStore, Position, ReadAll, Upcasters};
use futures_util::future::{select, Either};

use crate::block::{self, BlockGuard};
use crate::{
    ElasticProjection, EsError, EsIndex, EsProjector, IndexVersion, ProjectorOptions,
    RefreshPolicy, Result,
};

use fill::Filler;

/// How [`EsIndex::rebuild`] runs.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RebuildOptions {
    batch_size: usize,
    skip_poison: bool,
    max_retries: u32,
    drain: Duration,
    checkpoint_interval: Duration,
    upcasters: Upcasters,
    write_block_ttl: Duration,
}

impl Default for RebuildOptions {
    fn default() -> Self {
        Self {
            batch_size: 1000,
            skip_poison: false,
            max_retries: 5,
            drain: Duration::from_secs(1),
            checkpoint_interval: Duration::from_millis(250),
            upcasters: Upcasters::new(),
            write_block_ttl: Duration::from_secs(30),
        }
    }
}

impl RebuildOptions {
    /// Events per feed read and bulk write (default 1000).
    #[must_use]
    pub fn batch_size(mut self, events: usize) -> Self {
        self.batch_size = events.max(1);
        self
    }

    /// Go on past poison events, listing them in the report, instead of stopping before the
    /// swap (the default: the new index stays, unswapped, and a later call resumes it). The
    /// list is kept in memory: a rebuild resumed after an attempt that skipped poison fills the
    /// new index from the start again (its writes are idempotent), so its report lists every
    /// skipped event and their keys' later events stay held back.
    #[must_use]
    pub fn skip_poison(mut self, skip: bool) -> Self {
        self.skip_poison = skip;
        self
    }

    /// Retries of a batch that failed transiently, with doubling backoff from 100 ms (up to
    /// a minute; default 5). Then the rebuild gives up with the batch's last error.
    #[must_use]
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// How long the old index lives on after the swap, for queries already running on it
    /// (default 1 s).
    #[must_use]
    pub fn drain(mut self, drain: Duration) -> Self {
        self.drain = drain;
        self
    }

    /// How often the rebuild saves its progress (default 250 ms; also after the first batch
    /// and the last). An interrupted rebuild resumes from it, writing again at most this much.
    #[must_use]
    pub fn checkpoint_interval(mut self, interval: Duration) -> Self {
        self.checkpoint_interval = interval;
        self
    }

    /// Upcasts events before the projection sees them (default: none). Give the rebuild the
    /// upcasters the live runner has ([`RunnerOptions::upcasters`]), so that old payloads
    /// build the same documents. An event whose upcast fails is poison: it stops the rebuild
    /// before the swap, or is skipped and listed with [`skip_poison`](Self::skip_poison).
    ///
    /// [`RunnerOptions::upcasters`]: cqrs_core::projection::RunnerOptions::upcasters
    #[must_use]
    pub fn upcasters(mut self, upcasters: Upcasters) -> Self {
        self.upcasters = upcasters;
        self
    }

    /// How long the write block on the serving index (held for the last catch-up and the
    /// swap) outlives a rebuild that stops renewing it (default 30 s; renewed every third of
    /// it). After that, the live projector, the next rebuild or
    /// [`EsIndex::recover_write_block`] release a block a dead rebuild left. The clocks of the
    /// processes involved must agree to within two thirds of it.
    #[must_use]
    pub fn write_block_ttl(mut self, ttl: Duration) -> Self {
        self.write_block_ttl = ttl.max(Duration::from_millis(300));
        self
    }
}

/// What a rebuild did.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RebuildReport {
    /// The index the alias pointed to before (now deleted).
    pub from: IndexVersion,
    /// The index it points to now.
    pub to: IndexVersion,
    /// The checkpoint name the rebuild kept its progress under, `{name}@v{n}#{uuid}` with the
    /// uuid the node gave the new index: a resumed rebuild continues only into the index it
    /// was filling.
    pub checkpoint_name: String,
    /// Events handed to the projector: applied, or skipped as poison.
    pub events: u64,
    /// The feed position the new index had reached at the swap's last catch-up.
    pub position: Position,
    /// Poison events skipped (only with [`RebuildOptions::skip_poison`]).
    pub rejected: Vec<Rejected>,
}

impl EsIndex {
    /// Rebuilds this read model from the start of `feed` with `projection`, without downtime.
    ///
    /// 0. Releases a write block an interrupted rebuild left on `{name}_v{n}` (one rebuild
    ///    per read model at a time).
    /// 1. Creates `{name}_v{n+1}` (or resumes it after an interrupted rebuild) with refresh
    ///    disabled and no replicas, its primary terms moved past `{name}_v{n}`'s (closed and
    ///    opened, about once per earlier rebuild: no write condition the live projector
    ///    remembers from the old index can match a document of the new one; this reads the
    ///    cluster state, so the rebuild's credentials need `cluster:monitor/state`), and runs a
    ///    projector into it from its own checkpoint
    ///    `{name}@v{n+1}#{uuid}` (the index's uuid: an index created anew starts from the
    ///    beginning, whatever an earlier attempt saved), batch by batch, until it reaches the
    ///    feed's [`head`](ReadAll::head). Events go through [`RebuildOptions::upcasters`].
    /// 2. Restores the refresh interval and the replicas.
    /// 3. Blocks writes to `{name}_v{n}`: the live projector's writes fail transiently and are
    ///    retried, so every event it wrote into `{name}_v{n}` is below the head the next
    ///    catch-up reads. Catches up to that head, refreshes, and swaps the alias from
    ///    `{name}_v{n}` to `{name}_v{n+1}` in one atomic `_aliases` call, which also takes
    ///    away the block's lock alias `write-block.{name}_v{n}`: it swaps only while the block
    ///    still holds (a rebuild that stalled past its time to live, whose block the live
    ///    projector released, swaps nothing). The rebuild's credentials need to manage that
    ///    alias too. The live
    ///    projector's retried writes then land in `{name}_v{n+1}` through the alias, where
    ///    events already applied are skipped. A rebuild cancelled or failing here releases the
    ///    block; one that dies here leaves it to expire after
    ///    [`RebuildOptions::write_block_ttl`] (see [`EsIndex::write_block`]). Run no rebuild
    ///    while processes of a release before this one run: they release a block without its
    ///    lock alias.
    /// 4. Catches up once more with what arrived during the swap (the live projector writes
    ///    the same events through the alias; writes are idempotent, so the two overlap
    ///    safely), and refreshes.
    /// 5. Waits for [`RebuildOptions::drain`], then deletes the old index.
    ///
    /// The live projector (writing through the alias) may run throughout, and events may be
    /// appended throughout: none is lost or applied twice.
    ///
    /// Each catch-up is the subscription engine's stop-at-head mode,
    /// [`ProjectionRunner::catch_up`], run with the rebuild's projector, checkpoint,
    /// upcasters, batch size, checkpoint interval and retries; its poison events are parked
    /// in memory for the report ([`RebuildOptions::skip_poison`]) or stop the rebuild before
    /// the swap. The engine runs in its own tasks, so the rebuild takes its parts by value:
    /// pass clones of cheap handles (`store.clone()`, an `Arc` of the projection).
    ///
    /// # Errors
    ///
    /// [`EsError::Projection`] with [`ProjectionError::Poison`] naming the event that
    /// stopped it (without `skip_poison`) or with the projector's transient error once
    /// [`RebuildOptions::max_retries`] are spent; the store's or the node's errors; a
    /// projection of another name, or an index without the alias's layout.
    ///
    /// [`ProjectionRunner::catch_up`]: cqrs_core::projection::ProjectionRunner::catch_up
    /// [`ProjectionError::Poison`]: cqrs_core::projection::ProjectionError::Poison
    pub async fn rebuild<P: ElasticProjection + 'static>(
        &self,
        projection: P,
        feed: impl ReadAll + 'static,
        checkpoints: impl CheckpointStore + 'static,
        options: RebuildOptions,
    ) -> Result<RebuildReport> {
        if projection.name() != self.name() {
            return Err(EsError::UnexpectedLayout {
                name: self.name().to_owned(),
                detail: format!("the projection given is {:?}", projection.name()),
            });
        }
        let from = self.current().await?.ok_or_else(|| EsError::AliasMissing {
            alias: self.name().to_owned(),
        })?;
        let next = from
            .version
            .checked_add(1)
            .ok_or_else(|| EsError::UnexpectedLayout {
                name: self.name().to_owned(),
                detail: format!("{} has the last version an index can have", from.index),
            })?;
        let to = IndexVersion {
            index: self.version_name(next),
            version: next,
        };
        // A rebuild that died while it blocked the serving index left the block: release it,
        // the live projector must not wait for this rebuild's fill (one rebuild at a time).
        for left in block::find(&self.client, &from.index).await? {
            tracing::warn!(index = %left.index, owner = %left.owner,
                "releasing the write block an interrupted rebuild left");
            block::release(&self.client, &left.index).await?;
        }
        if !self.create_filling(to.version).await? {
            tracing::info!(index = %to.index, "resuming an interrupted rebuild");
            // An attempt cut off between closing and opening it (see `terms`) left it closed,
            // its terms perhaps high enough already: nothing below would open it again.
            self.open_index(&to.index).await?;
            self.set_filling(&to.index, true).await?;
        }
        // Before anything is written into it: no write condition the live projector remembers
        // from the serving index can then match a document of this one (see `terms`).
        self.outrun_primary_terms(&from.index, &to.index).await?;
        // Progress is kept per filling index, not per version number: an index deleted and
        // created again (an operator reset a half-built one) has a new uuid, so it is filled
        // from the start instead of resuming where the deleted one stopped.
        let uuid = self.index_uuid(&to.index).await?;
        let checkpoint_name = checkpoint_name(self.name(), to.version, &uuid);
        // An earlier attempt that skipped poison kept its list (and the keys it held back) in
        // memory: start over, so both are found again (the writes are idempotent).
        let marker = fill::skipped_marker(&checkpoint_name);
        if (checkpoints.load_checkpoint(&marker).await)
            .map_err(EsError::Store)?
            .is_some()
        {
            tracing::info!(index = %to.index, "an earlier attempt skipped poison: filling anew");
            (checkpoints.reset_checkpoint(&checkpoint_name).await).map_err(EsError::Store)?;
        }
        let projector = EsProjector::new(self.client.clone(), projection)?
            .with_target_index(to.index.clone())
            .with_checkpoint_name(checkpoint_name.clone())
            .with_options(ProjectorOptions::default().refresh(RefreshPolicy::None));
        let filler = Filler::new(projector, Arc::new(feed), Arc::new(checkpoints), &options);
        let mut report = RebuildReport {
            from,
            to,
            checkpoint_name,
            events: 0,
            position: Position::START,
            rejected: Vec::new(),
        };
        tracing::info!(from = %report.from.index, to = %report.to.index, "rebuild started");

        report.position = filler.catch_up().await?;
        self.set_filling(&report.to.index, false).await?;
        // Freeze the old index before the last catch-up: the live projector's writes into it
        // now fail (transiently, it retries) until the alias points to the new index. So every
        // event it wrote into the old index is in the feed below the head this catch-up reads,
        // and the new index holds all of them before the live projector writes into it. The
        // block carries a marker this rebuild renews while it holds it; if the rebuild is
        // cancelled, the guard releases it, and if it dies, the marker expires (see `block`).
        let (client, old, owner) = (&self.client, &report.from.index, &report.checkpoint_name);
        let ttl = options.write_block_ttl;
        // The guard first: a hold cut off or failed midway (the block set, its lock alias not)
        // is released too.
        let guard = BlockGuard::new(client.clone(), old.clone());
        block::hold(client, old, owner, ttl).await?;
        let (old, owner) = (old.clone(), owner.clone());
        let swap = async {
            report.position = filler.catch_up().await?;
            self.refresh(&report.to.index).await?;
            // A rebuild stalled past its block's time to live may have lost the block to a
            // projector that took it for abandoned: then the last catch-up may lack writes.
            let held = block::find(client, &old).await?;
            if !held.iter().any(|b| b.owner == owner) {
                return Err(EsError::WriteBlocked {
                    index: old.clone(),
                    state: format!(
                        "released before the swap (rebuild {owner} renewed it too late);                          the alias stays, the next rebuild resumes"
                    ),
                });
            }
            self.swap(&old, &report.to.index).await
        };
        let renew = block::renew(client, &old, &owner, ttl);
        let swapped = match select(pin!(swap), pin!(renew)).await {
            Either::Left((swapped, _)) => swapped,
            Either::Right((failed, _)) => Err(failed),
        };
        if let Err(error) = swapped {
            if let Err(unblock) = block::release(client, &old).await {
                tracing::warn!(error = %unblock, "could not unblock writes to the old index");
            }
            guard.disarm();
            return Err(error);
        }
        // The alias has left the old index: its block stays until it is deleted.
        guard.disarm();
        tracing::info!(alias = %self.name(), to = %report.to.index, "alias swapped");

        report.position = filler.catch_up().await?;
        (report.events, report.rejected) = (filler.events(), filler.skipped());
        if !report.rejected.is_empty() {
            tracing::warn!(
                events = report.rejected.len(),
                "rebuild skipped poison events"
            );
        }
        // What the last catch-up wrote is searchable before the rebuild returns.
        self.refresh(&report.to.index).await?;
        tokio::time::sleep(options.drain).await;
        self.delete_index(&report.from.index).await?;
        filler.forget_marker().await;
        tracing::info!(deleted = %report.from.index, events = report.events, "rebuild done");
        Ok(report)
    }
}

/// The checkpoint of a rebuild filling version `version` of read model `name`, the index the
/// node created with `uuid`.
fn checkpoint_name(name: &str, version: u32, uuid: &str) -> String {
    format!("{name}@v{version}#{uuid}")
}
