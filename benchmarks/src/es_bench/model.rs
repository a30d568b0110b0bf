//! The read model every workload builds: one document per account stream with its balance,
//! its number of deposits and the reference of its last deposit (a keyword unique to each
//! event, which the freshness workload searches for).

use std::collections::BTreeMap;

use anyhow::Result;
use cqrs_core::{BoxError, EventFilter, NewEvent, Position, RecordedEvent, StreamId};
use cqrs_elastic::{Change, ElasticProjection};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The streams' category.
pub(crate) const CATEGORY: &str = "account";

/// The only event type.
pub(crate) const EVENT_TYPE: &str = "Deposited";

/// The searchable field holding the last deposit's reference.
pub(crate) const LAST_REF: &str = "last_ref";

/// The event's payload: `{"amount": n, "ref": "..."}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Deposit {
    /// How much.
    pub(crate) amount: u64,
    /// A reference unique to the event.
    #[serde(rename = "ref")]
    pub(crate) reference: String,
}

impl Deposit {
    /// The deposit of version `version` of account `account` in a filled store.
    pub(crate) fn filled(account: u64, version: u64) -> Self {
        Self {
            amount: 1 + (account * 31 + version) % 97,
            reference: format!("a{account}v{version}"),
        }
    }

    /// The event recording it.
    pub(crate) fn event(&self) -> NewEvent {
        NewEvent::new(
            EVENT_TYPE,
            1,
            json!({ "amount": self.amount, "ref": self.reference }),
        )
    }
}

/// The stream of account `account`.
pub(crate) fn stream_of(account: u64) -> Result<StreamId> {
    Ok(StreamId::with_category(CATEGORY, &account.to_string())?)
}

/// The document of account `account`: its stream id.
pub(crate) fn document_id(account: u64) -> String {
    format!("{CATEGORY}-{account}")
}

/// One account's document.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AccountView {
    /// The sum of its deposits.
    pub(crate) balance: u64,
    /// How many deposits.
    pub(crate) deposits: u64,
    /// The reference of the last deposit.
    pub(crate) last_ref: String,
}

impl AccountView {
    /// The view after `deposit`.
    pub(crate) fn apply(&mut self, deposit: &Deposit) {
        self.balance += deposit.amount;
        self.deposits += 1;
        self.last_ref.clone_from(&deposit.reference);
    }

    /// The `_source` `EsProjector` stores for this view: its fields plus the framework's `cqrs`
    /// metadata (what a raw or direct write must store to hold the same document).
    pub(crate) fn stored_source(&self, id: &str, position: Position) -> Result<Value> {
        let mut source = serde_json::to_value(self)?;
        source["cqrs"] = json!({ "id": id, "position": position.to_string(), "deleted": false });
        Ok(source)
    }
}

/// The accounts read model under the alias `name`.
#[derive(Clone, Debug)]
pub(crate) struct Accounts {
    name: String,
}

impl Accounts {
    /// The read model `name` (an index name: lowercase).
    pub(crate) fn new(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }
}

impl ElasticProjection for Accounts {
    type Document = AccountView;

    fn name(&self) -> &str {
        &self.name
    }

    fn mappings(&self) -> Value {
        json!({
            "balance": { "type": "long" },
            "deposits": { "type": "long" },
            LAST_REF: { "type": "keyword" }
        })
    }

    fn filter(&self) -> EventFilter {
        EventFilter::all().category(CATEGORY)
    }

    fn document_id(&self, event: &RecordedEvent) -> Result<Option<String>, BoxError> {
        Ok(Some(event.stream_id.to_string()))
    }

    fn apply(
        &self,
        current: Option<&AccountView>,
        event: &RecordedEvent,
    ) -> Result<Change<AccountView>, BoxError> {
        if event.event_type != EVENT_TYPE {
            return Ok(Change::Unchanged);
        }
        let deposit = Deposit::deserialize(&event.payload)?;
        let mut view = current.cloned().unwrap_or_default();
        view.apply(&deposit);
        Ok(Change::Upsert(view))
    }
}

/// The documents a read model must hold, by id: the fold of the events written, computed
/// without the store or the node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Expected {
    documents: BTreeMap<String, AccountView>,
}

/// Sums over all documents, which one search aggregation checks on the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Totals {
    /// Documents.
    pub(crate) documents: u64,
    /// The sum of `deposits`: the events folded in.
    pub(crate) deposits: u64,
    /// The sum of `balance`.
    pub(crate) balance: u64,
}

impl Expected {
    /// Applies `deposit` to document `id`.
    pub(crate) fn apply(&mut self, id: &str, deposit: &Deposit) -> &AccountView {
        let view = self.documents.entry(id.to_owned()).or_default();
        view.apply(deposit);
        view
    }

    /// Every document, by id.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &AccountView)> {
        self.documents.iter()
    }

    /// `n` documents spread evenly over the ids, the first and the last included.
    pub(crate) fn sample(&self, n: usize) -> Vec<(&String, &AccountView)> {
        let len = self.documents.len();
        let step = (len / n.max(1)).max(1);
        let mut picked: Vec<_> = self.documents.iter().step_by(step).collect();
        if let Some(last) = self.documents.iter().next_back() {
            if picked.last() != Some(&last) {
                picked.push(last);
            }
        }
        picked
    }

    /// The sums the node must report.
    pub(crate) fn totals(&self) -> Totals {
        let mut totals = Totals {
            documents: 0,
            deposits: 0,
            balance: 0,
        };
        for view in self.documents.values() {
            totals.documents += 1;
            totals.deposits += view.deposits;
            totals.balance += view.balance;
        }
        totals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_fold_deposits() {
        let mut expected = Expected::default();
        expected.apply("account-1", &Deposit::filled(1, 1));
        let view = expected.apply("account-1", &Deposit::filled(1, 2)).clone();
        assert_eq!(view.deposits, 2);
        assert_eq!(
            view.balance,
            Deposit::filled(1, 1).amount + Deposit::filled(1, 2).amount
        );
        assert_eq!(view.last_ref, "a1v2");
    }

    #[test]
    fn samples_spread_over_the_ids_and_hold_both_ends() {
        let mut expected = Expected::default();
        for account in 0..1_000 {
            expected.apply(&document_id(account), &Deposit::filled(account, 1));
        }
        let sample = expected.sample(10);
        assert!((10..=11).contains(&sample.len()));
        assert_eq!(sample.first().map(|(id, _)| id.as_str()), Some("account-0"));
        assert_eq!(
            sample.last().map(|(id, _)| id.as_str()),
            Some("account-999")
        );
    }

    #[test]
    fn stored_sources_carry_the_projector_metadata() {
        let view = AccountView {
            balance: 5,
            deposits: 1,
            last_ref: "r".into(),
        };
        let source = view
            .stored_source("account-1", Position::from_parts(7, 2))
            .ok();
        assert_eq!(
            source,
            Some(json!({
                "balance": 5, "deposits": 1, "last_ref": "r",
                "cqrs": { "id": "account-1", "position": "7/2", "deleted": false }
            }))
        );
    }
}
