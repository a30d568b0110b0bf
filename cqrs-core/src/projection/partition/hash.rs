//! Which partition a stream (or a key) belongs to: a hash every backend computes the same.
//!
//! The hash is the first four bytes of the MD5 digest of the text's UTF-8 bytes, read as a
//! big-endian unsigned integer, modulo the partition count. PostgreSQL computes the same in
//! the feed query (`('x' || substr(md5(stream_id), 1, 8))::bit(32)::bigint % count`), so a
//! by-stream partition is filtered where the events are read. MD5 is not used for security
//! here, only because both sides have it and it spreads ids evenly.

use md5::{Digest, Md5};

/// One partition of the streams: the streams whose id hashes to `index` among `count`.
///
/// ```
/// use cqrs_core::projection::StreamPartition;
///
/// let count = 8;
/// let index = StreamPartition::index_of("order-1", count);
/// assert!(index < count);
/// // Every id falls in exactly one partition.
/// let owners = (0..count)
///     .filter(|i| StreamPartition::new(*i, count).is_some_and(|p| p.contains("order-1")))
///     .count();
/// assert_eq!(owners, 1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct StreamPartition {
    /// This partition, below `count`.
    pub index: u32,
    /// How many partitions there are (at least one).
    pub count: u32,
}

impl StreamPartition {
    /// Partition `index` of `count`; `None` unless `index < count`.
    pub fn new(index: u32, count: u32) -> Option<Self> {
        (index < count).then_some(Self { index, count })
    }

    /// The partition `text` (a stream id, or a key) belongs to among `count` (0 when `count`
    /// is 0).
    pub fn index_of(text: &str, count: u32) -> u32 {
        if count == 0 {
            return 0;
        }
        let digest = Md5::digest(text.as_bytes());
        let head = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
        head % count
    }

    /// Whether `text` (a stream id, or a key) belongs to this partition.
    pub fn contains(&self, text: &str) -> bool {
        Self::index_of(text, self.count) == self.index
    }
}

impl std::fmt::Display for StreamPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "partition {} of {}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_the_first_four_bytes_of_md5_as_postgresql_reads_them() {
        // md5('order-1') = 6e7f85a9...: 0x6e7f85a9 = 1853851049, as PostgreSQL computes it.
        assert_eq!(
            StreamPartition::index_of("order-1", u32::MAX),
            1_853_851_049
        );
    }

    #[test]
    fn ten_thousand_ids_spread_over_eight_partitions_within_ten_percent_of_even() {
        let mut counts = [0u32; 8];
        for i in 0..10_000 {
            counts[StreamPartition::index_of(&format!("order-{i}"), 8) as usize] += 1;
        }
        for count in counts {
            assert!((1125..=1375).contains(&count), "uneven spread: {counts:?}");
        }
    }
}
