//! The two systems whose freshness is compared, each writing one deposit per sample and
//! keeping the documents it must end with.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use anyhow::Result;
use cqrs_core::{AppendEvents, ExpectedVersion, Position};
use cqrs_postgres::PgEventStore;

use super::sampler::Sample;
use super::watch::Watcher;
use crate::model::{document_id, stream_of, Deposit, Expected};
use crate::node::Node;

/// One sample in flight.
pub(super) type Pending = Pin<Box<dyn Future<Output = Result<(Which, Sample)>> + Send>>;

/// Whose sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Which {
    /// Ours.
    Ours,
    /// The direct write.
    Direct,
}

/// A system under test.
pub(super) struct Side {
    how: How,
    watcher: Watcher,
    expected: Expected,
}

enum How {
    /// Append the event; the live runner projects it.
    Append(PgEventStore),
    /// Index the new document into `index`, then `_refresh` it.
    Direct { node: Node, index: String },
}

impl Side {
    /// Ours: appends to `store`, found through `watcher`; the read model starts as `seeded`.
    pub(super) fn ours(store: PgEventStore, watcher: Watcher, seeded: Expected) -> Self {
        Self {
            how: How::Append(store),
            watcher,
            expected: seeded,
        }
    }

    /// The direct write into `index`, found through `watcher`; the index starts as `seeded`.
    pub(super) fn direct(node: Node, index: String, watcher: Watcher, seeded: Expected) -> Self {
        Self {
            how: How::Direct { node, index },
            watcher,
            expected: seeded,
        }
    }

    /// The documents it must hold now.
    pub(super) fn expected(&self) -> &Expected {
        &self.expected
    }

    /// Writes `deposit` to `account`; the sample ends when a search finds it.
    pub(super) fn start(&mut self, account: u64, deposit: Deposit) -> Pending {
        let id = document_id(account);
        let view = self.expected.apply(&id, &deposit).clone();
        let found = self.watcher.found(&deposit.reference);
        match &self.how {
            How::Append(store) => {
                let store = store.clone();
                Box::pin(async move {
                    let stream = stream_of(account)?;
                    let started = Instant::now();
                    store
                        .append(&stream, ExpectedVersion::Any, vec![deposit.event()])
                        .await?;
                    let write = started.elapsed();
                    let total = found.await?.saturating_duration_since(started);
                    Ok((Which::Ours, Sample { write, total }))
                })
            }
            How::Direct { node, index } => {
                let (node, index) = (node.clone(), index.clone());
                Box::pin(async move {
                    let source = view.stored_source(&id, Position::START)?;
                    let started = Instant::now();
                    node.index(&index, &id, &source).await?;
                    node.refresh(&index).await?;
                    let write = started.elapsed();
                    let total = found.await?.saturating_duration_since(started);
                    Ok((Which::Direct, Sample { write, total }))
                })
            }
        }
    }
}
