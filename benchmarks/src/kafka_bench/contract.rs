//! What the benchmark publishes: `Deposited` domain events, mapped to a public
//! `bench.deposited.v1` contract, and how a store is filled with them.

use anyhow::{Context as _, Result};
use cqrs_core::{AppendEvents, ExpectedVersion, NewEvent, RecordedEvent, StreamId, Version};
use cqrs_kafka::{IntegrationEvent, IntegrationMapper, MapError, Outgoing};
use cqrs_postgres::PgEventStore;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

/// The public contract.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Deposited {
    account: String,
    cents: u64,
    n: u64,
    memo: String,
}

impl IntegrationEvent for Deposited {
    const TYPE: &'static str = "bench.deposited.v1";
}

/// Maps every `Deposited` domain event to the contract on `topic`.
pub(crate) struct BenchMapper {
    pub(crate) topic: String,
}

impl IntegrationMapper for BenchMapper {
    fn event_types(&self) -> Vec<&'static str> {
        vec!["Deposited"]
    }

    fn map(&self, event: &RecordedEvent) -> Result<Option<Outgoing>, MapError> {
        let field = |name: &str| {
            event.payload[name]
                .as_u64()
                .ok_or_else(|| MapError::refused(format!("no {name}")))
        };
        let contract = Deposited {
            account: event.stream_id.instance().to_owned(),
            cents: field("cents")?,
            n: event.version.get(),
            memo: event.payload["memo"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        };
        Outgoing::of(self.topic.as_str(), &contract).map(Some)
    }
}

/// One domain event: about 100 bytes of JSON.
pub(crate) fn deposit(n: u64) -> NewEvent {
    NewEvent::new(
        "Deposited",
        1,
        serde_json::json!({ "cents": 100 + n % 900, "memo": format!("deposit number {n:>12} of the benchmark") }),
    )
}

/// Appends `events` over `streams` streams (50 per append, streams interleaved) on 8
/// concurrent clients.
pub(crate) async fn fill(store: &PgEventStore, events: u64, streams: u64) -> Result<()> {
    const PER_APPEND: u64 = 50;
    const CLIENTS: u64 = 8;
    let per_stream = events / streams;
    let mut tasks = JoinSet::new();
    for client in 0..CLIENTS {
        let store = store.clone();
        tasks.spawn(async move {
            let mut from = 1;
            while from <= per_stream {
                let to = (from + PER_APPEND - 1).min(per_stream);
                let mut account = client;
                while account < streams {
                    let stream = StreamId::new(format!("account-{account}"))?;
                    let batch = (from..=to).map(deposit).collect();
                    store
                        .append(
                            &stream,
                            ExpectedVersion::Exact(Version::new(from - 1)),
                            batch,
                        )
                        .await?;
                    account += CLIENTS;
                }
                from = to + 1;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.context("a filling client panicked")??;
    }
    Ok(())
}
