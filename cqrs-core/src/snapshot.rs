//! [`SnapshotPolicy`]: when the command pipeline saves an aggregate's state.

use crate::Version;

/// When the command pipeline saves a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SnapshotPolicy {
    /// Never: loads replay the whole stream.
    #[default]
    Never,
    /// Whenever a command carries the stream across a multiple of this many events.
    Every(u64),
}

impl SnapshotPolicy {
    /// A snapshot every `events` events (`0` means never).
    pub fn every(events: u64) -> Self {
        if events == 0 {
            SnapshotPolicy::Never
        } else {
            SnapshotPolicy::Every(events)
        }
    }

    /// Whether an append taking a stream from `before` to `after` is due for a snapshot.
    ///
    /// ```
    /// use cqrs_core::{SnapshotPolicy, Version};
    ///
    /// let policy = SnapshotPolicy::every(10);
    /// assert!(policy.is_due(Version::new(9), Version::new(10)));
    /// assert!(policy.is_due(Version::new(8), Version::new(12)));
    /// assert!(!policy.is_due(Version::new(10), Version::new(11)));
    /// // Every 0 events, written as the variant, means never, as `every(0)` does.
    /// assert!(!SnapshotPolicy::Every(0).is_due(Version::new(0), Version::new(1)));
    /// ```
    pub fn is_due(self, before: Version, after: Version) -> bool {
        match self {
            SnapshotPolicy::Never => false,
            SnapshotPolicy::Every(n) => before.get().checked_div(n) != after.get().checked_div(n),
        }
    }
}
