//! [`PgError`]: what the PostgreSQL store adds to the core's errors.

use std::fmt;
use std::time::Duration;

/// Errors of the PostgreSQL store.
///
/// The store's internals return this type, and each store trait method converts it once into
/// [`cqrs_core::Error`]: a failure a retry may cure ([`PgError::is_transient`]: the server
/// unreachable, a lost connection, a pool or statement timeout, a server shutting down, a
/// serialization failure) becomes [`cqrs_core::Error::Unavailable`], anything else
/// [`cqrs_core::Error::Backend`]; conflicts, repeated ids and bad input come back as the core's
/// own typed variants ([`cqrs_core::Error::Conflict`] and friends).
///
/// Each message ends with its cause's text (the database's error) and never shows a password.
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
        limit - "_events".len()
    )]
    ChannelTooLong {
        /// The refused name.
        schema: String,
        /// PostgreSQL's limit on a channel name, in bytes.
        limit: usize,
    },
    /// A database URL was refused before any connection was tried: it does not parse, or its
    /// scheme is not `postgres://` or `postgresql://`. The reason never shows the password.
    #[error("invalid database URL: {reason}")]
    InvalidUrl {
        /// Why, with any password masked.
        reason: String,
    },
    /// The first connection of [`PgEventStore::connect`](crate::PgEventStore::connect) failed:
    /// the address refused it, its host is unknown, it did not answer in time, or the server
    /// refused the session (a wrong password, an unknown database).
    #[error("could not connect to PostgreSQL at {address}: {source}")]
    Connect {
        /// The address tried: `host:port`, or a socket's path.
        address: String,
        /// What went wrong.
        #[source]
        source: sqlx::Error,
    },
    /// The database answered with an error, or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A failure the core names itself (a conflict, a repeated command or event id, refused
    /// input), on its way to the caller unchanged.
    #[error(transparent)]
    Core(#[from] cqrs_core::Error),
    /// A migration failed; nothing of it was applied.
    #[error("migration {version} failed: {source}")]
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
    /// The events table stores payloads and metadata as another type than the store was
    /// configured with ([`PgEventStore::with_event_json`](crate::PgEventStore::with_event_json)):
    /// found by [`PgEventStore::migrate`](crate::PgEventStore::migrate), before any append.
    #[error(
        "the events table stores payload and metadata as {found}, but the store is configured \
         for {configured}: configure it with PgEventStore::with_event_json to match the table, or \
         convert the table (ALTER TABLE <schema>.events ALTER COLUMN payload TYPE {configured} \
         USING payload::{configured}, ALTER COLUMN metadata TYPE {configured} USING \
         metadata::{configured}; it rewrites the table)"
    )]
    EventJsonMismatch {
        /// What the store was configured with.
        configured: crate::EventJson,
        /// The columns' type (or types) found.
        found: String,
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
    /// PostgreSQL did not answer a call within the store's answer timeout
    /// ([`PgEventStore::with_answer_timeout`](crate::PgEventStore::with_answer_timeout)): the
    /// network went silent, or the server is stuck. The connection was dropped. A write may or
    /// may not have landed, and on a live server a statement still running (say, waiting on a
    /// lock) may even land after this error: where a retry must not write twice, write
    /// idempotently (a command id, the same event ids), or give the server a
    /// `statement_timeout` below the answer timeout so that it ends such a statement first.
    #[error(
        "PostgreSQL did not answer within {within:?}; the connection was dropped, and a write \
         may or may not have landed"
    )]
    NoAnswer {
        /// The answer timeout.
        within: Duration,
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

impl PgError {
    /// Whether a retry may succeed: the server could not be reached or went away (connection
    /// refused, reset or closed, any I/O error, SQLSTATE class 08), it is shutting down or
    /// restarting (57P01 to 57P03), it has no connection slot free (53300), the pool or a
    /// statement timed out (57014, 55P03, [`PgError::AppendTimedOut`], [`PgError::NoAnswer`]), the transaction lost
    /// a serialization race or a deadlock (40001, 40P01), the connection is on a server that
    /// cannot write now (25006: a primary demoted by a failover), or the server is out of
    /// disk, memory or I/O for now (53100, 53200, 58030). Everything else (a bad statement, a
    /// constraint, a corrupt row, a closed pool, refused credentials) fails again the same way.
    ///
    /// ```
    /// use cqrs_postgres::PgError;
    ///
    /// assert!(PgError::Database(sqlx::Error::PoolTimedOut).is_transient());
    /// assert!(!PgError::Database(sqlx::Error::PoolClosed).is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        match self {
            PgError::Database(error)
            | PgError::Migration { source: error, .. }
            | PgError::Connect { source: error, .. } => transient(error),
            PgError::Core(error) => error.is_transient(),
            PgError::AppendTimedOut { .. } | PgError::NoAnswer { .. } => true,
            PgError::InvalidSchema(_)
            | PgError::InvalidUrl { .. }
            | PgError::ChannelTooLong { .. }
            | PgError::SchemaTooNew { .. }
            | PgError::EventJsonMismatch { .. }
            | PgError::OutOfRange { .. }
            | PgError::CorruptRow { .. }
            | PgError::TransactionIdsAhead { .. } => false,
        }
    }

    /// Whether the server refused text it was sent as invalid in its encoding: a NUL
    /// character (SQLSTATE 22021, which `text` cannot hold) or one the encoding lacks (22P05).
    /// The caller's input, not the store failing: a name from a query string, say.
    pub fn is_refused_text(&self) -> bool {
        match self {
            PgError::Database(sqlx::Error::Database(db)) => db
                .code()
                .is_some_and(|code| code == "22021" || code == "22P05"),
            _ => false,
        }
    }
}

impl crate::bounded::SpoilsConnection for PgError {
    fn spoils_connection(&self) -> bool {
        match self {
            PgError::Database(error)
            | PgError::Migration { source: error, .. }
            | PgError::Connect { source: error, .. } => error.spoils_connection(),
            _ => false,
        }
    }
}

/// The same for a store error the core sees: the one conversion above boxes ours.
impl crate::bounded::SpoilsConnection for cqrs_core::Error {
    fn spoils_connection(&self) -> bool {
        match self {
            cqrs_core::Error::Unavailable(source) | cqrs_core::Error::Backend(source) => source
                .downcast_ref::<PgError>()
                .is_some_and(crate::bounded::SpoilsConnection::spoils_connection),
            _ => false,
        }
    }
}

/// Whether sqlx's error is one a retry may cure: see [`PgError::is_transient`].
pub(crate) fn transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            db.code().is_some_and(|code| transient_code(&code)) || stale_statement(db.as_ref())
        }
        // A closed pool was closed on purpose (the application is stopping) and stays closed;
        // a refused TLS handshake, a protocol or configuration error, a decode error, a missing
        // row or column are the same on every try.
        _ => false,
    }
}

impl From<crate::bounded::NoAnswer> for PgError {
    fn from(no_answer: crate::bounded::NoAnswer) -> Self {
        PgError::NoAnswer {
            within: no_answer.within,
        }
    }
}

impl From<crate::bounded::NoAnswer> for cqrs_core::Error {
    fn from(no_answer: crate::bounded::NoAnswer) -> Self {
        PgError::from(no_answer).into()
    }
}

/// Whether the server refused a statement this connection prepared before a migration changed
/// the type or collation of a column it returns (0A000, "cached plan must not change result
/// type"; migration 8 changed `stream_id`'s collation). The connection refuses it on every call
/// until it prepares it again: dropped, a new one does (see `SpoilsConnection`).
pub(crate) fn stale_statement(db: &dyn sqlx::error::DatabaseError) -> bool {
    // Told by the server's function that raises it, not by its message, which the server's
    // `lc_messages` may translate.
    db.code().as_deref() == Some("0A000")
        && db
            .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .is_some_and(|pg| pg.routine() == Some("RevalidateCachedQuery"))
}

/// SQLSTATE codes a retry may get past.
fn transient_code(code: &str) -> bool {
    code.starts_with("08") // connection exception
        || matches!(
            code,
            "57P01" // admin_shutdown
                | "57P02" // crash_shutdown
                | "57P03" // cannot_connect_now (starting up)
                | "53300" // too_many_connections
                | "57014" // query_canceled (statement_timeout)
                | "55P03" // lock_not_available (lock_timeout)
                | "40001" // serialization_failure
                | "40P01" // deadlock_detected
                // A connection left on a primary a failover demoted (or a database made read
                // only for maintenance): a new connection reaches the new primary.
                | "25006" // read_only_sql_transaction
                // Out of room for now: freed by an operator or by other work ending.
                | "53100" // disk_full
                | "53200" // out_of_memory
                | "58030" // io_error
        )
}

/// The one conversion at the store traits' boundary: core failures pass unchanged, transient
/// ones become [`cqrs_core::Error::Unavailable`], text the server refused
/// [`cqrs_core::Error::UnstorableText`], the rest [`cqrs_core::Error::Backend`].
impl From<PgError> for cqrs_core::Error {
    fn from(error: PgError) -> Self {
        match error {
            PgError::Core(error) => error,
            error if error.is_transient() => cqrs_core::Error::unavailable(error),
            error if error.is_refused_text() => cqrs_core::Error::UnstorableText(error.to_string()),
            error => cqrs_core::Error::backend(error),
        }
    }
}

/// `Result` with [`PgError`].
pub type Result<T, E = PgError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::io;

    use super::*;

    /// A server error with a SQLSTATE code, as sqlx reports one.
    #[derive(Debug)]
    struct Server(&'static str);

    impl fmt::Display for Server {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "server error {}", self.0)
        }
    }

    impl std::error::Error for Server {}

    impl sqlx::error::DatabaseError for Server {
        fn message(&self) -> &str {
            "server error"
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    fn server(code: &'static str) -> PgError {
        PgError::Database(sqlx::Error::Database(Box::new(Server(code))))
    }

    fn io(kind: io::ErrorKind) -> PgError {
        PgError::Database(sqlx::Error::Io(io::Error::from(kind)))
    }

    #[test]
    fn an_unreachable_or_restarting_server_is_transient_and_becomes_unavailable() {
        let transient = [
            io(io::ErrorKind::ConnectionRefused),
            io(io::ErrorKind::ConnectionReset),
            io(io::ErrorKind::UnexpectedEof),
            PgError::Database(sqlx::Error::PoolTimedOut),
            server("08006"), // connection_failure
            server("08001"), // cannot connect
            server("57P01"), // admin_shutdown
            server("57P02"),
            server("57P03"),
            server("53300"),
            server("40001"),
            server("40P01"),
            server("57014"),
            PgError::AppendTimedOut {
                stream_id: "s-1".into(),
                timeout: Duration::from_secs(5),
                stage: TimeoutStage::Queued,
            },
            PgError::Migration {
                version: 1,
                source: sqlx::Error::Io(io::Error::from(io::ErrorKind::BrokenPipe)),
            },
        ];
        for error in transient {
            assert!(error.is_transient(), "{error:?}");
            let text = error.to_string();
            assert!(
                matches!(
                    cqrs_core::Error::from(error),
                    cqrs_core::Error::Unavailable(_)
                ),
                "{text}"
            );
        }
    }

    #[test]
    fn a_failure_a_retry_cannot_cure_becomes_backend() {
        let lasting = [
            server("23505"), // unique_violation
            server("42P01"), // undefined_table
            server("28P01"), // invalid_password
            PgError::Database(sqlx::Error::PoolClosed),
            PgError::Database(sqlx::Error::RowNotFound),
            PgError::CorruptRow { what: "x" },
            PgError::SchemaTooNew { found: 9, known: 4 },
            PgError::TransactionIdsAhead { stored: 9, next: 3 },
        ];
        for error in lasting {
            assert!(!error.is_transient(), "{error:?}");
            let text = error.to_string();
            assert!(
                matches!(cqrs_core::Error::from(error), cqrs_core::Error::Backend(_)),
                "{text}"
            );
        }
    }

    #[test]
    fn text_the_server_refuses_is_the_callers_input() {
        // A NUL in text (22021), a character the encoding lacks (22P05): a name from a query
        // string, say, as the console and the order service pass on.
        for code in ["22021", "22P05"] {
            let error = cqrs_core::Error::from(server(code));
            assert_eq!(
                error.kind(),
                cqrs_core::ErrorKind::InvalidInput,
                "{error:?}"
            );
        }
    }

    #[test]
    fn core_failures_pass_through_unchanged() {
        let error = PgError::from(cqrs_core::Error::EmptyAppend);
        assert!(matches!(
            cqrs_core::Error::from(error),
            cqrs_core::Error::EmptyAppend
        ));
    }

    #[test]
    fn a_database_error_s_message_carries_its_cause() {
        let text = server("42P01").to_string();
        assert!(text.starts_with("database error: "), "{text}");
        assert!(text.contains("server error"), "{text}");
        let wrapped = cqrs_core::Error::from(io(io::ErrorKind::ConnectionRefused)).to_string();
        assert!(wrapped.contains("database error: "), "{wrapped}");
    }
}
