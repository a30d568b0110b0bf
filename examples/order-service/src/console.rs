//! The web console at `/console` ([`cqrs_console`]), on only when `ORDER_SERVICE_CONSOLE_TOKEN`
//! is set: the projections with their lag and leases, dead letters (retry, skip), the event
//! browser and the saga's instances, with this service's workers' live statuses.

use std::sync::{Arc, Weak};

use async_trait::async_trait;
use cqrs_admin::Inspector;
use cqrs_console::{ConsoleConfig, LiveStatus};
use cqrs_core::projection::ProjectionStatus;

use crate::service::State;

/// The workers' statuses, read through a weak reference: the console lives inside the
/// service and must not keep it alive.
struct Workers(Weak<State>);

#[async_trait]
impl LiveStatus for Workers {
    async fn statuses(&self) -> Vec<ProjectionStatus> {
        let Some(state) = self.0.upgrade() else {
            return Vec::new();
        };
        let workers = state.workers.read().await;
        workers.as_ref().map_or_else(Vec::new, |w| {
            w.all().iter().map(|handle| handle.status()).collect()
        })
    }
}

/// The console's routes: none unless the config has a console token.
pub(crate) fn router(state: &Arc<State>) -> axum::Router {
    let config = match &state.config.console_token {
        Some(token) => {
            ConsoleConfig::enabled(token.clone()).live_status(Workers(Arc::downgrade(state)))
        }
        None => ConsoleConfig::disabled(),
    };
    cqrs_console::router(config, Inspector::new(state.store.clone()))
}
