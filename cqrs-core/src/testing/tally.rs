//! [`Tally`]: a tiny aggregate for tests and examples.

use serde::{Deserialize, Serialize};

use crate::{Aggregate, DomainEvent};

/// A counter with a cap: the smallest aggregate with a real rule.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// The running total.
    pub total: u64,
    /// How many events were applied.
    pub applied: u64,
    /// Set once the tally is closed; closed tallies refuse additions.
    pub closed: bool,
}

/// What a [`Tally`] records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, DomainEvent)]
pub enum TallyEvent {
    /// `amount` was added.
    #[event(version = 2)]
    Added {
        /// How much.
        amount: u64,
    },
    /// The tally was closed.
    Closed,
}

/// What a [`Tally`] can be asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TallyCommand {
    /// Add each amount, one event each.
    Add(Vec<u64>),
    /// Close the tally.
    Close,
    /// Do nothing (records no event).
    Nothing,
}

/// Why a [`Tally`] refuses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TallyError {
    /// The tally is closed.
    #[error("the tally is closed")]
    Closed,
    /// The total would pass the cap.
    #[error("the total would pass {cap}")]
    OverCap {
        /// The cap.
        cap: u64,
    },
}

impl Tally {
    /// The largest total a tally accepts.
    pub const CAP: u64 = 1_000_000;
}

impl Aggregate for Tally {
    const TYPE: &'static str = "tally";
    type Command = TallyCommand;
    type Event = TallyEvent;
    type Error = TallyError;
    type Services = ();

    fn apply(&mut self, event: &TallyEvent) {
        self.applied += 1;
        match event {
            TallyEvent::Added { amount } => self.total += amount,
            TallyEvent::Closed => self.closed = true,
        }
    }

    async fn handle(&self, command: &TallyCommand, _: &()) -> Result<Vec<TallyEvent>, TallyError> {
        if self.closed && *command != TallyCommand::Nothing {
            return Err(TallyError::Closed);
        }
        match command {
            TallyCommand::Add(amounts) => {
                let sum: u64 = amounts.iter().sum();
                if self.total + sum > Self::CAP {
                    return Err(TallyError::OverCap { cap: Self::CAP });
                }
                Ok(amounts
                    .iter()
                    .map(|&amount| TallyEvent::Added { amount })
                    .collect())
            }
            TallyCommand::Close => Ok(vec![TallyEvent::Closed]),
            TallyCommand::Nothing => Ok(Vec::new()),
        }
    }
}
