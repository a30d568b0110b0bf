//! The `_bulk` request of one batch (one action per document, optimistic on `_seq_no`) and the
//! classification of its answer, item by item (a 200 answer can hold failed items), and of a
//! failed request as a whole (too large: split it; refused: its documents are poison; anything
//! else: retry).

use std::future::Future;

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
    /// The index is write-blocked (a rebuild freezing the old index before its swap): retry
    /// the batch, once the block's holder is known (and the block released if it expired).
    Blocked(String),
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
            ItemOutcome::Blocked(reason())
        }
        404 => ItemOutcome::Transient(reason()),
        // Refused by the node's security (a role or key without write access to the index):
        // the credentials are at fault, not the document, as for a whole request refused so;
        // the document is written once access is granted.
        401 | 403 => ItemOutcome::Transient(reason()),
        // The index, not the document, is at fault (closed by an operator, a bad target
        // name): the document is written once the index is fixed.
        400 if result
            .pointer("/error/type")
            .and_then(Value::as_str)
            .is_some_and(is_index_error) =>
        {
            ItemOutcome::Transient(reason())
        }
        status if is_transient_status(status) => ItemOutcome::Transient(reason()),
        _ => ItemOutcome::Rejected(reason()),
    })
}

/// Whether a 400 of this error type is about the index rather than the document.
fn is_index_error(error_type: &str) -> bool {
    matches!(
        error_type,
        "index_closed_exception" | "invalid_index_name_exception"
    )
}

/// What the failure of a whole `_bulk` request means for the documents it carried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RequestFailure {
    /// 413: the request is too large for the node; send its documents in smaller requests
    /// (a document alone that is still too large is poison).
    TooLarge,
    /// 429 from the node's circuit breaker or indexing pressure: the request is too large for
    /// the memory the node has now; send its documents in smaller requests (a document alone
    /// is retried: the memory frees up).
    TooLargeForNow,
    /// 400 for what one line of the request holds (a document or an action it cannot
    /// parse): send its documents in smaller requests, down to the ones it refuses, which
    /// are poison.
    RefusedLine,
    /// Any other 400: the node refuses the request itself (a parameter, the target); every
    /// document in it is poison, at once (halving would only repeat it).
    Refused,
    /// Anything else (no answer, 408, another 429, 5xx, authentication): retry the batch.
    Transient,
}

/// Classifies a failed `_bulk` request.
pub(crate) fn classify_failure(error: &EsError) -> RequestFailure {
    match error {
        EsError::Status { status: 413, .. } => RequestFailure::TooLarge,
        EsError::Status {
            status: 429,
            reason,
            ..
        } if is_memory_refusal(reason) => RequestFailure::TooLargeForNow,
        EsError::Status {
            status: 400,
            reason,
            ..
        } if is_line_refusal(reason) => RequestFailure::RefusedLine,
        EsError::Status { status: 400, .. } => RequestFailure::Refused,
        _ => RequestFailure::Transient,
    }
}

/// Whether a 400's reason ([`http::reason`](crate::http::reason): its type first) blames one
/// line of the request rather than the request.
fn is_line_refusal(reason: &str) -> bool {
    [
        "x_content_parse_exception",
        "json_parse_exception",
        "mapper_parsing_exception",
        "action_request_validation_exception",
    ]
    .iter()
    .any(|kind| reason.starts_with(kind))
}

/// Whether a 429's reason ([`http::reason`](crate::http::reason): its type first) says the
/// request did not fit the node's memory: its parent circuit breaker ("Data too large"), or
/// its indexing pressure on the coordinating node. Other 429s (a full write queue) pass with
/// time alone.
fn is_memory_refusal(reason: &str) -> bool {
    reason.starts_with("circuit_breaking_exception")
        || (reason.contains("rejected_execution_exception") && reason.contains("coordinating"))
}

/// Each write's outcome, and the precondition its next write can use.
pub(crate) type Outcomes = Vec<(ItemOutcome, Option<Precondition>)>;

/// Sends `writes` with `send` (one `_bulk` request a call) and returns each write's outcome, in
/// order. A request too large (413, or 429 from the node's memory guards) or refused for
/// one of its lines (a 400 that blames a document) is sent again as two halves, down to single
/// documents: one the node still finds too large or refuses is rejected, one it has no memory
/// for now is retried with the batch. A request refused for itself (another 400) rejects its
/// documents at once. Any other failure is returned, for the batch to be retried.
pub(crate) async fn send_split<'w, F, Fut>(
    writes: &'w [DocWrite],
    send: F,
) -> Result<Outcomes, EsError>
where
    F: Fn(&'w [DocWrite]) -> Fut,
    Fut: Future<Output = Result<Outcomes, EsError>>,
{
    let mut outcomes = Vec::with_capacity(writes.len());
    // Parts still to send, the next one last.
    let mut pending = vec![writes];
    while let Some(part) = pending.pop() {
        let error = match send(part).await {
            Ok(answer) => {
                outcomes.extend(answer);
                continue;
            }
            Err(error) => error,
        };
        match classify_failure(&error) {
            RequestFailure::Transient => return Err(error),
            RequestFailure::TooLarge
            | RequestFailure::TooLargeForNow
            | RequestFailure::RefusedLine
                if part.len() > 1 =>
            {
                let (first, second) = part.split_at(part.len() / 2);
                tracing::debug!(
                    documents = part.len(),
                    %error,
                    "bulk refused as a whole, sending it in halves"
                );
                pending.push(second);
                pending.push(first);
            }
            RequestFailure::TooLargeForNow => return Err(error),
            RequestFailure::TooLarge | RequestFailure::RefusedLine | RequestFailure::Refused => {
                let reason = error.to_string();
                outcomes.extend(
                    part.iter()
                        .map(|_| (ItemOutcome::Rejected(reason.clone()), None)),
                );
            }
        }
    }
    Ok(outcomes)
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
    fn a_closed_or_misnamed_index_is_transient_not_the_documents_fault() {
        let answer = json!({ "items": [
            { "create": { "status": 400, "error": { "type": "index_closed_exception", "reason": "closed" } } },
            { "create": { "status": 400, "error": { "type": "invalid_index_name_exception", "reason": "must be lowercase" } } },
            { "create": { "status": 400, "error": { "type": "mapper_parsing_exception", "reason": "failed to parse" } } },
        ] });
        let outcomes = classify(&answer, 3).unwrap();
        assert!(matches!(outcomes[0], ItemOutcome::Transient(_)));
        assert!(matches!(outcomes[1], ItemOutcome::Transient(_)));
        assert!(matches!(outcomes[2], ItemOutcome::Rejected(_)));
    }

    fn status(status: u16) -> EsError {
        EsError::Status {
            operation: "bulk",
            status,
            reason: "x".into(),
        }
    }

    #[test]
    fn a_write_the_nodes_security_refuses_is_retried_not_parked() {
        let answer = json!({ "items": [
            { "index": { "status": 403, "error": { "type": "security_exception", "reason": "action [indices:data/write/bulk[s]] is unauthorized" } } },
            { "create": { "status": 401, "error": { "type": "security_exception", "reason": "missing authentication credentials" } } },
        ] });
        let outcomes = classify(&answer, 2).unwrap();
        assert!(
            matches!(outcomes[0], ItemOutcome::Transient(_)),
            "{outcomes:?}"
        );
        assert!(
            matches!(outcomes[1], ItemOutcome::Transient(_)),
            "{outcomes:?}"
        );
    }

    #[test]
    fn failed_requests_are_split_refused_or_retried_by_status() {
        assert_eq!(classify_failure(&status(413)), RequestFailure::TooLarge);
        assert_eq!(classify_failure(&status(400)), RequestFailure::Refused);
        for transient in [401, 403, 404, 408, 429, 500, 502, 503] {
            assert_eq!(
                classify_failure(&status(transient)),
                RequestFailure::Transient,
                "{transient}"
            );
        }
        let unanswered = http::unexpected("bulk", "no items");
        assert_eq!(classify_failure(&unanswered), RequestFailure::Transient);
    }

    fn writes(n: usize) -> Vec<DocWrite> {
        (0..n)
            .map(|i| DocWrite {
                id: format!("d{i}"),
                source: vec![b'x'; 10 * (i + 1)],
                precondition: Precondition::Absent,
            })
            .collect()
    }

    /// A node that refuses requests over `limit` source bytes with 413, and requests holding
    /// document `bad` with 400; it records the documents of each request it gets.
    async fn node(
        writes: &[DocWrite],
        limit: usize,
        bad: Option<&str>,
        seen: &std::sync::Mutex<Vec<Vec<String>>>,
    ) -> Result<Outcomes, EsError> {
        let ids: Vec<String> = writes.iter().map(|w| w.id.clone()).collect();
        seen.lock().unwrap().push(ids.clone());
        if writes.iter().map(|w| w.source.len()).sum::<usize>() > limit {
            return Err(status(413));
        }
        if bad.is_some_and(|bad| ids.iter().any(|id| id == bad)) {
            return Err(EsError::Status {
                operation: "bulk",
                status: 400,
                reason: "x_content_parse_exception: [1:10] Unexpected character".into(),
            });
        }
        Ok(writes
            .iter()
            .map(|_| (ItemOutcome::Written, None))
            .collect())
    }

    #[tokio::test]
    async fn a_bulk_too_large_is_sent_in_halves_until_it_fits() {
        let writes = writes(8); // 10 + 20 + ... + 80 = 360 bytes
        let seen = std::sync::Mutex::new(Vec::new());
        let outcomes = send_split(&writes, |part| node(part, 100, None, &seen))
            .await
            .unwrap();
        assert_eq!(outcomes.len(), 8);
        // d7 alone (80 bytes) fits; d6 + d7 (150) does not.
        assert!(outcomes.iter().all(|(o, _)| *o == ItemOutcome::Written));
        let seen = seen.into_inner().unwrap();
        assert_eq!(seen[0].len(), 8, "the whole batch first");
        let written: Vec<String> = seen
            .iter()
            .filter(|ids| {
                ids.iter()
                    .map(|id| (id[1..].parse::<usize>().unwrap() + 1) * 10)
                    .sum::<usize>()
                    <= 100
            })
            .flatten()
            .cloned()
            .collect();
        assert_eq!(
            written,
            (0..8).map(|i| format!("d{i}")).collect::<Vec<_>>(),
            "each document once, in order"
        );

        // A single document over the limit is rejected; the others are written.
        let seen = std::sync::Mutex::new(Vec::new());
        let outcomes = send_split(&writes, |part| node(part, 75, None, &seen))
            .await
            .unwrap();
        let rejected: Vec<usize> = outcomes
            .iter()
            .enumerate()
            .filter(|(_, (o, _))| matches!(o, ItemOutcome::Rejected(r) if r.contains("413")))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(rejected, [7], "{outcomes:?}");
    }

    #[tokio::test]
    async fn a_refused_bulk_rejects_the_documents_refused_alone_and_other_failures_are_returned() {
        let writes = writes(3);
        let seen = std::sync::Mutex::new(Vec::new());
        let outcomes = send_split(&writes, |part| node(part, 1000, Some("d1"), &seen))
            .await
            .unwrap();
        let rejected: Vec<bool> = outcomes
            .iter()
            .map(|(o, _)| matches!(o, ItemOutcome::Rejected(r) if r.contains("400")))
            .collect();
        assert_eq!(rejected, [false, true, false], "{outcomes:?}");
        // A request refused for itself (a parameter the node does not know) is not halved:
        // every part would be refused the same way.
        let sent = std::sync::atomic::AtomicUsize::new(0);
        let outcomes = send_split(&writes, |_| {
            sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async {
                Err::<Outcomes, _>(EsError::Status {
                    operation: "bulk",
                    status: 400,
                    reason: "illegal_argument_exception: request [/_bulk] contains unrecognized parameter: [require_alias]".into(),
                })
            }
        })
        .await
        .unwrap();
        assert!(outcomes
            .iter()
            .all(|(o, _)| matches!(o, ItemOutcome::Rejected(r) if r.contains("400"))));
        assert_eq!(sent.load(std::sync::atomic::Ordering::SeqCst), 1);
        let failed = send_split(&writes, |_| async { Err::<Outcomes, _>(status(503)) }).await;
        assert!(matches!(failed, Err(EsError::Status { status: 503, .. })));
    }

    #[test]
    fn answers_of_the_wrong_shape_are_errors() {
        // Each is a malformed answer, not an item outcome: the caller turns it into an
        // `UnexpectedResponse`, and no document is classified (nothing written, nothing poison).
        assert_eq!(
            classify(&json!({ "items": [] }), 1),
            Err("0 items in the bulk answer to 1 actions".to_owned())
        );
        assert_eq!(
            classify(&json!({}), 0),
            Err("no items in the bulk answer".to_owned())
        );
        assert_eq!(
            classify(&json!({ "items": [{ "create": {} }] }), 1),
            Err(r#"bulk item without a status: {"create":{}}"#.to_owned())
        );
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
