//! [`IndexSettings`]: how the versioned indices of a read model are created.

/// How each new versioned index of a read model is created: shards, replicas, strictness and
/// refresh interval. A value: build it with its setters and give it to
/// [`EsIndex::with_settings`](crate::EsIndex::with_settings) or
/// [`EsReadModel::with_index_settings`](crate::EsReadModel::with_index_settings).
///
/// ```
/// use cqrs_elastic::IndexSettings;
///
/// let settings = IndexSettings::default().replicas(1).refresh_interval("5s");
/// # let _ = settings;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IndexSettings {
    pub(crate) shards: u32,
    pub(crate) replicas: u32,
    pub(crate) strict: bool,
    pub(crate) refresh_interval: Option<String>,
}

impl Default for IndexSettings {
    fn default() -> Self {
        Self {
            shards: 1,
            replicas: 0,
            strict: true,
            refresh_interval: None,
        }
    }
}

impl IndexSettings {
    /// Replicas of each new index (default 0, which a single-node cluster needs to be green;
    /// production clusters want at least 1).
    #[must_use]
    pub fn replicas(mut self, replicas: u32) -> Self {
        self.replicas = replicas;
        self
    }

    /// Primary shards of each new index (default 1).
    #[must_use]
    pub fn shards(mut self, shards: u32) -> Self {
        self.shards = shards.max(1);
        self
    }

    /// Whether an unmapped field is refused (`dynamic: strict`, the default) or kept in
    /// `_source` without being indexed (`dynamic: false`).
    #[must_use]
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// The refresh interval of new indices, e.g. `"5s"` (default: the server's, 1s). A rebuild
    /// disables refresh while it fills an index and restores this afterwards.
    #[must_use]
    pub fn refresh_interval(mut self, interval: impl Into<String>) -> Self {
        self.refresh_interval = Some(interval.into());
        self
    }
}
