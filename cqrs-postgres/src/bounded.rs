//! [`Bounded`]: a connection of the store's pool on which every call waits a bounded time for
//! PostgreSQL's answers.
//!
//! A network can go silent without closing anything: a failover that left the old address
//! dead, a dropped NAT mapping, a host gone without a word. sqlx sets no timeout of its own on a
//! statement, and the server's `statement_timeout` cannot answer through a silent network, so a
//! call would wait for good (and the pool's own check of a connection handed back, a round trip
//! too, would hold its slot for good). Here a call that got no answer in time fails with
//! [`PgError::NoAnswer`](crate::PgError::NoAnswer), and its connection is dropped, never handed
//! back: nobody knows what state it is in.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres};

/// No answer from PostgreSQL within the store's answer timeout: see
/// [`PgError::NoAnswer`](crate::PgError::NoAnswer).
#[derive(Clone, Copy, Debug)]
pub(crate) struct NoAnswer {
    pub(crate) within: Duration,
}

impl From<NoAnswer> for sqlx::Error {
    /// As an I/O error: to the group commit lane, whose statements speak sqlx, it is a broken
    /// connection (whose group may have committed).
    fn from(no_answer: NoAnswer) -> Self {
        sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "PostgreSQL did not answer within {:?}; the connection was dropped",
                no_answer.within
            ),
        ))
    }
}

/// Whether a call's error says its connection is no good for another call, though it
/// answers the pool's ping as usual, so the pool would hand it out again and again until it
/// recycled it: it reaches a server that cannot write (25006, a primary demoted by a failover,
/// or a database made read only), or it holds statements prepared before a migration changed
/// what they return (`stale_statement`).
pub(crate) trait SpoilsConnection {
    fn spoils_connection(&self) -> bool;
}

impl SpoilsConnection for sqlx::Error {
    fn spoils_connection(&self) -> bool {
        matches!(self, sqlx::Error::Database(db)
            if db.code().as_deref() == Some("25006") || crate::error::stale_statement(db.as_ref()))
    }
}

/// A pooled connection whose calls wait at most `within` for each answer. A call that got no
/// answer in time, or that was dropped while it waited (its caller gave up, its task was
/// aborted), leaves the connection in a state nobody knows: it is dropped, not handed back to
/// the pool (which opens another when needed).
pub(crate) struct Bounded {
    conn: Option<PoolConnection<Postgres>>,
    within: Duration,
    in_flight: bool,
}

/// What a long call reports as it goes (a row read, a statement answered), so that only
/// silence ends it, not its length: see [`Bounded::run_progressing`].
#[derive(Debug, Default)]
pub(crate) struct Progress(AtomicU64);

impl Progress {
    /// An answer came. (The call is its only writer: a plain store, no locked add.)
    pub(crate) fn tick(&self) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
    }

    fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Ends once a whole `within` passed with no tick (between `within` and twice it after
    /// the last one).
    async fn silent_for(&self, within: Duration) {
        let mut seen = self.count();
        loop {
            tokio::time::sleep(within).await;
            let now = self.count();
            if now == seen {
                return;
            }
            seen = now;
        }
    }
}

impl Bounded {
    /// A connection from `pool` (waiting at most the pool's acquire timeout) whose calls wait
    /// at most `within` for an answer.
    pub(crate) async fn acquire(pool: &PgPool, within: Duration) -> Result<Self, sqlx::Error> {
        Ok(Self {
            conn: Some(pool.acquire().await?),
            within,
            in_flight: false,
        })
    }

    /// Runs `call`, one statement or a few short ones, on the connection; [`NoAnswer`] if it
    /// did not end within the timeout (or an earlier call on this connection did not).
    pub(crate) async fn run<T, E: From<NoAnswer> + SpoilsConnection>(
        &mut self,
        call: impl AsyncFnOnce(&mut PgConnection) -> Result<T, E>,
    ) -> Result<T, E> {
        self.run_progressing(async |conn, _| call(conn).await).await
    }

    /// Runs `call` on the connection, which may take as long as it reports [`Progress`] at
    /// least once per timeout (each row of a long replay, each statement of a batch);
    /// [`NoAnswer`] after a whole timeout without any. A connection whose call failed in a
    /// way that spoils it ([`SpoilsConnection`]) is dropped, not handed back: the retry gets
    /// another.
    pub(crate) async fn run_progressing<T, E: From<NoAnswer> + SpoilsConnection>(
        &mut self,
        call: impl AsyncFnOnce(&mut PgConnection, &Progress) -> Result<T, E>,
    ) -> Result<T, E> {
        let within = self.within;
        if self.in_flight {
            // An earlier call was cut off midway: its answers may still be on their way.
            self.drop_conn();
        }
        let Some(conn) = self.conn.as_deref_mut() else {
            return Err(NoAnswer { within }.into());
        };
        self.in_flight = true;
        let progress = Progress::default();
        let answered = tokio::select! {
            biased;
            result = call(conn, &progress) => Some(result),
            () = progress.silent_for(within) => None,
        };
        match answered {
            Some(result) => {
                self.in_flight = false;
                if result
                    .as_ref()
                    .is_err_and(SpoilsConnection::spoils_connection)
                {
                    tracing::warn!("this connection cannot serve another call: dropping it");
                    self.drop_conn();
                }
                result
            }
            None => {
                tracing::warn!(
                    ?within,
                    "no answer from PostgreSQL: dropping the connection"
                );
                self.drop_conn();
                Err(NoAnswer { within }.into())
            }
        }
    }

    /// Drops the connection without a word to the server (whose session ends, rolling back
    /// whatever it had open, once it notices): nothing here may wait on a silent network.
    fn drop_conn(&mut self) {
        if let Some(conn) = self.conn.take() {
            drop(conn.detach());
        }
    }
}

impl Drop for Bounded {
    fn drop(&mut self) {
        if self.in_flight {
            self.drop_conn();
        } else if let Some(conn) = self.conn.take() {
            hand_back(conn, self.within);
        }
    }
}

/// Hands `conn` back to the pool. The pool checks a connection handed back with a round trip
/// (sqlx's `ping` on release) and waits for it without a bound, holding the connection's slot:
/// a connection caught by a silent network just after its call would hold it for good. Here
/// the check waits at most `within`; with no answer, the connection is dropped and its slot
/// freed. (`return_to_pool` is the release sqlx's drop would spawn, run here instead.)
pub(crate) fn hand_back(mut conn: PoolConnection<Postgres>, within: Duration) {
    let returning = conn.return_to_pool();
    drop(conn);
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            if tokio::time::timeout(within, returning).await.is_err() {
                tracing::warn!(?within, "no answer to the pool's check: connection dropped");
            }
        });
    }
    // Outside a runtime, `returning` is dropped unrun: the connection is closed.
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::test_pool::test_pool;

    #[test]
    fn no_answer_is_a_transient_io_error_to_sqlx() {
        let error = sqlx::Error::from(NoAnswer {
            within: Duration::from_millis(250),
        });
        assert!(matches!(&error, sqlx::Error::Io(e) if e.kind() == std::io::ErrorKind::TimedOut));
        assert!(crate::error::transient(&error));
        assert!(error.to_string().contains("did not answer within 250ms"));
    }

    /// The backend of a connection, by its process id.
    async fn backend(conn: &mut Bounded) -> i32 {
        conn.run(async |c| {
            sqlx::query_scalar("SELECT pg_backend_pid()")
                .fetch_one(c)
                .await
        })
        .await
        .expect("the backend's pid")
    }

    /// The backend of the next connection the pool lends (waiting at most 5 s for it).
    async fn next_backend(pool: &PgPool) -> i32 {
        let next = tokio::time::timeout(
            Duration::from_secs(5),
            Bounded::acquire(pool, Duration::from_secs(5)),
        );
        let mut next = next.await.expect("a connection within 5 s").unwrap();
        backend(&mut next).await
    }

    async fn sleep_on(conn: &mut Bounded) -> Result<(), sqlx::Error> {
        conn.run(async |c| {
            sqlx::query("SELECT pg_sleep(5)")
                .execute(c)
                .await
                .map(|_| ())
        })
        .await
    }

    #[tokio::test]
    async fn a_call_without_an_answer_in_time_fails_and_its_connection_is_dropped_not_pooled() {
        let pool = test_pool(1).await;
        // The pool's one connection: its backend read under a generous bound.
        let pid = next_backend(&pool).await;
        let mut conn = Bounded::acquire(&pool, Duration::from_millis(200))
            .await
            .unwrap();

        let started = Instant::now();
        let slept = sleep_on(&mut conn).await;
        assert!(
            matches!(&slept, Err(sqlx::Error::Io(e)) if e.kind() == std::io::ErrorKind::TimedOut),
            "{slept:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        // A later call on it fails at once: the connection is gone.
        let again = conn
            .run(async |c| sqlx::query("SELECT 1").execute(c).await)
            .await;
        assert!(again.is_err());
        drop(conn);
        // The pool of one lends another connection at once: the silent one was not handed
        // back (where the pool's check would have waited on it).
        assert_ne!(next_backend(&pool).await, pid);
    }

    #[tokio::test]
    async fn a_long_call_that_keeps_reporting_progress_is_not_cut_off() {
        let pool = test_pool(1).await;
        let mut conn = Bounded::acquire(&pool, Duration::from_secs(1))
            .await
            .unwrap();
        let started = Instant::now();
        // Eight statements of 250 ms each: two seconds in all, none silent for a second.
        let steps = conn
            .run_progressing(async |c, progress| {
                for _ in 0..8 {
                    sqlx::query("SELECT pg_sleep(0.25)")
                        .execute(&mut *c)
                        .await?;
                    progress.tick();
                }
                Ok::<_, sqlx::Error>(8)
            })
            .await;
        assert_eq!(steps.unwrap(), 8);
        assert!(started.elapsed() >= Duration::from_secs(2));
        // The same without progress is cut off.
        let silent = conn
            .run(async |c| {
                for _ in 0..8 {
                    sqlx::query("SELECT pg_sleep(0.25)")
                        .execute(&mut *c)
                        .await?;
                }
                Ok::<_, sqlx::Error>(8)
            })
            .await;
        assert!(silent.is_err(), "{silent:?}");
    }

    #[tokio::test]
    async fn a_connection_handed_back_whose_check_gets_no_answer_frees_its_slot() {
        let pool = test_pool(1).await;
        let mut conn = pool.acquire().await.unwrap();
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        // A statement sent and still running: the pool's check on release (a round trip)
        // waits for it, as it would wait on a silent network.
        let cut = tokio::time::timeout(
            Duration::from_millis(100),
            sqlx::query("SELECT pg_sleep(10)").execute(&mut *conn),
        )
        .await;
        assert!(cut.is_err());
        hand_back(conn, Duration::from_millis(200));
        // The check gave up after 200 ms, and the pool of one lends a new connection.
        assert_ne!(next_backend(&pool).await, pid);
    }

    #[tokio::test]
    async fn a_call_its_caller_gave_up_on_drops_its_connection_not_pooled() {
        let pool = test_pool(1).await;
        let mut conn = Bounded::acquire(&pool, Duration::from_secs(60))
            .await
            .unwrap();
        let pid = backend(&mut conn).await;

        let cut = tokio::time::timeout(Duration::from_millis(200), sleep_on(&mut conn)).await;
        assert!(cut.is_err(), "the caller gave up first");
        // Its answer may still come: a later call on it does not read it, it fails at once.
        let started = Instant::now();
        let later = conn
            .run(async |c| sqlx::query("SELECT 1").execute(c).await)
            .await;
        assert!(later.is_err(), "{later:?}");
        assert!(started.elapsed() < Duration::from_secs(1));
        drop(conn);
        assert_ne!(next_backend(&pool).await, pid);
    }

    #[tokio::test]
    async fn a_connection_whose_calls_all_answered_goes_back_to_the_pool() {
        let pool = test_pool(1).await;
        let mut conn = Bounded::acquire(&pool, Duration::from_secs(5))
            .await
            .unwrap();
        let pid = backend(&mut conn).await;
        drop(conn);
        let mut again = Bounded::acquire(&pool, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(backend(&mut again).await, pid);
    }
}
