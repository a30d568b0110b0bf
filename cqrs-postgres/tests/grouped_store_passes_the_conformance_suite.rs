//! The PostgreSQL store with group commit on, against the same conformance suite: every
//! append with an exact version goes through a lane, batches of any size included.

mod support;

cqrs_core::store_conformance_tests!(|| async {
    support::store().await.with_group_commit(
        cqrs_postgres::GroupCommit::default()
            .alone_below(0)
            .alone_from_events(usize::MAX)
            .lanes(2),
    )
});
