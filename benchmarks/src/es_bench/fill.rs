//! Filling a fresh store through `AppendEvents::append`: rounds of appends on concurrent
//! clients, each client owning a share of the streams so that no append ever conflicts.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use cqrs_core::{AppendEvents, ExpectedVersion, Version};
use cqrs_postgres::PgEventStore;
use tokio::task::JoinSet;

use crate::args::Fill;
use crate::model::{document_id, stream_of, Deposit, Expected};

impl Fill {
    /// Events in each stream.
    pub(crate) fn per_document(&self) -> u64 {
        self.events / self.documents.max(1)
    }

    /// Appends to each stream.
    fn rounds(&self) -> u64 {
        self.per_document() / self.per_append.max(1)
    }

    fn check(&self) -> Result<()> {
        ensure!(
            self.documents > 0
                && self.per_append > 0
                && self.events % self.documents == 0
                && self.per_document() % self.per_append == 0,
            "{self:?}: events must split evenly into documents and appends"
        );
        Ok(())
    }

    /// The documents the fold of these events makes.
    pub(crate) fn expected(&self) -> Expected {
        let mut expected = Expected::default();
        for account in 0..self.documents {
            let id = document_id(account);
            for version in 1..=self.per_document() {
                expected.apply(&id, &Deposit::filled(account, version));
            }
        }
        expected
    }

    /// How it fills, for titles.
    pub(crate) fn describe(&self) -> String {
        format!(
            "{} events over {} documents, appended {} per append, streams interleaved",
            self.events, self.documents, self.per_append
        )
    }
}

/// Appends `fill`'s events to the empty `store` on `clients` concurrent clients; the time taken.
pub(crate) async fn fill(store: &PgEventStore, fill: Fill, clients: u32) -> Result<Duration> {
    fill.check()?;
    eprintln!("  filling: {} on {clients} clients ...", fill.describe());
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for client in 0..u64::from(clients) {
        let store = store.clone();
        tasks.spawn(async move { fill_share(&store, fill, client, u64::from(clients)).await });
    }
    while let Some(done) = tasks.join_next().await {
        done.context("a filling client panicked")??;
    }
    let elapsed = started.elapsed();
    eprintln!(
        "  filled in {:.1} s ({:.0} events/s)",
        elapsed.as_secs_f64(),
        fill.events as f64 / elapsed.as_secs_f64()
    );
    Ok(elapsed)
}

/// Client `client` of `clients`: every round, one append to each of its streams.
async fn fill_share(store: &PgEventStore, fill: Fill, client: u64, clients: u64) -> Result<()> {
    for round in 0..fill.rounds() {
        let from = round * fill.per_append + 1;
        let to = from + fill.per_append - 1;
        let mut account = client;
        while account < fill.documents {
            let events = (from..=to)
                .map(|version| Deposit::filled(account, version).event())
                .collect();
            let expected = ExpectedVersion::Exact(Version::new(from - 1));
            let stream = stream_of(account)?;
            let outcome = store.append(&stream, expected, events).await?;
            if outcome.last_version.get() != to {
                bail!(
                    "{stream} is at {} after an append, not {to}",
                    outcome.last_version
                );
            }
            account += clients;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expected_fold_counts_every_event() {
        let fill = Fill {
            events: 600,
            documents: 20,
            per_append: 3,
        };
        assert!(fill.check().is_ok());
        assert_eq!(fill.rounds(), 10);
        let totals = fill.expected().totals();
        assert_eq!((totals.documents, totals.deposits), (20, 600));
    }

    #[test]
    fn uneven_fills_are_refused() {
        let fill = Fill {
            events: 601,
            documents: 20,
            per_append: 3,
        };
        assert!(fill.check().is_err());
    }
}
