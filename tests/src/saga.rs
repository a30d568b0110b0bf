//! The quick start's order saga on real PostgreSQL: a seeded plan of orders (declined cards,
//! stock shortages, silent carriers), the runners that drive it on a `TestClock`, failure
//! injection (a dispatcher that hangs at seeded points so the test can abort the worker there),
//! and the checks every run must pass (each order shipped or fully compensated, stock and money
//! conserved, each command landed once).
//!
//! Every outcome follows from the plan, whatever the interleaving: shortages come from a rare
//! item no order can get enough of, and the other items are plentiful; so every run of a seed,
//! with crashes or two workers, must end in [`expected`]'s state, field by field.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::process::{
    CommandDispatcher, DispatchError, Dispatched, InputReceived, InstanceQuery, InstanceState,
    ProcessManager, ProcessManagerProjection, ProcessOptions, ProcessStore, Processes,
    ReceivedKind, INPUT_RECEIVED, TIMEOUT_FIRED,
};
use cqrs_core::projection::{ProjectionRunner, RunnerOptions};
use cqrs_core::testing::TestClock;
use cqrs_core::{
    CommandContext, CommandId, EventFilter, Position, ReadAll, RecordedEvent, SharedClock,
};
use cqrs_postgres::PgEventStore;
use quickstart::carrier::{Answers, Carrier};
use quickstart::inventory::{Inventory, InventoryCommand, InventoryEvent};
use quickstart::order::{self, Order, OrderCommand, OrderLine, OrderStatus};
use quickstart::payment::{CardLimits, Payment, PaymentEvent, PaymentStatus};
use quickstart::saga::commands::{ShopCommand, ShopRejection};
use quickstart::saga::orchestrated::OrderFulfilment;
use quickstart::shipping::{Shipment, ShipmentStatus};
use quickstart::shop::Shop;
use tokio::sync::mpsc;

use crate::quick_options;

/// The plentiful items: no order runs short of them.
pub const SAGA_SKUS: [&str; 6] = ["apple", "bolt", "cable", "drill", "easel", "flask"];
/// The rare item: 5 in stock, and every order that asks for it asks for more.
pub const RARE: &str = "rare";
const PLENTY: u64 = 1_000_000;
const RARE_STOCK: u64 = 5;

/// The seed: `SAGA_SEED` if set, else a fresh one. Printed, so a failure can be replayed.
pub fn saga_seed() -> u64 {
    let seed = std::env::var("SAGA_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    println!("SAGA_SEED={seed}");
    seed
}

/// How an order must end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Paid, reserved, scheduled, shipped, captured.
    Shipped,
    /// The card was declined: cancelled, nothing reserved.
    Declined,
    /// The rare item was short: what was reserved is released, the payment refunded.
    Short,
    /// The carrier never answered: the timeout calls it all off.
    Silent,
}

/// One planned order.
#[derive(Clone, Debug)]
pub struct PlannedOrder {
    /// Its id.
    pub id: String,
    /// Who orders.
    pub customer: String,
    /// What.
    pub lines: Vec<OrderLine>,
    /// How it must end.
    pub fate: Fate,
}

/// A seeded set of orders: about 20% declined cards, 15% shortages, 10% silent carriers.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The seed.
    pub seed: u64,
    /// The orders.
    pub orders: Vec<PlannedOrder>,
    /// The card issuer: declined customers may spend nothing.
    pub cards: CardLimits,
    /// Which shipments the carrier answers.
    pub answers: Answers,
}

impl Plan {
    /// `n` orders from `seed`.
    pub fn new(seed: u64, n: usize) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let answers = Answers::AllBut {
            seed,
            silent_percent: 10,
        };
        let mut cards = CardLimits::new();
        let orders = (0..n)
            .map(|i| {
                let id = format!("o{i}");
                let declined = rng.u8(..100) < 20;
                let short = rng.u8(..100) < 15;
                let customer = if declined {
                    let customer = format!("broke-{i}");
                    cards = std::mem::take(&mut cards).limit(&customer, 0);
                    customer
                } else {
                    format!("c{}", rng.u16(..200))
                };
                let mut lines: Vec<OrderLine> = Vec::new();
                for _ in 0..rng.usize(1..=3) {
                    let sku = SAGA_SKUS[rng.usize(..SAGA_SKUS.len())];
                    if lines.iter().all(|l| l.sku != sku) {
                        lines.push(OrderLine::new(sku, rng.u64(1..=3), rng.u64(1..=50_00)));
                    }
                }
                if short {
                    let at = rng.usize(..=lines.len());
                    lines.insert(at, OrderLine::new(RARE, RARE_STOCK + 1, 99_99));
                }
                let fate = if declined {
                    Fate::Declined
                } else if short {
                    Fate::Short
                } else if !answers.answers(&id) {
                    Fate::Silent
                } else {
                    Fate::Shipped
                };
                PlannedOrder {
                    id,
                    customer,
                    lines,
                    fate,
                }
            })
            .collect();
        Self {
            seed,
            orders,
            cards,
            answers,
        }
    }

    /// How many orders end `fate`.
    pub fn count(&self, fate: Fate) -> u64 {
        let n = self.orders.iter().filter(|o| o.fate == fate).count();
        u64::try_from(n).unwrap_or(u64::MAX)
    }

    /// How many orders.
    pub fn len(&self) -> u64 {
        u64::try_from(self.orders.len()).unwrap_or(u64::MAX)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }

    /// What the plan holds, for the log.
    pub fn describe(&self) -> String {
        format!(
            "{} orders: {} to ship, {} declined, {} short, {} silent carriers",
            self.len(),
            self.count(Fate::Shipped),
            self.count(Fate::Declined),
            self.count(Fate::Short),
            self.count(Fate::Silent)
        )
    }
}

/// Stocks the items and places every order from `writers` concurrent tasks.
pub async fn place_orders(store: &PgEventStore, plan: &Plan, writers: usize) {
    place_orders_on(store, store, plan, writers).await;
}

/// Like [`place_orders`], with the stock on `stock` and the orders on `orders` (services with a
/// store each).
pub async fn place_orders_on(
    orders: &PgEventStore,
    stock: &PgEventStore,
    plan: &Plan,
    writers: usize,
) {
    let items = Shop::new(stock.clone(), plan.cards.clone());
    for sku in SAGA_SKUS {
        let restock = InventoryCommand::Restock { quantity: PLENTY };
        items.stock.execute(sku, &restock).await.expect("restock");
    }
    let restock = InventoryCommand::Restock {
        quantity: RARE_STOCK,
    };
    items.stock.execute(RARE, &restock).await.expect("restock");
    let shop = Arc::new(Shop::new(orders.clone(), plan.cards.clone()));
    let orders = Arc::new(Mutex::new(plan.orders.clone()));
    let mut tasks = Vec::new();
    for _ in 0..writers.max(1) {
        let (shop, orders) = (shop.clone(), orders.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let next = orders.lock().expect("orders").pop();
                let Some(order) = next else { return };
                let place = OrderCommand::Place {
                    customer: order.customer,
                    lines: order.lines,
                };
                shop.orders.execute(&order.id, &place).await.expect("place");
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
}

/// Process options for the PostgreSQL runs: the test clock, a 10 ms timer poll, 16 instances at
/// once.
pub fn saga_options(clock: &TestClock) -> ProcessOptions {
    ProcessOptions::default()
        .clock(SharedClock::new(clock.clone()))
        .timer_poll(Duration::from_millis(10))
        .concurrency(16)
        .stuck_after(Duration::from_secs(10))
}

/// Runner options: quick, batches of 100, owned by `owner`, leases of `lease_ttl`.
pub fn saga_runner_options(owner: &str, lease_ttl: Duration) -> RunnerOptions {
    quick_options()
        .batch_size(100)
        .owner(owner)
        .lease_ttl(lease_ttl)
}

/// The saga's runner on `store`, through `dispatcher`.
pub fn saga_runner<D>(
    store: &PgEventStore,
    dispatcher: D,
    clock: &TestClock,
    options: RunnerOptions,
) -> ProjectionRunner
where
    D: CommandDispatcher<ShopCommand, Rejection = ShopRejection> + 'static,
{
    let projection = ProcessManagerProjection::<OrderFulfilment, PgEventStore, D>::new(
        store.clone(),
        dispatcher,
        saga_options(clock),
    );
    projection.runner_with(options)
}

/// The carrier's runner on `store`.
pub fn carrier_runner(store: &PgEventStore, plan: &Plan) -> ProjectionRunner {
    Carrier::new(store.clone(), plan.answers)
        .runner()
        .with_options(quick_options().batch_size(100))
}

/// Where a [`CrashingShop`] hangs (until the test aborts the worker).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashPoint {
    /// The input is recorded; the command is not sent.
    BeforeSend,
    /// The command landed; its outcome is not recorded.
    AfterSend,
}

/// Seeded crash points, counted in dispatch calls, shared by every [`CrashingShop`] of a run.
///
/// Twice as many points as crashes are drawn, and crashing stops once `count` were reported: a
/// point reached by an instance that another point's crash aborts (its `AfterSend` dispatch
/// cut short) is spent without a report, and a later point stands in for it.
#[derive(Debug)]
pub struct Crashes {
    calls: AtomicU64,
    points: Mutex<BTreeMap<u64, CrashPoint>>,
    left: AtomicU64,
    hit: mpsc::UnboundedSender<(u64, CrashPoint)>,
}

impl Crashes {
    /// `count` crashes at points spread over the first `calls` dispatch calls, from `seed`; and
    /// the receiver that hears of each one.
    pub fn seeded(
        seed: u64,
        count: usize,
        calls: u64,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<(u64, CrashPoint)>) {
        let mut rng = fastrand::Rng::with_seed(seed ^ 0x5eed);
        let mut points = BTreeMap::new();
        while points.len() < 2 * count {
            let point = if rng.bool() {
                CrashPoint::BeforeSend
            } else {
                CrashPoint::AfterSend
            };
            points.insert(rng.u64(1..=calls.max(1)), point);
        }
        let (hit, heard) = mpsc::unbounded_channel();
        let crashes = Self {
            calls: AtomicU64::new(0),
            points: Mutex::new(points),
            left: AtomicU64::new(u64::try_from(count).unwrap_or(u64::MAX)),
            hit,
        };
        (Arc::new(crashes), heard)
    }

    /// Dispatch calls so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }
}

/// The shop as a dispatcher that hangs at the seeded crash points.
pub struct CrashingShop {
    shop: Arc<Shop<PgEventStore>>,
    crashes: Arc<Crashes>,
}

impl CrashingShop {
    /// The shop on `store` with `cards`, crashing at `crashes`.
    pub fn new(shop: Arc<Shop<PgEventStore>>, crashes: Arc<Crashes>) -> Self {
        Self { shop, crashes }
    }
}

#[async_trait]
impl CommandDispatcher<ShopCommand> for CrashingShop {
    type Rejection = ShopRejection;

    async fn dispatch(
        &self,
        command: &ShopCommand,
        context: CommandContext,
    ) -> Result<Dispatched, DispatchError<ShopRejection>> {
        let call = self.crashes.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let point = self.crashes.points.lock().expect("points").remove(&call);
        let point = point.filter(|_| self.crashes.left.load(Ordering::SeqCst) > 0);
        match point {
            None => self.shop.dispatch(command, context).await,
            Some(point) => {
                let landed = match point {
                    CrashPoint::AfterSend => {
                        Some(self.shop.dispatch(command, context.clone()).await)
                    }
                    CrashPoint::BeforeSend => None,
                };
                // Crash once per report, up to the count (a concurrent point may have taken
                // the last one while this dispatch ran): past it, carry on.
                let take = |left: u64| left.checked_sub(1);
                if (self.crashes.left)
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, take)
                    .is_err()
                {
                    return match landed {
                        Some(outcome) => outcome,
                        None => self.shop.dispatch(command, context).await,
                    };
                }
                let _ = self.crashes.hit.send((call, point));
                std::future::pending().await
            }
        }
    }
}

/// Waits until every order that can finish without the clock moving has, then moves the clock
/// past the shipping timeout, and waits until every instance has finished.
pub async fn drive_to_the_end(
    store: &PgEventStore,
    plan: &Plan,
    clock: &TestClock,
    within: Duration,
) {
    if let Err(stalled) = try_drive_to_the_end(store, plan, clock, within).await {
        panic!("{stalled}");
    }
}

/// [`drive_to_the_end`], returning what it would panic with: the caller adds what it knows
/// (its services' statuses) before it fails.
pub async fn try_drive_to_the_end(
    store: &PgEventStore,
    plan: &Plan,
    clock: &TestClock,
    within: Duration,
) -> Result<(), String> {
    let shared = SharedClock::new(clock.clone());
    let waiting = plan.count(Fate::Silent);
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let counts = (store.instance_counts(
            OrderFulfilment::TYPE,
            clock_now(&shared),
            Duration::from_secs(10),
        ))
        .await
        .expect("counts");
        // Every order started, every one not waiting on a silent carrier finished, and each
        // one waiting has scheduled its timeout: moving the clock before that would leave a
        // late one's timeout due past the time the test moves to.
        if counts.completed + counts.failed + counts.running >= plan.len()
            && counts.running <= waiting
            && every_running_instance_has_a_timeout(store).await
        {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "the saga did not settle in {within:?}: {counts:?} ({})\n{}{}",
                plan.describe(),
                stalled_instances(store, plan).await,
                crate::server_report(store).await
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    clock.advance(Duration::from_secs(31));
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    quickstart::saga::finished(store, OrderFulfilment::TYPE, plan.len(), &shared, left)
        .await
        .map(|_| ())
        .map_err(|e| format!("after the timeouts: {e} ({})", plan.describe()))
}

/// Whether every running instance of the saga waits on a timeout it scheduled.
async fn every_running_instance_has_a_timeout(store: &PgEventStore) -> bool {
    let mut query = InstanceQuery::state(InstanceState::Running);
    query.limit = 10_000;
    match Processes::new(store.clone())
        .instances(OrderFulfilment::TYPE, &query)
        .await
    {
        Ok(rows) => rows.iter().all(|row| row.next_timeout_at.is_some()),
        Err(_) => false,
    }
}

/// The running instances the plan does not expect to wait (their carrier answers), with the
/// timelines of the first three: what a stalled saga prints.
async fn stalled_instances(store: &PgEventStore, plan: &Plan) -> String {
    use std::fmt::Write;
    let processes = Processes::new(store.clone());
    let mut query = InstanceQuery::state(InstanceState::Running);
    query.limit = 10_000;
    let rows = match processes.instances(OrderFulfilment::TYPE, &query).await {
        Ok(rows) => rows,
        Err(e) => return format!("running instances: cannot read them: {e}\n"),
    };
    let silent: std::collections::HashSet<&str> = plan
        .orders
        .iter()
        .filter(|o| o.fate == Fate::Silent)
        .map(|o| o.id.as_str())
        .collect();
    let stalled: Vec<_> = rows
        .iter()
        .filter(|row| !silent.contains(row.instance.as_str()))
        .collect();
    let mut report = format!(
        "{} running instances, {} of them not waiting for a silent carrier\n",
        rows.len(),
        stalled.len()
    );
    for row in stalled.iter().take(3) {
        let _ = writeln!(
            report,
            "instance {} at {} ({} commands pending, last input {}):",
            row.instance, row.version, row.pending_commands, row.last_input
        );
        match processes
            .timeline(OrderFulfilment::TYPE, &row.instance)
            .await
        {
            Ok(entries) => {
                for entry in entries {
                    let _ = writeln!(
                        report,
                        "  {} @{}: {:?}",
                        entry.version, entry.position, entry.kind
                    );
                }
            }
            Err(e) => {
                let _ = writeln!(report, "  cannot read its timeline: {e}");
            }
        }
    }
    report
}

fn clock_now(clock: &SharedClock) -> time::OffsetDateTime {
    use cqrs_core::Clock;
    clock.now()
}

/// Every order, payment, shipment and item of a plan, as loaded: what two runs compare.
#[derive(Debug, PartialEq)]
pub struct EndState {
    /// By order id.
    pub orders: BTreeMap<String, Order>,
    /// By order id.
    pub payments: BTreeMap<String, Payment>,
    /// By order id.
    pub shipments: BTreeMap<String, Shipment>,
    /// By SKU.
    pub stock: BTreeMap<String, Inventory>,
}

/// The end state loaded from `store`.
pub async fn end_state(store: &PgEventStore, plan: &Plan) -> EndState {
    end_state_on([store; 4], plan).await
}

/// The end state loaded from the stores of orders, payments, shipments and stock, in that
/// order (services with a store each).
pub async fn end_state_on(stores: [&PgEventStore; 4], plan: &Plan) -> EndState {
    let [orders, payments, shipments, stock] = stores;
    let shop = Shop {
        orders: Shop::new(orders.clone(), plan.cards.clone()).orders,
        payments: Shop::new(payments.clone(), plan.cards.clone()).payments,
        shipments: Shop::new(shipments.clone(), plan.cards.clone()).shipments,
        stock: Shop::new(stock.clone(), plan.cards.clone()).stock,
    };
    let mut state = EndState {
        orders: BTreeMap::new(),
        payments: BTreeMap::new(),
        shipments: BTreeMap::new(),
        stock: BTreeMap::new(),
    };
    for order in &plan.orders {
        let id = order.id.clone();
        let (o, _) = shop.orders.load(&id).await.expect("order");
        let (p, _) = shop.payments.load(&id).await.expect("payment");
        let (s, _) = shop.shipments.load(&id).await.expect("shipment");
        state.orders.insert(id.clone(), o);
        state.payments.insert(id.clone(), p);
        state.shipments.insert(id, s);
    }
    for sku in SAGA_SKUS.into_iter().chain([RARE]) {
        let (item, _) = shop.stock.load(sku).await.expect("stock");
        state.stock.insert(sku.to_owned(), item);
    }
    state
}

/// The end state the plan calls for, whatever the interleaving.
pub fn expected(plan: &Plan) -> EndState {
    let mut state = EndState {
        orders: BTreeMap::new(),
        payments: BTreeMap::new(),
        shipments: BTreeMap::new(),
        stock: BTreeMap::new(),
    };
    for sku in SAGA_SKUS {
        let item = Inventory {
            on_hand: PLENTY,
            ..Inventory::default()
        };
        state.stock.insert(sku.to_owned(), item);
    }
    let rare = Inventory {
        on_hand: RARE_STOCK,
        ..Inventory::default()
    };
    state.stock.insert(RARE.to_owned(), rare);
    for planned in &plan.orders {
        let id = planned.id.clone();
        let amount = order::total(&planned.lines);
        let mut o = Order {
            status: OrderStatus::Cancelled,
            customer: planned.customer.clone(),
            lines: planned.lines.clone(),
            cancel_reason: None,
        };
        let mut p = Payment {
            status: PaymentStatus::Refunded,
            order_id: id.clone(),
            amount,
            refusal: None,
        };
        let mut s = Shipment::default();
        match planned.fate {
            Fate::Shipped => {
                o.status = OrderStatus::Shipped;
                p.status = PaymentStatus::Captured;
                s.status = ShipmentStatus::Scheduled;
                s.order_id.clone_from(&id);
                s.carrier = Some("parcel-co".into());
                for line in &planned.lines {
                    let item = state.stock.get_mut(&line.sku).expect("a planned sku");
                    item.on_hand -= line.quantity;
                }
            }
            Fate::Declined => {
                let reason = "over the card limit of 0.00".to_owned();
                o.cancel_reason = Some(format!("payment refused: {reason}"));
                p.status = PaymentStatus::Refused;
                p.refusal = Some(reason);
            }
            Fate::Short => {
                let wanted = RARE_STOCK + 1;
                o.cancel_reason = Some(format!(
                    "out of stock: {RARE} ({wanted} wanted, {RARE_STOCK} available)"
                ));
            }
            Fate::Silent => {
                let reason = "no carrier answered within 30 s".to_owned();
                o.cancel_reason = Some(reason);
                s.status = ShipmentStatus::Cancelled;
                s.order_id.clone_from(&id);
            }
        }
        state.orders.insert(id.clone(), o);
        state.payments.insert(id.clone(), p);
        state.shipments.insert(id, s);
    }
    state
}

/// Every event in `store`, in feed order.
pub async fn every_event(store: &PgEventStore) -> Vec<RecordedEvent> {
    let mut events = Vec::new();
    let mut after = Position::START;
    loop {
        let batch = (store.read_all(after, 1000, &EventFilter::all()))
            .await
            .expect("read the feed");
        if batch.events.is_empty() && batch.next == after {
            return events;
        }
        after = batch.next;
        events.extend(batch.events);
    }
}

/// The checks every run passes: each instance completed (none running, stuck or failed);
/// stock and money conserved; every aggregate event's command id once; every accepted step
/// recorded once and landed at most once; one decision per input; one firing per timeout.
pub async fn assert_conserved(store: &PgEventStore, plan: &Plan, clock: &TestClock) {
    assert_conserved_on(store, &[(store, None)], plan, clock).await;
}

/// Like [`assert_conserved`] for services with a store each: the saga's journal and timers
/// in `journal`, the aggregates' events in `aggregates`, each store's counted only in the
/// categories given (`None`: all), so copies of other services' events are not counted twice.
pub async fn assert_conserved_on(
    journal: &PgEventStore,
    aggregates: &[(&PgEventStore, Option<&[&str]>)],
    plan: &Plan,
    clock: &TestClock,
) {
    let store = journal;
    let now = clock_now(&SharedClock::new(clock.clone()));
    let counts = (store.instance_counts(OrderFulfilment::TYPE, now, Duration::from_secs(10)))
        .await
        .expect("counts");
    assert_eq!(
        (
            counts.completed,
            counts.running,
            counts.failed,
            counts.stuck
        ),
        (plan.len(), 0, 0, 0),
        "every instance completed"
    );

    let mut events = every_event(store).await;
    events.retain(|e| {
        e.stream_id.category() == OrderFulfilment::TYPE || e.event_type == TIMEOUT_FIRED
    });
    for (aggregate_store, categories) in aggregates {
        let mine = every_event(aggregate_store).await.into_iter().filter(|e| {
            let category = e.stream_id.category();
            category != OrderFulfilment::TYPE
                && e.event_type != TIMEOUT_FIRED
                && categories.is_none_or(|c| c.contains(&category))
        });
        events.extend(mine);
    }
    let mut reserved: HashMap<String, u64> = HashMap::new();
    let mut released: HashMap<String, u64> = HashMap::new();
    let mut shipped: HashMap<String, u64> = HashMap::new();
    let (mut authorized, mut captured, mut refunded) = (0u64, 0u64, 0u64);
    let mut command_ids: HashMap<CommandId, String> = HashMap::new();
    let mut inputs: HashMap<String, u32> = HashMap::new();
    let mut accepted: HashMap<CommandId, u32> = HashMap::new();
    let mut fired: HashMap<String, u32> = HashMap::new();
    let journal = OrderFulfilment::TYPE;
    for event in &events {
        let category = event.stream_id.category();
        if category == journal {
            if event.event_type == INPUT_RECEIVED {
                let input: InputReceived =
                    serde_json::from_value(event.payload.clone()).expect("an input");
                let key = format!("{}/{}", event.stream_id, input.input.as_uuid());
                *inputs.entry(key).or_default() += 1;
                if let ReceivedKind::Accepted { step } = input.kind {
                    *accepted.entry(step.command_id).or_default() += 1;
                }
            }
            continue;
        }
        if event.event_type == TIMEOUT_FIRED {
            *fired.entry(event.stream_id.to_string()).or_default() += 1;
            continue;
        }
        if let Some(command_id) = event.metadata.command_id {
            let here = format!("{}@{}", event.stream_id, event.version);
            if let Some(before) = command_ids.insert(command_id, here.clone()) {
                panic!("command {command_id:?} landed twice: {before} and {here}");
            }
        }
        let sku = event.stream_id.instance().to_owned();
        match category {
            "inventory" => match event.decode::<InventoryEvent>().expect("stock event") {
                InventoryEvent::StockReserved { quantity, .. } => {
                    *reserved.entry(sku).or_default() += quantity;
                }
                InventoryEvent::StockReleased { quantity, .. } => {
                    *released.entry(sku).or_default() += quantity;
                }
                InventoryEvent::StockShipped { quantity, .. } => {
                    *shipped.entry(sku).or_default() += quantity;
                }
                InventoryEvent::Restocked { .. } => {}
            },
            "payment" => match event.decode::<PaymentEvent>().expect("payment event") {
                PaymentEvent::PaymentAuthorized { amount, .. } => authorized += amount,
                PaymentEvent::PaymentCaptured { amount, .. } => captured += amount,
                PaymentEvent::PaymentRefunded { amount, .. } => refunded += amount,
                PaymentEvent::PaymentRefused { .. } => {}
            },
            _ => {}
        }
    }
    for sku in SAGA_SKUS.into_iter().chain([RARE]) {
        let get = |m: &HashMap<String, u64>| m.get(sku).copied().unwrap_or(0);
        assert_eq!(
            get(&reserved),
            get(&released) + get(&shipped),
            "{sku}: reserved = released + shipped"
        );
    }
    assert_eq!(
        authorized,
        captured + refunded,
        "authorized = captured + refunded"
    );
    let twice: Vec<_> = inputs.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        twice.is_empty(),
        "inputs recorded more than once: {twice:?}"
    );
    let twice: Vec<_> = accepted.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        twice.is_empty(),
        "outcomes recorded more than once: {twice:?}"
    );
    let twice: Vec<_> = fired.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "timeouts fired more than once: {twice:?}");
    assert_eq!(
        u64::try_from(fired.len()).unwrap_or(u64::MAX),
        plan.count(Fate::Silent),
        "one firing per silent carrier (the others were cancelled)"
    );
}

#[cfg(test)]
mod tests {
    use super::{expected, Fate, Plan, RARE, RARE_STOCK};

    #[test]
    fn a_seed_always_makes_the_same_plan_with_about_the_planned_shares() {
        let plan = Plan::new(7, 1000);
        let again = Plan::new(7, 1000);
        let ids = |p: &Plan| -> Vec<(String, Fate, usize)> {
            (p.orders.iter())
                .map(|o| (o.id.clone(), o.fate, o.lines.len()))
                .collect()
        };
        assert_eq!(ids(&plan), ids(&again));
        assert_eq!(expected(&plan), expected(&again));
        // 20% declined; 15% of the rest short; 10% of what remains silent.
        assert!(
            (140..260).contains(&plan.count(Fate::Declined)),
            "{}",
            plan.describe()
        );
        assert!(
            (80..170).contains(&plan.count(Fate::Short)),
            "{}",
            plan.describe()
        );
        assert!(
            (30..100).contains(&plan.count(Fate::Silent)),
            "{}",
            plan.describe()
        );
    }

    #[test]
    fn only_short_orders_ask_for_the_rare_item_and_always_more_than_there_is() {
        let plan = Plan::new(11, 500);
        for order in &plan.orders {
            let rare = order.lines.iter().find(|l| l.sku == RARE);
            let short = matches!(order.fate, Fate::Short);
            let declined_and_short = order.fate == Fate::Declined && rare.is_some();
            assert!(short == rare.is_some() || declined_and_short, "{order:?}");
            assert!(rare.is_none_or(|l| l.quantity > RARE_STOCK), "{order:?}");
        }
    }
}
