//! [`PgError`]: what the PostgreSQL store adds to the core's errors.

/// Errors of the PostgreSQL store. They reach callers of the store traits wrapped in
/// [`cqrs_core::Error::Backend`]; concurrency conflicts and bad input come back as the core's own
/// typed variants ([`cqrs_core::Error::Conflict`] and friends).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// A schema name was refused: it must be a plain lowercase SQL identifier.
    #[error("invalid schema name {0:?}: use 1 to 63 of a-z, 0-9 and _, not starting with a digit")]
    InvalidSchema(String),
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
    /// Stored metadata did not deserialize.
    #[error("stored metadata does not deserialize")]
    Metadata(#[source] serde_json::Error),
}

impl From<PgError> for cqrs_core::Error {
    fn from(error: PgError) -> Self {
        cqrs_core::Error::backend(error)
    }
}

/// `Result` with [`PgError`].
pub type Result<T, E = PgError> = std::result::Result<T, E>;
