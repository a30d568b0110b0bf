//! Run it: `cargo run -p quickstart`, with the stores the environment names:
//!
//! - nothing set: the in-memory event store, and the read side in memory;
//! - `DATABASE_URL`: PostgreSQL (schema `quickstart`, emptied first), read side in memory
//!   (`eval "export $(scripts/postgres.sh start | tail -n1)"` starts a server and sets it);
//! - `DATABASE_URL` and `ELASTICSEARCH_URL`: PostgreSQL, and the read side in Elasticsearch or
//!   OpenSearch (read model `quickstart-orders`, emptied first; `eval "export
//!   $(scripts/opensearch.sh start 9200 | tail -n1)"` starts a node and sets it).
//!
//! The quick start: an order / stock / payment / shipping flow, driven by the orchestrated order
//! saga on the framework's process managers (with a simulated carrier), and its read side,
//! order summaries that answer queries. [`quickstart::run`] takes any store with the event and
//! snapshot roles, and any [`ReadSide`]: the domain code does not change with either.

use cqrs_core::{BoxError, InMemoryEventStore};
use quickstart::read_side::{OrderSummaries, ReadSide};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let database = env("DATABASE_URL");
    let search = env("ELASTICSEARCH_URL");
    match (database, search) {
        (None, search) => {
            let ignored = search.map(|_| " (ELASTICSEARCH_URL is used only with DATABASE_URL)");
            println!(
                "cqrs quick start: in-memory event store, read side in memory{}\n",
                ignored.unwrap_or_default()
            );
            let store = InMemoryEventStore::new();
            let read_side =
                ReadSide::in_memory(OrderSummaries::new(), store.clone(), store.clone());
            quickstart::run(store, read_side).await
        }
        (Some(database), None) => {
            println!("cqrs quick start: PostgreSQL (schema quickstart), read side in memory\n");
            let store = quickstart::postgres::fresh_store(&database, "quickstart").await?;
            let signal = store.feed_signal();
            let read_side = ReadSide::in_memory(OrderSummaries::new(), store.clone(), signal);
            quickstart::run(store, read_side).await
        }
        (Some(database), Some(search)) => {
            println!("{}\n", on_the_node(&search));
            let store = quickstart::postgres::fresh_store(&database, "quickstart").await?;
            let client = cqrs_elastic::connect(&search)?;
            let read_side = ReadSide::on_node(client, "quickstart-orders", &store).await?;
            quickstart::run(store, read_side).await
        }
    }
}

/// The banner of the run on both servers. It names the search node with any password masked:
/// a URL may carry credentials, and this goes to the terminal and to logs.
fn on_the_node(search: &str) -> String {
    format!(
        "cqrs quick start: PostgreSQL (schema quickstart), read side on {} (read model \
         quickstart-orders)",
        cqrs_core::redact_url(search)
    )
}

/// The variable `name`, unless unset or empty.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::on_the_node;

    #[test]
    fn the_banner_names_the_search_node_without_its_password() {
        let banner = on_the_node("https://elastic:s3cret@search.example:9200");
        assert!(
            banner.contains("https://elastic:****@search.example:9200"),
            "{banner}"
        );
        assert!(!banner.contains("s3cret"), "{banner}");
    }
}
