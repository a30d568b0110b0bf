//! The crate's error type, [`EsError`].

use cqrs_core::projection::ProjectionError;

/// Everything that can go wrong talking to the search server or driving a read model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EsError {
    /// The request did not get an answer: connection refused, timeout, TLS, or a body that did
    /// not decode.
    #[error("request to the search server failed")]
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
    #[error("document {id} does not decode into the read model's type")]
    Decode {
        /// The document's id.
        id: String,
        /// Serde's error.
        #[source]
        source: serde_json::Error,
    },
    /// A document did not serialize, or not into a JSON object.
    #[error("document {id} does not encode as a JSON object")]
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
    /// The event store or checkpoint store failed during a rebuild.
    #[error("event store failed")]
    Store(#[from] cqrs_core::Error),
    /// A rebuild's projector failed (poison events, or transient failures past the retries).
    #[error("projection failed")]
    Projection(#[from] ProjectionError),
    /// A server URL did not parse.
    #[error("invalid server url")]
    Url(#[from] url::ParseError),
    /// The HTTP client could not be built.
    #[error("could not build the http client")]
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

    /// Whether a retry may cure it: no answer at all, 408, 429 or a 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            EsError::Transport(e) => !e.is_json(),
            EsError::Status { status, .. } => is_transient_status(*status),
            EsError::Store(e) => matches!(e, cqrs_core::Error::Backend(_)),
            EsError::Projection(ProjectionError::Transient(_)) => true,
            EsError::WriteBlocked { .. } => true,
            _ => false,
        }
    }
}

/// Whether an HTTP status is worth a retry.
pub(crate) fn is_transient_status(status: u16) -> bool {
    status == 408 || status == 429 || status >= 500
}

/// `Result` with this crate's [`EsError`].
pub type Result<T, E = EsError> = std::result::Result<T, E>;
