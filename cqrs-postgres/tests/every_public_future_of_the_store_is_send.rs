//! Every future the store hands out can be spawned (`tokio::spawn`) and awaited in a web
//! handler, both of which take only `Send` futures. A generic executor awaited on a reborrowed
//! connection (sqlx's `raw_sql(...).execute(&mut *tx)`) made `repair_transaction_ids` one
//! that was not: a caller could not spawn it. The trait methods are `Send` by their
//! `async_trait`; these are the store's own.

use cqrs_core::projection::Lease;
use cqrs_core::{ExpectedVersion, NewEvent, Position, StreamId};
use cqrs_postgres::PgEventStore;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection};

fn send<T: Send>(_: &T) {}

/// Type-checks each future; none is polled.
fn every_future_is_send(
    store: &PgEventStore,
    conn: &mut PgConnection,
    stream: &StreamId,
    lease: &Lease,
) {
    send(&store.repair_transaction_ids());
    send(&store.feed_horizon());
    send(&store.lease_holds(conn, lease));
    send(&store.subscribers());
    send(&store.subscribers_starting_with("p"));
    send(&store.correlated_events(uuid::Uuid::nil(), Position::START, 10));
    send(&store.migrate());
    send(&store.stored_event_json());
    send(&PgEventStore::connect("postgres://nowhere/none"));
    send(&store.append_in(conn, stream, ExpectedVersion::Any, Vec::<NewEvent>::new()));
    send(&PgConnection::connect("postgres://nowhere/none"));
}

#[tokio::test]
async fn every_public_future_of_the_store_is_send() {
    // Never connected: the futures are made, not run.
    let pool = PgPoolOptions::new()
        .connect_lazy("postgres://nowhere/none")
        .expect("a lazy pool");
    let store = PgEventStore::new(pool);
    let _ = (
        &store,
        every_future_is_send as fn(&PgEventStore, &mut PgConnection, &StreamId, &Lease),
    );
}
