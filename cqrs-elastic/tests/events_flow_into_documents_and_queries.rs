//! End to end: events appended to a store become documents through an `EsReadModel`'s
//! projector, and the read model answers typed queries on them.

mod support;

use cqrs_core::{InMemoryEventStore, Position};
use cqrs_elastic::{EsError, Query, Search, SortOrder};
use serde_json::json;
use support::*;

#[tokio::test]
async fn events_flow_into_documents_and_answer_typed_queries() {
    let client = client();
    let store = InMemoryEventStore::new();
    seed_accounts(&store, 30, 4).await;
    append(&store, "account-3", "Closed", json!({})).await;
    append(&store, "payment-1", "Authorized", json!({ "cents": 5 })).await; // not an account

    let accounts = Accounts {
        name: unique_name("flow"),
    };
    let model = read_model(&client, accounts.clone()).await;
    let rejected = drive(&model.projector(), &store, Position::START, 7).await;
    assert!(rejected.is_empty(), "{rejected:?}");

    let expected = expected_accounts(&all_events(&store).await);

    // get: every document as the fold says; deleted and unknown ones are absent.
    for (id, doc) in &expected {
        assert_eq!(&model.get(id).await.unwrap(), doc, "document {id}");
    }
    assert_eq!(model.get("account-3").await.unwrap(), None);
    assert_eq!(model.get("account-999").await.unwrap(), None);

    // count excludes the tombstone.
    let live = expected.values().filter(|d| d.is_some()).count() as u64;
    assert_eq!(model.count(&Query::match_all()).await.unwrap(), live);

    // term on a keyword, sorted by a number with the id as tie-breaker.
    let page = model
        .search(
            &Search::new(Query::term("customer", "c1"))
                .sort("balance", SortOrder::Desc)
                .size(100),
        )
        .await
        .unwrap();
    let want: Vec<&AccountView> = expected
        .values()
        .flatten()
        .filter(|v| v.customer == "c1")
        .collect();
    assert_eq!(page.hits.len(), want.len());
    assert_eq!(page.total, want.len() as u64);
    assert!(page
        .hits
        .windows(2)
        .all(|w| w[0].document.balance >= w[1].document.balance));
    assert!(page
        .hits
        .iter()
        .all(|h| h.sort.len() == 2 && h.position.is_some()));
    for hit in &page.hits {
        assert_eq!(Some(&hit.document), expected[&hit.id].as_ref());
    }

    // terms, range, match, exists and bool.
    let in_two = model
        .count(&Query::terms("customer", ["c1", "c2"]))
        .await
        .unwrap();
    let by_hand = expected
        .values()
        .flatten()
        .filter(|v| v.customer == "c1" || v.customer == "c2")
        .count();
    assert_eq!(in_two, by_hand as u64);

    let rich = model
        .count(&Query::range("balance").gte(40).lt(80).into())
        .await
        .unwrap();
    let by_hand = expected
        .values()
        .flatten()
        .filter(|v| (40..80).contains(&v.balance))
        .count();
    assert_eq!(rich, by_hand as u64);

    let adas = model
        .search(&Search::new(Query::matches("owner", "ada")).size(100))
        .await
        .unwrap();
    let by_hand = expected
        .values()
        .flatten()
        .filter(|v| v.owner.contains("ada"))
        .count();
    assert_eq!(adas.hits.len(), by_hand);

    assert_eq!(model.count(&Query::exists("balance")).await.unwrap(), live);
    assert_eq!(model.count(&Query::exists("nickname")).await.unwrap(), 0);

    let query = Query::bool()
        .filter(Query::term("customer", "c0"))
        .should(Query::matches("owner", "bob"))
        .should(Query::range("deposits").gt(2))
        .minimum_should_match(1)
        .must_not(Query::term("owner.raw", "owner ada 0"));
    let by_hand = expected
        .values()
        .flatten()
        .filter(|v| {
            v.customer == "c0"
                && (v.owner.contains("bob") || v.deposits > 2)
                && v.owner != "owner ada 0"
        })
        .count();
    assert_eq!(model.count(&query.into()).await.unwrap(), by_hand as u64);

    // from / size pages.
    let all = Search::new(Query::match_all()).sort("owner.raw", SortOrder::Asc);
    let first = model.search(&all.clone().size(10)).await.unwrap();
    let second = model.search(&all.clone().from(10).size(10)).await.unwrap();
    assert_eq!(first.hits.len(), 10);
    assert!(first.hits.last().unwrap().document.owner < second.hits[0].document.owner);

    // A query the server refuses is an error, not an empty page: the server's 400, which no
    // retry cures.
    let refused = model
        .search(&Search::new(Query::match_all()).sort("owner", SortOrder::Asc))
        .await
        .unwrap_err();
    assert!(
        matches!(
            &refused,
            EsError::Status { operation: "search", status: 400, reason } if !reason.is_empty()
        ),
        "{refused:?}"
    );
    assert!(!refused.is_transient(), "{refused:?}");
}
