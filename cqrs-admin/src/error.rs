//! [`AdminError`]: what an operations command can fail with, classified once for exit codes.

use cqrs_core::ErrorKind;
use cqrs_postgres::PgError;

/// The result of the operations layer.
pub type Result<T, E = AdminError> = std::result::Result<T, E>;

/// Errors of the operations layer and the `cqrs` command line.
///
/// Each belongs to one [`ErrorClass`] (see [`AdminError::class`]), which the command line turns
/// into its exit code. Messages never show a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// An argument was refused (a malformed position, an unknown projection name...).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// What was asked for does not exist (a dead letter, a stream, an instance).
    #[error("not found: {0}")]
    NotFound(String),
    /// The PostgreSQL store failed.
    #[error("store: {0}")]
    Store(#[from] PgError),
    /// A store trait failed (through the core's classified error).
    #[error("store: {0}")]
    Core(#[from] cqrs_core::Error),
    /// Writing the output failed (a closed pipe, say).
    #[error("writing the output: {0}")]
    Output(#[from] std::io::Error),
    /// A projection's rebuild or catch-up failed.
    #[error("projection {name}: {reason}")]
    Projection {
        /// The projection.
        name: String,
        /// Why, with its cause's text.
        reason: String,
    },
}

/// What kind of failure an [`AdminError`] is; each has its own exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorClass {
    /// Bad arguments or configuration (a malformed URL or schema name): exit code 2.
    InvalidInput,
    /// The thing asked for does not exist: exit code 3.
    NotFound,
    /// The server could not be reached or did not answer: exit code 4.
    Unavailable,
    /// Anything else (the server refused a statement or the connection: a wrong password, no
    /// such database; corrupt data): exit code 1.
    Failed,
}

impl ErrorClass {
    /// The process exit code for this class: 2 bad input, 3 not found, 4 unavailable,
    /// 1 anything else.
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorClass::InvalidInput => 2,
            ErrorClass::NotFound => 3,
            ErrorClass::Unavailable => 4,
            ErrorClass::Failed => 1,
        }
    }
}

impl AdminError {
    /// Its class, for exit codes and callers that decide by kind.
    pub fn class(&self) -> ErrorClass {
        match self {
            AdminError::InvalidInput(_) => ErrorClass::InvalidInput,
            AdminError::NotFound(_) => ErrorClass::NotFound,
            AdminError::Store(error) => match error {
                PgError::InvalidUrl { .. }
                | PgError::InvalidSchema(_)
                | PgError::ChannelTooLong { .. } => ErrorClass::InvalidInput,
                PgError::Core(core) => core_class(core),
                other if other.is_transient() => ErrorClass::Unavailable,
                other if other.is_refused_text() => ErrorClass::InvalidInput,
                _ => ErrorClass::Failed,
            },
            AdminError::Core(error) => core_class(error),
            AdminError::Output(_) | AdminError::Projection { .. } => ErrorClass::Failed,
        }
    }

    /// Whether a retry may cure it (the server unreachable or busy).
    pub fn is_transient(&self) -> bool {
        self.class() == ErrorClass::Unavailable
    }

    /// A refused argument.
    pub(crate) fn invalid(what: impl Into<String>) -> Self {
        AdminError::InvalidInput(what.into())
    }

    /// Something asked for that does not exist.
    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        AdminError::NotFound(what.into())
    }
}

fn core_class(error: &cqrs_core::Error) -> ErrorClass {
    match error.kind() {
        ErrorKind::InvalidInput => ErrorClass::InvalidInput,
        ErrorKind::Unavailable => ErrorClass::Unavailable,
        _ => ErrorClass::Failed,
    }
}
