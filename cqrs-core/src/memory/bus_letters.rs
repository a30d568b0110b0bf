//! The in-memory store's bus dead letters.

use std::collections::btree_map::Entry;

use async_trait::async_trait;

use crate::bus::{BusDeadLetterStore, BusLetter, BusLetterTarget, MessageId, ParkedKey};
use crate::projection::Redrive;
use crate::{Error, Result};

use super::InMemoryEventStore;

fn targets(letter: &BusLetter, target: &BusLetterTarget) -> bool {
    match target {
        BusLetterTarget::Key(key) => {
            letter.message.topic == key.topic && letter.key.as_deref() == Some(key.key.as_slice())
        }
        BusLetterTarget::Message(message) => letter.message == *message,
    }
}

impl InMemoryEventStore {
    /// Up to `limit` of `consumer`'s bus letters that `keep` picks, in message order.
    fn bus_letters(
        &self,
        consumer: &str,
        limit: usize,
        keep: impl Fn(&BusLetter) -> bool,
    ) -> Vec<BusLetter> {
        self.read()
            .bus_letters
            .iter()
            .filter(|((c, _), letter)| c == consumer && keep(letter))
            .take(limit)
            .map(|(_, letter)| letter.clone())
            .collect()
    }
}

#[async_trait]
impl BusDeadLetterStore for InMemoryEventStore {
    async fn park_message(&self, letter: BusLetter) -> Result<()> {
        let id = (letter.consumer.clone(), letter.message.clone());
        match self.write().bus_letters.entry(id) {
            Entry::Vacant(place) => {
                place.insert(letter);
                Ok(())
            }
            Entry::Occupied(kept) if kept.get().is_same_message(&letter) => Ok(()),
            Entry::Occupied(_) => Err(Error::MessageIdReused {
                consumer: letter.consumer,
                message: letter.message,
            }),
        }
    }

    async fn parked_messages(
        &self,
        consumer: &str,
        after: Option<&MessageId>,
        limit: usize,
    ) -> Result<Vec<BusLetter>> {
        Ok(self.bus_letters(consumer, limit, |l| {
            after.is_none_or(|after| l.message > *after)
        }))
    }

    async fn parked_message_keys(&self, consumer: &str) -> Result<Vec<ParkedKey>> {
        let keys: std::collections::BTreeSet<ParkedKey> = self
            .bus_letters(consumer, usize::MAX, |_| true)
            .iter()
            .filter_map(BusLetter::parked_key)
            .collect();
        Ok(keys.into_iter().collect())
    }

    async fn key_messages(
        &self,
        consumer: &str,
        key: &ParkedKey,
        limit: usize,
    ) -> Result<Vec<BusLetter>> {
        let target = BusLetterTarget::Key(key.clone());
        Ok(self.bus_letters(consumer, limit, |l| targets(l, &target)))
    }

    async fn request_messages(
        &self,
        consumer: &str,
        target: &BusLetterTarget,
        request: Option<Redrive>,
    ) -> Result<u64> {
        let mut state = self.write();
        let mut marked = 0;
        for ((c, _), letter) in state.bus_letters.iter_mut() {
            if c == consumer && targets(letter, target) {
                letter.request = request;
                marked += 1;
            }
        }
        Ok(marked)
    }

    async fn requested_messages(&self, consumer: &str, limit: usize) -> Result<Vec<BusLetter>> {
        Ok(self.bus_letters(consumer, limit, |l| l.request.is_some()))
    }

    async fn take_messages(&self, consumer: &str, messages: &[MessageId]) -> Result<u64> {
        let mut state = self.write();
        let mut taken = 0;
        for message in messages {
            if state
                .bus_letters
                .remove(&(consumer.to_owned(), message.clone()))
                .is_some()
            {
                taken += 1;
            }
        }
        Ok(taken)
    }

    async fn message_redrive_failed(
        &self,
        consumer: &str,
        message: &MessageId,
        error: &str,
    ) -> Result<()> {
        let mut state = self.write();
        if let Some(letter) = state
            .bus_letters
            .get_mut(&(consumer.to_owned(), message.clone()))
        {
            letter.error = error.to_owned();
            letter.request = None;
        }
        Ok(())
    }
}
