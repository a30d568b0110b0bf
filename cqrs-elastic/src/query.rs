//! A small typed query builder: the part of the query DSL that Elasticsearch 7 to 9 and
//! OpenSearch 2 share and that read models need most.

use serde_json::{json, Map, Value};

/// A query on a read model's documents.
///
/// ```
/// use cqrs_elastic::Query;
/// use serde_json::json;
///
/// let query = Query::bool()
///     .filter(Query::term("status", "open"))
///     .filter(Query::range("total").gte(100).lt(500))
///     .must(Query::matches("customer", "ada lovelace"))
///     .must_not(Query::exists("cancelled_at"));
/// assert_eq!(
///     Query::from(query).to_json(),
///     json!({ "bool": {
///         "must": [{ "match": { "customer": { "query": "ada lovelace" } } }],
///         "filter": [
///             { "term": { "status": { "value": "open" } } },
///             { "range": { "total": { "gte": 100, "lt": 500 } } }
///         ],
///         "must_not": [{ "exists": { "field": "cancelled_at" } }]
///     } })
/// );
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub enum Query {
    /// Every document (the default).
    #[default]
    MatchAll,
    /// Documents whose `field` is exactly `value` (keywords, numbers, booleans, dates).
    Term {
        /// The field.
        field: String,
        /// The value.
        value: Value,
    },
    /// Documents whose `field` is exactly one of `values`.
    Terms {
        /// The field.
        field: String,
        /// The values.
        values: Vec<Value>,
    },
    /// Full-text match of `text` against an analyzed (`text`) field.
    Match {
        /// The field.
        field: String,
        /// The text.
        text: String,
    },
    /// Documents whose `field` lies in a range.
    Range(Range),
    /// Documents where `field` has a value.
    Exists {
        /// The field.
        field: String,
    },
    /// A boolean combination.
    Bool(BoolQuery),
}

impl Query {
    /// Every document.
    pub fn match_all() -> Self {
        Query::MatchAll
    }

    /// `field` is exactly `value`.
    pub fn term(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Query::Term {
            field: field.into(),
            value: value.into(),
        }
    }

    /// `field` is exactly one of `values`.
    pub fn terms<I, V>(field: impl Into<String>, values: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<Value>,
    {
        Query::Terms {
            field: field.into(),
            values: values.into_iter().map(Into::into).collect(),
        }
    }

    /// Full-text `match` of `text` against `field`.
    pub fn matches(field: impl Into<String>, text: impl Into<String>) -> Self {
        Query::Match {
            field: field.into(),
            text: text.into(),
        }
    }

    /// A range on `field`; bound it with [`Range::gt`], [`Range::gte`], [`Range::lt`],
    /// [`Range::lte`].
    pub fn range(field: impl Into<String>) -> Range {
        Range {
            field: field.into(),
            bounds: Map::new(),
        }
    }

    /// `field` has a value.
    pub fn exists(field: impl Into<String>) -> Self {
        Query::Exists {
            field: field.into(),
        }
    }

    /// An empty boolean query, to fill with [`BoolQuery::must`] and friends.
    pub fn bool() -> BoolQuery {
        BoolQuery::default()
    }

    /// The query in the search DSL.
    pub fn to_json(&self) -> Value {
        match self {
            Query::MatchAll => json!({ "match_all": {} }),
            Query::Term { field, value } => json!({ "term": { field: { "value": value } } }),
            Query::Terms { field, values } => json!({ "terms": { field: values } }),
            Query::Match { field, text } => json!({ "match": { field: { "query": text } } }),
            Query::Range(range) => json!({ "range": { &range.field: range.bounds } }),
            Query::Exists { field } => json!({ "exists": { "field": field } }),
            Query::Bool(query) => query.to_json(),
        }
    }
}

/// A range query under construction; a [`Query`] through `From`.
#[derive(Clone, Debug, PartialEq)]
pub struct Range {
    field: String,
    bounds: Map<String, Value>,
}

impl Range {
    /// Greater than `value`.
    #[must_use]
    pub fn gt(self, value: impl Into<Value>) -> Self {
        self.bound("gt", value)
    }

    /// Greater than or equal to `value`.
    #[must_use]
    pub fn gte(self, value: impl Into<Value>) -> Self {
        self.bound("gte", value)
    }

    /// Less than `value`.
    #[must_use]
    pub fn lt(self, value: impl Into<Value>) -> Self {
        self.bound("lt", value)
    }

    /// Less than or equal to `value`.
    #[must_use]
    pub fn lte(self, value: impl Into<Value>) -> Self {
        self.bound("lte", value)
    }

    fn bound(mut self, op: &str, value: impl Into<Value>) -> Self {
        self.bounds.insert(op.to_owned(), value.into());
        self
    }
}

impl From<Range> for Query {
    fn from(range: Range) -> Self {
        Query::Range(range)
    }
}

/// A boolean query under construction; a [`Query`] through `From`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BoolQuery {
    must: Vec<Query>,
    filter: Vec<Query>,
    should: Vec<Query>,
    must_not: Vec<Query>,
    minimum_should_match: Option<u32>,
}

impl BoolQuery {
    /// Must match, and counts for the score.
    #[must_use]
    pub fn must(mut self, query: impl Into<Query>) -> Self {
        self.must.push(query.into());
        self
    }

    /// Must match, without scoring (cacheable).
    #[must_use]
    pub fn filter(mut self, query: impl Into<Query>) -> Self {
        self.filter.push(query.into());
        self
    }

    /// Should match: alone in a bool query, at least one must; next to `must` or `filter`, they
    /// only raise the score unless [`minimum_should_match`](Self::minimum_should_match) is set.
    #[must_use]
    pub fn should(mut self, query: impl Into<Query>) -> Self {
        self.should.push(query.into());
        self
    }

    /// Must not match.
    #[must_use]
    pub fn must_not(mut self, query: impl Into<Query>) -> Self {
        self.must_not.push(query.into());
        self
    }

    /// How many `should` clauses must match.
    #[must_use]
    pub fn minimum_should_match(mut self, n: u32) -> Self {
        self.minimum_should_match = Some(n);
        self
    }

    fn to_json(&self) -> Value {
        let mut body = Map::new();
        for (name, clauses) in [
            ("must", &self.must),
            ("filter", &self.filter),
            ("should", &self.should),
            ("must_not", &self.must_not),
        ] {
            if !clauses.is_empty() {
                body.insert(
                    name.to_owned(),
                    Value::Array(clauses.iter().map(Query::to_json).collect()),
                );
            }
        }
        if let Some(n) = self.minimum_should_match {
            body.insert("minimum_should_match".to_owned(), json!(n));
        }
        json!({ "bool": body })
    }
}

impl From<BoolQuery> for Query {
    fn from(query: BoolQuery) -> Self {
        Query::Bool(query)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_queries_render_as_the_dsl() {
        assert_eq!(Query::match_all().to_json(), json!({ "match_all": {} }));
        assert_eq!(
            Query::terms("tag", ["a", "b"]).to_json(),
            json!({ "terms": { "tag": ["a", "b"] } })
        );
        assert_eq!(
            Query::term("n", 3).to_json(),
            json!({ "term": { "n": { "value": 3 } } })
        );
        assert_eq!(
            Query::from(Query::range("at").gt("2024-01-01").lte("2024-12-31")).to_json(),
            json!({ "range": { "at": { "gt": "2024-01-01", "lte": "2024-12-31" } } })
        );
    }

    #[test]
    fn bool_queries_nest_and_omit_empty_clauses() {
        let query = Query::from(
            Query::bool()
                .should(Query::term("a", 1))
                .should(Query::bool().must(Query::exists("b")))
                .minimum_should_match(1),
        );
        assert_eq!(
            query.to_json(),
            json!({ "bool": {
                "should": [
                    { "term": { "a": { "value": 1 } } },
                    { "bool": { "must": [{ "exists": { "field": "b" } }] } }
                ],
                "minimum_should_match": 1
            } })
        );
        assert_eq!(Query::from(Query::bool()).to_json(), json!({ "bool": {} }));
    }
}
