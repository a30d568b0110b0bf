//! Helpers for tests against a real node (feature `testing`): a read-model name no other test
//! uses, a client for the node in `ELASTICSEARCH_URL`, and deleting what a test created.
//!
//! ```no_run
//! # use cqrs_elastic::testing::TestNode;
//! # async fn test() -> Result<(), cqrs_elastic::EsError> {
//! let node = TestNode::from_env()?; // ELASTICSEARCH_URL, e.g. http://127.0.0.1:9200
//! let name = node.unique_name("balances"); // balances-t19c2f3a1b-...
//! // ... EsReadModel::new(node.client().clone(), Balances::named(&name)) ...
//! node.clean_up().await?; // deletes balances-..._v1, _v2... and so the alias
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use elasticsearch::indices::{IndicesDeleteParts, IndicesGetAliasParts, IndicesGetParts};
use elasticsearch::Elasticsearch;
use serde_json::Value;

use crate::client::RedactedClient;
use crate::index::validate_name;
use crate::{http, EsError, Result};

/// The variable [`TestNode::from_env`] reads.
pub const URL_VARIABLE: &str = "ELASTICSEARCH_URL";

/// A read-model name no other test, process or earlier run uses: `{prefix}-t{time}{n}`, in
/// lowercase (an alias must be). `prefix` should be short: names are at most 255 bytes.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{}-t{:x}{:08x}-{:x}-{n:x}",
        prefix.to_lowercase(),
        now.as_secs(),
        now.subsec_nanos(),
        std::process::id()
    )
}

/// A client for the test node and the names a test took on it, to delete at its end.
///
/// Its `Debug` output leaves the client out.
pub struct TestNode {
    client: Elasticsearch,
    names: Mutex<Vec<String>>,
}

impl fmt::Debug for TestNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestNode")
            .field("client", &RedactedClient)
            .field("names", &self.names)
            .finish()
    }
}

impl TestNode {
    /// The node in [`URL_VARIABLE`] (`ELASTICSEARCH_URL`). Fails with
    /// [`EsError::InvalidUrl`] when it is unset or unusable.
    pub fn from_env() -> Result<Self> {
        let url = std::env::var(URL_VARIABLE).map_err(|_| EsError::InvalidUrl {
            url: String::new(),
            problem: format!(
                "{URL_VARIABLE} is not set: point it at a test node, e.g. http://127.0.0.1:9200"
            ),
        })?;
        Ok(Self::new(crate::connect(&url)?))
    }

    /// The node `client` talks to.
    pub fn new(client: Elasticsearch) -> Self {
        Self {
            client,
            names: Mutex::new(Vec::new()),
        }
    }

    /// The client.
    pub fn client(&self) -> &Elasticsearch {
        &self.client
    }

    /// A [`unique_name`], remembered for [`clean_up`](Self::clean_up).
    pub fn unique_name(&self, prefix: &str) -> String {
        let name = unique_name(prefix);
        self.remember(name.clone());
        name
    }

    /// Remembers `name` (a read model the test made some other way) for
    /// [`clean_up`](Self::clean_up).
    pub fn remember(&self, name: String) {
        self.names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(name);
    }

    /// Deletes the indices of every name handed out or remembered: `{name}_v{n}` whatever
    /// their version and the index the alias `{name}` points to (which drops the alias). What is
    /// already gone is fine; names that are not read-model names are skipped. Call it at the
    /// end of a test; a test that panics earlier leaves its indices (their names say when
    /// they were made).
    pub async fn clean_up(&self) -> Result<()> {
        let names = std::mem::take(&mut *self.names.lock().unwrap_or_else(|p| p.into_inner()));
        for name in names.iter().filter(|name| validate_name(name).is_ok()) {
            // Exact names: a node may refuse wildcards in deletes (`destructive_requires_name`).
            let mut indices = self.aliased(name).await?;
            indices.extend(self.versions(name).await?);
            indices.sort();
            indices.dedup();
            if indices.is_empty() {
                continue;
            }
            let indices: Vec<&str> = indices.iter().map(String::as_str).collect();
            let response = self
                .client
                .indices()
                .delete(IndicesDeleteParts::Index(&indices))
                .ignore_unavailable(true)
                .allow_no_indices(true)
                .send()
                .await?;
            let (status, body) = http::json_any(response).await?;
            if !(200..300).contains(&status) && status != 404 {
                return Err(EsError::Status {
                    operation: "delete test indices",
                    status,
                    reason: http::reason(&body),
                });
            }
        }
        Ok(())
    }

    /// The indices named `{name}_v*`.
    async fn versions(&self, name: &str) -> Result<Vec<String>> {
        let pattern = format!("{name}_v*");
        let response = self
            .client
            .indices()
            .get(IndicesGetParts::Index(&[&pattern]))
            .allow_no_indices(true)
            .ignore_unavailable(true)
            .send()
            .await?;
        index_names(response).await
    }

    /// The indices the alias `name` points to (none when there is no such alias).
    async fn aliased(&self, name: &str) -> Result<Vec<String>> {
        let response = self
            .client
            .indices()
            .get_alias(IndicesGetAliasParts::Name(&[name]))
            .send()
            .await?;
        index_names(response).await
    }
}

/// The index names keying a 200 answer (none for any other answer).
async fn index_names(response: elasticsearch::http::response::Response) -> Result<Vec<String>> {
    let (status, body) = http::json_any(response).await?;
    Ok(match (status, body) {
        (200, Value::Object(indices)) => indices.keys().cloned().collect(),
        _ => Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_are_valid_read_model_names_and_differ() {
        let (a, b) = (unique_name("Loans"), unique_name("Loans"));
        assert_ne!(a, b);
        assert!(a.starts_with("loans-t"), "{a}");
        assert!(validate_name(&a).is_ok(), "{a}");
    }
}
