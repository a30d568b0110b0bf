//! A store may keep its events' payload and metadata as `json` (`EventJson::Json`). The CLI,
//! which did not create the store, follows what its events table holds: `migrate` succeeds
//! there (a store configured for `jsonb` is refused on a `json` table) and the events read
//! back as written.

mod support;

use cqrs_admin::inspect::StreamView;
use cqrs_postgres::{testing, EventJson, PgEventStore};
use support::{append, cqrs, visible};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_and_streams_show_work_on_a_json_store() {
    let store = PgEventStore::connect(&support::database_url())
        .await
        .expect("connect")
        .with_event_json(EventJson::Json);
    let store = testing::fresh_store_from(store)
        .await
        .expect("a fresh schema");
    let request = Uuid::new_v4();
    let placed = append(&store, "order-1", "OrderPlaced", request).await;
    visible(&store, placed).await;

    let migrated = cqrs(&store, &["migrate"]).await;
    assert_eq!(migrated.code, 0, "{migrated:?}");
    let stream: StreamView = cqrs(&store, &["streams", "show", "order-1", "--json"])
        .await
        .json();
    assert_eq!(stream.events.len(), 1);
    assert_eq!(stream.events[0].correlation_id, Some(request));
}
