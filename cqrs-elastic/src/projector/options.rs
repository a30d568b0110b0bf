//! [`ProjectorOptions`]: how an [`EsProjector`](crate::EsProjector) writes.

use crate::RefreshPolicy;

/// The default of [`ProjectorOptions::max_bulk_bytes`].
const DEFAULT_MAX_BULK_BYTES: usize = 10 << 20;

/// How an [`EsProjector`](crate::EsProjector) writes: when documents become searchable, how
/// many it remembers, how it splits large batches and how often it retries a document someone
/// else wrote. A value: build it with its setters and give it to
/// [`EsProjector::with_options`](crate::EsProjector::with_options) or
/// [`EsReadModel::with_projector_options`](crate::EsReadModel::with_projector_options).
///
/// ```
/// use cqrs_elastic::{ProjectorOptions, RefreshPolicy};
///
/// let options = ProjectorOptions::default()
///     .refresh(RefreshPolicy::WaitFor)
///     .parallel_bulks(4);
/// # let _ = options;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProjectorOptions {
    pub(crate) refresh: RefreshPolicy,
    pub(crate) cache_documents: usize,
    pub(crate) parallel_bulks: usize,
    pub(crate) max_conflict_retries: u32,
    pub(crate) max_bulk_bytes: usize,
}

impl Default for ProjectorOptions {
    fn default() -> Self {
        Self {
            refresh: RefreshPolicy::default(),
            cache_documents: 10_000,
            parallel_bulks: 2,
            max_conflict_retries: 5,
            max_bulk_bytes: DEFAULT_MAX_BULK_BYTES,
        }
    }
}

impl ProjectorOptions {
    /// When written documents become searchable (default [`RefreshPolicy::Immediate`]).
    #[must_use]
    pub fn refresh(mut self, policy: RefreshPolicy) -> Self {
        self.refresh = policy;
        self
    }

    /// How many documents to remember as last written, sparing their `_mget` in later batches
    /// (default 10 000; 0 reads every document every batch). The memory is dropped after any
    /// transient failure and whenever the runner says leading started or ended
    /// ([`Projection::leadership_changed`](cqrs_core::projection::Projection::leadership_changed));
    /// an event a document refuses is tried again on the document read from the index, and
    /// only a refusal there is poison. An index deleted and recreated under a running
    /// projector without one (a manual reset) needs the projector restarted, as its checkpoint
    /// does.
    #[must_use]
    pub fn cache_documents(mut self, documents: usize) -> Self {
        self.cache_documents = documents;
        self
    }

    /// Splits a large batch's writes into up to `requests` `_bulk` requests sent at once
    /// (default 2), of at least 100 documents each. A single bulk into one shard is indexed by
    /// one write thread; parallel parts let a node index on more. Each document is still
    /// written once, with its own precondition, and the batch stands only when every part
    /// does. 1 sends one request per batch.
    #[must_use]
    pub fn parallel_bulks(mut self, requests: usize) -> Self {
        self.parallel_bulks = requests.max(1);
        self
    }

    /// The most bytes of documents one `_bulk` request carries (default 10 MiB): a batch of
    /// large documents goes out in as many requests as it takes, a few at a time (see
    /// [`parallel_bulks`](Self::parallel_bulks)), and a document larger than this alone. A node
    /// refuses a request far below its `http.max_content_length` when its memory is short (its
    /// circuit breaker, its indexing pressure: a tenth of its heap); such a refusal, like a
    /// 413, is sent again in halves.
    #[must_use]
    pub fn max_bulk_bytes(mut self, bytes: usize) -> Self {
        self.max_bulk_bytes = bytes.max(1);
        self
    }

    /// How many times documents that someone else wrote meanwhile are read again and retried
    /// within one batch before the batch fails as transient (default 5).
    #[must_use]
    pub fn max_conflict_retries(mut self, retries: u32) -> Self {
        self.max_conflict_retries = retries;
        self
    }
}
