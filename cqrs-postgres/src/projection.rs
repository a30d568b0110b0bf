//! What projection workers share through PostgreSQL: leases (dead letters are in
//! `dead_letter.rs`, wake-ups in `signal.rs`), and every role at once for
//! [`ProjectionRunner::for_store`](cqrs_core::projection::ProjectionRunner::for_store).

use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::projection::{Lease, LeaseStore, ProjectionStore};
use cqrs_core::Error;
use sqlx::Row;

use crate::convert::{to_i64, to_u64};
use crate::{PgError, PgEventStore, PgFeedSignal};

#[async_trait]
impl LeaseStore for PgEventStore {
    async fn try_acquire(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, Error> {
        Ok(try_acquire(self, name, owner, ttl).await?)
    }

    async fn release(&self, lease: &Lease) -> Result<(), Error> {
        Ok(release(self, lease).await?)
    }

    async fn leases(&self, prefix: &str) -> Result<Vec<Lease>, Error> {
        Ok(list(self, prefix).await?)
    }
}

async fn list(store: &PgEventStore, prefix: &str) -> Result<Vec<Lease>, PgError> {
    let rows = store
        .call(async |conn| {
            Ok(sqlx::query(&store.queries.list_leases)
                .bind(prefix)
                .fetch_all(conn)
                .await?)
        })
        .await?;
    rows.iter()
        .map(|row| {
            let name: String = row.try_get("name")?;
            let owner: String = row.try_get("owner")?;
            let epoch: i64 = row.try_get("epoch")?;
            let valid_for: f64 = row.try_get("valid_for_secs")?;
            let valid_for = Duration::try_from_secs_f64(valid_for.max(0.0)).map_err(|_| {
                PgError::CorruptRow {
                    what: "lease validity out of range",
                }
            })?;
            Ok(Lease::new(
                name,
                owner,
                to_u64("lease epoch", epoch)?,
                valid_for,
            ))
        })
        .collect()
}

impl PgEventStore {
    /// Fences a sink's own transaction by `lease` (the lease a projection is applied under,
    /// [`Projection::apply_fenced`](cqrs_core::projection::Projection::apply_fenced)):
    /// whether the lease is still held in its epoch, unexpired by the database's clock. Call
    /// it in the transaction that writes the read model, last, just before the commit, and
    /// commit only when it says `true`; on `false` roll back and answer
    /// [`ProjectionError::LeaseLost`](cqrs_core::projection::ProjectionError::LeaseLost).
    ///
    /// The lease row stays locked `FOR SHARE` until the transaction ends: a takeover waits
    /// for the writes to commit, and a check after a takeover committed fails. So a worker
    /// paused past its lease (a long GC, a stalled network) cannot write after its
    /// successor started: the same fence the runner's checkpoint saves go through. Last,
    /// because the worker's own renewals update that row too: checked first, the lock would
    /// hold them for the whole transaction, and one open longer than a renewal may wait would
    /// lose the worker its lease (and the batch, applied again without end).
    ///
    /// Run that transaction in a task of its own (`tokio::spawn`, awaited): the runner drops
    /// an apply in flight when its term ends, and sqlx 0.8's `begin()` is not cancel-safe (a
    /// future dropped while `BEGIN` is answered leaves the pooled connection inside a
    /// transaction sqlx does not track, which every later user of it then writes into).
    ///
    /// # Errors
    ///
    /// The database's.
    pub async fn lease_holds(
        &self,
        transaction: &mut sqlx::PgConnection,
        lease: &Lease,
    ) -> Result<bool, PgError> {
        let held: bool = sqlx::query_scalar(&self.queries.lease_holds)
            .bind(&lease.name)
            .bind(&lease.owner)
            .bind(to_i64("lease epoch", lease.epoch)?)
            .fetch_one(&mut *transaction)
            .await?;
        Ok(held)
    }
}

async fn try_acquire(
    store: &PgEventStore,
    name: &str,
    owner: &str,
    ttl: Duration,
) -> Result<Option<Lease>, PgError> {
    cqrs_core::backend::check_lease_ttl(ttl)?;
    let row = store
        .call(async |conn| {
            Ok(sqlx::query(&store.queries.try_acquire_lease)
                .bind(name)
                .bind(owner)
                .bind(ttl.as_secs_f64())
                .fetch_optional(conn)
                .await?)
        })
        .await?;
    let Some(row) = row else { return Ok(None) };
    let epoch: i64 = row.try_get("epoch")?;
    let valid_for: f64 = row.try_get("valid_for_secs")?;
    let valid_for =
        Duration::try_from_secs_f64(valid_for.max(0.0)).map_err(|_| PgError::CorruptRow {
            what: "lease validity out of range",
        })?;
    Ok(Some(Lease::new(
        name,
        owner,
        to_u64("lease epoch", epoch)?,
        valid_for,
    )))
}

async fn release(store: &PgEventStore, lease: &Lease) -> Result<(), PgError> {
    store
        .call(async |conn| {
            Ok(sqlx::query(&store.queries.release_lease)
                .bind(&lease.name)
                .bind(&lease.owner)
                .bind(to_i64("lease epoch", lease.epoch)?)
                .execute(conn)
                .await?)
        })
        .await?;
    Ok(())
}

/// Feed, checkpoints, leases, dead letters and `LISTEN` wake-ups, all in PostgreSQL.
impl ProjectionStore for PgEventStore {
    type Signal = PgFeedSignal;

    fn signal(&self) -> PgFeedSignal {
        self.feed_signal()
    }
}
