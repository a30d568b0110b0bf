//! Shared by the engine's process-manager tests: a small checkout process over `Tally`
//! aggregates, its dispatcher, and a store wrapper whose probe can stop the worker at a
//! chosen call (after a `record`, after a dispatch, before a checkpoint save).

#![allow(dead_code)] // each test file uses its own part

mod probed;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::process::{
    Action, CommandDispatcher, Context, DispatchError, Dispatched, Input, InstanceRow,
    ProcessManager, ProcessStore, Route, INPUT_RECEIVED,
};
use cqrs_core::testing::{Tally, TallyCommand, TallyError};
use cqrs_core::{
    AppendEvents, CommandContext, Error, EventFilter, EventId, ExpectedVersion, InMemoryEventStore,
    Metadata, NewEvent, Position, ReadStream, RecordedEvent, Repository, StreamId, Version,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

#[allow(unused_imports)]
pub(crate) use probed::{Point, Probe, Probed};

/// An order's checkout: charge the card, reserve stock, complete; a refused reserve refunds
/// the charge; an order not reserved within 60 s is refunded too.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Checkout {
    pub(crate) amount: u64,
    pub(crate) sku: u64,
    pub(crate) paid: bool,
    pub(crate) reserved: bool,
    pub(crate) refused: Vec<Refusal>,
    pub(crate) expired: bool,
}

/// What the checkout listens to.
#[derive(Clone, Debug)]
pub(crate) enum OrderEvent {
    Placed { amount: u64, sku: u64 },
}

/// What it sends: an amount added to a tally.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Cmd {
    Add { tally: String, amount: u64 },
}

/// Why a tally refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Refusal {
    Closed,
    OverCap { cap: u64 },
}

impl From<TallyError> for Refusal {
    fn from(error: TallyError) -> Self {
        match error {
            TallyError::OverCap { cap } => Refusal::OverCap { cap },
            _ => Refusal::Closed,
        }
    }
}

fn add(tally: String, amount: u64) -> Action<Checkout> {
    Action::send(Cmd::Add { tally, amount })
}

impl ProcessManager for Checkout {
    const TYPE: &'static str = "checkout";
    type Trigger = OrderEvent;
    type Command = Cmd;
    type Rejection = Refusal;
    type Timeout = ();

    fn subscriptions() -> EventFilter {
        EventFilter::all().category("order")
    }

    fn route(event: &RecordedEvent) -> Result<Route<OrderEvent>, Error> {
        if event.event_type != "Placed" {
            return Ok(Route::Ignore);
        }
        let field = |name: &str| {
            event.payload[name]
                .as_u64()
                .ok_or_else(|| Error::process(Self::TYPE, format!("Placed without {name}")))
        };
        Ok(Route::start(
            event.stream_id.instance(),
            OrderEvent::Placed {
                amount: field("amount")?,
                sku: field("sku")?,
            },
        ))
    }

    fn apply(&mut self, input: &Input<Self>) {
        match input {
            Input::Event {
                trigger: OrderEvent::Placed { amount, sku },
                ..
            } => {
                self.amount = *amount;
                self.sku = *sku;
            }
            Input::Accepted {
                command: Cmd::Add { tally, .. },
                ..
            } if tally.starts_with("pay-") => self.paid = true,
            Input::Accepted {
                command: Cmd::Add { tally, .. },
                ..
            } if tally.starts_with("stock-") => self.reserved = true,
            Input::Rejected { error, .. } => self.refused.push(error.clone()),
            Input::Timeout { .. } => self.expired = true,
            _ => {}
        }
    }

    fn decide(&self, input: &Input<Self>, ctx: &Context<'_>) -> Vec<Action<Self>> {
        let refund = || add(format!("refund-{}", ctx.instance), self.amount);
        match input {
            Input::Event { .. } => vec![
                add(format!("pay-{}", ctx.instance), self.amount),
                Action::after("expire", Duration::from_secs(60), ()),
            ],
            Input::Accepted {
                command: Cmd::Add { tally, .. },
                ..
            } if tally.starts_with("pay-") => vec![add(format!("stock-{}", self.sku), self.amount)],
            Input::Accepted {
                command: Cmd::Add { tally, .. },
                ..
            } if tally.starts_with("stock-") => vec![Action::cancel("expire"), Action::Complete],
            Input::Accepted { .. } => vec![],
            // The typed refusal reaches `decide`: a closed stock is compensated, anything else
            // is for an operator.
            Input::Rejected {
                error: Refusal::Closed,
                ..
            } => vec![refund(), Action::Complete],
            Input::Rejected { error, .. } => vec![Action::fail(format!("refused: {error:?}"))],
            Input::Timeout { key, .. } if key == "expire" && !self.reserved => {
                vec![refund(), Action::Complete]
            }
            _ => vec![],
        }
    }
}

/// Sends the checkout's commands to tallies; an optional probe sees each dispatch return.
pub(crate) struct Shop {
    pub(crate) tallies: Repository<Tally, InMemoryEventStore>,
    pub(crate) probe: Option<Arc<Probe>>,
    /// Stock commands are handed on, not run: their answer would come as an event.
    pub(crate) forward_stock: bool,
    /// Commands to this stock cannot be delivered, and never will (not a refusal).
    pub(crate) broken_stock: Option<String>,
    /// Commands to these tallies fail as unavailable (a retry may cure it) this many more
    /// times each.
    pub(crate) unavailable: Arc<std::sync::Mutex<std::collections::HashMap<String, u32>>>,
    /// For each dispatch, in order: whether it was sent as a first delivery.
    pub(crate) deliveries: Arc<std::sync::Mutex<Vec<bool>>>,
    /// For each dispatch, in order: the `traceparent` header its context carried (what a
    /// dispatcher to another service sends on).
    pub(crate) traceparents: Arc<std::sync::Mutex<Vec<Option<String>>>>,
}

impl Shop {
    pub(crate) fn new(store: &InMemoryEventStore) -> Self {
        Self {
            tallies: Repository::new(store.clone()),
            probe: None,
            forward_stock: false,
            broken_stock: None,
            unavailable: Arc::default(),
            deliveries: Arc::default(),
            traceparents: Arc::default(),
        }
    }

    pub(crate) fn probed(store: &InMemoryEventStore, probe: Arc<Probe>) -> Self {
        Self {
            probe: Some(probe),
            ..Self::new(store)
        }
    }
}

#[async_trait]
impl CommandDispatcher<Cmd> for Shop {
    type Rejection = Refusal;

    async fn dispatch(
        &self,
        command: &Cmd,
        context: CommandContext,
    ) -> Result<Dispatched, DispatchError<Refusal>> {
        self.deliveries
            .lock()
            .expect("deliveries")
            .push(context.is_first_delivery());
        self.traceparents
            .lock()
            .expect("traceparents")
            .push(context.headers().get("traceparent").cloned());
        let unavailable = match command {
            Cmd::Add { tally, .. } => self
                .unavailable
                .lock()
                .expect("unavailable")
                .get_mut(tally)
                .filter(|left| **left > 0)
                .map(|left| *left -= 1)
                .is_some(),
        };
        let outcome = match command {
            Cmd::Add { tally, .. } if unavailable => Err(DispatchError::Failed(
                Error::unavailable(format!("{tally} is not answering")),
            )),
            Cmd::Add { tally, .. } if self.forward_stock && tally.starts_with("stock-") => {
                Ok(Dispatched::Forwarded)
            }
            Cmd::Add { tally, .. } if self.broken_stock.as_ref() == Some(tally) => Err(
                DispatchError::Failed(Error::process("shop", format!("{tally} is gone"))),
            ),
            Cmd::Add { tally, amount } => {
                self.tallies
                    .dispatch(tally, &TallyCommand::Add(vec![*amount]), context)
                    .await
            }
        };
        if let Some(probe) = &self.probe {
            probe.pass(Point::AfterDispatch).await;
        }
        outcome
    }
}

/// Places order `n` (its event id fixed by `n`, so runs on fresh stores are alike).
pub(crate) async fn place(store: &InMemoryEventStore, n: u64, amount: u64, sku: u64) -> Position {
    let stream = StreamId::new(format!("order-{n}")).expect("a stream id");
    let event = NewEvent::new("Placed", 1, json!({ "amount": amount, "sku": sku })).with_metadata(
        Metadata::new(EventId::from_uuid(Uuid::from_u128(u128::from(n) + 1))),
    );
    store
        .append(&stream, ExpectedVersion::NoStream, vec![event])
        .await
        .expect("placed")
        .position
}

/// Closes tally `id`: commands to it are refused from now on.
pub(crate) async fn close(store: &InMemoryEventStore, id: &str) {
    Repository::<Tally, _>::new(store.clone())
        .execute(id, &TallyCommand::Close)
        .await
        .expect("closed");
}

/// A tally's total.
pub(crate) async fn total(store: &InMemoryEventStore, id: &str) -> u64 {
    Repository::<Tally, _>::new(store.clone())
        .load(id)
        .await
        .expect("loaded")
        .0
        .total
}

/// Every event of a stream.
pub(crate) async fn stream(store: &InMemoryEventStore, id: &str) -> Vec<RecordedEvent> {
    let stream = StreamId::new(id).expect("a stream id");
    store
        .read_stream(&stream, Version::new(1), 100_000)
        .await
        .expect("read")
}

/// An instance's journal as (type, event id, payload), to compare runs by.
pub(crate) async fn journal(
    store: &InMemoryEventStore,
    instance: &str,
) -> Vec<(String, EventId, Value)> {
    stream(store, &format!("checkout-{instance}"))
        .await
        .into_iter()
        .map(|e| (e.event_type, e.metadata.event_id, e.payload))
        .collect()
}

/// The input ids an instance's journal records, in order: one event per input, holding its
/// decision.
pub(crate) async fn recorded_inputs(store: &InMemoryEventStore, instance: &str) -> Vec<String> {
    stream(store, &format!("checkout-{instance}"))
        .await
        .iter()
        .map(|event| {
            assert_eq!(event.event_type, INPUT_RECEIVED);
            event.payload["input"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

/// The status row of an instance.
pub(crate) async fn row(store: &InMemoryEventStore, instance: &str) -> InstanceRow {
    store
        .instance(Checkout::TYPE, instance)
        .await
        .expect("read")
        .expect("a row")
}

/// Polls `done` every 5 ms until it holds, or panics after 10 s saying `what`.
pub(crate) async fn eventually<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Every command id among the tallies' events, each once.
pub(crate) async fn assert_each_command_once(store: &InMemoryEventStore, tallies: &[String]) {
    let mut seen = std::collections::HashSet::new();
    for tally in tallies {
        for event in stream(store, &format!("tally-{tally}")).await {
            if let Some(id) = event.metadata.command_id {
                assert!(seen.insert(id), "command {id} landed twice (tally {tally})");
            }
        }
    }
}
