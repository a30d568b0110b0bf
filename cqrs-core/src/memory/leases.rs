//! The in-memory store's leases (they fence checkpoint saves).

use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::projection::{Lease, LeaseStore};
use crate::Result;

use super::{InMemoryEventStore, LeaseRow};

#[async_trait]
impl LeaseStore for InMemoryEventStore {
    async fn try_acquire(&self, name: &str, owner: &str, ttl: Duration) -> Result<Option<Lease>> {
        crate::backend::check_lease_ttl(ttl)?;
        let mut state = self.write();
        let now = Instant::now();
        let expires = now + ttl;
        let epoch = match state.leases.get_mut(name) {
            None => {
                state.leases.insert(
                    name.to_owned(),
                    LeaseRow {
                        owner: owner.to_owned(),
                        epoch: 1,
                        expires,
                    },
                );
                1
            }
            // A renewal: same holder, same epoch.
            Some(row) if row.owner == owner && row.expires > now => {
                row.expires = expires;
                row.epoch
            }
            // Expired or released: a new holder, a new epoch.
            Some(row) if row.expires <= now => {
                *row = LeaseRow {
                    owner: owner.to_owned(),
                    epoch: row.epoch + 1,
                    expires,
                };
                row.epoch
            }
            Some(_) => return Ok(None),
        };
        Ok(Some(Lease::new(name, owner, epoch, ttl)))
    }

    async fn leases(&self, prefix: &str) -> Result<Vec<Lease>> {
        let state = self.read();
        let now = Instant::now();
        let mut held: Vec<Lease> = state
            .leases
            .iter()
            .filter(|(name, row)| name.starts_with(prefix) && row.expires > now)
            .map(|(name, row)| Lease::new(name, &row.owner, row.epoch, row.expires - now))
            .collect();
        held.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(held)
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        let mut state = self.write();
        let now = Instant::now();
        if state.holds(lease, now) {
            if let Some(row) = state.leases.get_mut(&lease.name) {
                row.expires = now;
            }
        }
        Ok(())
    }
}
