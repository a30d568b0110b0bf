//! A command sent again is answered with its first outcome, whose events the repository reads
//! back: `last_version - first_version + 1` of them. A store whose recorded outcome has the two
//! the wrong way round (a row edited by hand) made that subtraction overflow, a panic in a
//! debug build and every event of the stream from `first_version` on in a release one. It is
//! the store's error now.

mod repository_support;

use cqrs_core::testing::{Tally, TallyCommand};
use cqrs_core::{CommandContext, CommandError, CommandId, Error, Repository};
use repository_support::Counted;

#[tokio::test]
async fn a_first_outcome_whose_last_version_precedes_its_first_is_the_stores_error() {
    let store = Counted::default();
    let tallies = Repository::<Tally, _>::new(store.clone());
    let context = CommandContext::new().command_id(CommandId::new());
    tallies
        .execute_with("t", &TallyCommand::Add(vec![1, 2, 3]), context.clone())
        .await
        .expect("lands at versions 1 to 3");

    store.calls.swap_command_versions();
    let again = tallies
        .execute_with("t", &TallyCommand::Add(vec![1, 2, 3]), context)
        .await;

    assert!(
        matches!(again, Err(CommandError::Store(Error::Backend(_)))),
        "{again:?}"
    );
}
