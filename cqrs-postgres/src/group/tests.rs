//! The seam that breaks a group's connection after its commit, and the test that uses it.

use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};

/// The seam behind `lose_next_reply`: the group's statement has committed on `conn`; end
/// that connection's backend for real (`pg_terminate_backend` from another session) and
/// return the error that using it then gives, as if the connection had broken before the
/// reply arrived.
pub(super) async fn lose_reply(pool: &PgPool, conn: &mut PoolConnection<Postgres>) -> sqlx::Error {
    use sqlx::Connection;
    let pid: i32 = match sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut **conn)
        .await
    {
        Ok(pid) => pid,
        Err(error) => return error,
    };
    let killer = sqlx::PgConnection::connect_with(&pool.connect_options()).await;
    let terminated = match killer {
        Ok(mut killer) => sqlx::query("SELECT pg_terminate_backend($1, 10000)")
            .bind(pid)
            .execute(&mut killer)
            .await
            .map(|_| ()),
        Err(error) => Err(error),
    };
    if let Err(error) = terminated {
        return error;
    }
    match sqlx::query("SELECT 1").execute(&mut **conn).await {
        Err(error) => error,
        Ok(_) => sqlx::Error::Protocol("the terminated backend still answered".into()),
    }
}

use crate::test_pool::test_pool;
use cqrs_core::{AppendEvents, ExpectedVersion, NewEvent, ReadStream, Version};

use cqrs_core::StreamId;

use crate::GroupCommit;
use crate::{PgEventStore, PgSchema};

#[tokio::test]
async fn a_grouped_append_whose_reply_was_lost_after_commit_is_reported_as_written_not_duplicate() {
    let pool = test_pool(4).await;
    let schema = PgSchema::new(&format!("t_{}", uuid::Uuid::now_v7().simple())).expect("name");
    let store = PgEventStore::new(pool)
        .with_schema(schema)
        .with_group_commit(GroupCommit::default().alone_below(0));
    store.migrate().await.expect("migrate");
    let stream = StreamId::new("lost-reply-1").expect("id");
    let seam = Arc::clone(&store.group.as_ref().expect("grouped").lose_next_reply);
    seam.store(true, std::sync::atomic::Ordering::SeqCst);

    let outcome = store
        .append(
            &stream,
            ExpectedVersion::NoStream,
            vec![NewEvent::new("E", 1, serde_json::json!({ "n": 1 }))],
        )
        .await
        .expect("append");
    assert!(
        !seam.load(std::sync::atomic::Ordering::SeqCst),
        "the group's connection was broken after its commit"
    );
    assert_eq!(
        (outcome.first_version, outcome.last_version),
        (Version::new(1), Version::new(1))
    );
    assert!(
        !outcome.duplicate,
        "this append wrote its events, yet came back as a duplicate: {outcome:?}"
    );
    let events = store
        .read_stream(&stream, Version::new(1), 10)
        .await
        .expect("read");
    assert_eq!(events.len(), 1, "written once");
    assert_eq!(events[0].position, outcome.position);
}
