//! The README's tour aggregate: a bank account.

use cqrs_core::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

/// A bank account: the state is folded from its events.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Account {
    balance: u64,
    open: bool,
}

/// What happened to an account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
pub enum AccountEvent {
    /// The account was opened.
    Opened,
    /// Money came in.
    Deposited {
        /// How much, in cents.
        cents: u64,
    },
    /// Money went out.
    Withdrawn {
        /// How much, in cents.
        cents: u64,
    },
}

/// What an account can be asked.
pub enum AccountCommand {
    /// Open it.
    Open,
    /// Put cents in.
    Deposit(u64),
    /// Take cents out.
    Withdraw(u64),
}

/// Why an account refuses.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum AccountError {
    /// Only open accounts move money.
    #[error("the account is not open")]
    NotOpen,
    /// No overdraft.
    #[error("insufficient funds: {balance} available")]
    InsufficientFunds {
        /// What the account holds.
        balance: u64,
    },
}

impl Aggregate for Account {
    const TYPE: &'static str = "account"; // streams are "account-{id}"
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;
    type Services = ();

    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Opened => self.open = true,
            AccountEvent::Deposited { cents } => self.balance += cents,
            AccountEvent::Withdrawn { cents } => self.balance -= cents,
        }
    }

    async fn handle(
        &self,
        command: &AccountCommand,
        _: &(),
    ) -> Result<Vec<AccountEvent>, AccountError> {
        match command {
            AccountCommand::Open => Ok(vec![AccountEvent::Opened]),
            _ if !self.open => Err(AccountError::NotOpen),
            AccountCommand::Deposit(cents) => Ok(vec![AccountEvent::Deposited { cents: *cents }]),
            AccountCommand::Withdraw(cents) if *cents > self.balance => {
                Err(AccountError::InsufficientFunds {
                    balance: self.balance,
                })
            }
            AccountCommand::Withdraw(cents) => Ok(vec![AccountEvent::Withdrawn { cents: *cents }]),
        }
    }
}
