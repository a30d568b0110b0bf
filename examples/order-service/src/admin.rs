//! [`admin`]: the operations commands over this service's store, with its read model
//! registered for `projections rebuild` (a blue/green rebuild into a new index) and `reset`.
//! The `order-service-admin` binary runs them.

use cqrs_admin::service::{Admin, RebuildFuture, RebuildOutcome, RebuildWith};
use cqrs_admin::Inspector;
use cqrs_elastic::{EsReadModel, RebuildOptions};
use cqrs_postgres::{PgEventStore, PgSchema};
use quickstart::read_side::EsOrderSummaries;

use crate::{Config, StartError};

/// The admin commands for the service `config` describes: connects to its store and search
/// node (nothing is started or migrated) and registers the order summaries' read model.
///
/// # Errors
///
/// A [`StartError`] naming what could not be reached or was refused.
pub async fn admin(config: &Config) -> Result<Admin, StartError> {
    let schema = PgSchema::new(&config.schema).map_err(StartError::Schema)?;
    let store = PgEventStore::connect(&config.database_url)
        .await
        .map_err(StartError::Database)?
        .with_schema(schema);
    let client = cqrs_elastic::connect(&config.elasticsearch_url).map_err(StartError::Search)?;
    let summaries = EsReadModel::new(client, EsOrderSummaries::new(&config.index))
        .map_err(StartError::Search)?;
    let name = summaries.name().to_owned();
    let feed = store.clone();
    let rebuild = move || -> RebuildFuture {
        let summaries = summaries.clone();
        let feed = feed.clone();
        Box::pin(async move {
            let report = summaries
                .rebuild(feed.clone(), feed, RebuildOptions::default())
                .await?;
            Ok(RebuildOutcome::new(summaries.name(), report.position)
                .events(report.events)
                .detail(format!(
                    "filled {} and moved the alias from {}",
                    report.to.index, report.from.index
                )))
        })
    };
    Ok(
        Admin::new(Inspector::new(store.clone()))
            .projection(RebuildWith::new(name, store, rebuild)),
    )
}
