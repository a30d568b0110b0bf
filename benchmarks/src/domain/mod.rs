//! The benchmark's domain, a bank account that takes deposits up to a cap, written once for
//! each framework with the same JSON event: type `Deposited`, payload `{"amount": n}`.

mod core_account;
mod es_account;

use serde::{Deserialize, Serialize};

pub(crate) use core_account::Account;
#[cfg(test)]
use core_account::AccountEvent;
pub(crate) use es_account::EsAccount;

/// The aggregate type, and the category of its streams.
pub(crate) const CATEGORY: &str = "account";

/// The stored event type.
pub(crate) const EVENT_TYPE: &str = "Deposited";

/// No balance may pass this. The workloads never reach it, but every system checks it.
pub(crate) const CAP: u64 = 1_000_000_000;

/// The command: deposit `amount`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Deposit {
    /// How much.
    pub(crate) amount: u64,
}

/// The event's payload, `{"amount": n}`; also cqrs-es's event type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Deposited {
    /// How much.
    pub(crate) amount: u64,
}

/// Why a deposit is refused.
#[derive(Debug, thiserror::Error)]
#[error("the deposit would take the balance past the cap")]
pub(crate) struct OverCap;

/// The rule both frameworks and the raw loader apply.
pub(crate) fn decide(balance: u64, deposit: Deposit) -> Result<Deposited, OverCap> {
    match balance.checked_add(deposit.amount) {
        Some(after) if after <= CAP => Ok(Deposited {
            amount: deposit.amount,
        }),
        _ => Err(OverCap),
    }
}

/// The payload of a deposit of `amount`, as every system stores it.
pub(crate) fn payload(amount: u64) -> serde_json::Value {
    serde_json::json!({ "amount": amount })
}

#[cfg(test)]
mod tests {
    use cqrs_core::DomainEvent as _;

    use super::*;

    #[test]
    fn both_frameworks_store_the_same_event() {
        let ours = AccountEvent::Deposited { amount: 5 };
        let theirs = Deposited { amount: 5 };
        assert_eq!(ours.event_type(), cqrs_es::DomainEvent::event_type(&theirs));
        assert_eq!(ours.encode().ok(), serde_json::to_value(theirs).ok());
        assert_eq!(ours.encode().ok(), Some(payload(5)));
    }

    #[test]
    fn deposits_stop_at_the_cap() {
        assert!(decide(CAP - 5, Deposit { amount: 5 }).is_ok());
        assert!(decide(CAP - 5, Deposit { amount: 6 }).is_err());
        assert!(decide(u64::MAX, Deposit { amount: 1 }).is_err());
    }
}
