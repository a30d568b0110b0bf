//! The commands a service embeds: `projections rebuild` resets a registered projection's
//! checkpoint and catches up on the one engine (every event applied again), `reset` only
//! forgets the checkpoint, `list` shows the registered ones; an unknown name is not found.

mod support;

use cqrs_admin::service::{Admin, AdminArgs, AdminCommand, CatchUpProjection, ProjectionCommand};
use cqrs_admin::{AdminError, ErrorClass, Inspector};
use cqrs_core::projection::ProjectionRunner;
use cqrs_core::CheckpointStore;
use cqrs_postgres::testing::fresh_store;
use support::{append, Picky};

use uuid::Uuid;

fn args(command: ProjectionCommand) -> AdminArgs {
    AdminArgs {
        json: false,
        command: AdminCommand::Projections(command),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_replays_every_event_and_reset_forgets_the_checkpoint() {
    let store = fresh_store().await.expect("a fresh schema");
    let c = Uuid::new_v4();
    let mut last = cqrs_core::Position::START;
    for n in 1..=3 {
        last = append(&store, &format!("order-{n}"), "OrderPlaced", c).await;
    }
    // The feed shows them once every older transaction ended (other tests' too).
    support::visible(&store, last).await;
    let picky = Picky::new("orders");
    let live = (*store).clone();
    let projection = picky.clone();
    let admin = Admin::new(Inspector::new((*store).clone())).projection(CatchUpProjection::new(
        "orders",
        (*store).clone(),
        move || ProjectionRunner::for_store(projection.clone(), &live),
    ));
    let head = ProjectionRunner::for_store(picky.clone(), &*store)
        .catch_up()
        .await
        .expect("caught up");
    assert_eq!(picky.applied().len(), 3);

    let mut out = Vec::new();
    admin
        .run(
            &args(ProjectionCommand::Rebuild {
                name: "orders".into(),
            }),
            &mut out,
        )
        .await
        .expect("rebuilt");
    let printed = String::from_utf8(out).expect("utf-8");
    assert!(printed.starts_with("rebuilt orders up to "), "{printed}");
    assert_eq!(picky.applied().len(), 6, "every event applied again");
    let saved = store.load_checkpoint("orders").await.expect("read");
    assert!(saved.is_some_and(|p| p >= head), "{saved:?}");

    let mut out = Vec::new();
    admin
        .run(&args(ProjectionCommand::List), &mut out)
        .await
        .expect("listed");
    let printed = String::from_utf8(out).expect("utf-8");
    assert!(printed.starts_with("NAME    CHECKPOINT"), "{printed}");
    assert!(
        printed
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("orders  ")),
        "{printed}"
    );

    let mut out = Vec::new();
    admin
        .run(
            &args(ProjectionCommand::Reset {
                name: "orders".into(),
            }),
            &mut out,
        )
        .await
        .expect("reset");
    assert_eq!(store.load_checkpoint("orders").await.expect("read"), None);

    let unknown = admin
        .run(
            &args(ProjectionCommand::Rebuild {
                name: "nope".into(),
            }),
            &mut Vec::new(),
        )
        .await
        .expect_err("an unknown projection");
    assert!(matches!(unknown, AdminError::NotFound(_)), "{unknown}");
    assert_eq!(unknown.class(), ErrorClass::NotFound);
    assert!(unknown.to_string().contains("known: orders"), "{unknown}");
}
