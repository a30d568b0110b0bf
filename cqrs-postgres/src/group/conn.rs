//! [`LaneConn`]: a lane's connection, with its `statement_timeout` and generic plans.

use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};

use crate::bounded::hand_back;

/// A lane connection's settings, `$1` the timeout.
const SETUP: &str = "SELECT set_config('statement_timeout', $1, false), \
                            set_config('plan_cache_mode', 'force_generic_plan', false)";

/// A lane's pooled connection, its session's `statement_timeout` set to the group commit's
/// timeout and its `plan_cache_mode` to `force_generic_plan`. Left to choose, PostgreSQL plans
/// the group statement for its parameters at every execution once a few small groups have made
/// such plans look cheap, which doubled a group's cost (see `generic_plan_tests.rs`); the
/// statement is written so that its generic plan is the right one (`sql/append_group.sql`).
/// It goes back to the pool only with both settings reset; dropped any other way (a broken
/// connection, the lane's task ending midway) it is closed, so no other user of the pool
/// inherits them.
#[derive(Default)]
pub(super) struct LaneConn(Option<PoolConnection<Postgres>>);

impl LaneConn {
    pub(super) fn is_open(&self) -> bool {
        self.0.is_some()
    }

    /// The connection, acquired (within `timeout`) and set up if there is none.
    pub(super) async fn get(
        &mut self,
        pool: &PgPool,
        timeout: Duration,
    ) -> Result<&mut PoolConnection<Postgres>, sqlx::Error> {
        self.get_with(pool, timeout, SETUP).await
    }

    /// [`LaneConn::get`], the connection set up by `setup` (the tests' way to make it fail).
    async fn get_with(
        &mut self,
        pool: &PgPool,
        timeout: Duration,
        setup: &str,
    ) -> Result<&mut PoolConnection<Postgres>, sqlx::Error> {
        if self.0.is_none() {
            let conn = tokio::time::timeout(timeout, pool.acquire())
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)??;
            // Held here while it is set up: closed if the setup is dropped midway.
            let conn = self.0.insert(conn);
            let set_up = sqlx::query(setup)
                .bind(format!("{}ms", timeout.as_millis().max(1)))
                .execute(&mut **conn)
                .await;
            if let Err(error) = set_up {
                // Without its settings the connection would write groups with no timeout:
                // closed, and the next group sets up another.
                self.discard();
                return Err(error);
            }
        }
        self.0.as_mut().ok_or(sqlx::Error::PoolClosed)
    }

    /// Gives the connection back to the pool, its settings reset (waiting at most `answer`
    /// for that: with no answer, it is dropped).
    pub(super) async fn release(&mut self, answer: Duration) {
        if let Some(mut conn) = self.0.take() {
            // RESET for both, in one statement: each back to the value RESET would give it.
            let reset = sqlx::query(
                "SELECT set_config(name, reset_val, false) FROM pg_settings \
                 WHERE name IN ('statement_timeout', 'plan_cache_mode')",
            )
            .execute(&mut *conn);
            match tokio::time::timeout(answer, reset).await {
                Ok(Ok(_)) => hand_back(conn, answer),
                Ok(Err(_)) => conn.close_on_drop(),
                Err(_) => drop(conn.detach()),
            }
        }
    }

    /// Drops the connection without a word to the server, after a statement got no answer:
    /// a goodbye could wait on a silent network too.
    pub(super) fn drop_unanswered(&mut self) {
        if let Some(conn) = self.0.take() {
            drop(conn.detach());
        }
    }

    /// Closes the connection (it may be broken).
    pub(super) fn discard(&mut self) {
        if let Some(mut conn) = self.0.take() {
            conn.close_on_drop();
        }
    }
}

impl Drop for LaneConn {
    fn drop(&mut self) {
        self.discard();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::LaneConn;
    use crate::test_pool::test_pool;

    /// A connection without its `statement_timeout` would let a group wait without bound on a
    /// row another transaction holds: one whose setup failed is closed, not kept for the next
    /// group.
    #[tokio::test]
    async fn a_connection_whose_setup_failed_is_closed_not_kept() {
        let pool = test_pool(1).await;
        let mut conn = LaneConn::default();

        let failed = conn
            .get_with(&pool, Duration::from_secs(5), "SELECT $1::text, 1 / 0")
            .await;

        assert!(failed.is_err(), "the setup fails");
        assert!(!conn.is_open(), "the connection is not kept");
        let set_up = conn
            .get(&pool, Duration::from_secs(5))
            .await
            .expect("set up");
        let timeout: String = sqlx::query_scalar("SHOW statement_timeout")
            .fetch_one(&mut **set_up)
            .await
            .expect("the setting");
        assert_eq!(timeout, "5s");
    }
}
