//! [`GroupedSpans`]: counts the appends that went through a lane, from their spans.

use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// A layer counting the `pg_append` spans that recorded a `group` (appends that went through
/// a lane). Install it with a scoped subscriber on a current-thread runtime, so every writer
/// and the lane report to it.
#[derive(Clone, Default)]
pub struct GroupedSpans(Arc<Mutex<u64>>);

impl GroupedSpans {
    /// How many appends went through a lane so far.
    pub fn count(&self) -> u64 {
        *self.0.lock().expect("count")
    }
}

struct IsGroup(bool);

impl Visit for IsGroup {
    fn record_u64(&mut self, field: &Field, _: u64) {
        self.0 |= field.name() == "group";
    }

    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for GroupedSpans {
    fn on_record(&self, _: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut is_group = IsGroup(false);
        values.record(&mut is_group);
        if is_group.0 {
            *self.0.lock().expect("count") += 1;
        }
    }
}
