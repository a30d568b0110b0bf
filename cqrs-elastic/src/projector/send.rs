//! Sending a batch's writes: one `_bulk`, or a large batch split into parallel requests.

use elasticsearch::BulkParts;
use tracing::Instrument;

use super::EsProjector;
use crate::bulk::{self, DocWrite, ItemOutcome, Precondition};
use crate::{http, ElasticProjection, Result};

impl<P: ElasticProjection> EsProjector<P> {
    /// Writes `writes` (one per document) and classifies each item, in order. A batch large
    /// enough goes out as up to `parallel_bulks` requests at once, so a node with more than
    /// one write thread indexes them side by side; the documents are distinct, so the parts
    /// are independent.
    pub(super) async fn bulk(
        &self,
        writes: &[DocWrite],
    ) -> Result<Vec<(ItemOutcome, Option<Precondition>)>> {
        let parts = parts(writes.len(), self.options.parallel_bulks);
        if parts == 1 {
            return bulk::send_split(writes, |w| self.bulk_part(w)).await;
        }
        let size = writes.len().div_ceil(parts);
        let answers = futures_util::future::join_all(
            writes
                .chunks(size)
                .map(|part| bulk::send_split(part, |w| self.bulk_part(w))),
        )
        .await;
        let mut outcomes = Vec::with_capacity(writes.len());
        for answer in answers {
            outcomes.extend(answer?);
        }
        Ok(outcomes)
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

#[cfg(test)]
mod tests {
    use super::parts;

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
