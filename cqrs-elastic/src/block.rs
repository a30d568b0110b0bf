//! The write block a rebuild puts on the serving index for its last catch-up and the alias
//! swap, and how a block left behind by a rebuild that never finished is found and released.
//!
//! The block (`index.blocks.write`) comes with a marker in the index's mapping `_meta`: which
//! rebuild holds it and until when. The rebuild renews the marker every third of its time to
//! live while it holds the block. A rebuild whose future is dropped releases the block from a
//! task it spawns; one that cannot (its process died, its runtime shut down) stops renewing,
//! and once the marker has expired the next rebuild, the live projector (on its next failed
//! write) or [`EsIndex::recover_write_block`] releases it. Clocks of the processes involved
//! must agree to within two thirds of the time to live.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use elasticsearch::indices::{
    IndicesGetMappingParts, IndicesGetSettingsParts, IndicesPutMappingParts,
    IndicesPutSettingsParts,
};
use elasticsearch::Elasticsearch;
use serde_json::{json, Value};

use crate::{http, EsError, EsIndex, Result};

/// The `_meta` key of the marker.
const MARKER: &str = "cqrs_rebuild_block";

/// A rebuild's write block on an index, as its marker tells.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteBlock {
    /// The blocked index.
    pub index: String,
    /// The rebuild holding it (its checkpoint name).
    pub owner: String,
    /// Until when the block holds unless its rebuild renews it, in milliseconds since the
    /// Unix epoch.
    pub until_ms: u64,
}

impl WriteBlock {
    /// Whether its rebuild stopped renewing it: it may be released.
    pub fn expired(&self) -> bool {
        now_ms() > self.until_ms
    }

    /// How it stands, for an error message or a status.
    fn describe(&self, released: bool) -> String {
        let now = now_ms();
        if released {
            let ago = now.saturating_sub(self.until_ms) / 1000;
            format!(
                "released: rebuild {} stopped renewing it {ago} s ago",
                self.owner
            )
        } else if now > self.until_ms {
            format!("rebuild {} stopped renewing it", self.owner)
        } else {
            let left = self.until_ms.saturating_sub(now).div_ceil(1000);
            format!(
                "held by rebuild {} until it swaps the alias (it expires in {left} s unless renewed)",
                self.owner
            )
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn until(ttl: Duration) -> u64 {
    now_ms().saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
}

/// Writes the marker of `owner` on `index`, good for `ttl`.
pub(crate) async fn mark(
    client: &Elasticsearch,
    index: &str,
    owner: &str,
    ttl: Duration,
) -> Result<()> {
    let body = json!({ "_meta": { MARKER: { "owner": owner, "until_ms": until(ttl) } } });
    put_mapping(client, index, body).await
}

/// Blocks writes to `index` for the rebuild `owner`: the marker first, so a block of ours
/// never exists without one; then the block's lock alias, which the swap takes away in the
/// same request as it moves the read model's alias (see [`lock_alias`]).
pub(crate) async fn hold(
    client: &Elasticsearch,
    index: &str,
    owner: &str,
    ttl: Duration,
) -> Result<()> {
    mark(client, index, owner, ttl).await?;
    set_blocked(client, index, true).await?;
    update_aliases(
        client,
        json!([{ "add": { "index": index, "alias": lock_alias(index) } }]),
    )
    .await
}

/// The alias on a blocked index that says its block still holds. A release takes it away
/// before it lets writes in, and the swap removes it (`must_exist`) in the one request that
/// moves the read model's alias: a rebuild that stalled after it checked its block swaps only
/// if nobody released the block meanwhile, or the serving index could take writes the swap
/// would leave behind. Not named after the read model, so no `{name}*` pattern matches it.
pub(crate) fn lock_alias(index: &str) -> String {
    format!("write-block.{index}")
}

/// Renews the marker every third of `ttl`; returns only when a renewal failed, or did not
/// succeed within a third of `ttl` (the marker might expire before the next one).
pub(crate) async fn renew(
    client: &Elasticsearch,
    index: &str,
    owner: &str,
    ttl: Duration,
) -> EsError {
    loop {
        tokio::time::sleep(ttl / 3).await;
        match tokio::time::timeout(ttl / 3, mark(client, index, owner, ttl)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return error,
            Err(_) => {
                return http::unexpected(
                    "put mapping",
                    format!(
                        "renewing the write block on {index} took over {:?}",
                        ttl / 3
                    ),
                )
            }
        }
    }
}

/// Allows writes to `index` again and removes the marker: the lock alias first (no swap can
/// happen once writes are let in), then the block (a marker without a block is harmless).
pub(crate) async fn release(client: &Elasticsearch, index: &str) -> Result<()> {
    update_aliases(
        client,
        json!([{ "remove": { "index": index, "alias": lock_alias(index), "must_exist": false } }]),
    )
    .await?;
    set_blocked(client, index, false).await?;
    put_mapping(client, index, json!({ "_meta": {} })).await
}

async fn update_aliases(client: &Elasticsearch, actions: Value) -> Result<()> {
    let response = client
        .indices()
        .update_aliases()
        .body(json!({ "actions": actions }))
        .send()
        .await?;
    http::json_ok(response, "update aliases").await.map(drop)
}

/// The rebuild write blocks on the indices behind `target` (an index or an alias): those
/// with a marker whose `index.blocks.write` is set.
pub(crate) async fn find(client: &Elasticsearch, target: &str) -> Result<Vec<WriteBlock>> {
    let response = client
        .indices()
        .get_mapping(IndicesGetMappingParts::Index(&[target]))
        .filter_path(&["*.mappings._meta"])
        .send()
        .await?;
    let mappings = http::json_ok(response, "get mapping").await?;
    let Some(indices) = mappings.as_object() else {
        return Ok(Vec::new());
    };
    let mut blocks = Vec::new();
    for (index, mapping) in indices {
        let marker = &mapping["mappings"]["_meta"][MARKER];
        let (Some(owner), Some(until_ms)) = (marker["owner"].as_str(), marker["until_ms"].as_u64())
        else {
            continue;
        };
        if is_blocked(client, index).await? {
            blocks.push(WriteBlock {
                index: index.clone(),
                owner: owner.to_owned(),
                until_ms,
            });
        }
    }
    Ok(blocks)
}

/// Releases the expired rebuild blocks behind `target` and describes the blocks found, as an
/// error for the projector to report (`None` when there is no rebuild block, or when looking
/// failed: the caller's own error stands then).
pub(crate) async fn recover(client: &Elasticsearch, target: &str) -> Option<EsError> {
    let blocks = match find(client, target).await {
        Ok(blocks) => blocks,
        Err(error) => {
            tracing::debug!(%error, target, "could not look for a rebuild's write block");
            return None;
        }
    };
    let block = blocks.into_iter().next()?;
    let mut released = false;
    if block.expired() {
        match release(client, &block.index).await {
            Ok(()) => {
                tracing::warn!(index = %block.index, owner = %block.owner,
                    "released the write block of a rebuild that stopped renewing it");
                released = true;
            }
            Err(error) => tracing::warn!(%error, index = %block.index,
                "could not release an expired rebuild write block"),
        }
    }
    Some(EsError::WriteBlocked {
        state: block.describe(released),
        index: block.index,
    })
}

async fn is_blocked(client: &Elasticsearch, index: &str) -> Result<bool> {
    let response = client
        .indices()
        .get_settings(IndicesGetSettingsParts::IndexName(
            &[index],
            &["index.blocks.write"],
        ))
        .flat_settings(true)
        .send()
        .await?;
    let answer = http::json_ok(response, "get settings").await?;
    let setting = &answer[index]["settings"]["index.blocks.write"];
    Ok(setting == &json!("true") || setting == &json!(true))
}

async fn set_blocked(client: &Elasticsearch, index: &str, blocked: bool) -> Result<()> {
    let response = client
        .indices()
        .put_settings(IndicesPutSettingsParts::Index(&[index]))
        .body(json!({ "index": { "blocks": { "write": blocked } } }))
        .send()
        .await?;
    http::json_ok(response, "put settings").await.map(drop)
}

async fn put_mapping(client: &Elasticsearch, index: &str, body: Value) -> Result<()> {
    let response = client
        .indices()
        .put_mapping(IndicesPutMappingParts::Index(&[index]))
        .body(body)
        .send()
        .await?;
    http::json_ok(response, "put mapping").await.map(drop)
}

/// Releases a rebuild's block from a task of its own if the rebuild's future is dropped
/// while it holds it (a cancelled rebuild). Disarmed once the rebuild releases the block
/// itself or swapped the alias away from the blocked index.
pub(crate) struct BlockGuard {
    client: Option<Elasticsearch>,
    index: String,
}

impl BlockGuard {
    /// A guard of the block on `index`.
    pub(crate) fn new(client: Elasticsearch, index: String) -> Self {
        Self {
            client: Some(client),
            index,
        }
    }

    /// The rebuild took care of the block.
    pub(crate) fn disarm(mut self) {
        self.client = None;
    }
}

impl Drop for BlockGuard {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        let index = std::mem::take(&mut self.index);
        // Without a runtime (or in one shutting down) nothing runs: the marker expires and
        // the block is released by whoever meets it next.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                match release(&client, &index).await {
                    Ok(()) => {
                        tracing::info!(%index, "released the write block of a cancelled rebuild")
                    }
                    Err(error) => tracing::warn!(%error, %index,
                        "could not release the write block of a cancelled rebuild; it expires"),
                }
            });
        }
    }
}

impl EsIndex {
    /// The write block a rebuild holds on the index behind the alias, if any: a rebuild holds
    /// one during its last catch-up and the alias swap, and the live projector's writes wait
    /// meanwhile. One that is [`expired`](WriteBlock::expired) was left by a rebuild that
    /// died; for health checks.
    pub async fn write_block(&self) -> Result<Option<WriteBlock>> {
        Ok(find(&self.client, self.name()).await?.into_iter().next())
    }

    /// Releases the write block a rebuild that died left on the index behind the alias (an
    /// expired one); `true` if there was one. The live projector does this by itself on its
    /// next failed write and the next rebuild on its start; a service can call it on start-up.
    pub async fn recover_write_block(&self) -> Result<bool> {
        let mut released = false;
        for block in find(&self.client, self.name()).await? {
            if block.expired() {
                release(&self.client, &block.index).await?;
                released = true;
            }
        }
        Ok(released)
    }
}
