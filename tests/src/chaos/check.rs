//! The checks every chaos scenario ends with: each append is all there or not at all, every
//! append a caller saw succeed is there once, stream versions have no hole, and the read model
//! equals a fold of the store from scratch.

use std::collections::{BTreeMap, BTreeSet};

use cqrs_core::RecordedEvent;

use super::{Entry, Ledger, Tally};

/// What [`assert_appends_are_whole`] counted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AppendCheck {
    /// Events in the store.
    pub events: usize,
    /// Appends in the store.
    pub appends: usize,
    /// Appends whose caller saw an error but which were recorded (whole): the commit landed
    /// before the connection broke.
    pub failed_but_recorded: usize,
    /// Appends whose caller saw an error and which left nothing.
    pub failed_and_absent: usize,
}

/// Asserts, over every event of the store (`events`, in feed order) and the writers' `ledger`:
/// each stream's versions are 1, 2, 3... without a hole; each append's events are all there,
/// once, or none; each append a caller saw succeed is there; nothing is there that no writer
/// tried; no writer saw an error that is neither transient nor a conflict.
pub fn assert_appends_are_whole(events: &[RecordedEvent], ledger: &Ledger) -> AppendCheck {
    let mut problems = Vec::new();
    let mut versions: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    let mut appends: BTreeMap<String, (String, u64, BTreeSet<u64>, usize)> = BTreeMap::new();
    for event in events {
        versions
            .entry(event.stream_id.as_str())
            .or_default()
            .push(event.version.get());
        let (_, append, index) = Tally::entry(event);
        let of = event.payload["of"].as_u64().unwrap_or(0);
        let slot = appends
            .entry(append)
            .or_insert_with(|| (event.stream_id.as_str().to_owned(), of, BTreeSet::new(), 0));
        slot.2.insert(index);
        slot.3 += 1;
    }
    for (stream, mut seen) in versions {
        seen.sort_unstable();
        let expected: Vec<u64> = (1..=seen.len() as u64).collect();
        if seen != expected {
            problems.push(format!(
                "{stream}: versions {seen:?} have a hole or a double"
            ));
        }
    }
    let mut check = AppendCheck {
        events: events.len(),
        appends: appends.len(),
        ..AppendCheck::default()
    };
    for (append, (stream, of, indices, count)) in &appends {
        let whole: BTreeSet<u64> = (0..*of).collect();
        if *indices != whole || *count != indices.len() {
            problems.push(format!(
                "append {append} on {stream}: indices {indices:?} ({count} events) of {of}"
            ));
        }
        if ledger.failed.contains_key(append) {
            check.failed_but_recorded += 1;
        } else if !ledger.succeeded.contains_key(append) {
            problems.push(format!("append {append} on {stream} was never tried"));
        }
    }
    for (append, (stream, size)) in &ledger.succeeded {
        if !appends.contains_key(append) {
            problems.push(format!(
                "append {append} of {size} on {stream} succeeded but is lost"
            ));
        }
    }
    check.failed_and_absent = ledger.failed.len() - check.failed_but_recorded;
    if !ledger.succeeded.is_empty() && events.is_empty() {
        problems.push(
            "the feed shows no event (is a transaction on the server holding its horizon?)"
                .to_owned(),
        );
    }
    for error in &ledger.other_errors {
        problems.push(format!(
            "a caller got an error that is not transient: {error}"
        ));
    }
    assert!(
        problems.is_empty(),
        "the store breaks {} promises:\n{}",
        problems.len(),
        problems.join("\n")
    );
    check
}

/// Asserts that `tally` holds exactly the fold of `events` (every event of the store), and
/// that no event reached it past a hole.
pub fn assert_tally_is_the_fold(tally: &Tally, events: &[RecordedEvent]) {
    let mut fold: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    for event in events {
        fold.entry(event.stream_id.as_str().to_owned())
            .or_default()
            .push(Tally::entry(event));
    }
    for entries in fold.values_mut() {
        entries.sort();
    }
    let gaps = tally.gaps();
    assert!(
        gaps.is_empty(),
        "events reached the read model past a hole: {gaps:?}"
    );
    let model = tally.streams();
    let differing: Vec<&String> = fold
        .keys()
        .chain(model.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|stream| fold.get(*stream) != model.get(*stream))
        .collect();
    assert!(
        differing.is_empty(),
        "the read model differs from a fold from scratch in {} of {} streams: {differing:?}",
        differing.len(),
        fold.len()
    );
}
