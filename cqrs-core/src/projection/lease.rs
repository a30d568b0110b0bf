//! Leases: one active worker per projection across processes.

use std::time::Duration;

use async_trait::async_trait;

use crate::Result;

/// Time-limited leases by name. The holder renews before the time runs out; when it dies, the
/// lease expires and a standby takes it.
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Takes the lease `name` for `owner` for `ttl`, or renews it if `owner` holds it. `false`
    /// when another owner holds an unexpired lease.
    async fn try_acquire(&self, name: &str, owner: &str, ttl: Duration) -> Result<bool>;

    /// Gives the lease up, if `owner` holds it.
    async fn release(&self, name: &str, owner: &str) -> Result<()>;
}
