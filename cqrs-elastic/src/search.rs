//! [`Search`] requests and the [`Page`] of [`Hit`]s they return.

use cqrs_core::Position;
use serde_json::{json, Map, Value};

use crate::document::{META_DELETED, META_ID};
use crate::Query;

/// A sort direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortOrder {
    /// Smallest first.
    Asc,
    /// Largest first.
    Desc,
}

impl SortOrder {
    fn as_str(self) -> &'static str {
        match self {
            SortOrder::Asc => "asc",
            SortOrder::Desc => "desc",
        }
    }
}

/// A search on a read model: query, sort, and a page by `from` / `size` or by `search_after`.
///
/// Sorted searches end with the document id as a tie-breaker, so that `search_after` pages
/// through documents with equal sort values without skipping or repeating any. Tombstones
/// (deleted documents) are always excluded.
///
/// ```
/// use cqrs_elastic::{SortOrder, Query, Search};
///
/// let first = Search::new(Query::term("status", "open")).sort("total", SortOrder::Desc).size(50);
/// // ...then, with the last hit's sort values of the previous page:
/// let next = first.clone().search_after(vec![serde_json::json!(120), serde_json::json!("order-7")]);
/// # let _ = next;
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Search {
    query: Query,
    sort: Vec<(String, SortOrder)>,
    from: Option<u64>,
    size: Option<u64>,
    search_after: Option<Vec<Value>>,
    exact_total: bool,
}

impl Search {
    /// A search for `query` (first 10 hits, by score).
    pub fn new(query: impl Into<Query>) -> Self {
        Self {
            query: query.into(),
            ..Self::default()
        }
    }

    /// Sorts by `field` (a keyword, number, date or boolean field), after earlier sorts.
    #[must_use]
    pub fn sort(mut self, field: impl Into<String>, order: SortOrder) -> Self {
        self.sort.push((field.into(), order));
        self
    }

    /// Skips the first `from` hits (with `from + size` at most 10 000 by default: page deeper
    /// with [`search_after`](Self::search_after)).
    #[must_use]
    pub fn from(mut self, from: u64) -> Self {
        self.from = Some(from);
        self
    }

    /// At most `size` hits (default 10).
    #[must_use]
    pub fn size(mut self, size: u64) -> Self {
        self.size = Some(size);
        self
    }

    /// Hits after these sort values: a previous page's [`Page::next_after`].
    #[must_use]
    pub fn search_after(mut self, sort_values: Vec<Value>) -> Self {
        self.search_after = Some(sort_values);
        self
    }

    /// Counts every hit exactly instead of stopping at 10 000.
    #[must_use]
    pub fn exact_total(mut self, exact: bool) -> Self {
        self.exact_total = exact;
        self
    }

    /// The request body.
    pub fn to_body(&self) -> Value {
        let mut body = Map::new();
        body.insert("query".to_owned(), live_only(&self.query));
        if !self.sort.is_empty() || self.search_after.is_some() {
            let mut sort: Vec<Value> = self
                .sort
                .iter()
                .map(|(field, order)| json!({ field: { "order": order.as_str() } }))
                .collect();
            if !self.sort.iter().any(|(field, _)| field == META_ID) {
                sort.push(json!({ META_ID: { "order": "asc" } }));
            }
            body.insert("sort".to_owned(), Value::Array(sort));
        }
        if let Some(from) = self.from {
            body.insert("from".to_owned(), json!(from));
        }
        if let Some(size) = self.size {
            body.insert("size".to_owned(), json!(size));
        }
        if let Some(after) = &self.search_after {
            body.insert("search_after".to_owned(), Value::Array(after.clone()));
        }
        if self.exact_total {
            body.insert("track_total_hits".to_owned(), json!(true));
        }
        Value::Object(body)
    }
}

/// `query`, without tombstones.
pub(crate) fn live_only(query: &Query) -> Value {
    json!({ "bool": {
        "must": [query.to_json()],
        "must_not": [{ "term": { META_DELETED: { "value": true } } }],
    } })
}

/// One page of a search.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Page<T> {
    /// The hits, in order.
    pub hits: Vec<Hit<T>>,
    /// How many documents match in all.
    pub total: u64,
    /// `false` when `total` is a lower bound (more than 10 000 hits without
    /// [`Search::exact_total`]).
    pub total_is_exact: bool,
}

impl<T> Page<T> {
    /// The sort values to pass to [`Search::search_after`] for the next page, `None` when
    /// this page is empty.
    pub fn next_after(&self) -> Option<Vec<Value>> {
        self.hits.last().map(|hit| hit.sort.clone())
    }
}

/// One document found.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Hit<T> {
    /// The document's id.
    pub id: String,
    /// The document.
    pub document: T,
    /// Its sort values (empty for an unsorted search).
    pub sort: Vec<Value>,
    /// The feed position of the last event applied to it.
    pub position: Option<Position>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn searches_exclude_tombstones_and_break_sort_ties_by_id() {
        let body = Search::new(Query::term("s", "x"))
            .sort("n", SortOrder::Desc)
            .size(5)
            .search_after(vec![json!(3), json!("d-9")])
            .to_body();
        assert_eq!(
            body,
            json!({
                "query": { "bool": {
                    "must": [{ "term": { "s": { "value": "x" } } }],
                    "must_not": [{ "term": { "cqrs.deleted": { "value": true } } }]
                } },
                "sort": [{ "n": { "order": "desc" } }, { "cqrs.id": { "order": "asc" } }],
                "size": 5,
                "search_after": [3, "d-9"]
            })
        );
    }

    #[test]
    fn unsorted_searches_stay_by_score() {
        let body = Search::new(Query::match_all())
            .from(20)
            .exact_total(true)
            .to_body();
        assert!(body.get("sort").is_none());
        assert_eq!(body["from"], 20);
        assert_eq!(body["track_total_hits"], true);
    }
}
