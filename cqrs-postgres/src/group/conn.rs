//! [`LaneConn`]: a lane's connection, with its `statement_timeout`.

use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};

/// A lane's pooled connection, its session's `statement_timeout` set to the group commit's
/// timeout. It goes back to the pool only with the setting reset; dropped any other way (a
/// broken connection, the lane's task ending midway) it is closed, so no other user of the pool
/// inherits the timeout.
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
        if self.0.is_none() {
            let conn = tokio::time::timeout(timeout, pool.acquire())
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)??;
            // Closed if the setup fails midway.
            let conn = self.0.insert(conn);
            sqlx::query("SELECT set_config('statement_timeout', $1, false)")
                .bind(format!("{}ms", timeout.as_millis().max(1)))
                .execute(&mut **conn)
                .await?;
        }
        self.0.as_mut().ok_or(sqlx::Error::PoolClosed)
    }

    /// Gives the connection back to the pool, its setting reset.
    pub(super) async fn release(&mut self) {
        if let Some(mut conn) = self.0.take() {
            if sqlx::query("RESET statement_timeout")
                .execute(&mut *conn)
                .await
                .is_err()
            {
                conn.close_on_drop();
            }
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
