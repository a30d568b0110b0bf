//! The raw `_bulk` ceiling: for each batch of the feed, the documents as they stand after it,
//! in the projector's stored shape, indexed with plain `index` actions (no `_mget`, no fold at
//! write time, no preconditions), one `_bulk` per batch.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context as _, Result};
use cqrs_core::{Position, RecordedEvent};
use cqrs_elastic::{Change, ElasticProjection, EsReadModel};
use serde_json::json;

use crate::model::{AccountView, Accounts, Expected};
use crate::node::Node;

/// One batch's `_bulk` body.
pub(crate) struct RawBatch {
    body: String,
    /// The documents written, in order.
    ids: Vec<String>,
}

/// Folds `feed` batch by batch with the read model's own `apply`, and writes each batch's
/// touched documents into a body. Fails unless the fold is `expected`.
pub(crate) fn bodies(feed: &[Vec<RecordedEvent>], expected: &Expected) -> Result<Vec<RawBatch>> {
    let projection = Accounts::new("raw");
    let mut state: HashMap<String, AccountView> = HashMap::new();
    let mut batches = Vec::with_capacity(feed.len());
    for events in feed {
        // Each touched document once, in first-touch order, with its last event's position.
        let mut touched: Vec<(String, Position)> = Vec::new();
        let mut slot: HashMap<String, usize> = HashMap::new();
        for event in events {
            let id = projection
                .document_id(event)
                .map_err(|e| anyhow!(e))?
                .context("an event without a document")?;
            let view = match projection
                .apply(state.get(&id), event)
                .map_err(|e| anyhow!(e))?
            {
                Change::Upsert(view) => view,
                other => bail!("event {} changed {id} by {other:?}", event.position),
            };
            state.insert(id.clone(), view);
            match slot.get(&id) {
                Some(&at) => touched[at].1 = event.position,
                None => {
                    slot.insert(id.clone(), touched.len());
                    touched.push((id, event.position));
                }
            }
        }
        let mut body = String::with_capacity(touched.len() * 200);
        for (id, position) in &touched {
            let source = state[id].stored_source(id, *position)?;
            writeln!(body, "{}", json!({ "index": { "_id": id } }))?;
            writeln!(body, "{source}")?;
        }
        let ids = touched.into_iter().map(|(id, _)| id).collect();
        batches.push(RawBatch { body, ids });
    }
    ensure!(
        state.len() == expected.iter().count()
            && expected
                .iter()
                .all(|(id, view)| state.get(id) == Some(view)),
        "the fold of the feed is not the documents the fill wrote"
    );
    Ok(batches)
}

/// The documents of `expected` as they stand, `chunk` per body (to seed an index directly).
pub(crate) fn documents(expected: &Expected, chunk: usize) -> Result<Vec<RawBatch>> {
    let all: Vec<_> = expected.iter().collect();
    let mut batches = Vec::new();
    for part in all.chunks(chunk.max(1)) {
        let mut body = String::with_capacity(part.len() * 200);
        for (id, view) in part {
            writeln!(body, "{}", json!({ "index": { "_id": id } }))?;
            writeln!(body, "{}", view.stored_source(id, Position::START)?)?;
        }
        let ids = part.iter().map(|(id, _)| (*id).clone()).collect();
        batches.push(RawBatch { body, ids });
    }
    Ok(batches)
}

/// Each batch split into up to `parts` bodies of at least 100 documents each, as
/// `EsProjector::parallel_bulks` splits its writes.
pub(crate) fn split(batches: &[RawBatch], parts: usize) -> Vec<Vec<RawBatch>> {
    batches
        .iter()
        .map(|batch| {
            let count = (batch.ids.len() / 100).clamp(1, parts.max(1));
            let size = batch.ids.len().div_ceil(count).max(1);
            let lines: Vec<&str> = batch.body.lines().collect();
            lines
                .chunks(2 * size)
                .zip(batch.ids.chunks(size))
                .map(|(lines, ids)| RawBatch {
                    body: lines.iter().flat_map(|line| [*line, "\n"]).collect(),
                    ids: ids.to_vec(),
                })
                .collect()
        })
        .collect()
}

/// Writes each batch's parts into `name` at once, one batch after another, refreshing once
/// after each batch's bulks when `refresh` (as often as [`write()`] does); the time taken.
pub(crate) async fn write_parallel(
    node: &Node,
    name: &str,
    batches: &[Vec<RawBatch>],
    refresh: bool,
) -> Result<Duration> {
    let started = Instant::now();
    for parts in batches {
        let writes = parts
            .iter()
            .map(|part| node.bulk(name, &part.body, part.ids.len(), false));
        for written in futures_util::future::join_all(writes).await {
            written?;
        }
        if refresh {
            node.refresh(name).await?;
        }
    }
    Ok(started.elapsed())
}

/// Documents written per batch, on average.
pub(crate) fn mean_documents(batches: &[RawBatch]) -> f64 {
    let documents: usize = batches.iter().map(|b| b.ids.len()).sum();
    documents as f64 / batches.len().max(1) as f64
}

/// Creates the read model `name`: alias and index, with the projector's mappings.
pub(crate) async fn create(node: &Node, name: &str) -> Result<()> {
    EsReadModel::new(node.client().clone(), Accounts::new(name))?
        .ensure()
        .await?;
    Ok(())
}

/// Writes `batches` into `name`, one `_bulk` per batch, with `refresh=true` (one refresh per
/// batch) when `refresh`; the time taken.
pub(crate) async fn write(
    node: &Node,
    name: &str,
    batches: &[RawBatch],
    refresh: bool,
) -> Result<Duration> {
    let started = Instant::now();
    for batch in batches {
        node.bulk(name, &batch.body, batch.ids.len(), refresh)
            .await?;
    }
    Ok(started.elapsed())
}

/// Reads each batch's documents back from `name` with one `_mget` per batch, as the projector
/// does before each write; the time taken.
pub(crate) async fn mget(node: &Node, name: &str, batches: &[RawBatch]) -> Result<Duration> {
    let started = Instant::now();
    for batch in batches {
        node.mget(name, &batch.ids).await?;
    }
    Ok(started.elapsed())
}
