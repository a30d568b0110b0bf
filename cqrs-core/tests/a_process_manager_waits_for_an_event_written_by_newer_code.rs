//! A process manager on the release before, leading during a rolling deploy, meets a trigger
//! the new release wrote at a schema version it does not know: its route's decode refuses it
//! as transient ([`Error::WrittenByNewerCode`]), and the batch waits for the new release
//! rather than the instance's trigger being parked (and its later triggers held back).

use async_trait::async_trait;
use cqrs_core::process::{
    Action, CommandDispatcher, Context, DispatchError, Dispatched, Input, ProcessManager,
    ProcessManagerProjection, ProcessOptions, Route,
};
use cqrs_core::projection::{Projection, ProjectionError};
use cqrs_core::{
    AppendEvents, CommandContext, DomainEvent, Error, EventFilter, ExpectedVersion,
    InMemoryEventStore, NewEvent, Position, ReadAll, RecordedEvent, StreamId,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Clone, Debug, Serialize, Deserialize, DomainEvent)]
enum Billing {
    Invoiced { cents: u64 },
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Dunning;

impl ProcessManager for Dunning {
    const TYPE: &'static str = "dunning";
    type Trigger = Billing;
    type Command = ();
    type Rejection = String;
    type Timeout = ();

    fn subscriptions() -> EventFilter {
        EventFilter::all().category("invoice")
    }

    fn route(event: &RecordedEvent) -> Result<Route<Billing>, Error> {
        Ok(Route::start(event.stream_id.instance(), event.decode()?))
    }

    fn apply(&mut self, _: &Input<Self>) {}

    fn decide(&self, _: &Input<Self>, _: &Context<'_>) -> Vec<Action<Self>> {
        Vec::new()
    }
}

struct Nowhere;

#[async_trait]
impl CommandDispatcher<()> for Nowhere {
    type Rejection = String;

    async fn dispatch(
        &self,
        (): &(),
        _: CommandContext,
    ) -> Result<Dispatched, DispatchError<String>> {
        Err(DispatchError::Failed(Error::unavailable("not used")))
    }
}

#[tokio::test]
async fn a_process_manager_waits_for_an_event_written_by_newer_code() {
    let store = InMemoryEventStore::new();
    store
        .append(
            &StreamId::new("invoice-1").expect("id"),
            ExpectedVersion::NoStream,
            vec![NewEvent::new(
                "Invoiced",
                2,
                json!({ "cents": 5, "currency": "EUR" }),
            )],
        )
        .await
        .expect("append");
    let events = store
        .read_all(Position::START, 10, &EventFilter::all())
        .await
        .expect("read")
        .events;
    let projection = ProcessManagerProjection::<Dunning, _, _>::new(
        store.clone(),
        Nowhere,
        ProcessOptions::default(),
    );
    match projection.apply(&events).await {
        Err(ProjectionError::Transient(error)) => {
            assert!(error.to_string().contains("newer"), "{error}");
        }
        other => panic!("the batch waits for the new release: {other:?}"),
    }
}
