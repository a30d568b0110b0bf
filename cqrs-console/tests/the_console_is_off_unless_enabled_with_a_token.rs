//! Off by default: a disabled console (or one given an empty token) serves no route, so the
//! service's own 404 answers; enabled, every page needs the token, and wrong tokens are
//! throttled. No server needed: the store's pool never connects.

use std::time::{Duration, Instant};

use cqrs_admin::Inspector;
use cqrs_console::ConsoleConfig;
use cqrs_postgres::PgEventStore;
use tokio::net::TcpListener;

async fn serve(config: ConsoleConfig) -> String {
    // A pool that never connects: these pages must not need the store.
    let pool = sqlx::PgPool::connect_lazy("postgres://nobody@127.0.0.1:1/none").unwrap();
    let inspector = Inspector::new(PgEventStore::new(pool));
    let router = axum::Router::new().merge(cqrs_console::router(config, inspector));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    base
}

#[tokio::test]
async fn a_disabled_console_serves_nothing_and_an_enabled_one_needs_its_token() {
    let http = reqwest::Client::new();
    for config in [ConsoleConfig::default(), ConsoleConfig::enabled("")] {
        assert!(!config.is_enabled());
        let base = serve(config).await;
        for path in [
            "/console",
            "/console/",
            "/console/login",
            "/console/console.css",
        ] {
            let answer = http.get(format!("{base}{path}")).send().await.unwrap();
            assert_eq!(answer.status(), 404, "{path} on a disabled console");
        }
    }

    let base = serve(ConsoleConfig::enabled("s3cret").base_path("ops/")).await;
    let page = http.get(format!("{base}/ops/")).send().await.unwrap();
    assert_eq!(page.status(), 401);
    assert!(page.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'"),
        "no script may run: {csp}"
    );
    assert!(
        page.text().await.unwrap().contains("name=\"token\""),
        "the login form"
    );
    let ok = http
        .get(format!("{base}/ops/events"))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let body = ok.text().await.unwrap();
    assert!(
        body.contains("name=\"stream\""),
        "the event browser's form: {body}"
    );
    assert!(!body.contains("s3cret"), "no page shows the token");
    let css = http
        .get(format!("{base}/ops/console.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        css.status(),
        200,
        "the stylesheet needs no token (the login form uses it)"
    );

    // Behind TLS the session cookie is marked Secure.
    let base = serve(ConsoleConfig::enabled("s3cret").secure_cookie(true)).await;
    let login = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{base}/console/login"))
        .form(&[("token", "s3cret")])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.ends_with("; Secure") && cookie.contains("Path=/console;"),
        "{cookie}"
    );
}

#[tokio::test]
async fn wrong_tokens_spend_a_budget_after_which_no_token_is_checked_until_the_window_moves() {
    // Long enough for the requests below to fall in one window, however slow the machine.
    let window = Duration::from_secs(5);
    let base = serve(ConsoleConfig::enabled("s3cret").failed_logins(3, window)).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = |token: &'static str| {
        http.post(format!("{base}/console/login"))
            .form(&[("token", token)])
            .send()
    };
    // An operator logged in before the guessing started.
    let before = login("s3cret").await.unwrap();
    assert_eq!(before.status(), 303);
    let cookie = before.headers()["set-cookie"].to_str().unwrap();
    let session = cookie.split(';').next().unwrap().to_owned();

    for guess in ["a", "b"] {
        assert_eq!(login(guess).await.unwrap().status(), 401, "{guess}");
    }
    let wrong_bearer = http
        .get(format!("{base}/console/events"))
        .bearer_auth("c")
        .send()
        .await
        .unwrap();
    assert_eq!(
        wrong_bearer.status(),
        401,
        "a wrong bearer token counts too"
    );

    // The budget (3) is spent: even the right token is not checked now.
    let refused = login("s3cret").await.unwrap();
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=window.as_secs()).contains(&retry_after),
        "{retry_after}"
    );
    assert!(refused
        .text()
        .await
        .unwrap()
        .contains("Too many wrong tokens"));
    let bearer = http
        .get(format!("{base}/console/events"))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 429);
    // The session opened before goes on working.
    let page = http
        .get(format!("{base}/console/events"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);

    // Once the window has room again, the right token logs in.
    let deadline = Instant::now() + window * 5;
    loop {
        let status = login("s3cret").await.unwrap().status();
        if status == 303 {
            break;
        }
        assert_eq!(status, 429);
        assert!(Instant::now() < deadline, "the budget never came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
