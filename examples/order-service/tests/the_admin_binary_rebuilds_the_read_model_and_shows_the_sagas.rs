//! `order-service-admin`, the service's embedded operations commands, run as a process next to
//! a running service: `projections rebuild` fills a new index of the search read model and
//! swaps the alias while queries keep answering; `status` and `processes` show the saga and
//! its instances with their timelines; an unknown projection is not found (exit 3).

mod support;

use std::process::Command;

use cqrs_admin::inspect::{InstanceDetail, InstanceView, Overview};
use cqrs_admin::service::RebuildOutcome;
use reqwest::StatusCode;
use serde_json::json;
use support::{client, config, eventually, required_env, send, Names, TestService};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn admin(names: &Names, args: &[&str]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_order-service-admin"));
    command
        .env("DATABASE_URL", required_env("DATABASE_URL"))
        .env("ELASTICSEARCH_URL", required_env("ELASTICSEARCH_URL"))
        .env("ORDER_SERVICE_SCHEMA", &names.schema)
        .env("ORDER_SERVICE_INDEX", &names.index)
        .args(args);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("the process task ran")
        .expect("the admin binary starts");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn parse<T: serde::de::DeserializeOwned>(run: &Run) -> T {
    assert_eq!(run.code, 0, "failed: {}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_swaps_the_index_and_the_saga_instances_are_listed_with_timelines() {
    let (config, names) = config();
    let service = TestService::start(config).await;
    let http = client();
    let (status, _, _) = send(
        http.post(service.url("/stock/widget/restock"))
            .json(&json!({ "quantity": 100 })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let mut last = String::new();
    for n in 1..=5 {
        let (status, _, placed) = send(http.post(service.url(&format!("/orders/o-{n}"))).json(
            &json!({
                "customer": "alice",
                "lines": [{ "sku": "widget", "quantity": 1, "unit_price": 100 }],
            }),
        ))
        .await;
        assert_eq!(status, StatusCode::CREATED, "{placed}");
        last = placed["position"].as_str().expect("a position").to_owned();
    }
    let (status, _, _) = send(
        http.get(service.url("/orders/o-5"))
            .query(&[("min_position", last.as_str())]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // The rebuild: a new index, every event, the alias moved.
    let rebuilt = admin(&names, &["projections", "rebuild", &names.index, "--json"]).await;
    let outcome: RebuildOutcome = parse(&rebuilt);
    assert!(
        rebuilt
            .stderr
            .contains(&format!("rebuilding {}", names.index)),
        "a progress line: {}",
        rebuilt.stderr
    );
    assert_eq!(outcome.name, names.index);
    assert!(outcome.events.unwrap_or(0) >= 5, "{:?}", outcome);
    assert!(
        outcome.detail.contains(&format!("{}_v2", names.index)),
        "{:?}",
        outcome
    );
    let (status, _, summary) = send(http.get(service.url("/orders/o-3"))).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "queries answer after the swap: {summary}"
    );
    assert_eq!(summary["customer"], "alice");

    // Status: the live read model, the saga, the rebuild's checkpoint.
    let overview: Overview = parse(&admin(&names, &["status", "--json"]).await);
    let names_listed: Vec<&str> = overview
        .subscribers
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert!(
        names_listed.contains(&names.index.as_str()),
        "{names_listed:?}"
    );
    assert!(
        names_listed.contains(&"process:order_fulfilment"),
        "{names_listed:?}"
    );
    let live = overview.subscriber(&names.index).expect("the read model");
    assert!(live.lease.as_ref().is_some_and(|l| l.live), "{live:?}");

    // The saga's instances, and one's timeline.
    let instances: Vec<InstanceView> = eventually("the saga's instances", || {
        let names = &names;
        async move {
            let run = admin(names, &["processes", "list", "order_fulfilment", "--json"]).await;
            let rows: Vec<InstanceView> = parse(&run);
            (rows.len() == 5).then_some(rows)
        }
    })
    .await;
    let first = &instances[0];
    let detail: InstanceDetail = parse(
        &admin(
            &names,
            &[
                "processes",
                "show",
                "order_fulfilment",
                &first.instance,
                "--json",
            ],
        )
        .await,
    );
    assert!(detail.status.is_some());
    assert_eq!(detail.timeline[0].kind, "received", "{:?}", detail.timeline);
    let table = admin(
        &names,
        &["processes", "show", "order_fulfilment", &first.instance],
    )
    .await;
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(
        table.stdout.contains("VERSION  POSITION"),
        "{}",
        table.stdout
    );

    // An unknown projection: one line, exit 3.
    let unknown = admin(&names, &["projections", "rebuild", "nope"]).await;
    assert_eq!(unknown.code, 3, "{}", unknown.stderr);
    assert_eq!(unknown.stderr.lines().count(), 1, "{}", unknown.stderr);

    service.stop().await;
    names.clean_up().await;
}
