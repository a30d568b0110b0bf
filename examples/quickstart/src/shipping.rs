//! [`Shipment`]: the shipment of one order, requested from a carrier, scheduled by it, or
//! cancelled.

use cqrs_core::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

/// Where a shipment is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShipmentStatus {
    /// Not requested yet.
    #[default]
    None,
    /// Asked of the carrier, which has not answered.
    Requested,
    /// The carrier answered with a pickup.
    Scheduled,
    /// Called off: a late answer from the carrier is refused.
    Cancelled,
}

/// The shipment of one order (stream `shipment-{order id}`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    /// Where it is.
    pub status: ShipmentStatus,
    /// The order shipped.
    pub order_id: String,
    /// The carrier that scheduled it, once one has.
    pub carrier: Option<String>,
}

/// What can be asked of a shipment. Serde: a process manager records the ones it sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShipmentCommand {
    /// Ask a carrier to ship the order.
    Request {
        /// The order.
        order_id: String,
    },
    /// The carrier's answer: it will pick the order up.
    Schedule {
        /// The carrier's name.
        carrier: String,
    },
    /// Call the shipment off (the carrier took too long, say). Cancelling twice, or a shipment
    /// never requested, changes nothing.
    Cancel {
        /// Why.
        reason: String,
    },
}

/// What happens to a shipment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, DomainEvent)]
pub enum ShipmentEvent {
    /// A carrier was asked.
    ShipmentRequested {
        /// The order.
        order_id: String,
    },
    /// The carrier will pick the order up.
    ShipmentScheduled {
        /// The order.
        order_id: String,
        /// The carrier's name.
        carrier: String,
    },
    /// The shipment was called off.
    ShipmentCancelled {
        /// The order.
        order_id: String,
        /// Why.
        reason: String,
    },
}

/// Why a shipment refuses a command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ShipmentError {
    /// `Request` on a shipment requested already.
    #[error("the shipment was requested already")]
    AlreadyRequested,
    /// `Schedule` on a shipment nobody requested.
    #[error("no shipment was requested")]
    NotRequested,
    /// `Schedule` after `Cancel`: the carrier answered too late.
    #[error("the shipment was cancelled")]
    Cancelled,
}

impl Aggregate for Shipment {
    const TYPE: &'static str = "shipment";
    type Command = ShipmentCommand;
    type Event = ShipmentEvent;
    type Error = ShipmentError;
    type Services = ();

    fn apply(&mut self, event: &ShipmentEvent) {
        match event {
            ShipmentEvent::ShipmentRequested { order_id } => {
                self.status = ShipmentStatus::Requested;
                self.order_id.clone_from(order_id);
            }
            ShipmentEvent::ShipmentScheduled { carrier, .. } => {
                self.status = ShipmentStatus::Scheduled;
                self.carrier = Some(carrier.clone());
            }
            ShipmentEvent::ShipmentCancelled { .. } => self.status = ShipmentStatus::Cancelled,
        }
    }

    async fn handle(
        &self,
        command: &ShipmentCommand,
        _: &(),
    ) -> Result<Vec<ShipmentEvent>, ShipmentError> {
        use ShipmentStatus::{Cancelled, None, Requested, Scheduled};
        let order_id = self.order_id.clone();
        match (command, self.status) {
            (ShipmentCommand::Request { order_id }, None) => {
                Ok(vec![ShipmentEvent::ShipmentRequested {
                    order_id: order_id.clone(),
                }])
            }
            (ShipmentCommand::Request { .. }, _) => Err(ShipmentError::AlreadyRequested),
            (ShipmentCommand::Schedule { carrier }, Requested) => {
                Ok(vec![ShipmentEvent::ShipmentScheduled {
                    order_id,
                    carrier: carrier.clone(),
                }])
            }
            // A carrier that answers twice: the first answer stands.
            (ShipmentCommand::Schedule { .. }, Scheduled) => Ok(Vec::new()),
            (ShipmentCommand::Schedule { .. }, None) => Err(ShipmentError::NotRequested),
            (ShipmentCommand::Schedule { .. }, Cancelled) => Err(ShipmentError::Cancelled),
            (ShipmentCommand::Cancel { reason }, Requested | Scheduled) => {
                Ok(vec![ShipmentEvent::ShipmentCancelled {
                    order_id,
                    reason: reason.clone(),
                }])
            }
            (ShipmentCommand::Cancel { .. }, None | Cancelled) => Ok(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_core::AggregateFixture;

    fn fixture() -> AggregateFixture<Shipment> {
        AggregateFixture::new(())
    }

    fn requested() -> ShipmentEvent {
        ShipmentEvent::ShipmentRequested {
            order_id: "7".into(),
        }
    }

    fn schedule() -> ShipmentCommand {
        ShipmentCommand::Schedule {
            carrier: "parcel-co".into(),
        }
    }

    fn cancel() -> ShipmentCommand {
        ShipmentCommand::Cancel {
            reason: "no answer".into(),
        }
    }

    fn cancelled() -> ShipmentEvent {
        ShipmentEvent::ShipmentCancelled {
            order_id: "7".into(),
            reason: "no answer".into(),
        }
    }

    #[tokio::test]
    async fn a_requested_shipment_is_scheduled_by_the_carrier() {
        fixture()
            .when(&ShipmentCommand::Request {
                order_id: "7".into(),
            })
            .await
            .then_expect_events([requested()]);
        let shipment = fixture()
            .given([requested()])
            .when(&schedule())
            .await
            .then_expect_events([ShipmentEvent::ShipmentScheduled {
                order_id: "7".into(),
                carrier: "parcel-co".into(),
            }]);
        assert_eq!(shipment.status, ShipmentStatus::Scheduled);
        fixture()
            .given([requested()])
            .when(&ShipmentCommand::Request {
                order_id: "7".into(),
            })
            .await
            .then_expect_error(ShipmentError::AlreadyRequested);
    }

    #[tokio::test]
    async fn a_schedule_after_a_cancel_is_rejected() {
        fixture()
            .given([requested(), cancelled()])
            .when(&schedule())
            .await
            .then_expect_error(ShipmentError::Cancelled);
        fixture()
            .when(&schedule())
            .await
            .then_expect_error(ShipmentError::NotRequested);
    }

    #[tokio::test]
    async fn cancelling_is_idempotent() {
        fixture()
            .given([requested()])
            .when(&cancel())
            .await
            .then_expect_events([cancelled()]);
        fixture()
            .given([requested(), cancelled()])
            .when(&cancel())
            .await
            .then_expect_events([]);
        fixture().when(&cancel()).await.then_expect_events([]);
    }
}
