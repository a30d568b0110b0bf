//! [`Savepoint`]: the savepoint an append in a caller's transaction runs in, taken and ended by
//! plain statements.
//!
//! Not sqlx's nested `begin()`, which is not cancel-safe in 0.8 (see `to_the_end.rs`): cut off
//! while its `SAVEPOINT` was on its way, its guard rolled the caller's whole transaction back
//! and sqlx forgot the transaction, so the caller's later statements committed alone and its
//! `commit()` answered `Ok` for nothing. Plain statements cut off midway leave at most a
//! savepoint inside the caller's transaction, which its commit or rollback ends with it; sqlx
//! reads their answers before the connection's next statement.

use sqlx::{Connection as _, Executor, PgConnection};

use crate::PgError;

/// Where an append in a caller's transaction runs.
pub(super) enum Savepoint {
    /// In a savepoint of the caller's transaction: ended by [`Savepoint::release`] or
    /// [`Savepoint::roll_back`].
    Taken,
    /// The connection is in no transaction sqlx began: the append is one statement in
    /// autocommit, atomic on its own. (Not a savepoint PostgreSQL would refuse: cut off, its
    /// refusal would be read as the answer to the connection's next statement.)
    NoTransaction,
}

impl Savepoint {
    /// Takes a savepoint on `conn`, if it is in a transaction.
    pub(super) async fn take(conn: &mut PgConnection) -> Result<Self, PgError> {
        if !conn.is_in_transaction() {
            return Ok(Savepoint::NoTransaction);
        }
        conn.execute("SAVEPOINT cqrs_append").await?;
        Ok(Savepoint::Taken)
    }

    /// Keeps what was done since the savepoint, in the caller's transaction.
    pub(super) async fn release(self, conn: &mut PgConnection) -> Result<(), PgError> {
        if let Savepoint::Taken = self {
            conn.execute("RELEASE SAVEPOINT cqrs_append").await?;
        }
        Ok(())
    }

    /// Undoes what was done since the savepoint, leaving the caller's transaction usable.
    pub(super) async fn roll_back(self, conn: &mut PgConnection) -> Result<(), PgError> {
        if let Savepoint::Taken = self {
            conn.execute("ROLLBACK TO SAVEPOINT cqrs_append; RELEASE SAVEPOINT cqrs_append")
                .await?;
        }
        Ok(())
    }
}
