//! Checks after each timed run, on the node, that the read model holds exactly the expected
//! documents: their count and the sums of their fields over all of them (one aggregation), and
//! a sample read back whole and compared with the fold computed in memory.

use anyhow::{ensure, Result};
use cqrs_elastic::EsQueries;

use crate::model::{AccountView, Expected};
use crate::node::Node;

/// Documents read back whole, spread over the ids.
const SAMPLE: usize = 200;

/// Refreshes `alias` (an alias or index), then fails unless it holds `expected`. Returns a
/// note for the report.
pub(crate) async fn documents(node: &Node, alias: &str, expected: &Expected) -> Result<String> {
    node.refresh(alias).await?;
    let found = node.totals(alias).await?;
    let want = expected.totals();
    ensure!(found == want, "{alias} holds {found:?}, expected {want:?}");
    let model = EsQueries::<AccountView>::new(node.client().clone(), alias)?;
    let sample = expected.sample(SAMPLE);
    for (id, view) in &sample {
        let stored = model.get(id).await?;
        ensure!(
            stored.as_ref() == Some(*view),
            "{alias}: document {id} is {stored:?}, expected {view:?}"
        );
    }
    Ok(format!(
        "verified: {} docs, sums of {} deposits, {} docs equal to the fold",
        want.documents,
        want.deposits,
        sample.len()
    ))
}
