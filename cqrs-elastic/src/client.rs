//! [`connect`]: a client for one node.

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
