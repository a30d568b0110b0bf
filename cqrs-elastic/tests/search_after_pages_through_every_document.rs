//! `search_after` paging visits every document exactly once, in sort order, even when many
//! documents share a sort value (the id breaks ties).

mod support;

use std::collections::BTreeSet;

use cqrs_core::{InMemoryEventStore, Position};
use cqrs_elastic::{Query, Search, SortOrder};
use serde_json::json;
use support::*;

#[tokio::test]
async fn search_after_pages_through_every_document_once_in_order() {
    let client = client();
    let store = InMemoryEventStore::new();
    for i in 0..95 {
        let stream = format!("account-{i:03}");
        open_account(&store, &stream, &format!("o{i}"), "c").await;
        append(&store, &stream, "Deposited", json!({ "cents": i % 4 })).await;
    }
    append(&store, "account-007", "Closed", json!({})).await;

    let accounts = Accounts {
        name: unique_name("paging"),
    };
    let model = read_model(&client, accounts.clone()).await;
    let projector = model.projector();
    assert!(drive(&projector, &store, Position::START, 50)
        .await
        .is_empty());

    let base = Search::new(Query::match_all())
        .sort("balance", SortOrder::Desc)
        .size(10)
        .exact_total(true);
    let mut search = base.clone();
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = model.search(&search).await.unwrap();
        assert_eq!(page.total, 94);
        assert!(page.total_is_exact);
        let Some(after) = page.next_after() else {
            break;
        };
        pages += 1;
        seen.extend(page.hits.into_iter().map(|h| (h.document.balance, h.id)));
        search = base.clone().search_after(after);
    }
    assert_eq!(pages, 10);
    assert_eq!(seen.len(), 94);
    let ids: BTreeSet<&String> = seen.iter().map(|(_, id)| id).collect();
    assert_eq!(ids.len(), 94, "no document twice");
    assert!(!ids.contains(&"account-007".to_owned()), "no tombstone");
    assert!(
        seen.windows(2)
            .all(|w| w[0].0 > w[1].0 || (w[0].0 == w[1].0 && w[0].1 < w[1].1)),
        "balance descending, then id ascending"
    );
}
