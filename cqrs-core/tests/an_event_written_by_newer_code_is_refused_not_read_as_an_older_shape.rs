//! During a rolling deploy, replicas on the release before read events the new release wrote.
//! An event at a schema version newer than this code writes (the new release changed its
//! payload and registered an upcaster for the old one) was decoded as the older shape, with no
//! check: a field the payload lacks read as its default, and the state, the decision on it,
//! or a read model's document was silently wrong. It is refused now, transient: a retry
//! succeeds once the new release handles it (a command answers 503, a projection waits), and
//! nothing is decided on a wrong reading.

use cqrs_core::{
    Aggregate, AppendEvents, CommandError, DomainEvent, ErrorKind, EventFilter, ExpectedVersion,
    InMemoryEventStore, NewEvent, Position, ReadAll, Repository, StreamId,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The release before: `Deposited` at version 1, `amount` defaulting to 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
enum AccountEvent {
    Opened {
        owner: String,
    },
    Deposited {
        #[serde(default)]
        amount: u64,
    },
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Account {
    balance: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

impl Aggregate for Account {
    const TYPE: &'static str = "account";
    type Command = u64;
    type Event = AccountEvent;
    type Error = Never;
    type Services = ();

    fn apply(&mut self, event: &AccountEvent) {
        if let AccountEvent::Deposited { amount } = event {
            self.balance += amount;
        }
    }

    async fn handle(&self, amount: &u64, _: &()) -> Result<Vec<AccountEvent>, Never> {
        Ok(vec![AccountEvent::Deposited { amount: *amount }])
    }
}

#[tokio::test]
async fn an_event_written_by_newer_code_is_refused_not_read_as_an_older_shape() {
    let store = InMemoryEventStore::new();
    // Written by the next release: `Deposited` at version 2, `{cents}`.
    store
        .append(
            &StreamId::new("account-1").expect("id"),
            ExpectedVersion::NoStream,
            vec![
                NewEvent::new("Opened", 1, json!({ "owner": "ann" })),
                NewEvent::new("Deposited", 2, json!({ "cents": 500 })),
            ],
        )
        .await
        .expect("append");

    let accounts = Repository::<Account, _>::new(store.clone());
    let error = accounts.load("1").await.expect_err("newer than this code");
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
    assert!(error.is_transient());
    let text = error.to_string();
    assert!(
        text.contains("Deposited") && text.contains("version 2") && text.contains("account-1@2"),
        "names the event and its version: {text}"
    );
    match accounts.execute("1", &10).await {
        Err(CommandError::Store(error)) => assert!(error.is_transient(), "{error}"),
        other => panic!("nothing decided on a wrong reading: {other:?}"),
    }

    let feed = store
        .read_all(Position::START, 10, &EventFilter::all())
        .await
        .expect("read")
        .events;
    assert!(feed[0].decode::<AccountEvent>().is_ok());
    let error = feed[1]
        .decode::<AccountEvent>()
        .expect_err("a projection on this code");
    assert!(error.is_transient(), "{error}");
    assert_eq!(AccountEvent::current_version("Deposited"), Some(1));
    assert_eq!(AccountEvent::current_version("Withdrawn"), None);
}
