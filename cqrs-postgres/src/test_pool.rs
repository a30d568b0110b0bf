//! The unit tests' connection to the real PostgreSQL that `DATABASE_URL` names.

use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

/// A pool of at most `connections` to the server `DATABASE_URL` names; panics (failing the
/// test) without one.
pub(crate) async fn test_pool(connections: u32) -> PgPool {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL: a real PostgreSQL");
    PgPoolOptions::new()
        .max_connections(connections)
        .connect(&url)
        .await
        .expect("connect")
}
