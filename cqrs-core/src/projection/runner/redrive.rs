//! Carrying out operators' requests on dead letters, between two batches of the leading worker.
//!
//! A parked key holds back every later event of the key (each is a letter too), so re-driving
//! all of a key's letters in feed order, before any later event of the key is applied, gives
//! the document every event in order. The runner does it in its own loop: no batch is applied
//! meanwhile, and a key leaves the held-back set only once none of its letters is left.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::projection::{
    DeadLetter, DeadLetterStore, LetterTarget, ProjectionError, Redrive, Rejected,
};
use crate::{Position, ReadStream, RecordedEvent, StreamId, Version};

use super::upcast::{upcast_in_order, Upcast};
use super::worker::Worker;

impl Worker {
    /// Looks for requests on this projection's dead letters and carries out a bounded part of
    /// them: skipped letters go; the letters of one retried key (up to a batch of them) or the
    /// retried letters without a key are read again, upcast and applied in feed order, and go
    /// once applied. A key whose letters are all gone is no longer held back (`parked`).
    /// Returns whether work may be left (look again at once). Store failures are reported in
    /// the status and tried again at the next look.
    pub(super) async fn redrive_requested(&mut self) -> bool {
        let (Some(store), Some(source)) = (
            self.runner.dead_letters.clone(),
            self.runner.parked_events.clone(),
        ) else {
            return false;
        };
        let name = self.runner.checkpoint_name();
        let limit = self.runner.options.batch_size;
        let requested = match store.requested(&name, limit).await {
            Ok(requested) => requested,
            Err(error) => {
                self.note(format!("could not look for dead-letter requests: {error}"));
                return false;
            }
        };
        if requested.is_empty() {
            return false;
        }
        let (skipped, retried): (Vec<DeadLetter>, Vec<DeadLetter>) = requested
            .into_iter()
            .partition(|l| l.request == Some(Redrive::Skip));
        if !skipped.is_empty() && !self.skip(&*store, &name, &skipped).await {
            return false;
        }
        let Some(key) = retried.first().map(|first| first.key.clone()) else {
            return true;
        };
        let letters = match &key {
            // One key per look: all its letters, marked or not, in feed order.
            Some(key) => {
                // Letters parked after the request are part of it: mark them, so what one
                // look leaves is found by the next.
                let marked = store
                    .request(&name, &LetterTarget::Key(key.clone()), Some(Redrive::Retry))
                    .await;
                let letters = match marked {
                    Ok(_) => store.key_letters(&name, key, limit).await,
                    Err(error) => Err(error),
                };
                match letters {
                    Ok(letters) => letters,
                    Err(error) => {
                        self.note(format!("could not read the letters of key {key}: {error}"));
                        return false;
                    }
                }
            }
            None => retried.into_iter().filter(|l| l.key.is_none()).collect(),
        };
        if !self
            .redrive(&*store, &*source, &name, key.as_deref(), letters)
            .await
        {
            return false;
        }
        if let Some(key) = key {
            self.unpark_if_empty(&*store, &name, &key).await;
        }
        true
    }

    /// Removes the `skipped` letters, and un-parks their keys once no letter is left.
    async fn skip(
        &mut self,
        store: &dyn DeadLetterStore,
        name: &str,
        skipped: &[DeadLetter],
    ) -> bool {
        let positions: Vec<Position> = skipped.iter().map(|l| l.position).collect();
        if let Err(error) = store.remove(name, &positions).await {
            self.note(format!("could not remove skipped dead letters: {error}"));
            return false;
        }
        tracing::info!(letters = positions.len(), "skipped dead letters");
        let keys: HashSet<&str> = skipped.iter().filter_map(|l| l.key.as_deref()).collect();
        for key in keys {
            self.unpark_if_empty(store, name, key).await;
        }
        true
    }

    /// Lets later events of `key` through once none of its letters is left.
    async fn unpark_if_empty(&mut self, store: &dyn DeadLetterStore, name: &str, key: &str) {
        match store.key_letters(name, key, 1).await {
            Ok(left) if left.is_empty() => {
                self.parked.remove(key);
            }
            Ok(_) => {}
            // Still held back: nothing is applied out of order, and the next request on the
            // key settles it.
            Err(error) => self.note(format!("could not check the letters of key {key}: {error}")),
        }
    }

    /// Reads `letters` (in feed order; all of `key`'s when it has one) again, upcasts and
    /// applies them. Applied letters go; a letter that fails again stays with its new error
    /// and, for a key, so do the letters after it (without their request). `false` when
    /// nothing was settled (a transient failure: the requests stay for the next look).
    async fn redrive(
        &mut self,
        store: &dyn DeadLetterStore,
        source: &dyn ReadStream,
        name: &str,
        key: Option<&str>,
        letters: Vec<DeadLetter>,
    ) -> bool {
        let events = match read_again(source, &letters).await {
            Ok(events) => events,
            Err(error) => {
                self.note(format!("could not read parked events again: {error}"));
                return false;
            }
        };
        // The events still in the store; for a key, up to the first one gone (the key's
        // later events wait behind it).
        let mut found = Vec::with_capacity(events.len());
        let mut failed: Vec<Rejected> = Vec::new();
        for (letter, event) in letters.iter().zip(events) {
            match event {
                Ok(event) => found.push(event),
                Err(gone) => {
                    failed.push(Rejected::new(letter.position, gone));
                    if key.is_some() {
                        break;
                    }
                }
            }
        }
        // A key's letters are all of one key: its first failure holds back the rest.
        let Upcast { ready, rejected } = upcast_in_order(
            &self.runner.options.upcasters,
            found,
            |_| None,
            &HashSet::new(),
            key.is_some(),
        );
        if key.is_some() && !rejected.is_empty() {
            // The upcast failure comes before the event gone: that one is held back.
            failed.clear();
        }
        failed.extend(
            rejected
                .into_iter()
                .map(|(event, error)| Rejected::new(event.position, error)),
        );
        let ready = match key {
            Some(_) => ready,
            None => self.keyless_only(ready, &mut failed),
        };
        // In the letters' order, as they were read.
        failed.sort_by_key(|f| letters.iter().position(|l| l.position == f.position));
        let projection = Arc::clone(&self.runner.projection);
        if !ready.is_empty() {
            // Behind the same breaker as the feed's batches: while it is open the sink is
            // left alone, and the requests wait for the next look.
            if !self.breaker.wait_time().is_zero() {
                return false;
            }
            let lease = self.fence.as_ref().and_then(|f| f.lease().cloned());
            match projection.apply_fenced(&ready, lease.as_ref()).await {
                Ok(()) => self.breaker.record_success(),
                Err(ProjectionError::Poison(rejected)) => {
                    self.breaker.record_success();
                    failed.extend(rejected);
                }
                Err(ProjectionError::LeaseLost(error)) => {
                    self.note(format!("re-driving dead letters refused: {error}"));
                    if let Some(fence) = &self.fence {
                        fence.lose();
                    }
                    return false;
                }
                Err(ProjectionError::Transient(error)) => {
                    self.breaker.record_failure();
                    self.note(format!(
                        "re-driving dead letters failed; trying again: {error}"
                    ));
                    return false;
                }
            }
        }
        let first_failure = failed.iter().map(|f| f.position).min();
        let failures: HashSet<Position> = failed.iter().map(|f| f.position).collect();
        let applied: Vec<Position> = ready
            .iter()
            .map(|e| e.position)
            .filter(|p| !failures.contains(p))
            .filter(|p| key.is_none() || first_failure.is_none_or(|first| *p < first))
            .collect();
        if !applied.is_empty() {
            if let Err(error) = projection.make_visible().await {
                tracing::warn!(%error, "could not make re-driven events visible");
            }
            if let Err(error) = store.remove(name, &applied).await {
                // Applied but still parked: the next look applies them again (idempotent).
                self.note(format!("could not remove re-driven dead letters: {error}"));
                return false;
            }
            tracing::info!(letters = applied.len(), "re-drove dead letters");
        }
        for Rejected { position, error } in &failed {
            if let Err(e) = store.redrive_failed(name, *position, error).await {
                self.note(format!("could not record a failed re-drive: {e}"));
                return false;
            }
        }
        if let (Some(key), false) = (key, failed.is_empty()) {
            // The rest of the key stays parked, waiting for the next request.
            let target = LetterTarget::Key(key.to_owned());
            if let Err(error) = store.request(name, &target, None).await {
                self.note(format!(
                    "could not withdraw the requests of key {key}: {error}"
                ));
                return false;
            }
        }
        if let Some(first) = failed.first() {
            self.note(format!(
                "re-driving the dead letter at {} failed: {}",
                first.position, first.error
            ));
        }
        true
    }

    /// Of the events of letters parked without a key, those whose key still cannot be read;
    /// the others fail. Their key could not be read when they were parked, so the key's later
    /// events were not held back behind them and may be applied past them: applied now, such
    /// an event could undo them, or be taken for a repeat and dropped. It stays parked, for a
    /// rebuild of the projection (which applies it in order) or a skip.
    fn keyless_only(
        &self,
        ready: Vec<RecordedEvent>,
        failed: &mut Vec<Rejected>,
    ) -> Vec<RecordedEvent> {
        let projection = &self.runner.projection;
        let mut keyless = Vec::with_capacity(ready.len());
        for event in ready {
            match projection.key(&event) {
                None => keyless.push(event),
                Some(key) => failed.push(Rejected::new(
                    event.position,
                    format!(
                        "parked without a key, its key {key:?} reads now: the key's later \
                         events were not held back behind it and may be applied past it; \
                         rebuild the projection to apply it in order, or skip it"
                    ),
                )),
            }
        }
        keyless
    }

    /// Reports a problem with dead letters in the status and the log.
    fn note(&self, error: String) {
        tracing::warn!(%error, "dead letters");
        self.set(|s| s.error(error));
    }
}

/// Reads the events of `letters` again from their streams: for each letter its event, or why
/// it is gone. Consecutive versions of a stream come in one read.
async fn read_again(
    source: &dyn ReadStream,
    letters: &[DeadLetter],
) -> crate::Result<Vec<Result<RecordedEvent, String>>> {
    let mut found: HashMap<(StreamId, Version), RecordedEvent> = HashMap::new();
    let mut read: HashSet<(StreamId, Version)> = HashSet::new();
    for (i, letter) in letters.iter().enumerate() {
        let at = (letter.stream_id.clone(), letter.version);
        if read.contains(&at) {
            continue;
        }
        let wanted = letters[i..]
            .iter()
            .filter(|l| l.stream_id == letter.stream_id)
            .count();
        let events = source
            .read_stream(&letter.stream_id, letter.version, wanted)
            .await?;
        read.insert(at);
        for event in events {
            let at = (event.stream_id.clone(), event.version);
            read.insert(at.clone());
            found.insert(at, event);
        }
    }
    Ok(letters
        .iter()
        .map(|letter| {
            found
                .remove(&(letter.stream_id.clone(), letter.version))
                .ok_or_else(|| {
                    format!(
                        "event {}@{} is no longer in the store",
                        letter.stream_id, letter.version
                    )
                })
        })
        .collect())
}
