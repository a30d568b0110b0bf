//! The web console in the order service: without `ORDER_SERVICE_CONSOLE_TOKEN` `/console`
//! is the service's 404; with it, `/console` needs the token (401 without) and shows the
//! service's own workers with their live state, leases and lag. In a real headless Chromium
//! (`WEBDRIVER_URL`), an order's saga instance is found and its timeline shown.

mod support;

use cqrs_console::testing::Browser;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orders_saga_instance_and_its_timeline_show_in_the_browser() {
    let (config, names) = config();
    let service = TestService::start(config.with_console_token("order-console-token")).await;
    let http = client();
    let (status, _, _) = send(
        http.post(service.url("/stock/widget/restock"))
            .json(&json!({ "quantity": 10 })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, placed) = send(http.post(service.url("/orders/o-7")).json(&json!({
        "customer": "alice",
        "lines": [{ "sku": "widget", "quantity": 2, "unit_price": 1250 }],
    })))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{placed}");

    let browser = Browser::start().await;
    browser.goto(&service.url("/console/")).await;
    browser
        .type_into(&browser.find("#token").await, "order-console-token")
        .await;
    browser
        .click(&browser.find("main.login button[type=submit]").await)
        .await;
    browser.wait_for("#projections").await;
    browser.screenshot("order-service-projections").await;

    // The saga's instance for the order appears once the saga has read the event.
    eventually("the saga's instance is listed", || async {
        browser.goto(&service.url("/console/processes")).await;
        browser.try_find("table.instances tbody tr a").await
    })
    .await;
    browser.screenshot("order-service-processes").await;
    browser
        .click(&browser.find("table.instances tbody tr a").await)
        .await;
    let timeline = browser.text(&browser.wait_for("#timeline").await).await;
    assert!(
        timeline.contains("OrderPlaced"),
        "the timeline starts with the order: {timeline}"
    );
    browser.screenshot("order-service-process-instance").await;

    // The order's saga completed, so it is not among the stuck ones.
    browser
        .goto(&service.url("/console/processes?stuck=1"))
        .await;
    browser.wait_for("section.process").await;
    assert_eq!(browser.count("table.instances tbody tr").await, 0);
    drop(browser);
    service.stop().await;
    names.clean_up().await;
}
