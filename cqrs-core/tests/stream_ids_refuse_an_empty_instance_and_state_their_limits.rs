//! A stream id names one instance: `"member-"` (a category and nothing after it) is refused
//! with a typed error, and a too long id says that the limit counts the whole id, category
//! prefix included, and how long the instance part may be.

use cqrs_core::testing::{Tally, TallyCommand};
use cqrs_core::{CommandError, Error, InMemoryEventStore, InvalidStreamId, Repository, StreamId};

#[test]
fn a_category_without_an_instance_is_refused() {
    let err = StreamId::with_category("member", "").expect_err("empty instance");
    assert_eq!(
        err,
        InvalidStreamId::EmptyInstance {
            category: "member".to_owned()
        }
    );
    assert_eq!(
        err.to_string(),
        "stream id \"member-\" has an empty instance id after its category \"member\""
    );
    assert_eq!(
        StreamId::new("member-"),
        Err(InvalidStreamId::EmptyInstance {
            category: "member".to_owned()
        })
    );
}

#[tokio::test]
async fn a_command_on_an_empty_aggregate_id_is_refused_before_the_store() {
    let tallies = Repository::<Tally, _>::new(InMemoryEventStore::new());
    let err = tallies
        .execute("", &TallyCommand::Close)
        .await
        .expect_err("empty id");
    assert!(
        matches!(
            err,
            CommandError::Store(Error::InvalidStreamId(
                InvalidStreamId::EmptyInstance { .. }
            ))
        ),
        "{err:?}"
    );
}

#[test]
fn an_instance_too_long_for_its_category_says_how_long_it_may_be() {
    let max = StreamId::MAX_LEN - "member-".len();
    assert!(StreamId::with_category("member", &"x".repeat(max)).is_ok());
    let err = StreamId::with_category("member", &"x".repeat(max + 1)).expect_err("too long");
    assert_eq!(
        err,
        InvalidStreamId::InstanceTooLong {
            category: "member".to_owned(),
            len: max + 1,
            max,
        }
    );
    assert_eq!(
        err.to_string(),
        format!(
            "instance id is {} bytes long, more than the {max} a stream id of category \
             \"member\" leaves for it (a stream id is at most {} bytes, \"member-\" included)",
            max + 1,
            StreamId::MAX_LEN
        )
    );
}

#[test]
fn a_too_long_id_says_the_limit_counts_the_whole_id() {
    let err = StreamId::new("x".repeat(StreamId::MAX_LEN + 1)).expect_err("too long");
    assert_eq!(
        err.to_string(),
        format!(
            "stream id is {} bytes long, more than the {} allowed (the whole id, category \
             prefix included)",
            StreamId::MAX_LEN + 1,
            StreamId::MAX_LEN
        )
    );
}
