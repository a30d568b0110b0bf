//! Partitioned subscriptions: one projection split over workers, each partition with its own
//! checkpoint, lease and dead letters.
//!
//! How the parts fit:
//! - `hash`: which partition a stream (or key) is in ([`StreamPartition`]), computed alike by
//!   every store, so a by-stream partition is filtered in the feed query;
//! - `wrapper`: a partition is the projection under another name (its checkpoint, lease and
//!   dead letters), its filter narrowed to the partition; each runs on the ordinary
//!   [`ProjectionRunner`](super::ProjectionRunner): one engine;
//! - `assign`: which live worker runs which partition (balanced rendezvous hashing);
//! - `worker`: [`PartitionedRunner`]: a worker keeps a member lease, lists the members, runs
//!   the partitions assigned to it and stops (gracefully) those it no longer owns;
//! - `status`: the worker's own view ([`PartitionedStatus`]) and the store's
//!   ([`PartitionReport`]), which any process can read.
//!
//! Workers share nothing but the store. Views of the membership may disagree for a moment
//! while a worker joins or dies; two workers can still never lead one partition at once: each
//! partition's runner holds the partition's lease, and every checkpoint save (and every write
//! of a sink that checks [`Projection::apply_fenced`](super::Projection::apply_fenced)'s
//! lease) is fenced by its epoch.

mod assign;
mod hash;
mod status;
mod worker;
mod wrapper;

pub use hash::StreamPartition;
pub use status::{PartitionReport, PartitionedStatus};
pub use worker::{PartitionedHandle, PartitionedRunner};

/// What a partition's name has between the projection's name and the count.
const PARTITIONS: &str = "/partitions/";
/// What a member lease's name has between the projection's name and the worker's id.
const MEMBERS: &str = "/members/";
/// What a by-key partition's name has before the count: the layouts are named apart, as the
/// counts are, so that a switch between them starts fresh checkpoints (the same names would
/// resume each partition where the other split's partition of that index had got to).
const BY_KEY: &str = "by-key/";

/// What a projection is partitioned by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum PartitionBy {
    /// A hash of the stream id: the events of one stream are in one partition (per-stream
    /// order), and the store filters each partition's feed itself.
    Stream,
    /// A hash of [`Projection::key`](super::Projection::key) (the stream id for events
    /// without a key): for read models where one document (or process instance) is fed by
    /// several streams, so two workers never write it at once. Each partition reads the
    /// whole (filtered) feed and applies its own keys.
    Key,
}

/// How a projection is split (its layout): into how many partitions, by what.
///
/// Choose the layout up front (a count that is a multiple of the most workers you expect
/// spreads evenly): partitions are named by their layout, so another count, or the other
/// split, starts new checkpoints from the beginning of the feed (an idempotent projection
/// converges; it takes a replay).
///
/// ```
/// use cqrs_core::projection::{PartitionBy, Partitions};
///
/// let partitions = Partitions::by_stream(8);
/// assert_eq!(partitions.count(), 8);
/// assert_eq!(partitions.by(), PartitionBy::Stream);
/// assert_eq!(partitions.name("orders", 3), "orders/partitions/8/3");
/// assert_eq!(Partitions::by_key(8).name("orders", 3), "orders/partitions/by-key/8/3");
/// assert_eq!(Partitions::members_prefix("orders"), "orders/members/");
/// // At most MAX_COUNT partitions.
/// assert_eq!(Partitions::by_stream(u32::MAX).count(), Partitions::MAX_COUNT);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partitions {
    count: u32,
    by: PartitionBy,
}

impl Partitions {
    /// The most partitions a layout has: each worker hashes every partition at each look,
    /// and status reads each one's checkpoint, so a count past this (or one read from a
    /// stored name) could stall a worker or an operator's page.
    pub const MAX_COUNT: u32 = 4096;

    /// `count` partitions (at least one, at most [`MAX_COUNT`](Self::MAX_COUNT)) by a hash
    /// of the stream id.
    pub fn by_stream(count: u32) -> Self {
        Self {
            count: count.clamp(1, Self::MAX_COUNT),
            by: PartitionBy::Stream,
        }
    }

    /// `count` partitions (at least one, at most [`MAX_COUNT`](Self::MAX_COUNT)) by a hash
    /// of the projection's key.
    pub fn by_key(count: u32) -> Self {
        Self {
            count: count.clamp(1, Self::MAX_COUNT),
            by: PartitionBy::Key,
        }
    }

    /// How many partitions.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// What they are split by.
    pub fn by(&self) -> PartitionBy {
        self.by
    }

    /// The name of partition `index` of `projection`: it keys the partition's checkpoint,
    /// lease and dead letters.
    pub fn name(&self, projection: &str, index: u32) -> String {
        format!("{}{index}", self.prefix(projection))
    }

    /// What every partition's name of `projection` starts with.
    pub fn prefix(&self, projection: &str) -> String {
        let by = match self.by {
            PartitionBy::Stream => "",
            PartitionBy::Key => BY_KEY,
        };
        format!("{projection}{PARTITIONS}{by}{}/", self.count)
    }

    /// What the member leases of `projection`'s workers are named with: the prefix, then
    /// the worker's id.
    pub fn members_prefix(projection: &str) -> String {
        format!("{projection}{MEMBERS}")
    }

    /// Reads a partition's [`name`](Self::name) back: the projection, the layout and the
    /// index; `None` for any other name (a count past [`MAX_COUNT`](Self::MAX_COUNT), an
    /// index past the count).
    ///
    /// ```
    /// use cqrs_core::projection::Partitions;
    ///
    /// let name = Partitions::by_stream(8).name("orders", 3);
    /// assert_eq!(Partitions::parse_name(&name), Some(("orders", Partitions::by_stream(8), 3)));
    /// let name = Partitions::by_key(8).name("orders", 3);
    /// assert_eq!(Partitions::parse_name(&name), Some(("orders", Partitions::by_key(8), 3)));
    /// assert_eq!(Partitions::parse_name("orders"), None);
    /// assert_eq!(Partitions::parse_name("orders/partitions/x/3"), None);
    /// assert_eq!(Partitions::parse_name("orders/partitions/0/0"), None);
    /// // Past the most partitions a layout has, or an index past its count: no partition.
    /// assert_eq!(Partitions::parse_name("orders/partitions/4000000000/0"), None);
    /// assert_eq!(Partitions::parse_name("orders/partitions/8/8"), None);
    /// ```
    pub fn parse_name(name: &str) -> Option<(&str, Partitions, u32)> {
        let (projection, rest) = name.rsplit_once(PARTITIONS)?;
        let (layout, rest): (fn(u32) -> Self, _) = match rest.strip_prefix(BY_KEY) {
            Some(rest) => (Self::by_key, rest),
            None => (Self::by_stream, rest),
        };
        let (count, index) = rest.split_once('/')?;
        let number = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| s.parse::<u32>().ok())
                .flatten()
        };
        let count = number(count).filter(|count| (1..=Self::MAX_COUNT).contains(count))?;
        let index = number(index).filter(|index| *index < count)?;
        Some((projection, layout(count), index))
    }

    /// Reads a worker's member lease name ([`members_prefix`](Self::members_prefix) and its
    /// id) back: the projection and the worker's id.
    ///
    /// ```
    /// use cqrs_core::projection::Partitions;
    ///
    /// let name = format!("{}worker-a", Partitions::members_prefix("orders"));
    /// assert_eq!(Partitions::parse_member(&name), Some(("orders", "worker-a")));
    /// assert_eq!(Partitions::parse_member("orders"), None);
    /// ```
    pub fn parse_member(name: &str) -> Option<(&str, &str)> {
        name.split_once(MEMBERS)
            .filter(|(projection, worker)| !projection.is_empty() && !worker.is_empty())
    }

    /// Partition `index`, if below the count.
    pub fn partition(&self, index: u32) -> Option<StreamPartition> {
        StreamPartition::new(index, self.count)
    }
}
