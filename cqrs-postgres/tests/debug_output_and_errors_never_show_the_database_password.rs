//! Nothing the store prints, in `Debug` or in an error, carries the password of the URL its pool
//! was made from (sqlx keeps the connect options, password included, inside the pool).

use cqrs_postgres::{GroupCommit, PgError, PgEventStore, PgSchema};
use sqlx::postgres::PgPoolOptions;

const URL: &str = "postgres://app:pg-s3cret@127.0.0.1:1/app?password=pg-s3cret";

fn assert_hidden(what: &str, text: &str) {
    assert!(
        !text.contains("s3cret"),
        "{what} shows the password: {text}"
    );
}

#[tokio::test]
async fn debug_output_never_shows_the_database_password() {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy(URL)
        .expect("a lazy pool");
    let store = PgEventStore::new(pool)
        .with_schema(PgSchema::new("billing").expect("a valid schema"))
        .with_group_commit(GroupCommit::default());
    assert_hidden("PgEventStore", &format!("{store:?}"));
    assert_hidden("PgEventStore (pretty)", &format!("{store:#?}"));
    assert_hidden("PgFeedSignal", &format!("{:?}", store.feed_signal()));
    assert_hidden("the pool", &format!("{:?}", store.pool()));
}

#[tokio::test]
async fn a_failed_connection_never_shows_the_database_password() {
    let error = PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_millis(500))
        .connect(URL)
        .await
        .map(PgEventStore::new)
        .map_err(PgError::from)
        .expect_err("nothing listens on port 1");
    assert_hidden("the error (Display)", &error.to_string());
    assert_hidden("the error (Debug)", &format!("{error:?}"));
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        assert_hidden("a cause", &cause.to_string());
        source = cause.source();
    }
}
