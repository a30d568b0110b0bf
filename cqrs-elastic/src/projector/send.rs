//! Sending a batch's writes: one `_bulk`, or a large batch split into parallel requests.

use elasticsearch::BulkParts;
use futures_util::{StreamExt, TryStreamExt};
use tracing::Instrument;

use super::EsProjector;
use crate::bulk::{self, DocWrite, ItemOutcome, Precondition};
use crate::{http, ElasticProjection, Result};

impl<P: ElasticProjection> EsProjector<P> {
    /// Writes `writes` (one per document) and classifies each item, in order. A batch large
    /// enough goes out as up to `parallel_bulks` requests at once, so a node with more than
    /// one write thread indexes them side by side; the documents are distinct, so the parts
    /// are independent. No request carries more than `max_bulk_bytes` of documents: a batch
    /// of large documents goes out in more parts, still `parallel_bulks` at a time.
    pub(super) async fn bulk(
        &self,
        writes: &[DocWrite],
    ) -> Result<Vec<(ItemOutcome, Option<Precondition>)>> {
        let parallel = self.options.parallel_bulks;
        let most = writes.len().div_ceil(parts(writes.len(), parallel)).max(1);
        let runs = runs(writes, most, self.options.max_bulk_bytes);
        if let [only] = runs.as_slice() {
            return bulk::send_split(only, |w| self.bulk_part(w)).await;
        }
        let sends: Vec<_> = runs
            .into_iter()
            .map(|part| bulk::send_split(part, |w| self.bulk_part(w)))
            .collect();
        // The first failure ends the batch: the runs not sent yet are not sent for nothing.
        let answers: Vec<_> = futures_util::stream::iter(sends)
            .buffered(parallel)
            .try_collect()
            .await?;
        Ok(answers.into_iter().flatten().collect())
    }

    /// One `_bulk` request, in a debug span `es_projector.bulk` (inside the runner's batch
    /// span, so in the trace the batch follows).
    async fn bulk_part(
        &self,
        writes: &[DocWrite],
    ) -> Result<Vec<(ItemOutcome, Option<Precondition>)>> {
        let span = tracing::debug_span!(
            "es_projector.bulk",
            target = %self.target,
            documents = writes.len(),
        );
        self.send_bulk(writes).instrument(span).await
    }

    async fn send_bulk(
        &self,
        writes: &[DocWrite],
    ) -> Result<Vec<(ItemOutcome, Option<Precondition>)>> {
        let mut request = self
            .client
            .bulk(BulkParts::Index(&self.target))
            .filter_path(&[
                "errors",
                "items.*.status",
                "items.*.error",
                "items.*._seq_no",
                "items.*._primary_term",
            ]);
        if self.via_alias {
            request = request.require_alias(true);
        }
        if let Some(refresh) = self.options.refresh.param() {
            request = request.refresh(refresh);
        }
        let response = request.body(vec![bulk::body(writes)?]).send().await?;
        let answer = http::json_ok(response, "bulk").await?;
        let outcomes = bulk::classify(&answer, writes.len())
            .map_err(|detail| http::unexpected("bulk", detail))?;
        let mut versions = bulk::versions(&answer).into_iter();
        Ok(outcomes
            .into_iter()
            .map(|outcome| (outcome, versions.next().flatten()))
            .collect())
    }
}

/// The fewest documents worth a `_bulk` request of their own: below it, a second round trip
/// costs more than the parallel indexing saves.
const MIN_PART: usize = 100;

/// Into how many requests a bulk of `documents` is split, at most `parallel`.
fn parts(documents: usize, parallel: usize) -> usize {
    (documents / MIN_PART).clamp(1, parallel.max(1))
}

/// What one document adds to a request besides its `_source`: its action line.
const ACTION_BYTES: usize = 96;

/// `writes` in runs of at most `documents` writes and `bytes` bytes each, in order; a write
/// larger than `bytes` alone.
fn runs(writes: &[DocWrite], documents: usize, bytes: usize) -> Vec<&[DocWrite]> {
    let mut runs = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (i, write) in writes.iter().enumerate() {
        let more = write.source.len() + write.id.len() + ACTION_BYTES;
        if i > start && (i - start == documents || size + more > bytes) {
            runs.push(&writes[start..i]);
            (start, size) = (i, 0);
        }
        size += more;
    }
    if start < writes.len() {
        runs.push(&writes[start..]);
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::{parts, runs, ACTION_BYTES};
    use crate::bulk::{DocWrite, Precondition};

    #[test]
    fn runs_hold_at_most_their_documents_and_bytes_and_a_large_document_goes_alone() {
        let write = |id: &str, bytes: usize| DocWrite {
            id: id.to_owned(),
            source: vec![b'x'; bytes - ACTION_BYTES - id.len()],
            precondition: Precondition::Absent,
        };
        let writes = [
            write("a", 300),
            write("b", 300),
            write("c", 300),
            write("d", 1000),
            write("e", 300),
        ];
        let ids = |runs: Vec<&[DocWrite]>| -> Vec<String> {
            runs.iter()
                .map(|run| run.iter().map(|w| w.id.as_str()).collect())
                .collect()
        };
        assert_eq!(ids(runs(&writes, 10, 700)), ["ab", "c", "d", "e"]);
        assert_eq!(ids(runs(&writes, 2, 10_000)), ["ab", "cd", "e"]);
        assert_eq!(ids(runs(&writes, 10, 10_000)), ["abcde"]);
        assert!(runs(&[], 10, 700).is_empty());
    }

    #[test]
    fn only_batches_of_a_hundred_documents_a_part_are_split() {
        assert_eq!(parts(0, 2), 1);
        assert_eq!(parts(1, 2), 1);
        assert_eq!(parts(199, 2), 1);
        assert_eq!(parts(200, 2), 2);
        assert_eq!(parts(500, 2), 2);
        assert_eq!(parts(500, 4), 4);
        assert_eq!(parts(350, 8), 3);
        assert_eq!(parts(10_000, 1), 1);
        assert_eq!(parts(10_000, 0), 1);
    }
}
