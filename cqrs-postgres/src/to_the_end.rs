//! [`to_the_end`]: a transaction that ends (commits or rolls back) whatever happens to the
//! future that asked for it.
//!
//! sqlx 0.8's `begin()` is not cancel-safe on PostgreSQL: it raises its transaction depth only
//! after `BEGIN`'s answer, so a future cut off in between (an aborted task, a timeout) leaves
//! the pooled session inside a transaction sqlx does not track, and the pool hands the
//! connection on. Every later statement on it then runs inside that transaction: invisible to
//! others, holding its locks, holding back the gap-safe feed of the whole server, lost if it
//! rolls back (sqlx issues 4385 and 4393, fixed in 0.9). Work that opens a transaction and may
//! be cut off runs here, in a task of its own.

use std::future::Future;

use crate::PgError;

/// Runs `work` in a task of its own and waits for it; if the caller is cut off, the task still
/// runs to its end. A panic in it is the caller's panic.
pub(crate) async fn to_the_end<T: Send + 'static>(
    work: impl Future<Output = Result<T, PgError>> + Send + 'static,
) -> Result<T, PgError> {
    match tokio::spawn(work).await {
        Ok(done) => done,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        // Only a runtime shutting down cancels it.
        Err(_) => Err(PgError::Database(sqlx::Error::WorkerCrashed)),
    }
}
