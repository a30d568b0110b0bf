//! [`Toxic`]: the faults a proxy can inject, typed, and the JSON Toxiproxy takes for each.

use std::time::Duration;

use serde_json::{json, Value};

/// Which way a toxic acts on the traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Direction {
    /// Server to client (answers, query results, bulk replies).
    Downstream,
    /// Client to server (statements, bulk bodies).
    Upstream,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Downstream => "downstream",
            Direction::Upstream => "upstream",
        }
    }
}

/// A fault, as Toxiproxy injects it on every connection through the proxy.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Toxic {
    /// Delays data by `latency`, give or take up to `jitter`.
    Latency {
        /// The delay.
        latency: Duration,
        /// The random spread around it.
        jitter: Duration,
    },
    /// Lets through at most `kb_per_sec` kilobytes a second.
    Bandwidth {
        /// The rate, in KB/s.
        kb_per_sec: u64,
    },
    /// Resets connections (TCP RST) after `after` (zero: at once, on their next data).
    ResetPeer {
        /// How long a connection lives first.
        after: Duration,
    },
    /// Stops all data and closes the connection after `after` (never closes when zero: the
    /// client hangs until its own timeout).
    Timeout {
        /// How long until the connection is closed.
        after: Duration,
    },
    /// Closes each connection once `bytes` bytes went through it.
    LimitData {
        /// The bytes a connection may carry.
        bytes: u64,
    },
}

impl Toxic {
    /// Toxiproxy's type name.
    pub fn kind(&self) -> &'static str {
        match self {
            Toxic::Latency { .. } => "latency",
            Toxic::Bandwidth { .. } => "bandwidth",
            Toxic::ResetPeer { .. } => "reset_peer",
            Toxic::Timeout { .. } => "timeout",
            Toxic::LimitData { .. } => "limit_data",
        }
    }

    fn attributes(&self) -> Value {
        let ms = |d: &Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        match self {
            Toxic::Latency { latency, jitter } => {
                json!({ "latency": ms(latency), "jitter": ms(jitter) })
            }
            Toxic::Bandwidth { kb_per_sec } => json!({ "rate": kb_per_sec }),
            Toxic::ResetPeer { after } | Toxic::Timeout { after } => {
                json!({ "timeout": ms(after) })
            }
            Toxic::LimitData { bytes } => json!({ "bytes": bytes }),
        }
    }

    /// The body of the request that adds this toxic as `name`, acting `direction`.
    pub(super) fn body(&self, name: &str, direction: Direction) -> Value {
        json!({
            "name": name,
            "type": self.kind(),
            "stream": direction.as_str(),
            "toxicity": 1.0,
            "attributes": self.attributes(),
        })
    }
}

impl std::fmt::Display for Toxic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Toxic::Latency { latency, jitter } => {
                write!(f, "latency {latency:?} +/- {jitter:?}")
            }
            Toxic::Bandwidth { kb_per_sec } => write!(f, "bandwidth {kb_per_sec} KB/s"),
            Toxic::ResetPeer { after } => write!(f, "reset_peer after {after:?}"),
            Toxic::Timeout { after } => write!(f, "timeout after {after:?}"),
            Toxic::LimitData { bytes } => write!(f, "limit_data {bytes} bytes"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::{Direction, Toxic};

    #[test]
    fn a_toxic_becomes_the_json_toxiproxy_documents() {
        let latency = Toxic::Latency {
            latency: Duration::from_millis(40),
            jitter: Duration::from_millis(15),
        };
        assert_eq!(
            latency.body("slow", Direction::Downstream),
            json!({
                "name": "slow", "type": "latency", "stream": "downstream", "toxicity": 1.0,
                "attributes": { "latency": 40, "jitter": 15 }
            })
        );
        let cut = Toxic::LimitData { bytes: 4096 };
        assert_eq!(
            cut.body("cut", Direction::Upstream)["attributes"],
            json!({ "bytes": 4096 })
        );
        assert_eq!(cut.to_string(), "limit_data 4096 bytes");
    }
}
