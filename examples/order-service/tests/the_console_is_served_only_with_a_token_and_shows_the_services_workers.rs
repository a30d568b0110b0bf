//! The web console in the order service: without `ORDER_SERVICE_CONSOLE_TOKEN` `/console`
//! is the service's 404; with it, `/console` needs the token (401 without) and shows the
//! service's own workers with their live state, leases and lag.

mod support;

use reqwest::StatusCode;
use serde_json::json;
use support::{client, config, eventually, send, TestService};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_off_by_default_and_behind_its_token_when_on() {
    let (config, names) = config();
    let service = TestService::start(config.with_console_token("order-console-token")).await;
    let http = client();

    let (status, _, _) = send(http.get(service.url("/console/"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no token, no console");

    let (status, _, _) = send(
        http.post(service.url("/stock/widget/restock"))
            .json(&json!({ "quantity": 5 })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Every worker saves a checkpoint once it has read past the event, and shows as running.
    let page = eventually("the console lists the three running workers", || async {
        let answer = http
            .get(service.url("/console/"))
            .bearer_auth("order-console-token")
            .send()
            .await
            .ok()?;
        if answer.status() != StatusCode::OK {
            return None;
        }
        let page = answer.text().await.ok()?;
        (page.matches("state-running").count() >= 3).then_some(page)
    })
    .await;
    assert!(
        page.contains("process:"),
        "the saga's runner is listed: {page}"
    );
    assert!(
        !page.contains("order-console-token"),
        "the page never shows the token"
    );
    service.stop().await;

    // The same service without a token: no console.
    let (config, other) = support::config();
    let service = TestService::start(config).await;
    let (status, _, body) = send(http.get(service.url("/console/"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    service.stop().await;
    other.clean_up().await;
    names.clean_up().await;
}
