//! `CommandContext::first_delivery` spares the lookup of a command's first outcome. A process
//! manager claims it for a step it has just recorded; but a second worker whose term overlapped
//! (one paused past its lease) may have sent the same step meanwhile, and the target accepted
//! it. Before, the claimed delivery was handled on the state the first one made and refused,
//! and the process recorded the step as rejected while the aggregate had applied it (its
//! failure path then cancelled an order whose stock stayed reserved). A refusal under the claim
//! is now checked against the command's first outcome, and answered by it.

use cqrs_core::testing::{Tally, TallyCommand};
use cqrs_core::{CommandContext, CommandError, CommandId, InMemoryEventStore, Repository};

#[tokio::test]
async fn a_refusal_under_a_first_delivery_claim_is_answered_by_the_command_s_first_outcome() {
    let store = InMemoryEventStore::new();
    let tallies = Repository::<Tally, _>::new(store.clone());
    let id = CommandId::new();
    let first = tallies
        .execute_with(
            "t",
            &TallyCommand::Close,
            CommandContext::new().command_id(id),
        )
        .await
        .expect("closed");

    let claimed = CommandContext::new().command_id(id).first_delivery();
    let again = tallies
        .execute_with("t", &TallyCommand::Close, claimed)
        .await
        .expect("the first outcome, not a refusal");
    assert!(again.duplicate);
    assert_eq!(again.position, first.position);

    // A refusal of a command never delivered before stands.
    let other = CommandContext::new()
        .command_id(CommandId::new())
        .first_delivery();
    let refused = tallies.execute_with("t", &TallyCommand::Close, other).await;
    assert!(
        matches!(refused, Err(CommandError::Rejected(_))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_refusal_under_the_claim_on_a_cached_state_is_answered_by_the_first_outcome_too() {
    let store = InMemoryEventStore::new();
    let tallies = Repository::<Tally, _>::new(store.clone()).with_cache(16);
    let id = CommandId::new();
    tallies
        .execute_with(
            "t",
            &TallyCommand::Close,
            CommandContext::new().command_id(id),
        )
        .await
        .expect("closed");
    let claimed = CommandContext::new().command_id(id).first_delivery();
    let again = tallies
        .execute_with("t", &TallyCommand::Close, claimed)
        .await
        .expect("the first outcome, not a refusal");
    assert!(again.duplicate);
}
