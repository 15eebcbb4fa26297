//! A real browser for the console's tests: Debian's ChromeDriver (`/usr/bin/chromedriver`)
//! started on a free 127.0.0.1 port, driving Debian's Chromium headless with a fresh profile,
//! through the `fantoccini` WebDriver client. Missing binaries FAIL the test with the package to
//! install (scripts/install-deps.sh installs them); nothing is skipped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use super::{eventually, DEADLINE};

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// A ChromeDriver process and one browser session on it; both end on drop.
pub struct Browser {
    pub client: Client,
    _driver: Driver,
    _profile: tempfile::TempDir,
    shots: PathBuf,
}

impl Browser {
    /// Starts ChromeDriver and a headless Chromium session; screenshots go to `shots`.
    pub async fn start(shots: &Path) -> Browser {
        for (bin, pkg) in [(CHROMEDRIVER, "chromium-driver"), (CHROMIUM, "chromium")] {
            assert!(
                Path::new(bin).exists(),
                "{bin} not found: the console's browser tests need Debian's {pkg} package \
                 (scripts/install-deps.sh installs it: apt-get install chromium chromium-driver)"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        // killed on drop, however the test ends
        let driver = Driver(
            Command::new(CHROMEDRIVER)
                .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start chromedriver"),
        );
        let url = format!("http://127.0.0.1:{port}");
        let status = format!("{url}/status");
        let http = reqwest::Client::new();
        eventually("chromedriver answers /status", DEADLINE, || {
            let (http, status) = (&http, &status);
            async move {
                match http.get(status).send().await {
                    Ok(r) if r.status().is_success() => Ok(()),
                    Ok(r) => Err(format!("status {}", r.status())),
                    Err(e) => Err(e.to_string()),
                }
            }
        })
        .await;
        let profile = tempfile::tempdir().expect("profile dir");
        // the flags Chromium needs on a closed network, as root, without a display
        let args = [
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1366,900".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"binary": CHROMIUM, "args": args}),
        );
        let client = tokio::time::timeout(
            DEADLINE,
            // plain HTTP to ChromeDriver on loopback: no TLS stack needed
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps)
                .connect(&url),
        )
        .await
        .expect("a browser session within the deadline")
        .expect("a browser session");
        std::fs::create_dir_all(shots).expect("screenshot dir");
        Browser {
            client,
            _driver: driver,
            _profile: profile,
            shots: shots.to_path_buf(),
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("goto");
    }

    /// Types `text` into the field with id `id` (cleared first).
    pub async fn fill(&self, id: &str, text: &str) {
        let e = self.by_id(id).await;
        e.clear().await.expect("clear");
        e.send_keys(text).await.expect("type");
    }

    /// Clicks the button or link `id` and waits for the next page to replace this one.
    pub async fn click(&self, id: &str) {
        let e = self.by_id(id).await;
        self.navigating(|| async move { e.click().await.expect("click") })
            .await;
    }

    /// Moves the keyboard focus to the element `css` (a link or button) and presses Enter, as a
    /// keyboard user does; waits for the next page.
    pub async fn press_enter_on(&self, css: &str) {
        let e = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("element {css}: {e}"));
        // send_keys focuses the element first, as a Tab to it would
        self.navigating(|| async move {
            e.send_keys(&fantoccini::key::Key::Enter)
                .await
                .expect("press Enter")
        })
        .await;
    }

    /// The value of the browser's cookie `name` (a test forging a request with the browser's
    /// session).
    pub async fn cookie(&self, name: &str) -> String {
        self.client
            .get_named_cookie(name)
            .await
            .unwrap_or_else(|e| panic!("cookie {name}: {e}"))
            .value()
            .to_string()
    }

    /// The `value` attribute of the first element `css`.
    pub async fn value_of(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("element {css}: {e}"))
            .attr("value")
            .await
            .expect("attr")
            .unwrap_or_default()
    }

    /// Runs `act` (a click that loads a page) and waits until the document it started on is gone.
    async fn navigating<F, Fut>(&self, act: F)
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let old = self.client.find(Locator::Css("html")).await.expect("html");
        act().await;
        eventually("the next page replaces this one", DEADLINE, || {
            let old = old.clone();
            async move {
                match old.tag_name().await {
                    Err(e) if e.to_string().contains("stale") => Ok(()),
                    Err(e) => Err(e.to_string()),
                    Ok(_) => Err("still the old page".to_string()),
                }
            }
        })
        .await;
    }

    pub async fn by_id(&self, id: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(DEADLINE)
            .for_element(Locator::Id(id))
            .await
            .unwrap_or_else(|e| panic!("element #{id}: {e}"))
    }

    /// Follows the link whose text is `text`.
    pub async fn click_link(&self, text: &str) {
        let e = self
            .client
            .find(Locator::LinkText(text))
            .await
            .unwrap_or_else(|e| panic!("link {text:?}: {e}"));
        self.navigating(|| async move { e.click().await.expect("click") })
            .await;
    }

    /// The page's `<h1>`.
    pub async fn h1(&self) -> String {
        self.client
            .find(Locator::Css("main h1"))
            .await
            .expect("h1")
            .text()
            .await
            .expect("text")
    }

    /// The text of the element with id `id`.
    pub async fn text(&self, id: &str) -> String {
        self.by_id(id).await.text().await.expect("text")
    }

    /// The page's `<main>` text.
    pub async fn main_text(&self) -> String {
        self.client
            .find(Locator::Css("main"))
            .await
            .expect("main")
            .text()
            .await
            .expect("text")
    }

    pub async fn has(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .expect("find_all")
            .is_empty()
    }

    /// A PNG of the page as `<shots>/<name>.png`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(self.shots.join(format!("{name}.png")), png).expect("write screenshot");
    }

    /// Ends the browser session (the browser quits), then stops ChromeDriver.
    pub async fn close(self) {
        let Browser {
            client, _driver, ..
        } = self;
        let _ = tokio::time::timeout(Duration::from_secs(10), client.close()).await;
        drop(_driver);
    }
}

/// The ChromeDriver process, killed on drop.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
