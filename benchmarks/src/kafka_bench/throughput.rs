//! Throughput: the publisher catching up on a filled store's feed (read from PostgreSQL,
//! mapped, sent, every batch's acknowledgements awaited before its checkpoint), against a
//! raw `KafkaProducer` sending the very same records (keys, headers, bodies): built up front
//! and not timed (the two "built before timing" rows: the producer alone), or built from the
//! events in memory while sending, as any producer must build what it sends (the "building as
//! it sends" row: everything but reading the feed from PostgreSQL).

use std::borrow::Borrow;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _, Result};
use cqrs_benchmarks::table::{rotation, Row, Table};
use cqrs_core::projection::RunnerOptions;
use cqrs_core::{EventFilter, Position, ReadAll};
use cqrs_kafka::{KafkaProducer, KafkaPublisher, PublisherOptions, Record};
use cqrs_postgres::PgEventStore;

use crate::contract::{fill, BenchMapper};
use crate::Context;

const PUBLISHER: &str = "publisher (feed -> acks)";
const RAW_BATCHED: &str = "raw producer, batches awaited";
const RAW_ALL: &str = "raw producer, all in flight";
const RAW_BUILDING: &str = "raw producer, building as it sends";

/// Runs the workload in a fresh database.
pub(crate) async fn run(ctx: &Context) -> Result<Table> {
    let sizes = ctx.sizes;
    ctx.server
        .with_database("throughput", 16, |pool| async move {
            let store = PgEventStore::new(pool);
            store.migrate().await?;
            eprintln!(
                "  filling {} events over {} streams ...",
                sizes.events, sizes.streams
            );
            let filled = Instant::now();
            fill(&store, sizes.events, sizes.streams).await?;
            eprintln!("  filled in {:.1?}", filled.elapsed());
            let events = read_feed(&store).await?;
            ensure!(
                events.len() == usize::try_from(sizes.events)?,
                "the feed holds {} events, not {}",
                events.len(),
                sizes.events
            );

            let mut runs: [Vec<Row>; 4] = Default::default();
            for round in 0..sizes.runs {
                for system in rotation(round, 4) {
                    let topic = ctx
                        .broker
                        .create_topic("kafka-bench", ctx.partitions)
                        .await?;
                    let publisher = KafkaPublisher::new(
                        &format!("bench-{round}-{system}"),
                        BenchMapper {
                            topic: topic.clone(),
                        },
                        ctx.broker.config(),
                        PublisherOptions::new("/services/bench").batch_size(ctx.batch_size),
                    )?;
                    let mut built = None;
                    let elapsed = match system {
                        0 => time_publisher(&store, publisher).await?,
                        3 => {
                            let producer = KafkaProducer::new(ctx.broker.config())?;
                            let started = Instant::now();
                            let records = events.iter().filter_map(|e| {
                                publisher
                                    .message(e)
                                    .map_err(anyhow::Error::from)
                                    .transpose()
                            });
                            send_all(&producer, records, None).await?;
                            started.elapsed()
                        }
                        _ => {
                            let building = Instant::now();
                            let records = events
                                .iter()
                                .map(|e| publisher.message(e))
                                .collect::<Result<Vec<_>, _>>()?
                                .into_iter()
                                .flatten()
                                .collect::<Vec<_>>();
                            built = Some(building.elapsed());
                            let batch = (system == 1).then_some(ctx.batch_size);
                            time_raw(ctx, &records, batch).await?
                        }
                    };
                    let on_topic = ctx.topic_size(&topic).await?;
                    ensure!(
                        on_topic == sizes.events,
                        "{topic} holds {on_topic} messages after a run, not {}",
                        sizes.events
                    );
                    ctx.broker.delete_topics().await?;
                    eprintln!("  round {round}: {} in {elapsed:.2?}", name(system));
                    let mut note = note(system, ctx.batch_size);
                    if let Some(built) = built {
                        note.push_str(&format!(
                            " (building them took {:.2} s)",
                            built.as_secs_f64()
                        ));
                    }
                    runs[system].push(Row::new(name(system), sizes.events, elapsed, note));
                }
            }
            let mut table = Table::new(
                format!(
                    "throughput: {} events over {} streams to {} partitions (acks=all, idempotent)",
                    sizes.events, sizes.streams, ctx.partitions
                ),
                "messages/s",
            )
            .versus("vs batched", RAW_BATCHED)
            .versus("vs all", RAW_ALL)
            .versus("vs building", RAW_BUILDING);
            for rows in runs {
                if let Some(row) = Row::median(rows) {
                    table.push(row);
                }
            }
            table.footnote(
                "every run's topic holds exactly the events' count afterwards (watermarks)".into(),
            );
            Ok(table)
        })
        .await
}

fn name(system: usize) -> &'static str {
    [PUBLISHER, RAW_BATCHED, RAW_ALL, RAW_BUILDING][system]
}

fn note(system: usize, batch: usize) -> String {
    match system {
        0 => format!(
            "KafkaPublisher::runner_with(..).catch_up(), batches of {batch} from PostgreSQL, a checkpoint each"
        ),
        1 => format!("records built before timing; {batch} enqueued, then awaited"),
        2 => "records built before timing; all enqueued, then awaited".into(),
        _ => "each record built from its event in memory as it is enqueued; all in flight".into(),
    }
}

/// The whole feed, in order.
async fn read_feed(store: &PgEventStore) -> Result<Vec<cqrs_core::RecordedEvent>> {
    let mut events = Vec::new();
    let mut after = Position::START;
    loop {
        let batch = store.read_all(after, 5_000, &EventFilter::all()).await?;
        if batch.events.is_empty() && !batch.more {
            return Ok(events);
        }
        after = batch.next;
        events.extend(batch.events);
    }
}

/// How long the publisher takes to catch up with the whole feed.
async fn time_publisher(
    store: &PgEventStore,
    publisher: KafkaPublisher<BenchMapper>,
) -> Result<Duration> {
    // A checkpoint after every batch: with the default interval (250 ms) the run's end would
    // be seen only at the next 250 ms tick, and short runs would all take 250 or 500 ms.
    let options = RunnerOptions::new().checkpoint_interval(Duration::ZERO);
    let started = Instant::now();
    publisher
        .runner_with(store, options)
        .catch_up()
        .await
        .context("the publisher's catch-up")?;
    Ok(started.elapsed())
}

/// How long a raw producer takes to send `records` and have every one acknowledged:
/// `batch` at a time, each batch awaited, or all at once.
async fn time_raw(ctx: &Context, records: &[Record], batch: Option<usize>) -> Result<Duration> {
    let producer = KafkaProducer::new(ctx.broker.config())?;
    let started = Instant::now();
    send_all(&producer, records.iter().map(Ok), batch).await?;
    Ok(started.elapsed())
}

/// Sends `records` through `producer`, `batch` at a time (each batch's acknowledgements awaited
/// before the next) or all at once, and waits until every one is acknowledged.
async fn send_all<R: Borrow<Record>>(
    producer: &KafkaProducer,
    records: impl Iterator<Item = Result<R>>,
    batch: Option<usize>,
) -> Result<()> {
    let batch = batch.unwrap_or(usize::MAX).max(1);
    let mut pending = VecDeque::new();
    let mut in_batch = 0;
    for record in records {
        let record = record?;
        loop {
            match producer.enqueue(record.borrow()) {
                Ok(delivery) => {
                    pending.push_back(delivery);
                    break;
                }
                // The local queue is full: wait for the oldest delivery, then try again.
                Err(error) if error.is_transient() && !pending.is_empty() => {
                    if let Some(oldest) = pending.pop_front() {
                        oldest.await?;
                    }
                }
                Err(error) => return Err(error.into()),
            }
        }
        in_batch += 1;
        if in_batch == batch {
            for delivery in pending.drain(..) {
                delivery.await?;
            }
            in_batch = 0;
        }
    }
    for delivery in pending {
        delivery.await?;
    }
    Ok(())
}
