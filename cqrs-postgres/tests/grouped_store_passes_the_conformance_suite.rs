//! The PostgreSQL store with group commit on, against the same conformance suite.

mod support;

cqrs_core::store_conformance_tests!(|| async {
    support::store().await.with_group_commit(
        cqrs_postgres::GroupCommit::default()
            .alone_below(0)
            .lanes(2),
    )
});
