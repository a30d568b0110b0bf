//! The crate's error type, [`EsError`], and how it is classified ([`EsError::kind`]).
//!
//! Every message is whole on its own: a variant that wraps a cause ends with the cause's text
//! (its `source()` still returns the cause), and no message shows a password.

use cqrs_core::projection::ProjectionError;
use cqrs_core::ErrorKind;

/// Everything that can go wrong talking to the search server or driving a read model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EsError {
    /// The request did not get an answer: connection refused, timeout, TLS, or a body that did
    /// not decode. The message names the request's URL and the cause ("Connection refused").
    #[error("request to the search server failed: {}", redact_urls(&chain(.0)))]
    Transport(#[from] elasticsearch::Error),
    /// The server answered with an error status.
    #[error("{operation} answered HTTP {status}: {reason}")]
    Status {
        /// What was asked (`"bulk"`, `"search"`, ...).
        operation: &'static str,
        /// The HTTP status.
        status: u16,
        /// The server's error type and reason, when it gave them.
        reason: String,
    },
    /// The server answered 2xx with a body of an unexpected shape.
    #[error("unexpected answer to {operation}: {detail}")]
    UnexpectedResponse {
        /// What was asked.
        operation: &'static str,
        /// What was wrong with the answer.
        detail: String,
    },
    /// A stored document did not deserialize into the read model's type.
    #[error("document {id} does not decode into the read model's type: {source}")]
    Decode {
        /// The document's id.
        id: String,
        /// Serde's error.
        #[source]
        source: serde_json::Error,
    },
    /// A document did not serialize, or not into a JSON object.
    #[error("document {id} does not encode as a JSON object{}", .source.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    Encode {
        /// The document's id.
        id: String,
        /// Serde's error, when serde failed (absent when the value was not an object).
        #[source]
        source: Option<serde_json::Error>,
    },
    /// A read-model name is not usable as an index alias.
    #[error("invalid read-model name {0:?}: use lowercase letters, digits, `-`, `_` and `.`, starting with a letter or digit")]
    InvalidName(String),
    /// The mappings were not a JSON object of field definitions, or used the reserved field.
    #[error("invalid mappings: {0}")]
    InvalidMappings(String),
    /// The index the alias points to cannot take the read model's mappings in place: a field
    /// changed its type or parameters. A field added is mapped in place by
    /// [`EsIndex::ensure`](crate::EsIndex::ensure); a change needs a rebuild into a new
    /// version ([`EsIndex::rebuild`](crate::EsIndex::rebuild)), whose index is created with
    /// the new mappings.
    #[error("the mappings of {index} cannot change in place ({reason}): rebuild the read model into a new version, created with the new mappings")]
    MappingsConflict {
        /// The index the alias points to.
        index: String,
        /// What the node said.
        reason: String,
    },
    /// The read model's alias does not exist (call [`EsIndex::ensure`](crate::EsIndex::ensure)).
    #[error("alias {alias} does not exist")]
    AliasMissing {
        /// The alias.
        alias: String,
    },
    /// The read model's name is held by something other than our alias over `{name}_v{n}`.
    #[error("{name} is not an alias over one versioned index: {detail}")]
    UnexpectedLayout {
        /// The read model's name.
        name: String,
        /// What was found.
        detail: String,
    },
    /// The index is write-blocked by a rebuild (see [`WriteBlock`](crate::WriteBlock)): held
    /// for its last catch-up and the alias swap, or left by a rebuild that died (then
    /// released). Transient: writes go on once the alias is swapped or the block released.
    #[error("index {index} is write-blocked by a rebuild: {state}")]
    WriteBlocked {
        /// The blocked index.
        index: String,
        /// Who holds it and until when, or that it was released.
        state: String,
    },
    /// The event store or checkpoint store failed during a rebuild. Transient when the store's
    /// error is ([`cqrs_core::Error::is_transient`]).
    #[error("event store failed: {0}")]
    Store(#[from] cqrs_core::Error),
    /// A rebuild's projector failed (poison events, or transient failures past the retries).
    #[error("projection failed: {}", projection_text(.0))]
    Projection(#[from] ProjectionError),
    /// A server URL did not parse.
    #[error("invalid server url: {0}")]
    Url(#[from] url::ParseError),
    /// A server URL parsed but cannot reach a node: no `http://` or `https://` scheme, or no
    /// host. Refused by [`connect`](crate::connect) before any request.
    #[error("invalid server url {url}: {problem}")]
    InvalidUrl {
        /// The URL as given, its password masked.
        url: String,
        /// What is wrong with it, and how to write it.
        problem: String,
    },
    /// The HTTP client could not be built.
    #[error("could not build the http client: {0}")]
    Build(#[from] elasticsearch::http::transport::BuildError),
}

impl EsError {
    /// The HTTP status of an error answer, if the server gave one.
    pub fn status(&self) -> Option<u16> {
        match self {
            EsError::Status { status, .. } => Some(*status),
            EsError::Transport(e) => e.status_code().map(|s| s.as_u16()),
            _ => None,
        }
    }

    /// What kind of failure it is, in the core's terms, so that code handling
    /// [`cqrs_core::Error`] and this error decides the same way:
    ///
    /// - [`ErrorKind::Unavailable`]: no answer (connection refused, timeout), HTTP 408, 429 or
    ///   5xx, a rebuild's write block, a transient projector failure, or a store error that is
    ///   itself unavailable. Worth retrying with backoff.
    /// - [`ErrorKind::Conflict`]: HTTP 409.
    /// - [`ErrorKind::InvalidInput`]: a read-model name, mappings or server URL that cannot be
    ///   used, or an HTTP client that cannot be built from the settings given.
    /// - [`ErrorKind::Data`]: a document that does not decode or encode.
    /// - [`ErrorKind::ProjectionFailed`]: poison events stopped a rebuild.
    /// - [`ErrorKind::Backend`]: anything else the server answered that a retry will not cure
    ///   (another 4xx, an unexpected answer, a missing alias, a foreign index layout).
    /// - a store error keeps its own kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            EsError::Transport(e) if e.is_json() => ErrorKind::Backend,
            EsError::Transport(_) => ErrorKind::Unavailable,
            EsError::Status { status, .. } if is_transient_status(*status) => {
                ErrorKind::Unavailable
            }
            EsError::Status { status: 409, .. } => ErrorKind::Conflict,
            EsError::WriteBlocked { .. } => ErrorKind::Unavailable,
            EsError::Store(e) => e.kind(),
            EsError::Projection(ProjectionError::Transient(_)) => ErrorKind::Unavailable,
            EsError::Projection(_) => ErrorKind::ProjectionFailed,
            EsError::Decode { .. } | EsError::Encode { .. } => ErrorKind::Data,
            EsError::InvalidName(_)
            | EsError::InvalidMappings(_)
            | EsError::MappingsConflict { .. }
            | EsError::Url(_)
            | EsError::InvalidUrl { .. }
            | EsError::Build(_) => ErrorKind::InvalidInput,
            EsError::Status { .. }
            | EsError::UnexpectedResponse { .. }
            | EsError::AliasMissing { .. }
            | EsError::UnexpectedLayout { .. } => ErrorKind::Backend,
        }
    }

    /// Whether a retry may cure it: [`kind`](Self::kind) is [`ErrorKind::Unavailable`] (no
    /// answer at all, 408, 429 or a 5xx, a write block, a store that is unavailable).
    pub fn is_transient(&self) -> bool {
        self.kind() == ErrorKind::Unavailable
    }
}

/// An error and its causes, each cause once, joined by `": "`.
pub(crate) use cqrs_core::error_chain as chain;

/// `text` with the password of every URL in it masked (`http://user:****@host`).
pub(crate) fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(scheme_end) = rest.find("://") {
        let authority_start = scheme_end + 3;
        let tail = &rest[authority_start..];
        let authority_len = tail
            .find(['/', '?', '#', ' ', ')', '"', '\''])
            .unwrap_or(tail.len());
        out.push_str(&rest[..authority_start]);
        let authority = &tail[..authority_len];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                out.push_str(&authority[..colon]);
                out.push_str(":****");
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &tail[authority_len..];
    }
    out.push_str(rest);
    out
}

/// A projection error's text with its cause: the first poison event and why, or the cause of
/// a transient failure.
fn projection_text(error: &ProjectionError) -> String {
    match error {
        ProjectionError::Poison(rejected) => match rejected.first() {
            Some(first) => format!("{error}, the first at {}: {}", first.position, first.error),
            None => error.to_string(),
        },
        other => chain(other),
    }
}

/// Whether an HTTP status is worth a retry.
pub(crate) fn is_transient_status(status: u16) -> bool {
    status == 408 || status == 429 || status >= 500
}

/// `Result` with this crate's [`EsError`].
pub type Result<T, E = EsError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_in_messages_lose_their_passwords() {
        assert_eq!(
            redact_urls("error sending request for url (http://elastic:s3cret@node:9200/x/_doc/1)"),
            "error sending request for url (http://elastic:****@node:9200/x/_doc/1)"
        );
        assert_eq!(
            redact_urls("a https://node:9200/ and http://u@h b"),
            "a https://node:9200/ and http://u@h b"
        );
    }

    #[test]
    fn classification_follows_the_core_kinds() {
        let status = |status| EsError::Status {
            operation: "bulk",
            status,
            reason: String::new(),
        };
        assert_eq!(status(429).kind(), ErrorKind::Unavailable);
        assert_eq!(status(503).kind(), ErrorKind::Unavailable);
        assert_eq!(status(409).kind(), ErrorKind::Conflict);
        assert_eq!(status(400).kind(), ErrorKind::Backend);
        let unavailable = EsError::Store(cqrs_core::Error::unavailable("pool timed out"));
        assert!(unavailable.is_transient());
        assert_eq!(
            unavailable.to_string(),
            "event store failed: event store backend unavailable: pool timed out"
        );
        let failed = EsError::Store(cqrs_core::Error::backend("syntax error"));
        assert!(!failed.is_transient(), "a backend failure is not retried");
        let poison = EsError::Projection(ProjectionError::Poison(vec![
            cqrs_core::projection::Rejected::new(cqrs_core::Position::from_parts(3, 0), "bad"),
        ]));
        assert_eq!(poison.kind(), ErrorKind::ProjectionFailed);
        assert!(poison.to_string().ends_with(": bad"), "{poison}");
    }
}
