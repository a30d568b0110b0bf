//! [`LiveStatus`]: the running workers' statuses, from the service that runs them.

use async_trait::async_trait;
use cqrs_core::projection::ProjectionStatus;

/// Gives the console the statuses of the workers this process runs (usually from their
/// [`ProjectionHandle`](cqrs_core::projection::ProjectionHandle)s).
///
/// ```
/// use cqrs_console::LiveStatus;
/// use cqrs_core::projection::ProjectionStatus;
///
/// struct Workers;
///
/// #[async_trait::async_trait]
/// impl LiveStatus for Workers {
///     async fn statuses(&self) -> Vec<ProjectionStatus> {
///         Vec::new() // handles.iter().map(|h| h.status()).collect()
///     }
/// }
/// ```
#[async_trait]
pub trait LiveStatus: Send + Sync {
    /// Every running worker's status now.
    async fn statuses(&self) -> Vec<ProjectionStatus>;
}
