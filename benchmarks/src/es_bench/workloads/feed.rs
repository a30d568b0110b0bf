//! Reading the whole feed, as the read model's filter sees it, in batches.

use anyhow::{ensure, Result};
use cqrs_core::{EventFilter, Position, ReadAll, RecordedEvent};
use cqrs_elastic::ElasticProjection;
use cqrs_postgres::PgEventStore;

use crate::model::Accounts;

/// Reads every event of the accounts from the start, `batch` per read, handing each non-empty
/// read to `each`; the number of events. Fails if positions do not grow.
pub(crate) async fn read(
    store: &PgEventStore,
    batch: usize,
    each: impl FnMut(Vec<RecordedEvent>),
) -> Result<u64> {
    read_filtered(store, batch, &Accounts::new("feed").filter(), each).await
}

/// [`read`], with any filter.
pub(crate) async fn read_filtered(
    store: &PgEventStore,
    batch: usize,
    filter: &EventFilter,
    mut each: impl FnMut(Vec<RecordedEvent>),
) -> Result<u64> {
    let (mut after, mut read) = (Position::START, 0_u64);
    loop {
        let page = store.read_all(after, batch, filter).await?;
        if page.events.is_empty() && !page.more {
            return Ok(read);
        }
        for event in &page.events {
            ensure!(
                event.position > after,
                "position {} after {after}",
                event.position
            );
            after = event.position;
        }
        read += u64::try_from(page.events.len())?;
        after = after.max(page.next);
        each(page.events);
    }
}
