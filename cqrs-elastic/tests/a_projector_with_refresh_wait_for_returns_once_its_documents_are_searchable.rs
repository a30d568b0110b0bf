//! With [`RefreshPolicy::WaitFor`] the projector's bulk waits for the index's next periodic
//! refresh: when `apply` returns, a search finds the documents, with no `make_visible` and no
//! explicit refresh. The index refreshes every 3 s, so without the wait a search right after
//! `apply` would not find them.

mod support;

use std::time::Duration;

use cqrs_core::projection::Projection;
use cqrs_core::InMemoryEventStore;
use cqrs_elastic::{EsReadModel, IndexSettings, ProjectorOptions, Query, RefreshPolicy};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_with_refresh_wait_for_returns_once_its_documents_are_searchable() {
    let client = client();
    let store = InMemoryEventStore::new();
    seed_accounts(&store, 20, 2).await;
    let accounts = Accounts {
        name: unique_name("wait-for"),
    };
    let model = EsReadModel::new(client.clone(), accounts.clone())
        .unwrap()
        .with_index_settings(IndexSettings::default().refresh_interval("3s"))
        .with_projector_options(ProjectorOptions::default().refresh(RefreshPolicy::WaitFor));
    let current = model.ensure().await.expect("the index");
    let projector = model.projector();
    // The index is searched once before, so its shard is not search-idle (an idle shard
    // refreshes on the next search and would hide a missing wait).
    assert_eq!(model.count(&Query::match_all()).await.unwrap(), 0);

    let events = all_events(&store).await;
    tokio::time::timeout(Duration::from_secs(30), projector.apply(&events))
        .await
        .expect("the bulk waiting for a refresh answered within 30 s")
        .expect("apply");

    assert_eq!(
        model.count(&Query::match_all()).await.unwrap(),
        20,
        "the documents are searchable as soon as apply returns"
    );
    let expected = expected_accounts(&events);
    for (id, doc) in &expected {
        assert_eq!(&model.get(id).await.unwrap(), doc, "{id}");
    }

    let _ = client
        .indices()
        .delete(elasticsearch::indices::IndicesDeleteParts::Index(&[
            &current.index,
        ]))
        .send()
        .await;
}
