//! Status as data: instances by state, stuck ones, and one instance's timeline, for operators
//! and the operations console. Needs no `P`: payloads come back as JSON.

/// Reads the status of process managers from a store.
pub struct Processes<S> {
    store: S,
}

/// One entry of an instance's timeline.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct TimelineEntry {}

/// What a timeline entry is.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum TimelineKind {}
