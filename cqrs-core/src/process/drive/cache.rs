//! The instances kept loaded between batches: least recently used ones go first.

use std::collections::{HashMap, HashSet};

use super::super::instance::Instance;
use crate::CommandId;

/// A loaded instance and what this worker remembers of it beyond the journal.
pub(super) struct Loaded<P> {
    /// State and bookkeeping, at the journal's version.
    pub(super) instance: Instance<P>,
    /// Pending commands that were forwarded: their answer comes as an event, so they are not
    /// sent again while this stays loaded.
    pub(super) forwarded: HashSet<CommandId>,
    /// Commands decided by a record that landed since this was loaded: they go out as first
    /// deliveries (no outcome lookup). Only a worker whose term overlapped this one's can have
    /// sent them already; the repository checks a refusal under the claim against the
    /// command's first outcome. Empty after a (re)load: a pending command found in the journal
    /// may have been sent.
    pub(super) fresh: HashSet<CommandId>,
}

impl<P> Loaded<P> {
    pub(super) fn new(instance: Instance<P>) -> Self {
        Self {
            instance,
            forwarded: HashSet::new(),
            fresh: HashSet::new(),
        }
    }

    /// Forgets the commands no longer pending (answered, or given up): an instance that stays
    /// loaded for long keeps only those it still waits for.
    fn forget_answered(&mut self) {
        let pending = &self.instance.books.pending;
        let waits_for = |id: &CommandId| pending.iter().any(|p| p.step.command_id == *id);
        self.forwarded.retain(waits_for);
        self.fresh.retain(waits_for);
    }
}

/// Up to `capacity` loaded instances by stream id. An instance being driven is taken out and
/// put back, so concurrent drives of distinct instances share the cache without holding it.
pub(super) struct Cache<P> {
    capacity: usize,
    tick: u64,
    entries: HashMap<String, (u64, Loaded<P>)>,
}

impl<P> Cache<P> {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            tick: 0,
            entries: HashMap::new(),
        }
    }

    /// Takes the instance of `stream` out, if loaded.
    pub(super) fn take(&mut self, stream: &str) -> Option<Loaded<P>> {
        self.entries.remove(stream).map(|(_, loaded)| loaded)
    }

    /// Puts an instance back as the most recently used; evicts the least recently used tenth
    /// once over capacity (so eviction's sort is paid once per many inserts).
    pub(super) fn put(&mut self, stream: String, mut loaded: Loaded<P>) {
        if self.capacity == 0 {
            return;
        }
        loaded.forget_answered();
        self.tick += 1;
        self.entries.insert(stream, (self.tick, loaded));
        if self.entries.len() > self.capacity {
            let mut ticks: Vec<u64> = self.entries.values().map(|(t, _)| *t).collect();
            ticks.sort_unstable();
            let keep = self.capacity - self.capacity / 10;
            let cut = ticks[self.entries.len() - keep - 1];
            self.entries.retain(|_, (t, _)| *t > cut);
        }
    }

    /// Forgets everything (another worker may have moved the instances on).
    pub(super) fn clear(&mut self) {
        self.entries.clear();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::instance::PendingCommand;
    use crate::process::{InputId, Step};

    #[test]
    fn the_least_recently_used_go_first_and_the_cache_stays_bounded() {
        let mut cache = Cache::<u32>::new(10);
        for n in 0..10 {
            cache.put(format!("s-{n}"), Loaded::new(Instance::default()));
        }
        let first = cache.take("s-0").expect("loaded");
        cache.put("s-0".to_owned(), first);
        cache.put("s-10".to_owned(), Loaded::new(Instance::default()));
        assert!(cache.len() <= 10);
        assert!(cache.take("s-0").is_some(), "recently used stays");
        assert!(cache.take("s-1").is_none(), "least recently used goes");
        assert!(cache.take("s-10").is_some());
    }

    #[test]
    fn an_instance_put_back_forgets_the_commands_it_no_longer_waits_for() {
        let [answered, waiting, decided] =
            [1, 2, 3].map(|n| CommandId::from_uuid(uuid::Uuid::from_u128(n)));
        let mut loaded = Loaded::new(Instance::<u32>::default());
        loaded.instance.books.pending.push(PendingCommand {
            step: Step {
                input: InputId::from_uuid(uuid::Uuid::from_u128(9)),
                index: 0,
                command_id: waiting,
            },
            command: serde_json::Value::Null,
        });
        loaded.forwarded.extend([answered, waiting]);
        loaded.fresh.extend([answered, decided]);
        let mut cache = Cache::new(10);

        cache.put("s-1".to_owned(), loaded);

        let loaded = cache.take("s-1").expect("loaded");
        assert_eq!(loaded.forwarded, HashSet::from([waiting]));
        assert!(loaded.fresh.is_empty(), "{:?}", loaded.fresh);
    }

    #[test]
    fn a_cache_of_zero_keeps_nothing() {
        let mut cache = Cache::<u32>::new(0);
        cache.put("s-1".to_owned(), Loaded::new(Instance::default()));
        assert!(cache.take("s-1").is_none());
    }
}
