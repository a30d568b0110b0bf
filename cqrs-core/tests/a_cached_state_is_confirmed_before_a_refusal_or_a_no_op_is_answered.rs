//! A repository's cache holds a state between commands; only an append's expected version
//! tells it that another writer (another replica, another repository) moved the stream on. A
//! refusal or a decision to record nothing never appends, so before, either was answered from
//! a state that could be stale for good: a reservation refused for stock restocked since, a
//! release answered `Ok` with nothing released though the reservation was made since. A
//! decision on a cached state that does not append is now confirmed on the stream's head first.

mod repository_support;

use cqrs_core::{Aggregate, CommandError, DomainEvent, Repository, RetryPolicy, Version};
use repository_support::Counted;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
enum StockEvent {
    Restocked { quantity: u64 },
    Reserved { order: String, quantity: u64 },
    Released { order: String, quantity: u64 },
}

#[derive(Debug, Clone, PartialEq)]
enum StockCommand {
    Restock(u64),
    Reserve { order: String, quantity: u64 },
    Release { order: String },
}

#[derive(Debug, PartialEq, thiserror::Error)]
#[error("only {available} available")]
struct Short {
    available: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Stock {
    available: u64,
    reserved: Vec<(String, u64)>,
}

impl Aggregate for Stock {
    const TYPE: &'static str = "stock";
    type Command = StockCommand;
    type Event = StockEvent;
    type Error = Short;
    type Services = ();

    fn apply(&mut self, event: &StockEvent) {
        match event {
            StockEvent::Restocked { quantity } => self.available += quantity,
            StockEvent::Reserved { order, quantity } => {
                self.available -= quantity;
                self.reserved.push((order.clone(), *quantity));
            }
            StockEvent::Released { order, quantity } => {
                self.available += quantity;
                self.reserved.retain(|(o, _)| o != order);
            }
        }
    }

    async fn handle(&self, command: &StockCommand, _: &()) -> Result<Vec<StockEvent>, Short> {
        Ok(match command {
            StockCommand::Restock(quantity) => vec![StockEvent::Restocked {
                quantity: *quantity,
            }],
            StockCommand::Reserve { order, quantity } => {
                if *quantity > self.available {
                    return Err(Short {
                        available: self.available,
                    });
                }
                vec![StockEvent::Reserved {
                    order: order.clone(),
                    quantity: *quantity,
                }]
            }
            // Releasing what an order does not hold changes nothing.
            StockCommand::Release { order } => self
                .reserved
                .iter()
                .filter(|(o, _)| o == order)
                .map(|(order, quantity)| StockEvent::Released {
                    order: order.clone(),
                    quantity: *quantity,
                })
                .collect(),
        })
    }
}

fn reserve(order: &str, quantity: u64) -> StockCommand {
    StockCommand::Reserve {
        order: order.to_owned(),
        quantity,
    }
}

/// A replica with the cache, and another writer on the same store.
fn replicas(store: &Counted) -> (Repository<Stock, Counted>, Repository<Stock, Counted>) {
    let cached = Repository::new(store.clone())
        .with_cache(16)
        .with_retry(RetryPolicy::new(3));
    (cached, Repository::new(store.clone()))
}

#[tokio::test]
async fn a_refusal_on_a_cached_state_is_taken_again_on_the_stock_restocked_since() {
    let store = Counted::default();
    let (cached, other) = replicas(&store);
    cached
        .execute("widget", &StockCommand::Restock(1))
        .await
        .expect("restocks");
    cached
        .execute("widget", &reserve("o1", 1))
        .await
        .expect("reserves the last one: the cache holds 0 available");

    other
        .execute("widget", &StockCommand::Restock(10))
        .await
        .expect("another replica restocks");

    let outcome = cached
        .execute("widget", &reserve("o2", 5))
        .await
        .expect("five of the ten restocked are reserved, not refused for the cached 0");
    assert_eq!(outcome.version, Version::new(4));
    let (state, _) = cached.load("widget").await.expect("loads");
    assert_eq!(state.available, 5);
}

#[tokio::test]
async fn a_no_op_on_a_cached_state_is_taken_again_on_the_reservation_made_since() {
    let store = Counted::default();
    let (cached, other) = replicas(&store);
    cached
        .execute("widget", &StockCommand::Restock(3))
        .await
        .expect("restocks; the cache holds no reservation");
    other
        .execute("widget", &reserve("o1", 2))
        .await
        .expect("another replica reserves");

    let released = cached
        .execute(
            "widget",
            &StockCommand::Release {
                order: "o1".to_owned(),
            },
        )
        .await
        .expect("releases");
    assert_eq!(
        released.events,
        vec![StockEvent::Released {
            order: "o1".to_owned(),
            quantity: 2
        }],
        "the reservation made since is released, not answered Ok with nothing released"
    );
    assert_eq!(released.version, Version::new(3));
    let (state, _) = cached.load("widget").await.expect("loads");
    assert_eq!(state.available, 3);
}

#[tokio::test]
async fn a_refusal_that_stands_on_the_head_is_answered_from_one_read_of_the_events_after_it() {
    let store = Counted::default();
    let (cached, other) = replicas(&store);
    cached
        .execute("widget", &StockCommand::Restock(1))
        .await
        .expect("restocks");
    other
        .execute("widget", &reserve("o1", 1))
        .await
        .expect("another replica takes the last one");
    let reads = store.calls.reads();
    store.calls.reset_folded();

    let refused = cached.execute("widget", &reserve("o2", 1)).await;
    assert!(
        matches!(refused, Err(CommandError::Rejected(Short { available: 0 }))),
        "refused on the head's stock: {refused:?}"
    );
    assert_eq!(
        store.calls.reads() - reads,
        1,
        "the cached state is caught up with one read"
    );
    assert_eq!(
        store.calls.folded(),
        1,
        "only the event it missed is folded"
    );
    assert_eq!(store.calls.appends(), 3, "nothing appended for the refusal");

    // The refused state stays cached, current: refused again with one read, nothing folded.
    let reads = store.calls.reads();
    let again = cached.execute("widget", &reserve("o3", 1)).await;
    assert!(matches!(again, Err(CommandError::Rejected(_))), "{again:?}");
    assert_eq!(store.calls.reads() - reads, 1);
    assert_eq!(store.calls.folded(), 1);
}

#[tokio::test]
async fn a_refusal_confirmed_on_the_head_leaves_the_head_cached() {
    let store = Counted::default();
    let (cached, other) = replicas(&store);
    cached
        .execute("widget", &StockCommand::Restock(1))
        .await
        .expect("restocks");
    other
        .execute("widget", &StockCommand::Restock(1))
        .await
        .expect("another replica restocks");
    // Refused on the head (2 available): the confirmed state is the one cached.
    let refused = cached.execute("widget", &reserve("o1", 3)).await;
    assert!(
        matches!(refused, Err(CommandError::Rejected(Short { available: 2 }))),
        "{refused:?}"
    );
    let outcome = cached
        .execute("widget", &reserve("o1", 2))
        .await
        .expect("the cached state is at the head: the append lands at once");
    assert_eq!((outcome.version, outcome.attempts), (Version::new(3), 1));
}
