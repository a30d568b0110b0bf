//! Moving a rebuilt index's primary terms past the serving index's.
//!
//! A live projector remembers each document with the write conditions the serving index gave
//! it (`if_seq_no`, `if_primary_term`), and writes through the alias. Sequence numbers and
//! primary terms count per index, and a new index starts them anew: after the swap, a
//! condition remembered from the old index could match a rebuilt document and overwrite it
//! with the old index's state. A condition matches only with an equal primary term, so the
//! rebuild closes and opens the new index (each time its shards take a higher term), before
//! anything is written into it, until its lowest term is above the old index's highest: no
//! remembered condition can match, the write is refused as a conflict, and the projector reads
//! the rebuilt document. (A primary of the old index failing over during the rebuild, twice or
//! more, could raise its terms to the new index's: then a condition could match again.)

use elasticsearch::cluster::ClusterStateParts;
use elasticsearch::indices::{IndicesCloseParts, IndicesOpenParts};
use serde_json::Value;

use crate::{http, EsIndex, Result};

impl EsIndex {
    /// Closes and opens `filling` until its primary terms are all above `serving`'s. Each
    /// round raises them (by two on OpenSearch 2.19, in about 0.1 s on an empty index); the
    /// serving index's terms are the last rebuild's, so the rounds grow by about one per
    /// rebuild. A round that raises nothing is an error, not a loop.
    pub(crate) async fn outrun_primary_terms(&self, serving: &str, filling: &str) -> Result<()> {
        let past = self.primary_terms(serving).await?.into_iter().max();
        let past = past.unwrap_or(0);
        let mut before = None;
        loop {
            let lowest = self.primary_terms(filling).await?.into_iter().min();
            if lowest.is_some_and(|lowest| lowest > past) {
                return Ok(());
            }
            if before.is_some() && lowest <= before {
                return Err(http::unexpected(
                    "primary terms",
                    format!("closing and opening {filling} did not raise its primary terms"),
                ));
            }
            before = lowest;
            let response = (self.client.indices())
                .close(IndicesCloseParts::Index(&[filling]))
                .send()
                .await?;
            http::json_ok(response, "close index").await?;
            self.open_index(filling).await?;
        }
    }

    /// Opens `index`; an open one stays as it is.
    pub(crate) async fn open_index(&self, index: &str) -> Result<()> {
        let response = (self.client.indices())
            .open(IndicesOpenParts::Index(&[index]))
            .send()
            .await?;
        http::json_ok(response, "open index").await?;
        Ok(())
    }

    /// The primary term of each shard of `index`, from the cluster state's metadata.
    async fn primary_terms(&self, index: &str) -> Result<Vec<u64>> {
        let response = (self.client.cluster())
            .state(ClusterStateParts::MetricIndex(&["metadata"], &[index]))
            .filter_path(&["metadata.indices.*.primary_terms"])
            .send()
            .await?;
        let answer = http::json_ok(response, "cluster state").await?;
        let terms = answer
            .pointer("/metadata/indices")
            .and_then(|indices| indices.get(index))
            .and_then(|found| found.get("primary_terms"))
            .and_then(Value::as_object)
            .ok_or_else(|| {
                http::unexpected("cluster state", format!("no primary terms of {index}"))
            })?;
        if terms.is_empty() {
            return Err(http::unexpected(
                "cluster state",
                format!("{index} has no shards"),
            ));
        }
        terms
            .values()
            .map(|term| {
                term.as_u64().ok_or_else(|| {
                    http::unexpected(
                        "cluster state",
                        format!("a primary term of {index}: {term}"),
                    )
                })
            })
            .collect()
    }
}
