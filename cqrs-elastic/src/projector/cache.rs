//! [`DocumentCache`]: the documents a projector last wrote, so the next batch need not read
//! them back.

use std::collections::HashMap;
use std::sync::Mutex;

use cqrs_core::Position;
use serde::de::DeserializeOwned;

use crate::bulk::Precondition;
use crate::fold::Start;
use crate::mget::Current;

/// A document as the projector knows it before a batch: what its write must expect, and its
/// decoded state.
pub(super) struct Known<D> {
    pub(super) precondition: Precondition,
    /// Its state, or why its metadata is unreadable (its events are rejected).
    pub(super) start: Result<Start<D>, String>,
}

impl<D: DeserializeOwned> Known<D> {
    pub(super) fn absent() -> Self {
        Self {
            precondition: Precondition::Absent,
            start: Ok(Start::absent()),
        }
    }

    /// Decodes a document read by `_mget`.
    pub(super) fn read(id: &str, current: Current) -> Self {
        Self {
            precondition: current.precondition,
            start: current
                .stored
                .map(|stored| Start::from_stored(id, stored.as_ref())),
        }
    }
}

/// Documents as the projector last wrote them, up to a capacity (0: none). A stale entry
/// (someone else wrote the document) fails its write with 409 and is read again: the
/// `if_seq_no` check keeps the cache honest. An event a document refuses is folded again over
/// the document read from the index before it counts as poison, and the memory is dropped
/// whenever leading starts or ends.
pub(super) struct DocumentCache<D> {
    documents: Mutex<HashMap<String, Known<D>>>,
    capacity: usize,
}

impl<D> DocumentCache<D> {
    /// An empty cache of at most `capacity` documents.
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            documents: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// At most `capacity` documents from now on (the current ones stay).
    pub(super) fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
    }

    /// Drops every remembered document: the next batch reads its documents from the index.
    pub(super) fn forget(&self) {
        self.lock().clear();
    }

    /// Takes the remembered documents among `ids` out of the cache.
    pub(super) fn take(&self, ids: &[&str]) -> HashMap<String, Known<D>> {
        if self.capacity == 0 {
            return HashMap::new();
        }
        let mut documents = self.lock();
        ids.iter()
            .filter_map(|id| documents.remove(*id).map(|c| ((*id).to_owned(), c)))
            .collect()
    }

    /// Keeps a document as written: `document` after the events up to `position`.
    pub(super) fn remember(
        &self,
        id: String,
        precondition: Precondition,
        position: Position,
        document: Option<D>,
    ) {
        if self.capacity == 0 {
            return;
        }
        let mut documents = self.lock();
        if documents.len() >= self.capacity && !documents.contains_key(&id) {
            if let Some(victim) = documents.keys().next().cloned() {
                documents.remove(&victim);
            }
        }
        documents.insert(
            id,
            Known {
                precondition,
                start: Ok(Start {
                    position: Some(position),
                    document: Ok(document),
                }),
            },
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Known<D>>> {
        self.documents.lock().unwrap_or_else(|p| p.into_inner())
    }
}
