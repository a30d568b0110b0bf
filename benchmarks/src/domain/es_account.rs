//! The account as a `cqrs_es::Aggregate` (cqrs-es 0.5).

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use super::{decide, Deposit, Deposited, OverCap, CATEGORY, EVENT_TYPE};

/// The account's state, as in [`Account`](super::Account).
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct EsAccount {
    /// The sum of all deposits.
    pub(crate) balance: u64,
    /// How many deposits were made.
    pub(crate) deposits: u64,
}

impl DomainEvent for Deposited {
    fn event_type(&self) -> String {
        EVENT_TYPE.to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

impl Aggregate for EsAccount {
    const TYPE: &'static str = CATEGORY;
    type Command = Deposit;
    type Event = Deposited;
    type Error = OverCap;
    type Services = ();

    async fn handle(
        &mut self,
        command: Deposit,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), OverCap> {
        let deposited = decide(self.balance, command)?;
        sink.write(deposited, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Deposited) {
        self.balance += event.amount;
        self.deposits += 1;
    }
}
