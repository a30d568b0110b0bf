//! A small typed client for [Toxiproxy](https://github.com/Shopify/toxiproxy)'s HTTP API (the
//! fault-injecting TCP proxy the chaos tests put between the framework and its servers):
//! [`Toxiproxy`] creates a [`Proxy`] to an upstream on a free port, the proxy takes and drops
//! [`Toxic`]s (latency, bandwidth, resets, timeouts, cut bodies), is disabled and enabled, and
//! is deleted when dropped.
//!
//! The calls are blocking HTTP/1.0 requests on a local socket (a millisecond each), so a
//! guard can delete its proxy in `Drop`, inside or outside a runtime.

mod http;
mod proxy;
mod toxic;

use serde_json::{json, Value};

pub use proxy::Proxy;
pub use toxic::{Direction, Toxic};

/// Why a Toxiproxy call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ToxiproxyError {
    /// `TOXIPROXY_URL` is not a plain `http://host:port` URL.
    #[error("toxiproxy url {url} is not http://host:port")]
    InvalidUrl {
        /// The URL, password masked.
        url: String,
    },
    /// The API could not be reached, or the connection broke.
    #[error("toxiproxy at {address} did not answer")]
    Unreachable {
        /// Where it was called.
        address: String,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// The API answered with an error status.
    #[error("toxiproxy answered {status} to {request}: {body}")]
    Refused {
        /// The request line (method and path).
        request: String,
        /// The HTTP status.
        status: u16,
        /// Its body (Toxiproxy's error message).
        body: String,
    },
    /// The API answered something that is not the JSON it documents.
    #[error("toxiproxy answered {request} with an unexpected body: {body}")]
    Malformed {
        /// The request line (method and path).
        request: String,
        /// The body.
        body: String,
    },
}

impl ToxiproxyError {
    /// Whether a retry may succeed (the API was unreachable).
    pub fn is_transient(&self) -> bool {
        matches!(self, ToxiproxyError::Unreachable { .. })
    }
}

/// A Toxiproxy server's API.
#[derive(Clone, Debug)]
pub struct Toxiproxy {
    address: String,
}

impl Toxiproxy {
    /// The server at `url` (`http://host:port`).
    pub fn new(url: &str) -> Result<Self, ToxiproxyError> {
        let invalid = || ToxiproxyError::InvalidUrl {
            url: cqrs_core::redact_url(url),
        };
        let parsed = url::Url::parse(url).map_err(|_| invalid())?;
        let host = parsed.host_str().ok_or_else(invalid)?;
        if parsed.scheme() != "http" || !parsed.username().is_empty() {
            return Err(invalid());
        }
        let port = parsed.port_or_known_default().ok_or_else(invalid)?;
        Ok(Self {
            address: format!("{host}:{port}"),
        })
    }

    /// The server of `TOXIPROXY_URL`. Panics with what to do when it is not set or does not
    /// answer: a chaos test never passes without its proxy.
    pub fn from_env() -> Self {
        let url = std::env::var("TOXIPROXY_URL").unwrap_or_else(|_| {
            panic!(
                "TOXIPROXY_URL is not set. The chaos tests need a Toxiproxy: run scripts/test.sh \
                 (which starts one), or `eval \"export $(scripts/toxiproxy.sh start | tail -n1)\"` \
                 first"
            )
        });
        let toxiproxy = Self::new(&url).unwrap_or_else(|e| panic!("TOXIPROXY_URL: {e}"));
        if let Err(e) = toxiproxy.version() {
            panic!("TOXIPROXY_URL={}: {e}", cqrs_core::redact_url(&url));
        }
        toxiproxy
    }

    /// The server's version string (a health check).
    pub fn version(&self) -> Result<String, ToxiproxyError> {
        let (_, body) = http::call(&self.address, "GET", "/version", None)?;
        Ok(body.trim().to_owned())
    }

    /// A proxy named `name` listening on a free port of 127.0.0.1 and forwarding to
    /// `upstream` (`host:port`), enabled, without toxics. Deleted when the guard is dropped.
    pub fn create_proxy(&self, name: &str, upstream: &str) -> Result<Proxy, ToxiproxyError> {
        let body = json!({
            "name": name,
            "listen": "127.0.0.1:0",
            "upstream": upstream,
            "enabled": true,
        });
        let request = "POST /proxies";
        let (_, answer) = http::call(&self.address, "POST", "/proxies", Some(&body))?;
        let listen = serde_json::from_str::<Value>(&answer)
            .ok()
            .and_then(|v| v["listen"].as_str().map(str::to_owned))
            .ok_or_else(|| ToxiproxyError::Malformed {
                request: request.to_owned(),
                body: answer.clone(),
            })?;
        Ok(Proxy::new(self.address.clone(), name, upstream, listen))
    }
}

#[cfg(test)]
mod tests {
    use super::{Toxiproxy, ToxiproxyError};

    #[test]
    fn a_url_that_is_not_plain_http_is_refused_without_its_password() {
        assert!(Toxiproxy::new("http://127.0.0.1:8474").is_ok());
        for url in [
            "https://127.0.0.1:8474",
            "http://admin:s3cret@127.0.0.1:8474",
            "127.0.0.1:8474",
        ] {
            let error = Toxiproxy::new(url).expect_err(url);
            assert!(
                matches!(error, ToxiproxyError::InvalidUrl { .. }),
                "{error:?}"
            );
            assert!(!error.to_string().contains("s3cret"), "{error}");
            assert!(!format!("{error:?}").contains("s3cret"), "{error:?}");
            assert!(!error.is_transient());
        }
    }

    #[test]
    fn an_api_that_does_not_answer_is_a_transient_error() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = closed.local_addr().expect("its address").port();
        drop(closed);
        let error = Toxiproxy::new(&format!("http://127.0.0.1:{port}"))
            .expect("a valid url")
            .version()
            .expect_err("nothing listens");
        assert!(error.is_transient(), "{error:?}");
    }
}
