//! [`connect`]: a client for one node; and how the crate's types show a client in `Debug`
//! output without its secrets.

use std::fmt;
use std::time::Duration;

use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use elasticsearch::Elasticsearch;
use url::Url;

use crate::{EsError, Result};

/// A client for the node at `url` (`http://127.0.0.1:9200`), with a 30 s request timeout.
/// Elasticsearch 7 to 9 and OpenSearch 2 all answer it. For clusters, TLS or credentials, build
/// an [`Elasticsearch`] with its own `TransportBuilder` and pass that instead.
///
/// Nothing is sent yet, but a URL that could not reach a node is refused here, with
/// [`EsError::InvalidUrl`] saying why (its password masked): one without an `http://` or
/// `https://` scheme (`localhost:9200` would parse as the scheme `localhost`), or without a
/// host. A node that refuses connections fails the first request at once, with
/// [`EsError::Transport`] naming the URL and "Connection refused" (transient: worth retrying).
///
/// ```
/// let client = cqrs_elastic::connect("http://127.0.0.1:9200")?;
/// # let _ = client;
/// assert!(cqrs_elastic::connect("127.0.0.1:9200").is_err()); // no scheme
/// # Ok::<(), cqrs_elastic::EsError>(())
/// ```
pub fn connect(url: &str) -> Result<Elasticsearch> {
    let parsed = match Url::parse(url) {
        Ok(parsed) => parsed,
        // `127.0.0.1:9200` does not parse at all, but would with a scheme: say so.
        Err(url::ParseError::RelativeUrlWithoutBase)
            if Url::parse(&format!("http://{url}")).is_ok() =>
        {
            return Err(no_scheme(url));
        }
        Err(e) => return Err(e.into()),
    };
    check_url(url, &parsed)?;
    let pool = SingleNodeConnectionPool::new(parsed);
    let transport = TransportBuilder::new(pool)
        .timeout(Duration::from_secs(30))
        .build()?;
    Ok(Elasticsearch::new(transport))
}

/// Refuses a parsed URL that cannot reach a node.
fn check_url(given: &str, url: &Url) -> Result<()> {
    let problem = match url.scheme() {
        "http" | "https" if url.host_str().is_some_and(|h| !h.is_empty()) => return Ok(()),
        "http" | "https" => "it names no host".to_owned(),
        // `localhost:9200` parses with the scheme `localhost` and no host.
        _ if !given.contains("://") => return Err(no_scheme(given)),
        scheme => format!("the scheme {scheme} is not http or https"),
    };
    Err(EsError::InvalidUrl {
        url: shown(given),
        problem,
    })
}

/// The error for a URL written without its scheme.
fn no_scheme(given: &str) -> EsError {
    EsError::InvalidUrl {
        url: shown(given),
        problem: format!(
            "it has no scheme: write http://{} (or https://)",
            shown(given)
        ),
    }
}

/// `url` as an error may show it: its password masked, with or without a scheme.
fn shown(url: &str) -> String {
    if url.contains("://") {
        cqrs_core::redact_url(url)
    } else {
        let redacted = cqrs_core::redact_url(&format!("http://{url}"));
        redacted
            .strip_prefix("http://")
            .unwrap_or(&redacted)
            .to_owned()
    }
}

/// Stands for a client in the `Debug` output of the types that hold one: the client's own
/// `Debug` prints its credentials (Basic passwords, API keys, bearer tokens) and node URLs.
pub(crate) struct RedactedClient;

impl fmt::Debug for RedactedClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Elasticsearch { .. }")
    }
}
