//! With group commit on, each append's `pg_append` span records in `group` how many appends
//! the transaction it rode in held: exactly what the events table says of that transaction.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cqrs_core::{AppendEvents, ExpectedVersion, NewEvent, StreamId, Version};
use cqrs_postgres::GroupCommit;
use serde_json::json;
use tokio::sync::Barrier;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

const WRITERS: usize = 16;

/// The `group` recorded on each `pg_append` span, by its `stream`.
#[derive(Clone, Default)]
struct Groups(Arc<Mutex<HashMap<String, u64>>>);

/// A span's stream, kept in its extensions until `group` is recorded.
struct Stream(String);

#[derive(Default)]
struct Fields {
    stream: Option<String>,
    group: Option<u64>,
}

impl Visit for Fields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "group" {
            self.group = Some(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "stream" {
            self.stream = Some(format!("{value:?}"));
        }
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Groups {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != "pg_append" {
            return;
        }
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let (Some(span), Some(stream)) = (ctx.span(id), fields.stream) {
            span.extensions_mut().insert(Stream(stream));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        values.record(&mut fields);
        let (Some(group), Some(span)) = (fields.group, ctx.span(id)) else {
            return;
        };
        let extensions = span.extensions();
        if let Some(Stream(stream)) = extensions.get::<Stream>() {
            self.0.lock().expect("groups").insert(stream.clone(), group);
        }
    }
}

// One thread, so every writer and the lane see this test's subscriber.
#[tokio::test]
async fn each_append_span_records_the_appends_of_its_transaction() {
    let groups = Groups::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(groups.clone()));
    let store = support::store_with(4)
        .await
        .with_group_commit(GroupCommit::default().alone_below(0));
    let barrier = Arc::new(Barrier::new(WRITERS));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                let stream = StreamId::new(format!("writer-{w}")).expect("id");
                let event = NewEvent::new("Counted", 1, json!({ "w": w }));
                barrier.wait().await;
                store
                    .append(&stream, ExpectedVersion::Exact(Version::ZERO), vec![event])
                    .await
                    .expect("append");
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer");
    }

    // Per stream: how many streams its transaction wrote.
    let together: Vec<(String, i64)> = sqlx::query_as(&format!(
        "SELECT e.stream_id, (SELECT count(DISTINCT o.stream_id) FROM \"{0}\".events o \
         WHERE o.transaction_id = e.transaction_id) FROM \"{0}\".events e",
        store.schema().as_str()
    ))
    .fetch_all(store.pool())
    .await
    .expect("streams per transaction");
    assert_eq!(together.len(), WRITERS);
    let recorded = groups.0.lock().expect("groups").clone();
    for (stream, appends) in together {
        assert_eq!(
            recorded.get(&stream).copied(),
            Some(u64::try_from(appends).expect("positive")),
            "{stream}: {recorded:?}"
        );
    }
}
