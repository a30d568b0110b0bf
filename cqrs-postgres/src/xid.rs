//! Transaction ids that came from another cluster: detection, and the repair.
//!
//! Feed positions are `(transaction_id, position)`, and the feed shows rows whose transaction id
//! is below the oldest transaction still open. That holds while every stored id was taken by the
//! cluster the store runs on. `pg_dump` / restore or logical replication copies the ids as plain
//! numbers into a cluster whose counter may be far behind; then appends to existing streams are
//! refused (their last event looks younger than any new transaction), the feed hides the copied
//! rows, and new events sort before them. `pg_upgrade`, physical replicas and base backups keep
//! the counter, so they need nothing.
//!
//! Detection is one index probe ([`XidGuard::check`]): run by `migrate()`, once per store before
//! its first append or feed read, and again whenever an append is refused by the order rule or a
//! reader's position lies past the horizon (both impossible unless ids moved). The common path
//! pays one atomic load.

use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::{PgExecutor, Row};

use crate::{PgError, PgSchema};

/// The checks of one store (one schema).
#[derive(Debug)]
pub(crate) struct XidGuard {
    /// Set once a check found every stored id below the cluster's counter.
    checked: AtomicBool,
    check: String,
}

impl XidGuard {
    pub(crate) fn new(schema: &PgSchema) -> Self {
        Self {
            checked: AtomicBool::new(false),
            check: sql(include_str!("sql/xid_check.sql"), schema),
        }
    }

    /// Whether a check found the stored ids sound (and none since found them moved).
    pub(crate) fn is_checked(&self) -> bool {
        self.checked.load(Ordering::Relaxed)
    }

    /// Checks once per store: after the first check that finds nothing wrong, only an atomic
    /// load. A check that cannot run (no tables yet, a lost connection) is not an answer: the
    /// caller's own statement will report what is wrong.
    pub(crate) async fn ensure<'e>(&self, executor: impl PgExecutor<'e>) -> Result<(), PgError> {
        if self.checked.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.suspect(executor).await
    }

    /// Checks again after something only moved ids explain (an append refused by the order
    /// rule in autocommit, a reader past the horizon): a typed
    /// [`PgError::TransactionIdsAhead`] if they moved, else nothing.
    pub(crate) async fn suspect<'e>(&self, executor: impl PgExecutor<'e>) -> Result<(), PgError> {
        match self.check(executor).await {
            Err(error @ PgError::TransactionIdsAhead { .. }) => Err(error),
            _ => Ok(()),
        }
    }

    /// Records that the stored ids were found (or made) sound: see
    /// [`PgEventStore::repair_transaction_ids`](crate::PgEventStore::repair_transaction_ids).
    pub(crate) fn mark_checked(&self) {
        self.checked.store(true, Ordering::Relaxed);
    }

    /// Compares the largest stored transaction id with the cluster's next one.
    pub(crate) async fn check<'e>(&self, executor: impl PgExecutor<'e>) -> Result<(), PgError> {
        let (stored, next) = ids(executor, &self.check).await?;
        match stored {
            Some(stored) if stored >= next => {
                self.checked.store(false, Ordering::Relaxed);
                Err(PgError::TransactionIdsAhead { stored, next })
            }
            _ => {
                self.checked.store(true, Ordering::Relaxed);
                Ok(())
            }
        }
    }
}

/// The largest stored transaction id (none if nothing is stored) and the cluster's next one.
async fn ids<'e>(
    executor: impl PgExecutor<'e>,
    check: &str,
) -> Result<(Option<u64>, u64), PgError> {
    let row = sqlx::query(check).fetch_one(executor).await?;
    let stored: Option<String> = row.try_get("stored")?;
    let next: String = row.try_get("next")?;
    let number = |text: &str| {
        text.parse::<u64>().map_err(|_| PgError::CorruptRow {
            what: "transaction id is not a number",
        })
    };
    Ok((stored.as_deref().map(number).transpose()?, number(&next)?))
}

pub(crate) fn sql(text: &str, schema: &PgSchema) -> String {
    text.replace("{schema}", &schema.quoted())
}
