//! Which worker runs which partition: every worker computes it alike from the sorted list of
//! live members, with nothing else to agree on.
//!
//! Balanced rendezvous hashing: each partition ranks the members by a hash of (member,
//! partition) and goes to the first one in its ranking that has fewer than
//! `ceil(partitions / members)`. The spread is as even as it can be, and when a member joins
//! or leaves most partitions stay where they are (plain rendezvous hashing moves the fewest,
//! but spreads 8 partitions over 2 workers unevenly; `index mod members` moves most of them).

use md5::{Digest, Md5};

/// For each partition `0..count`, the index in `members` (sorted, without duplicates) of the
/// member that runs it. Empty members: empty.
pub(crate) fn assign(members: &[String], count: u32) -> Vec<usize> {
    if members.is_empty() {
        return Vec::new();
    }
    let count = count as usize;
    let cap = count.div_ceil(members.len());
    let mut load = vec![0usize; members.len()];
    let mut owners = Vec::with_capacity(count);
    for partition in 0..count {
        let mut ranking: Vec<(u64, usize)> = members
            .iter()
            .enumerate()
            .map(|(i, member)| (score(member, partition), i))
            .collect();
        ranking.sort_unstable_by(|a, b| b.cmp(a));
        let owner = ranking
            .iter()
            .map(|(_, i)| *i)
            .find(|i| load[*i] < cap)
            .unwrap_or(0);
        load[owner] += 1;
        owners.push(owner);
    }
    owners
}

/// How much `member` wants `partition`.
fn score(member: &str, partition: usize) -> u64 {
    let mut hasher = Md5::new();
    hasher.update(member.as_bytes());
    hasher.update(b"/");
    // Eight bytes on every target, so 32- and 64-bit workers agree.
    hasher.update(u64::try_from(partition).unwrap_or(u64::MAX).to_be_bytes());
    let digest = hasher.finalize();
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("worker-{i}")).collect()
    }

    fn loads(owners: &[usize], members: usize) -> Vec<usize> {
        let mut loads = vec![0; members];
        for o in owners {
            loads[*o] += 1;
        }
        loads
    }

    #[test]
    fn scores_are_the_same_on_every_target() {
        // MD5 of "worker-a/" and partition 3 as eight big-endian bytes: what a 64-bit worker
        // computed before, and what a 32-bit one must compute too.
        let mut hasher = Md5::new();
        hasher.update(b"worker-a/\0\0\0\0\0\0\0\x03");
        let digest = hasher.finalize();
        let mut head = [0u8; 8];
        head.copy_from_slice(&digest[..8]);
        assert_eq!(score("worker-a", 3), u64::from_be_bytes(head));
    }

    #[test]
    fn eight_partitions_spread_as_evenly_as_they_can_over_one_to_five_workers() {
        for m in 1..=5 {
            let loads = loads(&assign(&names(m), 8), m);
            let (min, max) = (loads.iter().min(), loads.iter().max());
            assert!(
                max.zip(min).is_some_and(|(max, min)| max - min <= 1),
                "{m} workers: {loads:?}"
            );
        }
    }

    #[test]
    fn a_third_worker_joining_moves_only_about_its_share() {
        let before = assign(&names(2), 8);
        let after = assign(&names(3), 8);
        // Member indexes 0 and 1 name the same workers in both lists.
        let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
        assert!(moved <= 4, "{moved} of 8 moved: {before:?} -> {after:?}");
    }
}
