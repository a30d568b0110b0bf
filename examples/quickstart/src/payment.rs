//! [`Payment`]: the payment of one order, authorized or refused by the card issuer.

use std::collections::BTreeMap;

use cqrs_core::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::money;

/// The card issuer, as the payment sees it: how much each customer may spend at once. It is the
/// payment's [`Services`](Aggregate::Services): what `handle` consults besides its own state.
#[derive(Clone, Debug, Default)]
pub struct CardLimits {
    limits: BTreeMap<String, u64>,
}

impl CardLimits {
    /// No limit for anyone.
    pub fn new() -> Self {
        Self::default()
    }

    /// `customer` may spend at most `cents` at once.
    #[must_use]
    pub fn limit(mut self, customer: &str, cents: u64) -> Self {
        self.limits.insert(customer.to_owned(), cents);
        self
    }

    /// Why `amount` cents by `customer` are declined, if they are.
    pub fn decline_reason(&self, customer: &str, amount: u64) -> Option<String> {
        let limit = *self.limits.get(customer)?;
        (amount > limit).then(|| format!("over the card limit of {}", money(limit)))
    }
}

/// Where a payment is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentStatus {
    /// Not asked for yet.
    #[default]
    Pending,
    /// The issuer said yes.
    Authorized,
    /// The issuer said no.
    Refused,
    /// The authorized amount was taken: the order shipped.
    Captured,
    /// The authorized amount was given back: the order was called off.
    Refunded,
}

/// The payment of one order (stream `payment-{order id}`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// Where it is.
    pub status: PaymentStatus,
    /// The order it pays.
    pub order_id: String,
    /// How much, in cents.
    pub amount: u64,
    /// Why it was refused, if it was.
    pub refusal: Option<String>,
}

/// What can be asked of a payment. Commands are serde: a process manager records the ones it
/// sends in its journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentCommand {
    /// Ask the card issuer to authorize `amount` cents.
    Authorize {
        /// The order paid for.
        order_id: String,
        /// Who pays.
        customer: String,
        /// How much, in cents.
        amount: u64,
    },
    /// Take the authorized amount (the order shipped). Capturing twice takes it once.
    Capture,
    /// Give back what is authorized and not captured (the order was called off). Idempotent by
    /// order: a payment that was refused, never asked for, refunded or captured already gives
    /// nothing back, so a compensation may run in any state and more than once.
    Refund,
}

/// What happens to a payment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, DomainEvent)]
pub enum PaymentEvent {
    /// The issuer authorized the amount.
    PaymentAuthorized {
        /// The order paid for.
        order_id: String,
        /// How much, in cents.
        amount: u64,
    },
    /// The issuer refused.
    PaymentRefused {
        /// The order paid for.
        order_id: String,
        /// How much, in cents.
        amount: u64,
        /// Why.
        reason: String,
    },
    /// The authorized amount was taken.
    PaymentCaptured {
        /// The order paid for.
        order_id: String,
        /// How much, in cents.
        amount: u64,
    },
    /// The authorized amount was given back.
    PaymentRefunded {
        /// The order paid for.
        order_id: String,
        /// How much, in cents.
        amount: u64,
    },
}

/// Why a payment refuses a command. (A card the issuer declines is not an error: it is a
/// [`PaymentEvent::PaymentRefused`], a fact the rest of the flow reacts to.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum PaymentError {
    /// An amount of zero.
    #[error("nothing to pay")]
    ZeroAmount,
    /// The payment was decided already.
    #[error("the payment is {0:?} already")]
    AlreadyDecided(PaymentStatus),
    /// `Capture` on a payment that holds no authorized amount.
    #[error("only an authorized payment can be captured; this one is {0:?}")]
    CannotCapture(PaymentStatus),
}

impl Aggregate for Payment {
    const TYPE: &'static str = "payment";
    type Command = PaymentCommand;
    type Event = PaymentEvent;
    type Error = PaymentError;
    type Services = CardLimits;

    fn apply(&mut self, event: &PaymentEvent) {
        match event {
            PaymentEvent::PaymentAuthorized { order_id, amount } => {
                self.status = PaymentStatus::Authorized;
                self.order_id.clone_from(order_id);
                self.amount = *amount;
            }
            PaymentEvent::PaymentRefused {
                order_id,
                amount,
                reason,
            } => {
                self.status = PaymentStatus::Refused;
                self.order_id.clone_from(order_id);
                self.amount = *amount;
                self.refusal = Some(reason.clone());
            }
            PaymentEvent::PaymentCaptured { .. } => self.status = PaymentStatus::Captured,
            PaymentEvent::PaymentRefunded { .. } => self.status = PaymentStatus::Refunded,
        }
    }

    async fn handle(
        &self,
        command: &PaymentCommand,
        cards: &CardLimits,
    ) -> Result<Vec<PaymentEvent>, PaymentError> {
        match command {
            PaymentCommand::Authorize {
                order_id,
                customer,
                amount,
            } => self.authorize(order_id, customer, *amount, cards),
            PaymentCommand::Capture => match self.status {
                PaymentStatus::Authorized => Ok(vec![PaymentEvent::PaymentCaptured {
                    order_id: self.order_id.clone(),
                    amount: self.amount,
                }]),
                PaymentStatus::Captured => Ok(Vec::new()),
                status => Err(PaymentError::CannotCapture(status)),
            },
            PaymentCommand::Refund => Ok(match self.status {
                PaymentStatus::Authorized => vec![PaymentEvent::PaymentRefunded {
                    order_id: self.order_id.clone(),
                    amount: self.amount,
                }],
                _ => Vec::new(),
            }),
        }
    }
}

impl Payment {
    fn authorize(
        &self,
        order_id: &str,
        customer: &str,
        amount: u64,
        cards: &CardLimits,
    ) -> Result<Vec<PaymentEvent>, PaymentError> {
        if self.status != PaymentStatus::Pending {
            return Err(PaymentError::AlreadyDecided(self.status));
        }
        if amount == 0 {
            return Err(PaymentError::ZeroAmount);
        }
        let order_id = order_id.to_owned();
        Ok(vec![match cards.decline_reason(customer, amount) {
            None => PaymentEvent::PaymentAuthorized { order_id, amount },
            Some(reason) => PaymentEvent::PaymentRefused {
                order_id,
                amount,
                reason,
            },
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_core::AggregateFixture;

    fn authorize(customer: &str, amount: u64) -> PaymentCommand {
        PaymentCommand::Authorize {
            order_id: "7".into(),
            customer: customer.into(),
            amount,
        }
    }

    fn fixture() -> AggregateFixture<Payment> {
        AggregateFixture::new(CardLimits::new().limit("carol", 5000))
    }

    #[tokio::test]
    async fn an_amount_within_the_limit_is_authorized() {
        let payment = fixture()
            .when(&authorize("carol", 5000))
            .await
            .then_expect_events([PaymentEvent::PaymentAuthorized {
                order_id: "7".into(),
                amount: 5000,
            }]);
        assert_eq!(payment.status, PaymentStatus::Authorized);
        fixture()
            .when(&authorize("dave", 1_000_000))
            .await
            .then_expect_events([PaymentEvent::PaymentAuthorized {
                order_id: "7".into(),
                amount: 1_000_000,
            }]);
    }

    #[tokio::test]
    async fn an_amount_over_the_limit_is_refused_with_a_reason() {
        let payment = fixture()
            .when(&authorize("carol", 5001))
            .await
            .then_expect_events([PaymentEvent::PaymentRefused {
                order_id: "7".into(),
                amount: 5001,
                reason: "over the card limit of 50.00".into(),
            }]);
        assert_eq!(payment.status, PaymentStatus::Refused);
    }

    #[tokio::test]
    async fn a_payment_is_decided_once_and_never_for_nothing() {
        fixture()
            .given([PaymentEvent::PaymentAuthorized {
                order_id: "7".into(),
                amount: 100,
            }])
            .when(&authorize("carol", 100))
            .await
            .then_expect_error(PaymentError::AlreadyDecided(PaymentStatus::Authorized));
        fixture()
            .when(&authorize("carol", 0))
            .await
            .then_expect_error(PaymentError::ZeroAmount);
    }

    fn authorized() -> PaymentEvent {
        PaymentEvent::PaymentAuthorized {
            order_id: "7".into(),
            amount: 100,
        }
    }

    #[tokio::test]
    async fn an_authorized_payment_is_captured_once() {
        let payment = fixture()
            .given([authorized()])
            .when(&PaymentCommand::Capture)
            .await
            .then_expect_events([PaymentEvent::PaymentCaptured {
                order_id: "7".into(),
                amount: 100,
            }]);
        assert_eq!(payment.status, PaymentStatus::Captured);
        let captured = PaymentEvent::PaymentCaptured {
            order_id: "7".into(),
            amount: 100,
        };
        fixture()
            .given([authorized(), captured])
            .when(&PaymentCommand::Capture)
            .await
            .then_expect_events([]);
        fixture()
            .when(&PaymentCommand::Capture)
            .await
            .then_expect_error(PaymentError::CannotCapture(PaymentStatus::Pending));
    }

    #[tokio::test]
    async fn a_refund_gives_back_what_is_authorized_and_not_captured() {
        let refunded = PaymentEvent::PaymentRefunded {
            order_id: "7".into(),
            amount: 100,
        };
        let payment = fixture()
            .given([authorized()])
            .when(&PaymentCommand::Refund)
            .await
            .then_expect_events([refunded.clone()]);
        assert_eq!(payment.status, PaymentStatus::Refunded);
        let captured = PaymentEvent::PaymentCaptured {
            order_id: "7".into(),
            amount: 100,
        };
        for given in [
            vec![],
            vec![authorized(), refunded.clone()],
            vec![authorized(), captured],
        ] {
            fixture()
                .given(given)
                .when(&PaymentCommand::Refund)
                .await
                .then_expect_events([]);
        }
        fixture()
            .given([authorized(), refunded])
            .when(&PaymentCommand::Capture)
            .await
            .then_expect_error(PaymentError::CannotCapture(PaymentStatus::Refunded));
    }
}
