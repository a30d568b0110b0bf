//! Driving the write side: [`Shop`] runs commands through the real `Repository` on
//! PostgreSQL, [`Load`] keeps writers busy in the background.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cqrs_core::{CommandOutcome, Position, Repository};
use cqrs_postgres::PgEventStore;
use tokio::task::JoinHandle;

use crate::domain::{Customer, CustomerCommand, Order, OrderCommand};

/// The items random orders choose from.
pub const SKUS: [&str; 6] = ["apple", "pear", "melon", "fig", "kiwi", "plum"];

/// The customers random orders belong to (registered by [`Shop::register_customers`]).
pub const CUSTOMERS: usize = 5;

/// The shop's command side on one store.
pub struct Shop {
    /// Customers.
    pub customers: Repository<Customer, PgEventStore>,
    /// Orders.
    pub orders: Repository<Order, PgEventStore>,
    executed: AtomicU64,
}

impl Shop {
    /// Repositories over `store`.
    pub fn new(store: &PgEventStore) -> Self {
        Self {
            customers: Repository::new(store.clone()),
            orders: Repository::new(store.clone()),
            executed: AtomicU64::new(0),
        }
    }

    /// Commands that succeeded so far.
    pub fn executed(&self) -> u64 {
        self.executed.load(Ordering::SeqCst)
    }

    /// Runs `command` on customer `id`; panics if refused.
    pub async fn customer(&self, id: &str, command: CustomerCommand) -> Position {
        let outcome = self
            .customers
            .execute(id, &command)
            .await
            .unwrap_or_else(|e| panic!("customer {id}: {command:?} failed: {e:?}"));
        self.recorded(id, outcome)
    }

    /// Runs `command` on order `id`; panics if refused. Returns the feed position of the event
    /// it recorded (what a caller waits for to read its own write).
    pub async fn order(&self, id: &str, command: OrderCommand) -> Position {
        let outcome = self
            .orders
            .execute(id, &command)
            .await
            .unwrap_or_else(|e| panic!("order {id}: {command:?} failed: {e:?}"));
        self.recorded(id, outcome)
    }

    fn recorded<E>(&self, id: &str, outcome: CommandOutcome<E>) -> Position {
        self.executed.fetch_add(1, Ordering::SeqCst);
        outcome
            .position
            .unwrap_or_else(|| panic!("the command on {id} recorded no event"))
    }

    /// Registers customers `c0` to `c{CUSTOMERS - 1}`.
    pub async fn register_customers(&self) -> Position {
        let mut last = Position::START;
        for i in 0..CUSTOMERS {
            last = self
                .customer(
                    &format!("c{i}"),
                    CustomerCommand::Register {
                        name: format!("customer {i}"),
                    },
                )
                .await;
        }
        last
    }

    /// A random order's life: placed, one to three items, then shipped, cancelled or left
    /// open, and some closed orders archived; now and then its customer is renamed. Pauses
    /// `pace` after each command. Returns the position of the last event recorded.
    pub async fn random_order(
        &self,
        id: &str,
        rng: &mut fastrand::Rng,
        pace: Duration,
    ) -> Position {
        let customer = format!("c{}", rng.usize(..CUSTOMERS));
        let mut commands = vec![OrderCommand::Place {
            customer: customer.clone(),
        }];
        for _ in 0..rng.usize(1..=3) {
            commands.push(OrderCommand::AddItem {
                sku: SKUS[rng.usize(..SKUS.len())].to_owned(),
                quantity: rng.u32(1..=4),
                unit_cents: rng.u64(50..=2000),
            });
        }
        let closed = match rng.u8(..10) {
            0..=3 => Some(OrderCommand::Ship),
            4..=5 => Some(OrderCommand::Cancel {
                reason: format!("reason {}", rng.u8(..)),
            }),
            _ => None,
        };
        if let Some(close) = closed {
            commands.push(close);
            if rng.u8(..10) < 3 {
                commands.push(OrderCommand::Archive);
            }
        }
        let mut last = Position::START;
        for command in commands {
            last = self.order(id, command).await;
            pause(pace).await;
        }
        if rng.u8(..10) == 0 {
            last = last.max(
                self.customer(
                    &customer,
                    CustomerCommand::Rename {
                        name: format!("renamed {}", rng.u16(..)),
                    },
                )
                .await,
            );
            pause(pace).await;
        }
        last
    }

    /// `count` random orders `{prefix}-0`, `{prefix}-1`... one after the other.
    pub async fn random_orders(&self, prefix: &str, count: usize, seed: u64) -> Position {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut last = Position::START;
        for n in 0..count {
            last = last.max(
                self.random_order(&format!("{prefix}-{n}"), &mut rng, Duration::ZERO)
                    .await,
            );
        }
        last
    }
}

async fn pause(pace: Duration) {
    if !pace.is_zero() {
        // Pacing the load, not waiting for a condition.
        tokio::time::sleep(pace).await;
    }
}

/// Writers placing random orders in the background until stopped.
pub struct Load {
    stop: Arc<AtomicBool>,
    writers: Vec<JoinHandle<usize>>,
}

impl Load {
    /// Starts `writers` tasks on `shop`, each placing random orders `{prefix}{i}-{n}` (seeded
    /// with `seed + i`), pausing `pace` after each command.
    pub fn start(shop: &Arc<Shop>, prefix: &str, writers: u64, seed: u64, pace: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let writers = (0..writers)
            .map(|w| {
                let (shop, stop) = (shop.clone(), stop.clone());
                let prefix = format!("{prefix}{w}");
                tokio::spawn(async move {
                    let mut rng = fastrand::Rng::with_seed(seed.wrapping_add(w));
                    let mut orders = 0;
                    while !stop.load(Ordering::SeqCst) {
                        shop.random_order(&format!("{prefix}-{orders}"), &mut rng, pace)
                            .await;
                        orders += 1;
                    }
                    orders
                })
            })
            .collect();
        Self { stop, writers }
    }

    /// Stops the writers after the order each is on; returns how many orders they placed.
    pub async fn stop(self) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        let mut orders = 0;
        for writer in self.writers {
            orders += writer.await.expect("a writer failed (see its panic above)");
        }
        orders
    }
}
