//! [`Held`]: a projection that stops between reading its documents and writing them, so a
//! test can have another projector write in between (a standby overlapping the active worker,
//! a deposed worker's late bulk).

use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use cqrs_core::{BoxError, EventFilter, Position, RecordedEvent};
use cqrs_elastic::{Change, ElasticProjection};
use serde_json::Value;
use tokio::sync::Notify;

use super::{AccountView, Accounts};

/// How long a handshake may wait before the test fails saying what it waited for.
pub const HANDSHAKE: Duration = Duration::from_secs(30);

/// Accounts, but the first `apply` announces that this projector has read its documents and
/// then holds until told to go on, so another projector writes between this one's read and
/// its write. Records the deposits of the document each `apply` folds onto.
pub struct Held {
    pub inner: Accounts,
    /// Told once, when the first `apply` runs (the documents are read by then).
    pub read: Arc<Notify>,
    /// Taken by the first `apply`: it waits on it for the other projector's write.
    pub go: Mutex<Option<mpsc::Receiver<()>>>,
    /// Per `apply` call, the event's position and the deposits of the document it folds onto
    /// (`None`: absent).
    pub seen: Mutex<Vec<(Position, Option<u32>)>>,
}

impl ElasticProjection for Held {
    type Document = AccountView;

    fn name(&self) -> &str {
        self.inner.name()
    }

    fn mappings(&self) -> Value {
        self.inner.mappings()
    }

    fn filter(&self) -> EventFilter {
        self.inner.filter()
    }

    fn document_id(&self, event: &RecordedEvent) -> Result<Option<String>, BoxError> {
        self.inner.document_id(event)
    }

    fn apply(
        &self,
        current: Option<&AccountView>,
        event: &RecordedEvent,
    ) -> Result<Change<AccountView>, BoxError> {
        let go = self.go.lock().unwrap().take();
        if let Some(go) = go {
            self.read.notify_one();
            // Off the runtime's worker, so the other projector's I/O goes on meanwhile.
            tokio::task::block_in_place(|| go.recv_timeout(HANDSHAKE))
                .expect("the other projector's write, before this one writes");
        }
        let folded_onto = current.map(|c| c.deposits);
        self.seen
            .lock()
            .unwrap()
            .push((event.position, folded_onto));
        self.inner.apply(current, event)
    }
}
