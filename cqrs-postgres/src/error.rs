//! [`PgError`]: what the PostgreSQL store adds to the core's errors.

use std::fmt;
use std::time::Duration;

/// Errors of the PostgreSQL store. They reach callers of the store traits wrapped in
/// [`cqrs_core::Error::Backend`]; concurrency conflicts and bad input come back as the core's own
/// typed variants ([`cqrs_core::Error::Conflict`] and friends).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// A schema name was refused: it must be a plain lowercase SQL identifier.
    #[error("invalid schema name {0:?}: use 1 to 56 of a-z, 0-9 and _, not starting with a digit")]
    InvalidSchema(String),
    /// A schema name was refused because the `NOTIFY` channel named after it,
    /// `{schema}_events`, would be longer than PostgreSQL's 63-byte identifier limit.
    #[error(
        "schema name {schema:?} is too long: its notify channel {schema}_events would exceed \
         {limit} bytes (use at most {} bytes)",
        limit - crate::schema::CHANNEL_SUFFIX.len()
    )]
    ChannelTooLong {
        /// The refused name.
        schema: String,
        /// PostgreSQL's limit on a channel name, in bytes.
        limit: usize,
    },
    /// The database answered with an error, or could not be reached.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// A migration failed; nothing of it was applied.
    #[error("migration {version} failed")]
    Migration {
        /// The migration's version.
        version: i32,
        /// The database's error.
        #[source]
        source: sqlx::Error,
    },
    /// The database holds a newer schema than this code knows.
    #[error("the database schema is at version {found}, newer than the {known} this code knows")]
    SchemaTooNew {
        /// The version found.
        found: i32,
        /// The newest version this code knows.
        known: i32,
    },
    /// A number did not fit where it had to go (a version or position past `i64::MAX`).
    #[error("{what} {value} is out of range")]
    OutOfRange {
        /// What the number was.
        what: &'static str,
        /// The number, as text.
        value: String,
    },
    /// A stored row did not hold what the schema promises.
    #[error("corrupt row: {what}")]
    CorruptRow {
        /// What was wrong.
        what: &'static str,
    },
    /// An append was larger than the store accepts, counting every event's payload and
    /// metadata (headers included); see
    /// [`PgEventStore::with_max_append_bytes`](crate::PgEventStore::with_max_append_bytes).
    /// Nothing was written.
    #[error(
        "append of {events} events is over {bytes} bytes with metadata and headers, more than \
         the {limit} allowed"
    )]
    AppendTooLarge {
        /// How many events the append held.
        events: usize,
        /// Its size in bytes, as far as it was counted (counting stops past the limit).
        bytes: usize,
        /// The store's limit in bytes.
        limit: usize,
    },
    /// A grouped append (see [`GroupCommit`](crate::GroupCommit)) was not written within the
    /// group commit's timeout. Nothing of it was written: retrying is safe.
    #[error(
        "append to stream {stream_id} timed out after {timeout:?} {stage}; nothing was written"
    )]
    AppendTimedOut {
        /// The stream.
        stream_id: String,
        /// The group commit's timeout.
        timeout: Duration,
        /// Where it waited.
        stage: TimeoutStage,
    },
    /// The stored transaction ids are ahead of this cluster's counter: the schema was copied in
    /// from another cluster (`pg_dump` / restore, logical replication). Until it is repaired,
    /// appends to existing streams are refused and the feed hides the copied events. Stop the
    /// writers and run [`PgEventStore::repair_transaction_ids`](crate::PgEventStore::repair_transaction_ids),
    /// or move the counter past them with `pg_resetwal -e` on the stopped cluster.
    #[error(
        "stored transaction ids (up to {stored}) are ahead of this cluster's (next {next}): the \
         data was copied from another cluster (pg_dump/restore or logical replication); stop \
         the writers and run PgEventStore::repair_transaction_ids(), or pg_resetwal -e on the \
         stopped cluster (see the README, \"moving the database\")"
    )]
    TransactionIdsAhead {
        /// The largest stored transaction id.
        stored: u64,
        /// The cluster's next transaction id.
        next: u64,
    },
}

/// Where a grouped append waited when it timed out: see [`PgError::AppendTimedOut`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutStage {
    /// In its lane's queue: the groups before it took too long.
    Queued,
    /// In its own statement (tried alone after its group's timed out): waiting on a lock,
    /// typically a stream version held by an open transaction's uncommitted append, or on a
    /// slow server.
    Statement,
}

impl fmt::Display for TimeoutStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeoutStage::Queued => "waiting for its turn in the group commit lane",
            TimeoutStage::Statement => {
                "in its statement, waiting on a lock (an open transaction may hold the \
                 stream's next version) or on a slow server"
            }
        })
    }
}

impl From<PgError> for cqrs_core::Error {
    fn from(error: PgError) -> Self {
        cqrs_core::Error::backend(error)
    }
}

/// `Result` with [`PgError`].
pub type Result<T, E = PgError> = std::result::Result<T, E>;
