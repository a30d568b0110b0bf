//! [`Inspector`]: the store's answers to operators' questions, one method each.

use std::collections::BTreeSet;
use std::time::Duration;

use cqrs_core::bus::{BusDeadLetterStore, BusLetterTarget};
use cqrs_core::process::{InstanceQuery, InstanceState, ProcessStore, Processes};
use cqrs_core::projection::{DeadLetterStore, LetterTarget, Partitions, Redrive};
use cqrs_core::{EventFilter, Position, ReadAll, ReadStream, StreamId, Version};
use cqrs_postgres::{PgEventStore, PgSchema};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    BusLetterView, Correlation, DeadLetterDetail, DeadLetterView, EventView, HorizonView,
    InstanceDetail, InstanceFilterView, InstanceView, LetterFilter, Overview, StreamView,
    SubscriberKind, SubscriberView, TailPage, TailQuery, TimelineEntryView,
};
use crate::{AdminError, Result};

/// How a process manager's projection is named: `process:{TYPE}`.
const PROCESS_PREFIX: &str = "process:";

/// Reads what a PostgreSQL store knows for operators, and files their retry / skip requests.
///
/// Cheap to clone (the store's pool is shared).
///
/// ```no_run
/// # async fn demo() -> cqrs_admin::Result<()> {
/// use cqrs_admin::Inspector;
///
/// let inspector = Inspector::connect("postgres://app@127.0.0.1/app", "cqrs").await?;
/// for reader in inspector.overview().await?.subscribers {
///     println!("{} is {} events behind", reader.name, reader.lag_events);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Inspector {
    store: PgEventStore,
}

impl Inspector {
    /// Over `store` (its schema as configured).
    pub fn new(store: PgEventStore) -> Self {
        Self { store }
    }

    /// Connects to `url` and the store in `schema`. A malformed URL or schema name is
    /// [`ErrorClass::InvalidInput`](crate::ErrorClass::InvalidInput), a server that cannot be
    /// reached [`ErrorClass::Unavailable`](crate::ErrorClass::Unavailable); no message shows
    /// the password.
    pub async fn connect(url: &str, schema: &str) -> Result<Self> {
        let schema = PgSchema::new(schema)?;
        let store = PgEventStore::connect(url).await?.with_schema(schema);
        // The store's events may be kept as json (`EventJson`): follow its table.
        let store = match store.stored_event_json().await? {
            Some(found) => store.with_event_json(found),
            None => store,
        };
        Ok(Self::new(store))
    }

    /// The store.
    pub fn store(&self) -> &PgEventStore {
        &self.store
    }

    /// Creates or upgrades the store's tables; the migration versions applied now.
    pub async fn migrate(&self) -> Result<Vec<i32>> {
        Ok(self.store.migrate().await?)
    }

    /// Every reader of the feed with its checkpoint, lag, lease and dead letters.
    pub async fn overview(&self) -> Result<Overview> {
        let head = self.store.head().await?;
        let rows = self.store.subscribers().await?;
        let now = OffsetDateTime::now_utc();
        Ok(Overview {
            taken_at: now,
            head,
            subscribers: rows
                .iter()
                .map(|row| SubscriberView::new(row, now))
                .collect(),
        })
    }

    /// One reader's row; [`AdminError::NotFound`] when the store knows no reader of that name.
    pub async fn subscriber(&self, name: &str) -> Result<SubscriberView> {
        self.overview()
            .await?
            .subscribers
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| AdminError::not_found(format!("no projection named {name:?}")))
    }

    /// The dead letters `filter` picks, by projection then feed order.
    pub async fn dead_letters(&self, filter: &LetterFilter) -> Result<Vec<DeadLetterView>> {
        let projections = match &filter.projection {
            Some(name) => vec![name.clone()],
            None => self
                .store
                .subscribers()
                .await?
                .into_iter()
                .filter(|s| s.dead_letters > 0)
                .map(|s| s.name)
                .collect(),
        };
        let max = filter.max();
        let mut found = Vec::new();
        for projection in projections {
            let mut after = Position::START;
            'pages: loop {
                let page = self.store.dead_letters(&projection, after, PAGE).await?;
                for letter in &page {
                    if filter.matches(letter) {
                        found.push(DeadLetterView::from(letter));
                        if found.len() >= max {
                            break 'pages;
                        }
                    }
                }
                match page.last() {
                    Some(last) if page.len() == PAGE => after = last.position,
                    _ => break,
                }
            }
            if found.len() >= max {
                break;
            }
        }
        Ok(found)
    }

    /// One dead letter of `projection`, by its event's position, with the event's payload and
    /// metadata; [`AdminError::NotFound`] when there is none.
    pub async fn dead_letter(
        &self,
        projection: &str,
        position: Position,
    ) -> Result<DeadLetterDetail> {
        let letter = self
            .store
            .dead_letters(projection, before(position), 1)
            .await?
            .into_iter()
            .find(|l| l.position == position)
            .ok_or_else(|| {
                AdminError::not_found(format!(
                    "no dead letter of {projection:?} at position {position}"
                ))
            })?;
        let event = self
            .store
            .read_stream(&letter.stream_id, letter.version, 1)
            .await?
            .into_iter()
            .find(|e| e.version == letter.version)
            .map(|e| EventView::from(&e));
        Ok(DeadLetterDetail {
            letter: DeadLetterView::from(&letter),
            event,
        })
    }

    /// Asks `projection`'s leading runner to apply the letters `target` names again (a key's
    /// letters, or one by position): it does so between batches, and removes them once
    /// applied. Returns how many letters were marked; [`AdminError::NotFound`] when none.
    pub async fn retry(&self, projection: &str, target: &LetterTarget) -> Result<u64> {
        let marked = self.store.retry(projection, target).await?;
        found(marked, projection, target)
    }

    /// Asks `projection`'s leading runner to drop the letters `target` names (never applied).
    /// Returns how many were marked; [`AdminError::NotFound`] when none.
    pub async fn skip(&self, projection: &str, target: &LetterTarget) -> Result<u64> {
        let marked = self.store.skip(projection, target).await?;
        found(marked, projection, target)
    }

    /// Up to `limit` events of `stream_id` from version `from` (1: the first);
    /// [`AdminError::NotFound`] when the stream has no event there.
    pub async fn stream(&self, stream_id: &str, from: u64, limit: usize) -> Result<StreamView> {
        let stream = StreamId::new(stream_id)
            .map_err(|e| AdminError::invalid(format!("stream id {stream_id:?}: {e}")))?;
        if i64::try_from(from).is_err() {
            return Err(AdminError::invalid(format!(
                "version {from} is past any a stream can have ({})",
                i64::MAX
            )));
        }
        let from = Version::new(from.max(1));
        let events = self.store.read_stream(&stream, from, limit).await?;
        if events.is_empty() {
            return Err(AdminError::not_found(format!(
                "stream {stream_id:?} has no events from version {}",
                from.get()
            )));
        }
        let next_version = (events.len() == limit)
            .then(|| events.last().map(|e| e.version.next().get()))
            .flatten();
        Ok(StreamView {
            stream_id: stream_id.to_owned(),
            events: events.iter().map(EventView::from).collect(),
            next_version,
        })
    }

    /// A page of the feed (gap-safe: only what every reader may see).
    pub async fn tail(&self, query: &TailQuery) -> Result<TailPage> {
        let filter: EventFilter = query.filter();
        let limit = query.limit.max(1);
        let batch = self.store.read_all(query.after, limit, &filter).await?;
        Ok(TailPage {
            more: batch.more || batch.events.len() == limit,
            events: batch.events.iter().map(EventView::from).collect(),
            next: batch.next,
        })
    }

    /// The last position a feed reader can see now.
    pub async fn head(&self) -> Result<Position> {
        Ok(self.store.head().await?)
    }

    /// What holds the feed back now.
    pub async fn horizon(&self) -> Result<HorizonView> {
        Ok(HorizonView::from(&self.store.feed_horizon().await?))
    }

    /// The process managers' types the store knows of (`{TYPE}` of `process:{TYPE}`, and of
    /// its partitions' names, such as `process:{TYPE}/partitions/by-key/{n}/{i}`), each once.
    pub async fn processes(&self) -> Result<Vec<String>> {
        let types: BTreeSet<String> = (self.overview().await?.subscribers.into_iter())
            .filter(|s| s.kind == SubscriberKind::Process)
            .filter_map(|s| {
                let whole = Partitions::parse_name(&s.name).map_or(s.name.as_str(), |p| p.0);
                whole.strip_prefix(PROCESS_PREFIX).map(str::to_owned)
            })
            .collect();
        Ok(types.into_iter().collect())
    }

    /// The status of `process` (counts, pages, timelines), reading the letters of each
    /// partition layout the store has checkpoints of (a partitioned process parks under its
    /// partitions' names).
    pub async fn process_status(&self, process: &str) -> Result<Processes<PgEventStore>> {
        let whole = format!("{PROCESS_PREFIX}{process}");
        let layouts: BTreeSet<Partitions> = (self.store.subscribers().await?.iter())
            .filter_map(|s| Partitions::parse_name(&s.name))
            .filter(|(projection, _, _)| *projection == whole)
            .map(|(_, layout, _)| layout)
            .collect();
        Ok(layouts.into_iter().fold(
            Processes::new(self.store.clone()),
            Processes::with_partitions,
        ))
    }

    /// Up to `limit` instances of `process` that `filter` picks, by instance id after `after`;
    /// `stuck_after` is how long without progress makes a running instance stuck.
    pub async fn instances(
        &self,
        process: &str,
        filter: InstanceFilterView,
        stuck_after: Duration,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<InstanceView>> {
        let process = strip(process);
        let mut query = match filter {
            InstanceFilterView::Running => InstanceQuery::state(InstanceState::Running),
            InstanceFilterView::Completed => InstanceQuery::state(InstanceState::Completed),
            InstanceFilterView::Failed => InstanceQuery::state(InstanceState::Failed),
            InstanceFilterView::Stuck => {
                InstanceQuery::stuck(OffsetDateTime::now_utc(), stuck_after)
            }
            _ => InstanceQuery::all(),
        }
        .limit(limit.max(1));
        if let Some(after) = after {
            query = query.after(after);
        }
        let rows = self
            .process_status(process)
            .await?
            .instances(process, &query)
            .await?;
        Ok(rows.iter().map(|r| InstanceView::new(process, r)).collect())
    }

    /// One instance of `process` with its timeline; [`AdminError::NotFound`] when it never
    /// recorded anything and nothing is parked under it.
    pub async fn instance(&self, process: &str, instance: &str) -> Result<InstanceDetail> {
        let process = strip(process);
        let status = self.store.instance(process, instance).await?;
        let timeline = self
            .process_status(process)
            .await?
            .timeline(process, instance)
            .await?;
        if status.is_none() && timeline.is_empty() {
            return Err(AdminError::not_found(format!(
                "process {process:?} has no instance {instance:?}"
            )));
        }
        Ok(InstanceDetail {
            status: status.as_ref().map(|r| InstanceView::new(process, r)),
            timeline: timeline.iter().map(TimelineEntryView::from).collect(),
        })
    }

    /// Up to `limit` messages event-bus consumers parked (only `consumer`'s when given), by
    /// consumer then message.
    pub async fn bus_letters(
        &self,
        consumer: Option<&str>,
        limit: usize,
    ) -> Result<Vec<BusLetterView>> {
        let consumers = match consumer {
            Some(name) => vec![name.to_owned()],
            None => self
                .store
                .subscribers()
                .await?
                .into_iter()
                .filter(|s| s.bus_dead_letters > 0)
                .map(|s| s.name)
                .collect(),
        };
        let mut found = Vec::new();
        for consumer in consumers {
            let left = limit.saturating_sub(found.len());
            if left == 0 {
                break;
            }
            let page = self.store.parked_messages(&consumer, None, left).await?;
            found.extend(page.iter().map(BusLetterView::from));
        }
        Ok(found)
    }

    /// Asks `consumer` to process the messages `target` names again (one, or a key's);
    /// how many were marked; [`AdminError::NotFound`] when none.
    pub async fn retry_message(&self, consumer: &str, target: &BusLetterTarget) -> Result<u64> {
        self.request_messages(consumer, target, Redrive::Retry)
            .await
    }

    /// Asks `consumer` to drop the messages `target` names; how many were marked;
    /// [`AdminError::NotFound`] when none.
    pub async fn skip_message(&self, consumer: &str, target: &BusLetterTarget) -> Result<u64> {
        self.request_messages(consumer, target, Redrive::Skip).await
    }

    async fn request_messages(
        &self,
        consumer: &str,
        target: &BusLetterTarget,
        request: Redrive,
    ) -> Result<u64> {
        let marked = self
            .store
            .request_messages(consumer, target, Some(request))
            .await?;
        if marked == 0 {
            return Err(AdminError::not_found(format!(
                "no parked message of {consumer:?} at {}",
                match target {
                    BusLetterTarget::Message(m) => super::bus_letters::message_text(m),
                    BusLetterTarget::Key(k) =>
                        format!("key {:?} of {}", String::from_utf8_lossy(&k.key), k.topic),
                }
            )));
        }
        Ok(marked)
    }

    /// Up to `limit` events carrying `correlation_id`, in feed order: everything it caused.
    pub async fn correlation(&self, correlation_id: Uuid, limit: usize) -> Result<Correlation> {
        let events = self
            .store
            .correlated_events(correlation_id, Position::START, limit)
            .await?;
        Ok(Correlation {
            correlation_id,
            events: events.iter().map(EventView::from).collect(),
        })
    }
}

/// Letters read per page while filtering.
const PAGE: usize = 500;

/// The process type of `process` or `process:{TYPE}`.
fn strip(process: &str) -> &str {
    process.strip_prefix(PROCESS_PREFIX).unwrap_or(process)
}

/// The position just before `position`, so a page "after" it starts with it.
pub(crate) fn before(position: Position) -> Position {
    match position.parts() {
        (0, 0) => Position::START,
        (major, 0) => Position::from_parts(major - 1, i64::MAX.unsigned_abs()),
        (major, minor) => Position::from_parts(major, minor - 1),
    }
}

fn found(marked: u64, projection: &str, target: &LetterTarget) -> Result<u64> {
    if marked > 0 {
        return Ok(marked);
    }
    let what = match target {
        LetterTarget::Key(key) => format!("key {key:?}"),
        LetterTarget::Position(position) => format!("position {position}"),
    };
    Err(AdminError::not_found(format!(
        "no dead letter of {projection:?} at {what}"
    )))
}
