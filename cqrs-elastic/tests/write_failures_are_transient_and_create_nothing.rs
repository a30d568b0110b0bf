//! Failures a retry may cure come back as `ProjectionError::Transient`: an unreachable node,
//! or a read model whose alias is missing, which must never auto-create an index.

mod support;

use cqrs_core::projection::{Projection, ProjectionError};
use cqrs_core::InMemoryEventStore;
use cqrs_elastic::{EsError, EsProjector, EsQueries};
use support::*;

#[tokio::test]
async fn a_missing_alias_or_node_is_transient_and_creates_no_index() {
    let client = client();
    let store = InMemoryEventStore::new();
    open_account(&store, "account-1", "ada", "c").await;
    let events = all_events(&store).await;
    let accounts = Accounts {
        name: unique_name("noalias"),
    };

    let projector = EsProjector::new(client.clone(), accounts.clone()).unwrap();
    assert!(matches!(
        projector.apply(&events).await,
        Err(ProjectionError::Transient(_))
    ));
    assert!(
        !index_exists(&client, &accounts.name).await,
        "no index was auto-created"
    );

    let unreachable = cqrs_elastic::connect("http://127.0.0.1:1").unwrap();
    let projector = EsProjector::new(unreachable.clone(), accounts.clone()).unwrap();
    assert!(matches!(
        projector.apply(&events).await,
        Err(ProjectionError::Transient(_))
    ));

    let model: EsQueries<AccountView> =
        EsQueries::new(client.clone(), accounts.name.clone()).unwrap();
    match model.get("account-1").await {
        Err(error @ EsError::Status { status: 404, .. }) => assert!(!error.is_transient()),
        other => panic!("a missing index is an error, not an absent document: {other:?}"),
    }
    let down: EsQueries<AccountView> = EsQueries::new(unreachable, accounts.name).unwrap();
    assert!(down
        .count(&cqrs_elastic::Query::match_all())
        .await
        .unwrap_err()
        .is_transient());
}
