//! [`run`]: the quick start's story, on any store.

use std::sync::Arc;
use std::time::Duration;

use cqrs_core::process::{
    ProcessManager, ProcessManagerStore, ProcessOptions, Processes, TimelineKind,
};
use cqrs_core::projection::{ProjectionHandle, RunnerOptions};
use cqrs_core::{
    BoxError, Clock, CommandContext, CommandError, CommandId, EventFilter, EventStore, Position,
    RecordedEvent, Repository, SharedClock,
};

use crate::carrier::{Answers, Carrier};
use crate::inventory::{Inventory, InventoryCommand};
use crate::money;
use crate::order::{OrderCommand, OrderLine, OrderStatus};
use crate::payment::CardLimits;
use crate::read_side::{health, ReadSide, Summaries};
use crate::saga::{self, orchestrated::OrderFulfilment};
use crate::shop::Shop;

/// How long the story waits for the saga to finish an order.
const PATIENCE: Duration = Duration::from_secs(10);

/// How long an instance may go without progress before it counts as stuck.
const STUCK_AFTER: Duration = Duration::from_secs(60);

/// Runs the quick start on `store` and prints what happens: stock arriving through two racing
/// servers, three orders taken through the orchestrated saga (one shipped, two compensated), a
/// rejected command, a command sent twice, and the saga's whole feed delivered to it again; then
/// the events and states, the saga's instances and one instance's timeline; then what the read
/// side answers, once it has caught up with the last command.
///
/// The streams it writes have fixed names (`order-1`, `inventory-widget`...): give it a store
/// that does not hold them yet, and a `read_side` on that store.
pub async fn run<S>(store: S, read_side: ReadSide) -> Result<(), BoxError>
where
    S: ProcessManagerStore,
{
    let start = store.head().await?;
    let cards = CardLimits::new().limit("carol", 50_00);
    let shop = Shop::new(store.clone(), cards.clone());
    // The read side, the saga and the carrier follow the feed in their own tasks.
    let (projection, summaries) = read_side.start();
    let options = ProcessOptions::default().stuck_after(STUCK_AFTER);
    let fulfilment = saga::runner::<OrderFulfilment, S>(&store, cards.clone(), options.clone());
    let fulfilment = fulfilment.spawn();
    let carrier = Carrier::new(store.clone(), Answers::All).runner().spawn();

    let (a, b) = restock_race(&store).await?;
    let (gadget, _) = shop.stock.load("gadget").await?;
    println!("stock    widget +10 via server A; gadget +3 via server A, then +2 via server B");
    println!(
        "race     two tasks restock gadget at once: server A +4 (its cached copy is stale), B +1"
    );
    println!(
        "         A: attempts {a} (conflict, catch up, retry), B: attempts {b}; gadget on hand {} = 3+2+4+1",
        gadget.on_hand
    );

    let orders = [
        (
            "1",
            "alice",
            vec![line("widget", 2, 12_50), line("gadget", 1, 9_99)],
        ),
        (
            "2",
            "bob",
            vec![line("widget", 1, 12_50), line("gadget", 12, 9_99)],
        ),
        ("3", "carol", vec![line("widget", 6, 12_50)]),
    ];
    for (placed, (id, customer, lines)) in (1..).zip(orders) {
        let place = OrderCommand::Place {
            customer: customer.to_owned(),
            lines,
        };
        shop.orders.execute(id, &place).await?;
        let clock = SharedClock::default();
        saga::finished(&store, OrderFulfilment::TYPE, placed, &clock, PATIENCE).await?;
        let (order, _) = shop.orders.load(id).await?;
        let reason = order.cancel_reason.as_deref().map(|r| format!(": {r}"));
        println!(
            "order {id}  {customer:<5} {:<19} {:>6}  -> {}{}",
            describe(&order.lines),
            money(order.total()),
            order.status,
            reason.unwrap_or_default()
        );
    }

    match shop.orders.execute("2", &OrderCommand::Ship).await {
        Err(CommandError::Rejected(error)) => {
            println!("rejected ship order 2 -> OrderError::{error:?}: {error}");
        }
        other => return Err(format!("shipping order 2 should be rejected, got {other:?}").into()),
    }

    let delivery_note = CommandContext::new().command_id(CommandId::new());
    let restock = InventoryCommand::Restock { quantity: 5 };
    let first = (shop.stock)
        .execute_with("widget", &restock, delivery_note.clone())
        .await?;
    let again = (shop.stock)
        .execute_with("widget", &restock, delivery_note)
        .await?;
    println!(
        "twice    widget +5 sent twice with one command id -> duplicate: {} (v{}), then duplicate: {} (v{})",
        first.duplicate, first.version, again.duplicate, again.version
    );

    // Deliver the saga's whole feed again (a fresh checkpoint): every input is in its
    // instance's journal already, so nothing is decided or sent twice.
    fulfilment.shutdown().await;
    let head = store.head().await?;
    let replay = RunnerOptions::new().checkpoint_name("process:order_fulfilment:replay");
    (saga::runner_with::<OrderFulfilment, S>(&store, cards, options, replay))
        .catch_up()
        .await?;
    let new = read_feed(&store, head).await?.len();
    println!("replay   the saga's feed delivered to it again from the start: {new} new events");

    println!("\nevents (stream, version, type, correlation id), the saga's journal aside");
    let mut journal = 0;
    for event in read_feed(&store, start).await? {
        if event.stream_id.category() == OrderFulfilment::TYPE {
            journal += 1;
            continue;
        }
        let correlation = event.metadata.correlation_id.map_or_else(
            || "-".to_owned(),
            |id| format!("…{:08x}", id.as_u128() % (1 << 32)),
        );
        println!(
            "  {:<17} {:>2}  {:<17} {correlation}",
            event.stream_id.as_str(),
            event.version,
            event.event_type
        );
    }
    println!(
        "  ... and {journal} journal entries in the saga's streams order_fulfilment-{{order}}"
    );

    println!("\nstate");
    for sku in ["widget", "gadget"] {
        let (item, version) = shop.stock.load(sku).await?;
        let reserved: Vec<String> = (item.reserved.iter())
            .map(|(order, quantity)| format!("{quantity} for order {order}"))
            .collect();
        println!(
            "  inventory-{sku:<7} v{version:<2} on hand {:>2}, reserved: {}",
            item.on_hand,
            reserved.join(", ")
        );
    }
    for id in ["1", "2", "3"] {
        let (payment, version) = shop.payments.load(id).await?;
        let refusal = payment.refusal.map(|r| format!(" ({r})"));
        println!(
            "  payment-{id:<9} v{version:<2} {:?} {}{}",
            payment.status,
            money(payment.amount),
            refusal.unwrap_or_default()
        );
    }

    for id in ["1", "2"] {
        let (shipment, version) = shop.shipments.load(id).await?;
        let carrier = shipment.carrier.map(|c| format!(" by {c}"));
        println!(
            "  shipment-{id:<8} v{version:<2} {:?}{}",
            shipment.status,
            carrier.unwrap_or_default()
        );
    }
    carrier.shutdown().await;

    let processes = Processes::new(store.clone());
    let now = SharedClock::default().now();
    let counts = processes
        .counts(OrderFulfilment::TYPE, now, STUCK_AFTER)
        .await?;
    println!(
        "\nsaga     {}: running {}, completed {}, failed {}, stuck {}",
        OrderFulfilment::TYPE,
        counts.running,
        counts.completed,
        counts.failed,
        counts.stuck
    );
    println!("timeline of order 2 (version, what it received or decided)");
    for entry in processes.timeline(OrderFulfilment::TYPE, "2").await? {
        match entry.kind {
            TimelineKind::Received { what, .. } => {
                println!("  {:>2}  received {what}", entry.version);
            }
            TimelineKind::Decided { actions, .. } if !actions.is_empty() => {
                println!("  {:>2}  decided  {}", entry.version, actions.join("; "));
            }
            _ => {}
        }
    }

    let last = again.position.ok_or("the restock recorded no position")?;
    let answered = ask(&projection, &summaries, last).await;
    projection.shutdown().await;
    answered
}

/// Waits until the read side has caught up with `last` (read-your-writes), then prints its
/// answers and its status.
async fn ask(
    projection: &ProjectionHandle,
    summaries: &Summaries,
    last: Position,
) -> Result<(), BoxError> {
    if let Err(error) = projection.wait_for(last, Duration::from_secs(10)).await {
        let status = health(error.status());
        return Err(format!("the read side did not reach {last}: {error} ({status})").into());
    }
    println!("\nread side (order summaries), caught up with the last command at {last}");
    if let Some(order) = summaries.get("1").await? {
        let payment = order.payment.map(|p| format!(", payment {p:?}"));
        println!(
            "  get order 1     {}: {}, {} for {} items{}",
            order.customer,
            order.status,
            money(order.total),
            order.items,
            payment.unwrap_or_default()
        );
    }
    let mut counts = Vec::new();
    for status in [
        OrderStatus::Placed,
        OrderStatus::Confirmed,
        OrderStatus::Shipped,
        OrderStatus::Cancelled,
    ] {
        let count = summaries.count_by_status(status).await?;
        if count > 0 {
            counts.push(format!("{status} {count}"));
        }
    }
    println!("  by status       {}", counts.join(", "));
    for order in summaries.cancelled_of("bob").await? {
        let reason = order.cancel_reason.unwrap_or_default();
        println!(
            "  bob, cancelled  order {} {}: {reason}",
            order.id,
            money(order.total)
        );
    }
    println!("  health          {}", health(&projection.status()));
    Ok(())
}

/// Two servers, each keeping aggregate states in its own cache, restock one item at the same
/// time. Server A's cached copy is one version behind (B wrote since), so its append conflicts
/// and the pipeline reloads and retries. Returns each server's attempts.
async fn restock_race<S>(store: &S) -> Result<(u32, u32), BoxError>
where
    S: ProcessManagerStore,
{
    let server_a = Arc::new(Repository::<Inventory, S>::new(store.clone()).with_cache(64));
    let server_b = Arc::new(Repository::<Inventory, S>::new(store.clone()).with_cache(64));
    let restock = |quantity| InventoryCommand::Restock { quantity };
    server_a.execute("widget", &restock(10)).await?;
    server_a.execute("gadget", &restock(3)).await?;
    server_b.execute("gadget", &restock(2)).await?;

    let a = tokio::spawn(async move { server_a.execute("gadget", &restock(4)).await });
    let b = tokio::spawn(async move { server_b.execute("gadget", &restock(1)).await });
    let (a, b) = (a.await??, b.await??);
    Ok((a.attempts, b.attempts))
}

/// Every event after `after`, in feed order.
async fn read_feed<S: EventStore>(
    store: &S,
    mut after: Position,
) -> Result<Vec<RecordedEvent>, BoxError> {
    let mut events = Vec::new();
    loop {
        let batch = store.read_all(after, 100, &EventFilter::all()).await?;
        if batch.events.is_empty() && batch.next == after {
            return Ok(events);
        }
        after = batch.next;
        events.extend(batch.events);
    }
}

fn line(sku: &str, quantity: u64, unit_price: u64) -> OrderLine {
    OrderLine::new(sku, quantity, unit_price)
}

fn describe(lines: &[OrderLine]) -> String {
    let parts: Vec<String> = lines
        .iter()
        .map(|l| format!("{} {}", l.quantity, l.sku))
        .collect();
    parts.join(", ")
}
