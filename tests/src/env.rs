//! The services the tests run against, and what keeps tests apart: a PostgreSQL schema and
//! read-model names of their own.

use std::time::Duration;

use cqrs_core::projection::Lease;
use cqrs_elastic::{EsIndex, EsReadModel};
use cqrs_postgres::{PgEventStore, PgSchema};
use elasticsearch::indices::IndicesDeleteParts;
use elasticsearch::Elasticsearch;
use sqlx::postgres::PgPoolOptions;

use crate::OrderSummaries;

/// The PostgreSQL server, from `DATABASE_URL`. Panics with what to do when it is not set.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "DATABASE_URL is not set. The integration tests need a real PostgreSQL: run \
             scripts/test.sh (which starts one), or `eval \"export $(scripts/postgres.sh start | \
             tail -n1)\"` first"
        )
    })
}

/// The search node, from `ELASTICSEARCH_URL`. Panics with what to do when it is not set.
pub fn elasticsearch_url() -> String {
    std::env::var("ELASTICSEARCH_URL").unwrap_or_else(|_| {
        panic!(
            "ELASTICSEARCH_URL is not set. The integration tests need a real Elasticsearch or \
             OpenSearch node: run scripts/test.sh (which starts one), or `eval \"export \
             $(scripts/opensearch.sh start 9200 | tail -n1)\"` first"
        )
    })
}

/// A migrated [`PgEventStore`] in a schema no other test uses, on a small pool of its own.
pub async fn pg_store() -> PgEventStore {
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect(&database_url())
        .await
        .unwrap_or_else(|e| panic!("cannot connect to DATABASE_URL: {e}"));
    let schema = format!("it_{}", uuid::Uuid::now_v7().simple());
    let store =
        PgEventStore::new(pool).with_schema(PgSchema::new(&schema).expect("a valid schema name"));
    store.migrate().await.expect("migrate the test schema");
    store
}

/// Drops the store's schema (at the end of a test that passed; a failed test leaves it for a
/// post-mortem).
///
/// Under a `lock_timeout`, as `cqrs_postgres::testing` drops its schemas: a session still
/// holding a lock on one of the schema's tables (CI saw a pooled connection left idle in a
/// transaction after the services shut down) would otherwise keep the `DROP` waiting for
/// good, and the waiting `DROP` holds a transaction id, which stops the gap-safe feed of every
/// other test on the server. Then the schema is left behind, with a warning.
pub async fn drop_schema(store: &PgEventStore) {
    let statement = format!(
        "SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS \"{}\" CASCADE; RESET lock_timeout;",
        store.schema().as_str()
    );
    let mut conn = store.pool().acquire().await.expect("a connection");
    if let Err(error) = sqlx::raw_sql(&statement).execute(&mut *conn).await {
        eprintln!(
            "the test schema {} is left behind: {error}",
            store.schema().as_str()
        );
    }
}

/// A client for the node at `url`. A failure names the node with its password masked.
pub fn client_for(url: &str) -> Elasticsearch {
    cqrs_elastic::connect(url)
        .unwrap_or_else(|e| panic!("a client for {}: {e}", cqrs_core::redact_url(url)))
}

/// A client for the shared test node (`ELASTICSEARCH_URL`).
pub fn es_client() -> Elasticsearch {
    client_for(&elasticsearch_url())
}

/// A read-model name no other test (or earlier run) uses: `it-{prefix}-{uuid}`.
pub fn unique_name(prefix: &str) -> String {
    format!("it-{prefix}-{}", uuid::Uuid::now_v7().simple())
}

/// A fresh order-summaries read model on `client`: the projection, its index (version 1 and
/// the alias, created), its projector and its queries.
pub async fn summaries_read_model(
    client: &Elasticsearch,
    prefix: &str,
) -> EsReadModel<OrderSummaries> {
    let summaries = OrderSummaries::new(unique_name(prefix));
    let model = EsReadModel::new(client.clone(), summaries).expect("a valid read model");
    model.ensure().await.expect("create the read model's index");
    model
}

/// Deletes the versioned indices `{name}_v1` to `{name}_v{up_to}` (absent ones are fine), so
/// the shared node does not fill up with test indices.
pub async fn delete_indices(client: &Elasticsearch, index: &EsIndex, up_to: u32) {
    let names: Vec<String> = (1..=up_to).map(|v| index.version_name(v)).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let response = client
        .indices()
        .delete(IndicesDeleteParts::Index(&names))
        .ignore_unavailable(true)
        .send()
        .await
        .expect("delete the test indices");
    assert!(
        response.status_code().is_success(),
        "deleting {names:?} answered {}",
        response.status_code()
    );
}

/// The worker holding lease `name` in `store`'s schema, if a lease row exists and has not expired
/// (read straight from the table, as an operator would).
pub async fn lease_holder(store: &PgEventStore, name: &str) -> Option<String> {
    let owner: Option<String> = sqlx::query_scalar(&format!(
        "SELECT owner FROM \"{}\".leases WHERE name = $1 AND expires_at > now()",
        store.schema().as_str()
    ))
    .bind(name)
    .fetch_optional(store.pool())
    .await
    .expect("read the leases table");
    // The worker's name, without the suffix its running instance holds the lease with.
    owner.map(|owner| {
        Lease::new(name, owner, 0, Duration::ZERO)
            .worker()
            .to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::client_for;

    #[test]
    fn a_client_that_cannot_be_made_names_its_node_without_the_password() {
        let panic =
            std::panic::catch_unwind(|| client_for("http://elastic:s3cret@[bad host]:9200"))
                .expect_err("a malformed URL makes no client");
        let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(message.contains("elastic:****@"), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
    }
}
