//! The account as a `cqrs_core::Aggregate`.

use cqrs_core::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use super::{decide, Deposit, OverCap, CATEGORY};

/// The account's state.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Account {
    /// The sum of all deposits.
    pub(crate) balance: u64,
    /// How many deposits were made.
    pub(crate) deposits: u64,
}

/// The account's events; the enum tag is the event type ([`EVENT_TYPE`](super::EVENT_TYPE), which
/// the other systems write), so the payload is `{"amount": n}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
pub(crate) enum AccountEvent {
    /// A deposit was made.
    Deposited {
        /// How much.
        amount: u64,
    },
}

impl Aggregate for Account {
    const TYPE: &'static str = CATEGORY;
    type Command = Deposit;
    type Event = AccountEvent;
    type Error = OverCap;
    type Services = ();

    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Deposited { amount } => {
                self.balance += amount;
                self.deposits += 1;
            }
        }
    }

    async fn handle(&self, command: &Deposit, _: &()) -> Result<Vec<AccountEvent>, OverCap> {
        let deposited = decide(self.balance, *command)?;
        Ok(vec![AccountEvent::Deposited {
            amount: deposited.amount,
        }])
    }
}

#[cfg(test)]
mod tests {
    use cqrs_core::DomainEvent;

    use super::AccountEvent;

    #[test]
    fn the_derived_event_type_is_the_one_the_other_systems_write() {
        let event = AccountEvent::Deposited { amount: 1 };
        assert_eq!(event.event_type(), super::super::EVENT_TYPE);
    }
}
