//! The user's side of a read model: [`ElasticProjection`] and the [`Change`] it decides.

use cqrs_core::{BoxError, EventFilter, RecordedEvent};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// What one event does to one document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change<D> {
    /// The document becomes this (created when it did not exist).
    Upsert(D),
    /// The document is deleted. It is kept as a tombstone (only the framework's metadata) so a
    /// replay of older events cannot bring it back; queries never see tombstones.
    Delete,
    /// Nothing changes.
    Unchanged,
}

/// A read model kept in Elasticsearch: which events it reads, which document each event
/// changes, and how. Plain and synchronous: [`EsProjector`](crate::EsProjector) does the I/O.
///
/// `apply` must be deterministic (a replay folds the same events again): read time, randomness
/// and ids from the event, never from the clock.
///
/// ```
/// use cqrs_core::{BoxError, EventFilter, RecordedEvent};
/// use cqrs_elastic::{Change, ElasticProjection};
/// use serde::{Deserialize, Serialize};
/// use serde_json::{json, Value};
///
/// #[derive(Clone, Serialize, Deserialize)]
/// struct AccountView { owner: String, balance: i64 }
///
/// struct Accounts;
///
/// impl ElasticProjection for Accounts {
///     type Document = AccountView;
///
///     fn name(&self) -> &str { "accounts" }
///
///     fn mappings(&self) -> Value {
///         json!({ "owner": { "type": "keyword" }, "balance": { "type": "long" } })
///     }
///
///     fn filter(&self) -> EventFilter { EventFilter::all().category("account") }
///
///     fn document_id(&self, event: &RecordedEvent) -> Result<Option<String>, BoxError> {
///         Ok(Some(event.stream_id.to_string()))
///     }
///
///     fn apply(&self, current: Option<&AccountView>, event: &RecordedEvent)
///         -> Result<Change<AccountView>, BoxError>
///     {
///         Ok(match (event.event_type.as_str(), current) {
///             ("Opened", None) => Change::Upsert(AccountView {
///                 owner: serde_json::from_value(event.payload["owner"].clone())?,
///                 balance: 0,
///             }),
///             ("Deposited", Some(view)) => {
///                 let cents = event.payload["cents"].as_i64().ok_or("cents missing")?;
///                 Change::Upsert(AccountView { balance: view.balance + cents, ..view.clone() })
///             }
///             ("Closed", Some(_)) => Change::Delete,
///             _ => Change::Unchanged,
///         })
///     }
/// }
/// ```
pub trait ElasticProjection: Send + Sync {
    /// The document type: one JSON object per document, without a top-level field named
    /// `cqrs` (the framework keeps its metadata there). Its serde forms must round-trip (no
    /// `#[serde(skip)]` state that `apply` relies on): the projector folds the next batch over
    /// the document it last wrote, kept in memory, and a restarted projector over the document
    /// read back from the index; both must be the same.
    type Document: Serialize + DeserializeOwned + Send + Sync;

    /// The read model's name: the alias queries use, the prefix of its versioned indices and
    /// the default checkpoint name. Lowercase letters, digits, `-`, `_` and `.`.
    fn name(&self) -> &str;

    /// The mapping of the document's fields: the `properties` object, explicit (the index is
    /// created with `dynamic: strict` by default, so an unmapped field is a rejected document).
    fn mappings(&self) -> Value;

    /// Which events it reads. Default: all.
    fn filter(&self) -> EventFilter {
        EventFilter::all()
    }

    /// The id of the document `event` changes: `Ok(Some(id))`, or `Ok(None)` when the event
    /// is not for this read model. Documents may be fed by several streams: the id is whatever
    /// the event names (a customer id in the payload, ...). Ids must be 1 to 512 bytes long.
    ///
    /// An `Err` (a payload that does not decode, say) makes the event poison, with the error's
    /// text, exactly as an `Err` from [`apply`](Self::apply) does: it is parked or stops the
    /// projection per its policy. Decode with `?`, never `.ok()?`, which would skip the event
    /// while the projection reports it applied.
    ///
    /// ```
    /// # use cqrs_core::{BoxError, RecordedEvent};
    /// #[derive(serde::Deserialize)]
    /// struct Lent { book: String }
    ///
    /// fn document_id(event: &RecordedEvent) -> Result<Option<String>, BoxError> {
    ///     if event.event_type != "Lent" {
    ///         return Ok(None); // not for this read model
    ///     }
    ///     let lent: Lent = serde_json::from_value(event.payload.clone())?; // poison if it fails
    ///     Ok(Some(lent.book))
    /// }
    /// # let _ = document_id;
    /// ```
    fn document_id(&self, event: &RecordedEvent) -> Result<Option<String>, BoxError>;

    /// What `event` does to the document, given its current state (`None` when it does not
    /// exist or was deleted). The state is borrowed so that [`Change::Unchanged`] and errors
    /// keep it: build the new document from a clone when the event changes it. An `Err`
    /// means this event can never be applied: it is reported as a poison event, and the document's later events in the same batch are held back.
    fn apply(
        &self,
        current: Option<&Self::Document>,
        event: &RecordedEvent,
    ) -> Result<Change<Self::Document>, BoxError>;
}

macro_rules! delegate {
    ($($ty:ty),*) => {$(
        /// Runs the projection behind the pointer, so one value can feed several projectors.
        impl<P: ElasticProjection + ?Sized> ElasticProjection for $ty {
            type Document = P::Document;

            fn name(&self) -> &str {
                (**self).name()
            }

            fn mappings(&self) -> Value {
                (**self).mappings()
            }

            fn filter(&self) -> EventFilter {
                (**self).filter()
            }

            fn document_id(&self, event: &RecordedEvent) -> Result<Option<String>, BoxError> {
                (**self).document_id(event)
            }

            fn apply(
                &self,
                current: Option<&Self::Document>,
                event: &RecordedEvent,
            ) -> Result<Change<Self::Document>, BoxError> {
                (**self).apply(current, event)
            }
        }
    )*};
}

delegate!(&P, std::sync::Arc<P>);
