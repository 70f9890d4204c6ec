//! Headless Chromium driven over WebDriver: each test starts its own chromedriver on a free port
//! with the browser's time zone set through `TZ`, and Chromium with a fresh profile, no
//! background networking, and a resolver that can find nothing but 127.0.0.1.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::common::FLOW_BOUND;
use crate::common::poll::poll_until;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Set to 1 (as CI does) to fail instead of skipping when the browser is missing.
const REQUIRE: &str = "DIALAJOKE_REQUIRE_BROWSER";
/// The zone the browser lives in: far from UTC, so a time stored without conversion shows.
pub const ZONE: &str = "America/Los_Angeles";
/// A desktop window; phones are emulated by resizing.
const DESKTOP: (u32, u32) = (1280, 1000);

/// A running browser; dropping it ends chromedriver and the Chromium it started.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver: Child,
    _profile: TempDir,
}

/// Starts the browser, or returns None after saying loudly that the calling test is skipped
/// because Chromium or chromedriver is not installed (a failure instead when the environment
/// requires the browser).
pub async fn launch_or_skip() -> Option<Browser> {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER].into_iter().filter(|path| !Path::new(path).exists()).collect();
    if missing.is_empty() {
        return Some(Browser::launch().await);
    }
    let reason = format!("{} not installed (Debian packages chromium and chromium-driver)", missing.join(" and "));
    assert!(std::env::var(REQUIRE).as_deref() != Ok("1"), "{REQUIRE}=1 but {reason}");
    // The test harness names each test's thread after the test.
    let test = std::thread::current().name().unwrap_or("a browser test").to_owned();
    // Straight to the terminal: the test harness would swallow an ordinary print from a passing test.
    let _ = writeln!(
        std::io::stderr().lock(),
        "\n*** SKIPPED browser test {test}: {reason}; run `make browser-deps` ***\n"
    );
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("address").port()
}

fn chromium_args(profile: &Path) -> Vec<String> {
    let fixed = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--no-first-run",
        "--no-default-browser-check",
        "--hide-scrollbars",
        "--lang=en-US",
        // Nothing but the service can even be looked up.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    ];
    let mut args: Vec<String> = fixed.iter().map(|a| (*a).to_owned()).collect();
    args.push(format!("--window-size={},{}", DESKTOP.0, DESKTOP.1));
    args.push(format!("--user-data-dir={}", profile.display()));
    args
}

impl Browser {
    async fn launch() -> Self {
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .env("TZ", ZONE)
            // Its own process group, so the Chromium it starts can be ended with it.
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = tempfile::tempdir().expect("profile dir");
        let url = format!("http://127.0.0.1:{port}");
        wait_until_ready(&url).await;
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities
            .insert("goog:chromeOptions".into(), json!({ "binary": CHROMIUM, "args": chromium_args(profile.path()) }));
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&url)
            .await
            .expect("a browser session starts");
        Self { client, driver, _profile: profile }
    }

    /// Opens `path` of the service at `base`.
    pub async fn open(&self, base: &str, path: &str) {
        self.client.goto(&format!("{base}{path}")).await.expect("page opens");
    }

    /// Runs `script` (a function body) in the page and returns its result.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute(script, args).await.unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// The text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).text().await.expect("text")
    }

    /// Polls (bounded by [`FLOW_BOUND`]) until `script` returns true; `what` names it on failure.
    pub async fn wait_until(&self, what: &str, script: &str, args: Vec<Value>) {
        poll_until(what, FLOW_BOUND, || async {
            let answer = self.js(script, args.clone()).await;
            if answer == json!(true) { Ok(()) } else { Err(answer) }
        })
        .await;
    }

    /// Waits until the page's live stream is connected.
    pub async fn wait_until_live(&self) {
        let script = "return document.getElementById('live-indicator').getAttribute('data-state') === 'on';";
        self.wait_until("the page is live", script, vec![]).await;
    }

    /// Resizes the window (a phone is about 390 pixels wide).
    pub async fn resize(&self, width: u32, height: u32) {
        self.client.set_window_size(width, height).await.expect("window resized");
    }

    /// Saves what the window shows as `<target>/screenshots/<name>.png` and returns the path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("target dir").join("screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("screenshot saved");
        path
    }

    /// Fails unless the page's address and everything it loaded so far are on 127.0.0.1.
    pub async fn assert_only_local_requests(&self) {
        let script = "return [location.href].concat(performance.getEntriesByType('resource').map(e => e.name));";
        let urls = self.js(script, vec![]).await;
        let urls: Vec<String> = serde_json::from_value(urls).expect("a list of URLs");
        let foreign: Vec<&String> = urls.iter().filter(|url| !url.starts_with("http://127.0.0.1:")).collect();
        assert!(foreign.is_empty(), "requests left 127.0.0.1: {foreign:?} (all: {urls:?})");
    }

    /// Ends the session (Chromium quits), then chromedriver.
    pub async fn close(self) {
        let client = self.client.clone();
        client.close().await.expect("session ends");
    }
}

async fn wait_until_ready(url: &str) {
    let http = reqwest::Client::new();
    let what = format!("chromedriver was ready at {url}");
    poll_until(&what, FLOW_BOUND, || async {
        let status = http.get(format!("{url}/status")).send().await.map_err(|e| e.to_string())?;
        let body: Value = status.json().await.map_err(|e| e.to_string())?;
        if body["value"]["ready"] == json!(true) { Ok(()) } else { Err(body.to_string()) }
    })
    .await;
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The whole group: chromedriver and any Chromium process a failed test left behind.
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.driver.wait();
    }
}
