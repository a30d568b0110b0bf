//! The in-memory store's dead letters.

use async_trait::async_trait;
use tokio::time::Instant;

use crate::projection::{DeadLetter, DeadLetterStore, Lease, LetterTarget, Redrive};
use crate::{FencedSave, Position, Result};

use super::{InMemoryEventStore, State};

impl State {
    /// Parks `letter` unless its projection has one at its position, in feed order per
    /// projection, so pages and keys read in order.
    fn park(&mut self, letter: DeadLetter) {
        let known = self
            .dead_letters
            .iter()
            .any(|l| l.projection == letter.projection && l.position == letter.position);
        if !known {
            let at = self
                .dead_letters
                .partition_point(|l| l.position <= letter.position);
            self.dead_letters.insert(at, letter);
        }
    }
}

impl InMemoryEventStore {
    /// Up to `limit` of `projection`'s letters that `keep` picks, in feed order.
    fn letters(
        &self,
        projection: &str,
        limit: usize,
        keep: impl Fn(&DeadLetter) -> bool,
    ) -> Vec<DeadLetter> {
        self.read()
            .dead_letters
            .iter()
            .filter(|l| l.projection == projection && keep(l))
            .take(limit)
            .cloned()
            .collect()
    }
}

#[async_trait]
impl DeadLetterStore for InMemoryEventStore {
    async fn park(&self, letter: DeadLetter) -> Result<()> {
        self.write().park(letter);
        Ok(())
    }

    async fn park_fenced(&self, letter: DeadLetter, lease: &Lease) -> Result<FencedSave> {
        let mut state = self.write();
        if lease.name != letter.projection || !state.holds(lease, Instant::now()) {
            return Ok(FencedSave::LeaseLost);
        }
        state.park(letter);
        Ok(FencedSave::Saved)
    }

    async fn dead_letters(
        &self,
        projection: &str,
        after: Position,
        limit: usize,
    ) -> Result<Vec<DeadLetter>> {
        Ok(self.letters(projection, limit, |l| l.position > after))
    }

    async fn parked_keys(&self, projection: &str) -> Result<Vec<String>> {
        let state = self.read();
        let keys: std::collections::BTreeSet<&str> = state
            .dead_letters
            .iter()
            .filter(|l| l.projection == projection)
            .filter_map(|l| l.key.as_deref())
            .collect();
        Ok(keys.into_iter().map(str::to_owned).collect())
    }

    async fn key_letters(
        &self,
        projection: &str,
        key: &str,
        limit: usize,
    ) -> Result<Vec<DeadLetter>> {
        Ok(self.letters(projection, limit, |l| l.key.as_deref() == Some(key)))
    }

    async fn request(
        &self,
        projection: &str,
        target: &LetterTarget,
        request: Option<Redrive>,
    ) -> Result<u64> {
        let mut state = self.write();
        let mut marked = 0;
        for letter in state
            .dead_letters
            .iter_mut()
            .filter(|l| l.projection == projection && targets(target, l))
        {
            letter.request = request;
            marked += 1;
        }
        Ok(marked)
    }

    async fn requested(&self, projection: &str, limit: usize) -> Result<Vec<DeadLetter>> {
        Ok(self
            .read()
            .dead_letters
            .iter()
            .filter(|l| l.projection == projection && l.request.is_some())
            .take(limit)
            .cloned()
            .collect())
    }

    async fn remove(&self, projection: &str, positions: &[Position]) -> Result<u64> {
        let positions: std::collections::HashSet<&Position> = positions.iter().collect();
        let mut state = self.write();
        let before = state.dead_letters.len();
        state
            .dead_letters
            .retain(|l| l.projection != projection || !positions.contains(&l.position));
        Ok((before - state.dead_letters.len()) as u64)
    }

    async fn redrive_failed(
        &self,
        projection: &str,
        position: Position,
        error: &str,
    ) -> Result<()> {
        let mut state = self.write();
        if let Some(letter) = state
            .dead_letters
            .iter_mut()
            .find(|l| l.projection == projection && l.position == position)
        {
            error.clone_into(&mut letter.error);
            letter.request = None;
        }
        Ok(())
    }
}

/// Whether `target` names `letter`.
fn targets(target: &LetterTarget, letter: &DeadLetter) -> bool {
    match target {
        LetterTarget::Key(key) => letter.key.as_deref() == Some(key.as_str()),
        LetterTarget::Position(position) => letter.position == *position,
    }
}
