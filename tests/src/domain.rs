//! The small shop the tests drive: [`Customer`]s and their [`Order`]s, two event-sourced
//! aggregates run through the real `Repository`.

use cqrs_core::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

/// A customer: registered once, renamed at will. Its events share the feed with the orders', so
/// the order projection's category filter has something to skip.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    /// The customer's name; empty until registered.
    pub name: String,
    /// Whether the customer was registered.
    pub registered: bool,
}

/// What can be asked of a customer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CustomerCommand {
    /// Register a new customer.
    Register {
        /// The name.
        name: String,
    },
    /// Change the name.
    Rename {
        /// The new name.
        name: String,
    },
}

/// What happens to a customer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, DomainEvent)]
pub enum CustomerEvent {
    /// The customer was registered.
    CustomerRegistered {
        /// The name.
        name: String,
    },
    /// The customer changed their name.
    CustomerRenamed {
        /// The new name.
        name: String,
    },
}

/// Why a customer refuses a command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CustomerError {
    /// `Register` twice.
    #[error("the customer is registered already")]
    AlreadyRegistered,
    /// `Rename` before `Register`.
    #[error("the customer is not registered")]
    NotRegistered,
}

impl Aggregate for Customer {
    const TYPE: &'static str = "customer";
    type Command = CustomerCommand;
    type Event = CustomerEvent;
    type Error = CustomerError;
    type Services = ();

    fn apply(&mut self, event: &CustomerEvent) {
        match event {
            CustomerEvent::CustomerRegistered { name } => {
                self.name.clone_from(name);
                self.registered = true;
            }
            CustomerEvent::CustomerRenamed { name } => self.name.clone_from(name),
        }
    }

    async fn handle(
        &self,
        command: &CustomerCommand,
        _: &(),
    ) -> Result<Vec<CustomerEvent>, CustomerError> {
        match (command, self.registered) {
            (CustomerCommand::Register { .. }, true) => Err(CustomerError::AlreadyRegistered),
            (CustomerCommand::Register { name }, false) => {
                Ok(vec![CustomerEvent::CustomerRegistered {
                    name: name.clone(),
                }])
            }
            (CustomerCommand::Rename { .. }, false) => Err(CustomerError::NotRegistered),
            (CustomerCommand::Rename { name }, true) => {
                Ok(vec![CustomerEvent::CustomerRenamed { name: name.clone() }])
            }
        }
    }
}

/// Where an order is in its life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderStatus {
    /// No events yet.
    #[default]
    New,
    /// Placed: items and a gift note may be added.
    Open,
    /// Shipped.
    Shipped,
    /// Called off.
    Cancelled,
    /// Archived after shipping or cancelling: the read model deletes it.
    Archived,
}

/// One line of an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// The item.
    pub sku: String,
    /// How many.
    pub quantity: u32,
    /// The price of one, in cents.
    pub unit_cents: u64,
}

/// A customer's order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Where it is.
    pub status: OrderStatus,
    /// Who placed it (a customer id).
    pub customer: String,
    /// What was ordered.
    pub lines: Vec<Line>,
    /// A note for the gift wrap, if any.
    pub gift_note: Option<String>,
}

impl Order {
    /// The total, in cents.
    pub fn total_cents(&self) -> u64 {
        self.lines
            .iter()
            .map(|l| u64::from(l.quantity) * l.unit_cents)
            .sum()
    }

    /// How many items, all lines together.
    pub fn items(&self) -> u64 {
        self.lines.iter().map(|l| u64::from(l.quantity)).sum()
    }
}

/// What can be asked of an order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrderCommand {
    /// Place it for a customer.
    Place {
        /// The customer id.
        customer: String,
    },
    /// Add a line.
    AddItem {
        /// The item.
        sku: String,
        /// How many (at least 1).
        quantity: u32,
        /// The price of one, in cents.
        unit_cents: u64,
    },
    /// Add a note for the gift wrap.
    AddGiftNote {
        /// The note.
        note: String,
    },
    /// Ship it (it needs an item).
    Ship,
    /// Call it off.
    Cancel {
        /// Why.
        reason: String,
    },
    /// Archive a shipped or cancelled order.
    Archive,
}

/// What happens to an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, DomainEvent)]
pub enum OrderEvent {
    /// The order was placed.
    OrderPlaced {
        /// The customer id.
        customer: String,
    },
    /// A line was added (version 2; the release before wrote version 1, the same shape, which
    /// the tests' upcasters read).
    #[event(version = 2)]
    ItemAdded {
        /// The item.
        sku: String,
        /// How many.
        quantity: u32,
        /// The price of one, in cents.
        unit_cents: u64,
    },
    /// A gift note was added.
    GiftNoteAdded {
        /// The note.
        note: String,
    },
    /// The order left the warehouse.
    OrderShipped,
    /// The order was called off.
    OrderCancelled {
        /// Why.
        reason: String,
    },
    /// The order was archived.
    OrderArchived,
}

/// Why an order refuses a command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// `Place` on an order that exists.
    #[error("the order was placed already")]
    AlreadyPlaced,
    /// A change to an order that is not open.
    #[error("the order is {0:?}, not open")]
    NotOpen(OrderStatus),
    /// `AddItem` with quantity 0.
    #[error("a line needs a quantity")]
    ZeroQuantity,
    /// `Ship` without items.
    #[error("an order without items cannot ship")]
    NothingToShip,
    /// `Archive` of an order still open (or new, or archived).
    #[error("only shipped or cancelled orders are archived, this one is {0:?}")]
    NotClosed(OrderStatus),
}

impl Aggregate for Order {
    const TYPE: &'static str = "order";
    type Command = OrderCommand;
    type Event = OrderEvent;
    type Error = OrderError;
    type Services = ();

    fn apply(&mut self, event: &OrderEvent) {
        match event {
            OrderEvent::OrderPlaced { customer } => {
                self.status = OrderStatus::Open;
                self.customer.clone_from(customer);
            }
            OrderEvent::ItemAdded {
                sku,
                quantity,
                unit_cents,
            } => self.lines.push(Line {
                sku: sku.clone(),
                quantity: *quantity,
                unit_cents: *unit_cents,
            }),
            OrderEvent::GiftNoteAdded { note } => self.gift_note = Some(note.clone()),
            OrderEvent::OrderShipped => self.status = OrderStatus::Shipped,
            OrderEvent::OrderCancelled { .. } => self.status = OrderStatus::Cancelled,
            OrderEvent::OrderArchived => self.status = OrderStatus::Archived,
        }
    }

    async fn handle(&self, command: &OrderCommand, _: &()) -> Result<Vec<OrderEvent>, OrderError> {
        let open = || {
            if self.status == OrderStatus::Open {
                Ok(())
            } else {
                Err(OrderError::NotOpen(self.status))
            }
        };
        Ok(vec![match command {
            OrderCommand::Place { customer } => {
                if self.status != OrderStatus::New {
                    return Err(OrderError::AlreadyPlaced);
                }
                OrderEvent::OrderPlaced {
                    customer: customer.clone(),
                }
            }
            OrderCommand::AddItem {
                sku,
                quantity,
                unit_cents,
            } => {
                open()?;
                if *quantity == 0 {
                    return Err(OrderError::ZeroQuantity);
                }
                OrderEvent::ItemAdded {
                    sku: sku.clone(),
                    quantity: *quantity,
                    unit_cents: *unit_cents,
                }
            }
            OrderCommand::AddGiftNote { note } => {
                open()?;
                OrderEvent::GiftNoteAdded { note: note.clone() }
            }
            OrderCommand::Ship => {
                open()?;
                if self.lines.is_empty() {
                    return Err(OrderError::NothingToShip);
                }
                OrderEvent::OrderShipped
            }
            OrderCommand::Cancel { reason } => {
                open()?;
                OrderEvent::OrderCancelled {
                    reason: reason.clone(),
                }
            }
            OrderCommand::Archive => match self.status {
                OrderStatus::Shipped | OrderStatus::Cancelled => OrderEvent::OrderArchived,
                other => return Err(OrderError::NotClosed(other)),
            },
        }])
    }
}
