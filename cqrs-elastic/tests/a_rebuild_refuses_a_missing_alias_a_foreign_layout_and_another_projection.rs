//! A rebuild starts only over the read model's own layout, the alias `{name}` over one
//! `{name}_v{n}`, with the projection of that name. Otherwise it refuses with a typed error that
//! is not transient (a retry cannot cure it) and creates no index.

mod support;

use cqrs_core::InMemoryEventStore;
use cqrs_elastic::{EsError, EsIndex, RebuildOptions};
use elasticsearch::indices::{IndicesCreateParts, IndicesDeleteParts};
use serde_json::json;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_without_the_alias_is_refused_as_alias_missing() {
    let client = client();
    let store = InMemoryEventStore::new();
    seed_accounts(&store, 3, 1).await;
    let accounts = Accounts {
        name: unique_name("no-alias"),
    };
    let index = EsIndex::for_projection(client.clone(), &accounts).unwrap();

    let refused = index
        .rebuild(
            accounts.clone(),
            store.clone(),
            store.clone(),
            RebuildOptions::default(),
        )
        .await;
    match &refused {
        Err(error @ EsError::AliasMissing { alias }) => {
            assert_eq!(alias, &accounts.name);
            assert!(!error.is_transient(), "{error:?}");
        }
        other => panic!("expected AliasMissing, got {other:?}"),
    }
    for version in [1, 2] {
        let name = index.version_name(version);
        assert!(!index_exists(&client, &name).await, "{name} was created");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_over_an_alias_on_a_foreign_index_is_refused_as_unexpected_layout() {
    let client = client();
    let store = InMemoryEventStore::new();
    seed_accounts(&store, 3, 1).await;
    let accounts = Accounts {
        name: unique_name("foreign"),
    };
    // The read model's name is an alias over an index that is not `{name}_v{n}`.
    let foreign = format!("{}-made-by-hand", accounts.name);
    let created = client
        .indices()
        .create(IndicesCreateParts::Index(&foreign))
        .body(json!({ "aliases": { accounts.name.clone(): {} } }))
        .send()
        .await
        .expect("create the foreign index");
    assert!(created.status_code().is_success());
    let index = EsIndex::for_projection(client.clone(), &accounts).unwrap();

    let refused = index
        .rebuild(
            accounts.clone(),
            store.clone(),
            store.clone(),
            RebuildOptions::default(),
        )
        .await;
    match &refused {
        Err(error @ EsError::UnexpectedLayout { name, detail }) => {
            assert_eq!(name, &accounts.name);
            assert!(detail.contains(&foreign), "{detail}");
            assert!(!error.is_transient(), "{error:?}");
        }
        other => panic!("expected UnexpectedLayout, got {other:?}"),
    }
    assert!(!index_exists(&client, &index.version_name(2)).await);

    let _ = client
        .indices()
        .delete(IndicesDeleteParts::Index(&[&foreign]))
        .send()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_given_another_projection_is_refused_as_unexpected_layout() {
    let client = client();
    let store = InMemoryEventStore::new();
    seed_accounts(&store, 3, 1).await;
    let accounts = Accounts {
        name: unique_name("mine"),
    };
    projector(&client, accounts.clone()).await;
    let index = EsIndex::for_projection(client.clone(), &accounts).unwrap();
    let other = Accounts {
        name: unique_name("theirs"),
    };

    let refused = index
        .rebuild(
            other.clone(),
            store.clone(),
            store.clone(),
            RebuildOptions::default(),
        )
        .await;
    match &refused {
        Err(error @ EsError::UnexpectedLayout { name, detail }) => {
            assert_eq!(name, &accounts.name);
            assert!(detail.contains(&other.name), "{detail}");
            assert!(!error.is_transient(), "{error:?}");
        }
        other => panic!("expected UnexpectedLayout, got {other:?}"),
    }
    assert!(!index_exists(&client, &index.version_name(2)).await);
    assert_eq!(
        index.current().await.unwrap().map(|v| v.version),
        Some(1),
        "the alias is untouched"
    );

    let _ = client
        .indices()
        .delete(IndicesDeleteParts::Index(&[&index.version_name(1)]))
        .send()
        .await;
}
