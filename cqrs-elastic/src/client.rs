//! [`connect`]: a client for one node; and how the crate's types show a client in `Debug`
//! output without its secrets.

use std::fmt;
use std::time::Duration;

use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use elasticsearch::Elasticsearch;
use url::Url;

use crate::Result;

/// A client for the node at `url` (`http://127.0.0.1:9200`), with a 30 s request timeout.
/// Elasticsearch 7 to 9 and OpenSearch 2 all answer it. For clusters, TLS or credentials, build
/// an [`Elasticsearch`] with its own `TransportBuilder` and pass that instead.
///
/// ```
/// let client = cqrs_elastic::connect("http://127.0.0.1:9200")?;
/// # let _ = client;
/// # Ok::<(), cqrs_elastic::EsError>(())
/// ```
pub fn connect(url: &str) -> Result<Elasticsearch> {
    let pool = SingleNodeConnectionPool::new(Url::parse(url)?);
    let transport = TransportBuilder::new(pool)
        .timeout(Duration::from_secs(30))
        .build()?;
    Ok(Elasticsearch::new(transport))
}

/// Stands for a client in the `Debug` output of the types that hold one: the client's own
/// `Debug` prints its credentials (Basic passwords, API keys, bearer tokens) and node URLs.
pub(crate) struct RedactedClient;

impl fmt::Debug for RedactedClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Elasticsearch { .. }")
    }
}
