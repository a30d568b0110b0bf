//! Carrying out operators' requests on a partition's parked messages, in its worker (so no
//! message of a key runs while the key's letters are re-driven).
//!
//! [`Redrive::Skip`] takes the letter unhandled, before any retry of the same look.
//! [`Redrive::Retry`] on a letter handles every letter of its key again, in offset order (a
//! letter without a key alone); each handled letter is taken, and the first that fails again
//! stays with its new error, the key's other requests withdrawn. A key with no letter left is
//! no longer held back.

use std::collections::HashSet;

use cqrs_core::bus::{BusDeadLetterStore, BusLetter, BusLetterTarget, ParkedKey};
use cqrs_core::projection::Redrive;

use super::partition::{attempt, Attempt};
use super::runner::{Lane, Shared};
use crate::Received;

/// How many requested letters one look takes.
const REQUESTS_PER_LOOK: usize = 1_000;

/// Carries out the requests on `lane`'s letters; `false` when the consumer began stopping.
/// A store error is reported on the status and the requests wait for the next look.
pub(crate) async fn carry_out(shared: &Shared, lane: &Lane, held: &mut HashSet<Vec<u8>>) -> bool {
    let Some(store) = shared.dead_letters.clone() else {
        return true;
    };
    match look(shared, &*store, lane, held).await {
        Ok(going_on) => going_on,
        Err(error) => {
            shared
                .core
                .board()
                .error(format!("carrying out re-drive requests failed: {error}"));
            shared.core.notify();
            true
        }
    }
}

async fn look(
    shared: &Shared,
    store: &dyn BusDeadLetterStore,
    lane: &Lane,
    held: &mut HashSet<Vec<u8>>,
) -> cqrs_core::Result<bool> {
    let name = &*shared.core.name;
    let (topic, partition) = (&lane.tp.0, lane.tp.1);
    let requested = store
        .requested_partition_messages(name, topic, partition, REQUESTS_PER_LOOK)
        .await?;
    // Skips first, as the projections' re-drive does: a retry of a key handles every letter
    // of the key again, and a letter an operator asked to drop must be gone by then.
    let (skips, retries): (Vec<BusLetter>, Vec<BusLetter>) = requested
        .into_iter()
        .partition(|l| l.request == Some(Redrive::Skip));
    let mut keys_done: HashSet<Vec<u8>> = HashSet::new();
    for letter in skips.into_iter().chain(retries) {
        match (letter.request, &letter.key) {
            (Some(Redrive::Skip), _) => {
                store
                    .take_messages(name, std::slice::from_ref(&letter.message))
                    .await?;
            }
            (Some(Redrive::Retry), None) => {
                if !retry(shared, lane, store, &letter).await? {
                    return Ok(false);
                }
            }
            (Some(Redrive::Retry), Some(key)) => {
                if !keys_done.insert(key.clone()) {
                    continue;
                }
                let Some(parked) = letter.parked_key() else {
                    continue;
                };
                if !retry_key(shared, lane, store, &parked).await? {
                    return Ok(false);
                }
            }
            (None, _) => {}
        }
        if let Some(parked) = letter.parked_key() {
            if store.key_messages(name, &parked, 1).await?.is_empty() {
                held.remove(&parked.key);
            }
        }
    }
    Ok(true)
}

/// How many of a key's letters one read takes: a key held back for long may hold a great
/// many, each with its payload.
const KEY_LETTERS_PER_READ: usize = 100;

/// Handles every letter of `key` again, in offset order, a page at a time: each handled letter
/// is taken, so the next read starts after it. The first that fails again stays with its new
/// error and the key's other requests are withdrawn. `false` when the consumer began stopping.
async fn retry_key(
    shared: &Shared,
    lane: &Lane,
    store: &dyn BusDeadLetterStore,
    key: &ParkedKey,
) -> cqrs_core::Result<bool> {
    let name = &*shared.core.name;
    // Where the last letter handled sits, in the pages' (partition, offset) order.
    let mut handled: Option<(i32, i64)> = None;
    loop {
        let page = store.key_messages(name, key, KEY_LETTERS_PER_READ).await?;
        let Some(first) = page.first() else {
            return Ok(true);
        };
        // A letter handled is taken, so a page starts after it; one that does not (a store
        // that kept it) ends the retry rather than handling a letter twice.
        if handled.is_some_and(|at| (first.message.partition, first.message.offset) <= at) {
            return Ok(true);
        }
        for letter in &page {
            match retry_outcome(shared, lane, store, letter).await? {
                Some(true) => handled = Some((letter.message.partition, letter.message.offset)),
                Some(false) => {
                    store
                        .request_messages(name, &BusLetterTarget::Key(key.clone()), None)
                        .await?;
                    return Ok(true);
                }
                None => return Ok(false),
            }
        }
    }
}

/// Handles one letter again; `false` when the consumer began stopping.
async fn retry(
    shared: &Shared,
    lane: &Lane,
    store: &dyn BusDeadLetterStore,
    letter: &BusLetter,
) -> cqrs_core::Result<bool> {
    Ok(retry_outcome(shared, lane, store, letter).await?.is_some())
}

/// Handles one letter again: `Some(true)` handled and taken, `Some(false)` failed again and
/// kept with its new error, `None` the consumer began stopping.
async fn retry_outcome(
    shared: &Shared,
    lane: &Lane,
    store: &dyn BusDeadLetterStore,
    letter: &BusLetter,
) -> cqrs_core::Result<Option<bool>> {
    let name = &*shared.core.name;
    let message = Received::from_letter(letter);
    match attempt(shared, lane, &message).await {
        Attempt::Done => {
            store
                .take_messages(name, std::slice::from_ref(&letter.message))
                .await?;
            shared.core.board().redriven();
            shared.core.notify();
            Ok(Some(true))
        }
        Attempt::Poison(error) => {
            tracing::warn!(consumer = %name, message = %letter.message, %error, "re-drive failed");
            store
                .message_redrive_failed(name, &letter.message, &error)
                .await?;
            Ok(Some(false))
        }
        Attempt::Cancelled => Ok(None),
    }
}
