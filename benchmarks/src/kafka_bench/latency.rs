//! Latency: events appended at a steady rate while the publisher runs (woken by `LISTEN`),
//! timed from the call to `append` to a raw consumer receiving the message (matched by
//! `ce_id`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use cqrs_core::{AppendEvents, ExpectedVersion, StreamId};
use cqrs_kafka::testing::unique_topic;
use cqrs_kafka::{CloudEvent, KafkaConsumer, KafkaPublisher, PublisherOptions};
use cqrs_postgres::PgEventStore;
use uuid::Uuid;

use crate::contract::{deposit, BenchMapper};
use crate::Context;

/// Runs the workload in a fresh database; prints its figures.
pub(crate) async fn run(ctx: &Context) -> Result<()> {
    let sizes = ctx.sizes;
    let count = sizes.rate * sizes.seconds;
    let topic = ctx
        .broker
        .create_topic("kafka-bench-latency", ctx.partitions)
        .await?;
    let outcome = ctx
        .server
        .with_database("latency", 8, |pool| {
            let topic = topic.clone();
            async move {
                let store = PgEventStore::new(pool);
                store.migrate().await?;
                let publisher = KafkaPublisher::new(
                    "bench-latency",
                    BenchMapper {
                        topic: topic.clone(),
                    },
                    ctx.broker.config(),
                    PublisherOptions::new("/services/bench"),
                )?;
                let handle = publisher.runner(&store).spawn();
                let consumer = KafkaConsumer::new(ctx.broker.config(), &unique_topic("bench-lat"))?;
                consumer.subscribe(&[&topic])?;
                warm_up(&store, &consumer).await?;
                let sent: Arc<Mutex<HashMap<Uuid, Instant>>> = Arc::default();
                let receiver = tokio::spawn(receive(consumer, sent.clone(), count));
                let appends = append_steadily(&store, &sent, sizes.rate, count).await?;
                let latencies = receiver.await.context("the receiver")??;
                handle.shutdown().await;
                anyhow::Ok((appends, latencies))
            }
        })
        .await;
    ctx.broker.delete_topics().await?;
    let (mut appends, mut latencies) = outcome?;
    println!(
        "\n== latency: {count} events at {} events/s, append -> raw consumer received ({} partitions) ==",
        sizes.rate, ctx.partitions
    );
    println!(
        "{:<36} {:>9} {:>9} {:>9} {:>9}",
        "measure", "p50 ms", "p99 ms", "max ms", "mean ms"
    );
    for (name, samples) in [
        ("append -> message received", &mut latencies),
        ("append call alone (for reference)", &mut appends),
    ] {
        let (p50, p99, max, mean) = percentiles(samples);
        println!("{name:<36} {p50:>9.2} {p99:>9.2} {max:>9.2} {mean:>9.2}");
    }
    println!(
        "  timed after a warm-up event went through; the publisher is woken by LISTEN/NOTIFY, its producer lingers up to 5 ms"
    );
    Ok(())
}

/// Appends one event and waits until the consumer receives it: the consumer has joined its
/// group and the producer is connected before anything is timed.
async fn warm_up(store: &PgEventStore, consumer: &KafkaConsumer) -> Result<()> {
    let event = deposit(0);
    let id = event.metadata.event_id.as_uuid();
    store
        .append(
            &StreamId::new("warm-up")?,
            ExpectedVersion::Any,
            vec![event],
        )
        .await?;
    loop {
        let message = consumer.recv_within(Duration::from_secs(60)).await?;
        if CloudEvent::read(&message)?.id == id {
            return Ok(());
        }
    }
}

/// Appends one event every `1 / rate` s to one of 100 streams; the append calls' durations.
async fn append_steadily(
    store: &PgEventStore,
    sent: &Mutex<HashMap<Uuid, Instant>>,
    rate: u64,
    count: u64,
) -> Result<Vec<Duration>> {
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / u32::try_from(rate)?);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut durations = Vec::with_capacity(usize::try_from(count)?);
    for n in 0..count {
        ticks.tick().await;
        let event = deposit(n);
        let id = event.metadata.event_id.as_uuid();
        let stream = StreamId::new(format!("account-{}", n % 100))?;
        let started = Instant::now();
        sent.lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .insert(id, started);
        store
            .append(&stream, ExpectedVersion::Any, vec![event])
            .await?;
        durations.push(started.elapsed());
    }
    Ok(durations)
}

/// Receives `count` messages; each one's time since its append started.
async fn receive(
    consumer: KafkaConsumer,
    sent: Arc<Mutex<HashMap<Uuid, Instant>>>,
    count: u64,
) -> Result<Vec<Duration>> {
    let mut latencies = Vec::with_capacity(usize::try_from(count)?);
    while (latencies.len() as u64) < count {
        let message = consumer.recv_within(Duration::from_secs(60)).await?;
        let received = Instant::now();
        let id = CloudEvent::read(&message)?.id;
        let Some(started) = sent
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .remove(&id)
        else {
            bail!("a message for an event not appended by this run: {id}");
        };
        latencies.push(received - started);
    }
    Ok(latencies)
}

/// p50, p99, max and mean, in milliseconds.
fn percentiles(samples: &mut [Duration]) -> (f64, f64, f64, f64) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |per_mille: usize| ms(cqrs_benchmarks::latency::percentile(samples, per_mille));
    let mean = samples.iter().copied().map(ms).sum::<f64>() / samples.len().max(1) as f64;
    (at(500), at(990), at(1000), mean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_nearest_rank_of_the_sorted_samples() {
        let mut samples: Vec<Duration> = (1..=101).rev().map(Duration::from_millis).collect();
        let (p50, p99, max, mean) = percentiles(&mut samples);
        assert_eq!((p50, p99, max, mean), (51.0, 100.0, 101.0, 51.0));
        assert_eq!(percentiles(&mut []), (0.0, 0.0, 0.0, 0.0));
    }
}
