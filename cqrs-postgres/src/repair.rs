//! [`PgEventStore::repair_transaction_ids`]: renumbering transaction ids that came from another
//! cluster (see `xid.rs` for how they are detected).

use sqlx::{Executor, PgConnection, Row};

use crate::xid::sql;
use crate::{PgError, PgEventStore};

/// How many ids one round trip takes when the repair must move the counter on.
const BURN_BATCH: u64 = 1_000;

/// What [`PgEventStore::repair_transaction_ids`] did.
///
/// After a repair that changed anything ([`repaired`](Self::repaired)), feed positions are new
/// numbers for the same events in the same order. The store's own checkpoints, dead letters and
/// command outcomes were moved with them, so projections resume where they were; but a read model
/// that stores positions itself still holds the old ones, which sort after every new event, so it
/// would skip them. **Rebuild every such read model**: an Elasticsearch read model keeps each
/// document's position in `cqrs.position`, and
/// [`EsIndex::rebuild`](https://docs.rs/cqrs-elastic) refills it from the feed with no downtime.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransactionIdRepair {
    /// Whether stored ids were ahead and were renumbered. `false`: nothing was wrong and nothing
    /// changed.
    pub repaired: bool,
    /// Events renumbered (all of them).
    pub events: u64,
    /// The distinct transaction ids the events now carry (from 1 up).
    pub transaction_ids: u64,
    /// Checkpoints moved to the same events' new positions.
    pub checkpoints: u64,
    /// Dead letters moved to their events' new positions.
    pub dead_letters: u64,
    /// Recorded command outcomes moved to their events' new positions.
    pub commands: u64,
    /// Whether the position sequence lagged behind the stored positions and was moved past them
    /// (logical replication copies no sequence values; `pg_dump` does).
    pub sequence_moved: bool,
    /// Transaction ids taken first to move the cluster's counter past the ids the events needed
    /// (0 when it already was).
    pub burned_transaction_ids: u64,
}

impl PgEventStore {
    /// Repairs a schema moved in from another cluster whose transaction counter was ahead
    /// (`pg_dump` / restore, logical replication): the case [`PgError::TransactionIdsAhead`]
    /// reports. Stop every writer and projection of the schema first.
    ///
    /// In one transaction, holding the store's tables locked, every event's transaction id is
    /// renumbered into ids below the cluster's horizon, keeping the feed's order exactly (see
    /// `sql/xid_map.sql`), and checkpoints, dead letters and recorded command outcomes are moved
    /// to the same events' new positions. Events appended afterwards sort after all of them, and
    /// appends to existing streams work again. A position sequence that lags behind the stored
    /// positions (logical replication copies no sequence values) is moved past them. Snapshots and leases hold no positions. Running it
    /// again, or on a schema that was never moved, changes nothing.
    ///
    /// Read models that keep positions themselves must then be rebuilt: see
    /// [`TransactionIdRepair`]. On a self-hosted cluster there is an alternative that rewrites
    /// nothing: `pg_resetwal -e` on the stopped cluster (see the README, "Moving the database").
    ///
    /// The repair runs to its end (commits or rolls back) even when the caller is cut off: a
    /// transaction left open on a pooled connection would hold the tables locked and take in
    /// every later statement on it.
    pub async fn repair_transaction_ids(&self) -> Result<TransactionIdRepair, PgError> {
        let store = self.clone();
        crate::to_the_end::to_the_end(async move { store.repair_to_the_end().await }).await
    }

    /// [`repair_transaction_ids`](Self::repair_transaction_ids)'s work.
    async fn repair_to_the_end(&self) -> Result<TransactionIdRepair, PgError> {
        let mut conn = self.pool.acquire().await?;
        let mut burned = 0;
        loop {
            match self.try_repair(&mut conn).await? {
                Repair::Done(mut report) => {
                    report.burned_transaction_ids = burned;
                    if report.repaired {
                        self.xid.mark_checked();
                        tracing::warn!(
                            schema = self.schema.as_str(),
                            events = report.events,
                            "renumbered transaction ids moved in from another cluster; rebuild \
                             the read models that store positions"
                        );
                    }
                    return Ok(report);
                }
                Repair::NeedsIds(count) => burned += burn(&mut conn, count).await?,
            }
        }
    }

    async fn try_repair(&self, conn: &mut PgConnection) -> Result<Repair, PgError> {
        let quoted = self.schema.quoted();
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let lock = format!(
            "LOCK TABLE {quoted}.events, {quoted}.commands, {quoted}.checkpoints, \
             {quoted}.dead_letters IN ACCESS EXCLUSIVE MODE"
        );
        // Executed by the connection, not `raw_sql(..).execute(&mut *tx)`: awaited on a
        // reborrow, that generic method makes the whole future not `Send` (callers could not
        // spawn the repair; `tests/every_public_future_of_the_store_is_send.rs`).
        (&mut *tx).execute(sqlx::raw_sql(&lock)).await?;
        if !matches!(
            self.xid.check(&mut *tx).await,
            Err(PgError::TransactionIdsAhead { .. })
        ) {
            tx.rollback().await?;
            return Ok(Repair::Done(TransactionIdRepair::default()));
        }
        let map = sql(include_str!("sql/xid_map.sql"), &self.schema);
        (&mut *tx).execute(sqlx::raw_sql(&map)).await?;
        let row = sqlx::query(
            "SELECT (SELECT max(new_xid) FROM cqrs_xid_map)::text AS needed, \
                    pg_snapshot_xmin(pg_current_snapshot())::text AS horizon",
        )
        .fetch_one(&mut *tx)
        .await?;
        let needed: Option<String> = row.try_get("needed")?;
        let needed = needed.map_or(Ok(0), |n| parse_id(&n))?;
        let horizon = parse_id(&row.try_get::<String, _>("horizon")?)?;
        if needed >= horizon {
            // Ids 1..=needed must all lie below the horizon: move the counter on first.
            tx.rollback().await?;
            return Ok(Repair::NeedsIds(needed - horizon + 1));
        }
        let row = sqlx::query(&sql(include_str!("sql/xid_remap.sql"), &self.schema))
            .fetch_one(&mut *tx)
            .await?;
        let count = |name: &str| -> Result<u64, PgError> {
            let n: i64 = row.try_get(name)?;
            Ok(u64::try_from(n).unwrap_or(0))
        };
        let sequence_moved: bool =
            sqlx::query_scalar(&sql(include_str!("sql/xid_sequence.sql"), &self.schema))
                .fetch_one(&mut *tx)
                .await?;
        let report = TransactionIdRepair {
            repaired: true,
            events: count("events")?,
            transaction_ids: needed,
            checkpoints: count("checkpoints")?,
            dead_letters: count("dead_letters")?,
            commands: count("commands")?,
            sequence_moved,
            burned_transaction_ids: 0,
        };
        tx.commit().await?;
        Ok(Repair::Done(report))
    }
}

enum Repair {
    Done(TransactionIdRepair),
    /// The cluster's counter must move on by this many ids first.
    NeedsIds(u64),
}

fn parse_id(text: &str) -> Result<u64, PgError> {
    text.parse::<u64>().map_err(|_| PgError::CorruptRow {
        what: "transaction id is not a number",
    })
}

/// Takes `count` transaction ids (or a few more), a batch of small transactions per round trip.
async fn burn(conn: &mut PgConnection, count: u64) -> Result<u64, PgError> {
    let mut burned = 0;
    while burned < count {
        let batch = BURN_BATCH.min(count - burned);
        let text = "BEGIN; SELECT pg_current_xact_id(); COMMIT;\n"
            .repeat(usize::try_from(batch).unwrap_or(1));
        (&mut *conn).execute(sqlx::raw_sql(&text)).await?;
        burned += batch;
    }
    Ok(burned)
}
