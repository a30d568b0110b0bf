//! What leading and applying come to: why leading ended ([`Lead`]) and what applying a batch did
//! ([`Applied`]). A leaf the worker, its apply, poison and settling steps all speak, so none
//! of them imports another for these.

use std::time::Duration;

use crate::{Error, Position};

/// Why leading ended.
pub(super) enum Lead {
    Stopped,
    LostLease,
    Failed(String),
    /// A poison event under [`PoisonPolicy::Stop`](super::PoisonPolicy::Stop); the batch's
    /// events before it (up to `before`) are applied.
    Poisoned {
        before: Option<Position>,
        error: String,
    },
}

impl Lead {
    /// Leading ends on a store error a retry cannot cure, met while `doing` something.
    pub(super) fn failed(doing: &str, error: &Error) -> Lead {
        Lead::Failed(format!("{doing}: {error}"))
    }
}

/// What applying a batch did.
pub(super) struct Applied {
    /// Events applied.
    pub(super) count: u64,
    /// Events parked as dead letters.
    pub(super) parked: u64,
    /// How old the batch's last applied event was when it was applied.
    pub(super) lag: Duration,
}

impl Applied {
    /// Nothing applied, nothing parked.
    pub(super) const NOTHING: Applied = Applied {
        count: 0,
        parked: 0,
        lag: Duration::ZERO,
    };
}
