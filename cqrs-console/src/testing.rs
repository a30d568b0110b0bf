//! Browser tests of the console (feature `testing`): a small W3C WebDriver client over
//! reqwest, enough to drive the pages in a real headless Chromium and save screenshots.
//! `scripts/chromium.sh start` runs Debian's chromedriver and prints its `WEBDRIVER_URL`;
//! `scripts/test.sh` does it for the suite.
//!
//! These are test helpers: like assertions, they panic with what went wrong (naming the
//! selector and the page) rather than return errors.
//!
//! ```no_run
//! # async fn demo() {
//! use cqrs_console::testing::Browser;
//!
//! let browser = Browser::start().await;
//! browser.goto("http://127.0.0.1:8080/console/").await;
//! browser.type_into(&browser.find("#token").await, "the token").await;
//! browser.click(&browser.find("main.login button").await).await;
//! browser.wait_for("#projections").await;
//! browser.screenshot("projections").await; // $CONSOLE_SCREENSHOTS/projections.png
//! # }
//! ```

use std::io::Write as _;
use std::path::PathBuf;

use base64::Engine as _;
use serde_json::{json, Value};

/// The key an element reference comes under (W3C WebDriver).
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Chromium's flags for this machine: no network of its own, no sandbox (root in CI), a
/// fresh profile per session (added at start).
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
];

/// Where screenshots go: `CONSOLE_SCREENSHOTS`, else `console-screenshots` in the system's
/// temporary directory (scripts/test.sh sets it to `$CARGO_TARGET_DIR/console-screenshots`).
pub fn screenshot_dir() -> PathBuf {
    std::env::var_os("CONSOLE_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("console-screenshots"))
}

/// One browser session; closed (and its profile removed) when dropped.
pub struct Browser {
    http: reqwest::Client,
    driver: String,
    session: String,
    profile: PathBuf,
}

/// An element found on the page.
#[derive(Clone, Debug)]
pub struct Element(String);

impl Browser {
    /// A new session on the WebDriver server at `WEBDRIVER_URL`, with Chromium's flags for a
    /// closed network (headless, no sandbox, no background traffic, a fresh profile);
    /// `CHROMIUM_BINARY` names the browser when the driver does not find it.
    ///
    /// # Panics
    ///
    /// Without `WEBDRIVER_URL` (tests fail without their server, as the PostgreSQL tests do
    /// without `DATABASE_URL`), or when the server refuses the session.
    pub async fn start() -> Self {
        let driver = std::env::var("WEBDRIVER_URL").expect(
            "WEBDRIVER_URL is not set: these tests need a WebDriver server \
             (scripts/chromium.sh start prints one; scripts/test.sh starts it)",
        );
        let driver = driver.trim_end_matches('/').to_owned();
        let profile = std::env::temp_dir().join(format!(
            "console-chromium-{}",
            uuid::Uuid::now_v7().simple()
        ));
        std::fs::create_dir_all(&profile).expect("a fresh profile directory");
        let mut args: Vec<String> = FLAGS.iter().map(|f| (*f).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let mut options = json!({ "args": args });
        if let Ok(binary) = std::env::var("CHROMIUM_BINARY") {
            options["binary"] = json!(binary);
        }
        let http = reqwest::Client::new();
        let answer: Value = http
            .post(format!("{driver}/session"))
            .json(&json!({ "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": options,
            } } }))
            .send()
            .await
            .expect("the WebDriver server answers")
            .json()
            .await
            .expect("a JSON answer");
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {answer}"))
            .to_owned();
        Self {
            http,
            driver,
            session,
            profile,
        }
    }

    async fn command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let url = format!("{}/session/{}{path}", self.driver, self.session);
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let ok = response.status().is_success();
        let answer: Value = response.json().await.map_err(|e| e.to_string())?;
        if ok {
            Ok(answer["value"].clone())
        } else {
            Err(answer["value"]["error"]
                .as_str()
                .unwrap_or("unknown error")
                .to_owned())
        }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.command(reqwest::Method::POST, path, Some(body))
            .await
            .unwrap_or_else(|e| panic!("WebDriver POST {path}: {e}"))
    }

    async fn get(&self, path: &str) -> Value {
        self.command(reqwest::Method::GET, path, None)
            .await
            .unwrap_or_else(|e| panic!("WebDriver GET {path}: {e}"))
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    /// The page's URL now.
    pub async fn url(&self) -> String {
        self.get("/url")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The first element `css` selects, or `None`.
    pub async fn try_find(&self, css: &str) -> Option<Element> {
        let found = self
            .command(
                reqwest::Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await
            .ok()?;
        found[ELEMENT].as_str().map(|id| Element(id.to_owned()))
    }

    /// The first element `css` selects; panics naming it when there is none.
    pub async fn find(&self, css: &str) -> Element {
        match self.try_find(css).await {
            Some(element) => element,
            None => panic!("no element {css} on {}", self.url().await),
        }
    }

    /// Waits (at most 20 s) until `css` selects an element on the page: after a click that
    /// navigates, the next page may still be loading.
    pub async fn wait_for(&self, css: &str) -> Element {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            if let Some(element) = self.try_find(css).await {
                return element;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no element {css} within 20 s on {}",
                self.url().await
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Waits (at most 20 s) until the page's URL contains `part`.
    pub async fn wait_for_url(&self, part: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let url = self.url().await;
            if url.contains(part) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the URL is {url}, not one with {part}, after 20 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// How many elements `css` selects.
    pub async fn count(&self, css: &str) -> usize {
        let found = self
            .post(
                "/elements",
                json!({ "using": "css selector", "value": css }),
            )
            .await;
        found.as_array().map_or(0, Vec::len)
    }

    /// Clicks `element` (a submit button submits its form; the next command waits for the
    /// navigation).
    pub async fn click(&self, element: &Element) {
        self.post(&format!("/element/{}/click", element.0), json!({}))
            .await;
    }

    /// Types `text` into `element`.
    pub async fn type_into(&self, element: &Element, text: &str) {
        self.post(
            &format!("/element/{}/value", element.0),
            json!({ "text": text }),
        )
        .await;
    }

    /// The element's rendered text.
    pub async fn text(&self, element: &Element) -> String {
        self.get(&format!("/element/{}/text", element.0))
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Runs `script` in the page (synchronously) and returns its value.
    pub async fn execute(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": [] }))
            .await
    }

    /// Whether a JavaScript alert, confirm or prompt is open.
    pub async fn alert_open(&self) -> bool {
        self.command(reqwest::Method::GET, "/alert/text", None)
            .await
            .is_ok()
    }

    /// Saves a screenshot of the page as `{name}.png` in [`screenshot_dir`]; its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let data = self.get("/screenshot").await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap_or_default())
            .expect("a base64 screenshot");
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("the screenshot directory");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("the screenshot written");
        eprintln!("screenshot: {}", path.display());
        path
    }
}

impl Drop for Browser {
    /// Ends the session (its Chromium quits) with a plain HTTP request, since drop cannot
    /// await; then removes the profile.
    fn drop(&mut self) {
        let Some(hostport) = self.driver.strip_prefix("http://") else {
            return;
        };
        let hostport = hostport.split('/').next().unwrap_or(hostport).to_owned();
        let session = self.session.clone();
        let profile = self.profile.clone();
        let _ = std::thread::spawn(move || {
            if let Ok(mut tcp) = std::net::TcpStream::connect(&hostport) {
                let _ = tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)));
                let _ = write!(
                    tcp,
                    "DELETE /session/{session} HTTP/1.1\r\nHost: {hostport}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = std::io::Read::read(&mut tcp, &mut [0u8; 512]);
            }
            let _ = std::fs::remove_dir_all(profile);
        })
        .join();
    }
}
