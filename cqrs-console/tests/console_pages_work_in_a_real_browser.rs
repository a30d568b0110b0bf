//! The console driven in a real headless Chromium (WebDriver: `WEBDRIVER_URL`) against a real
//! PostgreSQL (`DATABASE_URL`, a schema per test) with a real projection runner that parks
//! poison events. Screenshots of every page go to `CONSOLE_SCREENSHOTS` (scripts/test.sh:
//! `$CARGO_TARGET_DIR/console-screenshots`).

mod support;

use std::sync::atomic::Ordering;

use cqrs_console::testing::Browser;
use cqrs_core::projection::DeadLetterStore;
use cqrs_core::Position;
use serde_json::json;
use support::app::{App, PROJECTION, TOKEN};
use uuid::Uuid;

/// Logs in through the form; the browser then holds the session cookie.
async fn log_in(browser: &Browser, app: &App) {
    browser.goto(&format!("{}/", app.base)).await;
    let token = browser.find("#token").await;
    browser.type_into(&token, TOKEN).await;
    browser
        .click(&browser.find("main.login button[type=submit]").await)
        .await;
    // The projections page, behind the login.
    browser.wait_for("header nav form.logout").await;
}

async fn letters(app: &App) -> usize {
    app.store
        .dead_letters(PROJECTION, Position::START, 100)
        .await
        .expect("dead letters")
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_event_is_retried_from_the_browser_and_the_read_model_gets_it() {
    let app = App::start().await;
    let correlation = Uuid::now_v7();
    app.append(
        "order-1",
        "OrderPlaced",
        json!({ "total": 10 }),
        correlation,
    )
    .await;
    app.append(
        "order-2",
        "OrderPlaced",
        json!({ "total": 20, "poison": true }),
        correlation,
    )
    .await;
    app.append(
        "order-3",
        "OrderPlaced",
        json!({ "total": 30 }),
        correlation,
    )
    .await;
    app.eventually(
        "the poison event is parked and the others applied",
        || async { letters(&app).await == 1 && app.model.applied.lock().unwrap().len() == 2 },
    )
    .await;

    let browser = Browser::start().await;
    log_in(&browser, &app).await;
    let row = browser
        .find(&format!("#projections tr[data-projection='{PROJECTION}']"))
        .await;
    let text = browser.text(&row).await;
    assert!(
        text.contains(PROJECTION),
        "the projections page lists the projection: {text}"
    );
    browser.screenshot("projections").await;

    browser.goto(&format!("{}/dead-letters", app.base)).await;
    let table = browser.text(&browser.find("#dead-letters").await).await;
    assert!(
        table.contains("order-2"),
        "the parked event is listed: {table}"
    );
    assert_eq!(browser.count("#dead-letters tbody tr").await, 1);
    browser.screenshot("dead-letters").await;

    browser
        .click(&browser.find("#dead-letters tbody tr a").await)
        .await;
    let payload = browser.text(&browser.wait_for("#payload").await).await;
    assert!(
        payload.contains("\"poison\": true"),
        "the letter's payload, pretty: {payload}"
    );
    browser.screenshot("dead-letter").await;

    // The projection is fixed, then "retry" is clicked: the runner re-drives the letter.
    app.model.fixed.store(true, Ordering::SeqCst);
    browser.click(&browser.find("button.retry").await).await;
    browser
        .wait_for_url("/console/dead-letters?projection=")
        .await;
    app.eventually("the read model gets the retried event", || async {
        app.model
            .applied
            .lock()
            .unwrap()
            .iter()
            .any(|s| s == "order-2")
    })
    .await;
    app.eventually("the dead letter is gone", || async {
        letters(&app).await == 0
    })
    .await;
    browser.goto(&format!("{}/dead-letters", app.base)).await;
    assert!(
        browser.try_find("#no-letters").await.is_some(),
        "the page says none are left"
    );
    browser.screenshot("dead-letters-after-retry").await;
    assert_eq!(
        app.status().parked,
        1,
        "the runner parked the one event, once"
    );
    assert!(
        app.status().is_live(),
        "the runner still runs: {:?}",
        app.status()
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_payload_renders_as_text_and_runs_nothing() {
    let app = App::start().await;
    let hostile = "<script>alert(1)</script><img src=x onerror=alert(2)><b id=injected>bold</b>";
    let correlation = Uuid::now_v7();
    app.append(
        "order-9",
        "OrderPlaced",
        json!({ "note": hostile, "poison": true }),
        correlation,
    )
    .await;
    app.eventually("the hostile event is parked", || async {
        letters(&app).await == 1
    })
    .await;

    let browser = Browser::start().await;
    log_in(&browser, &app).await;
    for (page, name) in [
        (
            format!("{}/event?stream=order-9&version=1", app.base),
            "event-hostile",
        ),
        (format!("{}/dead-letters", app.base), "dead-letters-hostile"),
    ] {
        browser.goto(&page).await;
        let main = browser.text(&browser.find("main").await).await;
        assert!(
            main.contains("<script>alert(1)</script>"),
            "{name}: the payload shows as text: {main}"
        );
        assert!(
            main.contains("<b id=injected>"),
            "{name}: the markup shows as text"
        );
        let injected = browser
            .execute("return document.querySelectorAll('main script, main img, #injected').length")
            .await;
        assert_eq!(injected, json!(0), "{name}: no element was injected");
        assert!(!browser.alert_open().await, "{name}: no alert ran");
        browser.screenshot(name).await;
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_the_token_gets_401_and_a_post_without_csrf_gets_403() {
    let app = App::start().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in ["/", "/dead-letters", "/events?stream=order-1", "/processes"] {
        let answer = http
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 401, "GET {path} without the token");
    }
    let wrong = http
        .get(format!("{}/", app.base))
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401, "a wrong bearer token");
    let right = http
        .get(format!("{}/", app.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200, "the bearer token reads");
    let body = right.text().await.unwrap();
    assert!(!body.contains(TOKEN), "no page shows the token");

    // A session from the login form; POSTs without or with a wrong CSRF token are refused.
    let login = http
        .post(format!("{}/login", app.base))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_owned();
    let retry = format!("{}/dead-letter/retry", app.base);
    let form = [("projection", PROJECTION), ("position", "1/0")];
    let without = http
        .post(&retry)
        .header("cookie", &session)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(without.status(), 403, "a POST without the CSRF token");
    let mut wrong_form = form.to_vec();
    wrong_form.push(("csrf", "0000"));
    let wrong = http
        .post(&retry)
        .header("cookie", &session)
        .form(&wrong_form)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 403, "a POST with a wrong CSRF token");
    let empty = http
        .post(&retry)
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), 403, "a POST with no body");
    let bearer = http
        .post(&retry)
        .bearer_auth(TOKEN)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        bearer.status(),
        403,
        "the bearer token reads but does not act"
    );
    let told = bearer.text().await.unwrap();
    assert!(
        told.contains("log in") && !told.contains("reload"),
        "tells what would let it act: {told}"
    );
    let anonymous = http.post(&retry).form(&form).send().await.unwrap();
    assert_eq!(anonymous.status(), 401, "a POST without any credential");

    // The page itself, in the browser: the login form.
    let browser = Browser::start().await;
    browser.goto(&format!("{}/", app.base)).await;
    assert!(browser.try_find("#token").await.is_some(), "the login form");
    browser.screenshot("login").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_browser_follows_a_correlation_id_and_every_page_renders() {
    let app = App::start().await;
    let correlation = Uuid::now_v7();
    let other = Uuid::now_v7();
    app.append(
        "order-5",
        "OrderPlaced",
        json!({ "total": 50 }),
        correlation,
    )
    .await;
    app.append(
        "payment-5",
        "PaymentAuthorized",
        json!({ "amount": 50 }),
        correlation,
    )
    .await;
    app.append("order-6", "OrderPlaced", json!({ "total": 60 }), other)
        .await;
    app.append("order-5", "OrderConfirmed", json!({}), correlation)
        .await;
    app.eventually("the projection caught up", || async {
        app.model.applied.lock().unwrap().len() == 4
    })
    .await;

    let browser = Browser::start().await;
    log_in(&browser, &app).await;
    browser
        .goto(&format!("{}/events?stream=order-5", app.base))
        .await;
    assert_eq!(
        browser.count("#events tbody tr").await,
        2,
        "the stream's two events"
    );
    browser.screenshot("events-stream").await;

    browser
        .goto(&format!("{}/event?stream=order-5&version=1", app.base))
        .await;
    let payload = browser.text(&browser.find("#payload").await).await;
    assert!(payload.contains("\"total\": 50"), "{payload}");
    browser.screenshot("event").await;

    browser
        .click(&browser.find("#follow-correlation").await)
        .await;
    browser.wait_for_url("/console/correlation?id=").await;
    let table = browser.text(&browser.wait_for("#events").await).await;
    assert_eq!(
        browser.count("#events tbody tr").await,
        3,
        "what the correlation id caused: {table}"
    );
    assert!(
        table.contains("payment-5") && !table.contains("order-6"),
        "{table}"
    );
    browser.screenshot("correlation").await;

    browser.goto(&format!("{}/processes", app.base)).await;
    assert!(
        browser.try_find("#stuck-only").await.is_some(),
        "the processes page"
    );
    browser.screenshot("processes").await;

    // The chart has samples after a few sampler ticks (every 200 ms here).
    app.eventually("the lag chart is drawn", || async {
        browser.goto(&format!("{}/", app.base)).await;
        browser.count("svg.chart polyline").await == 1
    })
    .await;
    browser.screenshot("projections-chart").await;
    app.stop().await;
}
