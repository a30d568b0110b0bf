//! The `_bulk` request of one batch (one action per document, optimistic on `_seq_no`) and the
//! classification of its answer, item by item: a 200 answer can hold failed items.

use serde_json::Value;

use crate::error::is_transient_status;
use crate::http;
use crate::EsError;

/// What a write expects of the stored document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Precondition {
    /// The document must not exist (`create`).
    Absent,
    /// The document must still be the one read (`index` with `if_seq_no` / `if_primary_term`).
    Unchanged {
        /// Its `_seq_no` when read.
        seq_no: u64,
        /// Its `_primary_term` when read.
        primary_term: u64,
    },
}

/// One document's write.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct DocWrite {
    /// The document's id.
    pub(crate) id: String,
    /// The whole `_source`, metadata included, as compact JSON (one line).
    pub(crate) source: Vec<u8>,
    /// What it expects of the stored document.
    pub(crate) precondition: Precondition,
}

/// The NDJSON body of a `_bulk` request writing `writes` (the index is in the URL), written
/// straight into bytes: this runs for every document of every batch.
pub(crate) fn body(writes: &[DocWrite]) -> Result<Vec<u8>, EsError> {
    let mut out = Vec::with_capacity(writes.len() * 256);
    for write in writes {
        let encode = |source| EsError::Encode {
            id: write.id.clone(),
            source: Some(source),
        };
        let action: &[u8] = match write.precondition {
            Precondition::Absent => b"{\"create\":{\"_id\":",
            Precondition::Unchanged { .. } => b"{\"index\":{\"_id\":",
        };
        out.extend_from_slice(action);
        serde_json::to_writer(&mut out, &write.id).map_err(encode)?;
        if let Precondition::Unchanged {
            seq_no,
            primary_term,
        } = write.precondition
        {
            out.extend_from_slice(b",\"if_seq_no\":");
            out.extend_from_slice(seq_no.to_string().as_bytes());
            out.extend_from_slice(b",\"if_primary_term\":");
            out.extend_from_slice(primary_term.to_string().as_bytes());
        }
        out.extend_from_slice(b"}}\n");
        // Compact JSON has no raw newline: one line per source.
        out.extend_from_slice(&write.source);
        out.push(b'\n');
    }
    Ok(out)
}

/// What happened to one bulk item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ItemOutcome {
    /// Written.
    Written,
    /// Someone else wrote the document since it was read (409): read again and retry.
    Conflict,
    /// A failure a retry may cure (429, 5xx, index missing): retry the batch.
    Transient(String),
    /// The server refuses this document (mapping or parse error): its events are poison.
    Rejected(String),
}

/// Classifies each item of a `_bulk` answer to `expected` actions, in request order.
pub(crate) fn classify(answer: &Value, expected: usize) -> Result<Vec<ItemOutcome>, String> {
    let items = answer
        .get("items")
        .and_then(Value::as_array)
        .ok_or_else(|| "no items in the bulk answer".to_owned())?;
    if items.len() != expected {
        return Err(format!(
            "{} items in the bulk answer to {expected} actions",
            items.len()
        ));
    }
    items.iter().map(classify_item).collect()
}

fn classify_item(item: &Value) -> Result<ItemOutcome, String> {
    let result = item
        .as_object()
        .and_then(|action| action.values().next())
        .ok_or_else(|| format!("unreadable bulk item {item}"))?;
    let status = result
        .get("status")
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("bulk item without a status: {item}"))?;
    let reason = || {
        result
            .get("error")
            .map_or_else(|| format!("HTTP {status}"), http::reason)
    };
    Ok(match u16::try_from(status).unwrap_or(u16::MAX) {
        200..=299 => ItemOutcome::Written,
        409 => ItemOutcome::Conflict,
        // A write block (a rebuild freezing the old index before its swap): retry.
        403 if result.pointer("/error/type").and_then(Value::as_str)
            == Some("cluster_block_exception") =>
        {
            ItemOutcome::Transient(reason())
        }
        404 => ItemOutcome::Transient(reason()),
        status if is_transient_status(status) => ItemOutcome::Transient(reason()),
        _ => ItemOutcome::Rejected(reason()),
    })
}

/// The `_seq_no` / `_primary_term` each item of a bulk answer reports (for a successful write,
/// the precondition the next write of that document can use).
pub(crate) fn versions(answer: &Value) -> Vec<Option<Precondition>> {
    let Some(items) = answer.get("items").and_then(Value::as_array) else {
        return Vec::new();
    };
    items
        .iter()
        .map(|item| {
            let result = item.as_object()?.values().next()?;
            Some(Precondition::Unchanged {
                seq_no: result.get("_seq_no")?.as_u64()?,
                primary_term: result.get("_primary_term")?.as_u64()?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn new_documents_are_created_and_known_ones_indexed_on_their_seq_no() {
        let writes = [
            DocWrite {
                id: "a".into(),
                source: serde_json::to_vec(&json!({ "n": 1 })).unwrap(),
                precondition: Precondition::Absent,
            },
            DocWrite {
                id: "b\n".into(),
                source: serde_json::to_vec(&json!({ "text": "two\nlines" })).unwrap(),
                precondition: Precondition::Unchanged {
                    seq_no: 7,
                    primary_term: 2,
                },
            },
        ];
        let body = String::from_utf8(body(&writes).unwrap()).unwrap();
        let lines: Vec<Value> = body
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(body.matches('\n').count(), 4);
        assert!(body.ends_with('\n'));
        assert_eq!(lines[0], json!({ "create": { "_id": "a" } }));
        assert_eq!(lines[1], json!({ "n": 1 }));
        assert_eq!(
            lines[2],
            json!({ "index": { "_id": "b\n", "if_seq_no": 7, "if_primary_term": 2 } })
        );
        assert_eq!(lines[3], json!({ "text": "two\nlines" }));
    }

    #[test]
    fn every_item_is_classified_even_in_a_200_answer() {
        let answer = json!({ "errors": true, "items": [
            { "create": { "_id": "a", "status": 201 } },
            { "index": { "_id": "b", "status": 409, "error": { "type": "version_conflict_engine_exception", "reason": "x" } } },
            { "create": { "_id": "c", "status": 400, "error": { "type": "strict_dynamic_mapping_exception", "reason": "no [b]" } } },
            { "create": { "_id": "d", "status": 429, "error": { "type": "es_rejected_execution_exception", "reason": "queue full" } } },
            { "index": { "_id": "e", "status": 503 } },
            { "index": { "_id": "f", "status": 404, "error": { "type": "index_not_found_exception", "reason": "gone" } } },
        ] });
        let outcomes = classify(&answer, 6).unwrap();
        assert_eq!(outcomes[0], ItemOutcome::Written);
        assert_eq!(outcomes[1], ItemOutcome::Conflict);
        assert_eq!(
            outcomes[2],
            ItemOutcome::Rejected("strict_dynamic_mapping_exception: no [b]".into())
        );
        assert!(matches!(outcomes[3], ItemOutcome::Transient(_)));
        assert_eq!(outcomes[4], ItemOutcome::Transient("HTTP 503".into()));
        assert!(matches!(outcomes[5], ItemOutcome::Transient(_)));
    }

    #[test]
    fn answers_of_the_wrong_shape_are_errors() {
        assert!(classify(&json!({ "items": [] }), 1).is_err());
        assert!(classify(&json!({}), 0).is_err());
        assert!(classify(&json!({ "items": [{ "create": {} }] }), 1).is_err());
    }

    #[test]
    fn written_items_report_the_precondition_for_the_next_write() {
        let answer = json!({ "items": [
            { "index": { "status": 200, "_seq_no": 12, "_primary_term": 3 } },
            { "create": { "status": 409, "error": { "type": "version_conflict_engine_exception" } } },
        ] });
        assert_eq!(
            versions(&answer),
            [
                Some(Precondition::Unchanged {
                    seq_no: 12,
                    primary_term: 3
                }),
                None
            ]
        );
    }
}
