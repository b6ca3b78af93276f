//! `examples/oauth_login.rs` clicked through in headless Chromium, driven over WebDriver
//! (Debian's `chromedriver` + fantoccini): home → login → the sandbox's consent page → allow →
//! the profile shows the nickname; deny → the "declined" page; a tampered state → the error
//! page. Screenshots of the consent and profile pages go to `target/tmp/browser/`.
//!
//! Without Chromium the test is skipped with a loud message, except under scripts/test.sh
//! (`WX_REQUIRE_BROWSER=1`), where a missing browser fails it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tokio::process::{Child, Command};
use wx_core::SystemClock;
use wx_sandbox::{Consent, Sandbox, SandboxServer};

use crate::examples::{oauth_login, serve_login};

/// Set by scripts/test.sh: the browser test must run there.
const REQUIRE: &str = "WX_REQUIRE_BROWSER";
/// How long one page may take.
const PAGE: Duration = Duration::from_secs(20);

/// The first of `names` found on `PATH`.
fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// `chromedriver` and the Chromium it drives.
fn browser() -> Option<(PathBuf, PathBuf)> {
    Some((
        on_path(&["chromedriver"])?,
        on_path(&["chromium", "chromium-browser", "google-chrome"])?,
    ))
}

/// The example's app on a loopback port, WeChat being the example's own demo sandbox.
struct Site {
    sandbox: Sandbox,
    _sandbox_server: SandboxServer,
    base: String,
}

async fn demo_site() -> Site {
    let sandbox = oauth_login::demo_sandbox().expect("the demo set-up is valid");
    let (server, base) = serve_login(
        &sandbox,
        oauth_login::DEMO_APPID,
        oauth_login::DEMO_SECRET,
        Arc::new(SystemClock),
        |b| b,
    )
    .await;
    Site {
        sandbox,
        _sandbox_server: server,
        base,
    }
}

/// A running chromedriver (killed on drop) and a fresh Chromium profile directory.
struct Driver {
    _child: Child,
    url: String,
    profile: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

async fn start_driver(chromedriver: &Path) -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start chromedriver");
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + PAGE;
    loop {
        if let Ok(r) = http.get(format!("{url}/status")).send().await
            && r.status().is_success()
        {
            break;
        }
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let profile = std::env::temp_dir().join(format!("wx-browser-{}-{port}", std::process::id()));
    Driver {
        _child: child,
        url,
        profile,
    }
}

async fn open_browser(driver: &Driver, chromium: &Path) -> Client {
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=480,800",
        &format!("--user-data-dir={}", driver.profile.display()),
    ];
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({ "binary": chromium, "args": args }),
    );
    ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

/// The text of the element with this id, once the page shows it.
async fn text_of(c: &Client, id: &str) -> String {
    let found = c.wait().at_most(PAGE).for_element(Locator::Id(id)).await;
    let url = c.current_url().await.map(|u| u.path().to_owned());
    found
        .unwrap_or_else(|e| panic!("no #{id} on {url:?}: {e}"))
        .text()
        .await
        .expect("its text")
}

/// Waits until the browser shows a page at `path`.
async fn wait_for_path(c: &Client, path: &str) {
    let deadline = Instant::now() + PAGE;
    loop {
        let now = c.current_url().await.map(|u| u.path().to_owned());
        if now.as_deref().ok() == Some(path) {
            return;
        }
        assert!(Instant::now() < deadline, "never reached {path}: {now:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the page's heading reads `want` and returns it (after a click the previous page,
/// with its own heading, may still be shown for a moment, and its elements go stale as the next
/// one loads); after the page timeout, returns the last heading seen, for the assertion.
async fn heading_once(c: &Client, want: &str) -> String {
    let deadline = Instant::now() + PAGE;
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(h) = c.find(Locator::Css("h1")).await
            && let Ok(text) = h.text().await
        {
            if text == want {
                return text;
            }
            last = text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    last
}

async fn click(c: &Client, locator: Locator<'_>) {
    c.wait()
        .at_most(PAGE)
        .for_element(locator)
        .await
        .expect("the element")
        .click()
        .await
        .expect("a click");
}

async fn screenshot(c: &Client, name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    let path = dir.join(name);
    let png = c.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(&path, png).expect("write the screenshot");
    eprintln!("screenshot: {}", path.display());
    path
}

/// Home → login → consent page (the example sends the browser there).
async fn to_consent_page(c: &Client, site: &Site) {
    c.goto(&format!("{}/", site.base)).await.expect("home page");
    click(c, Locator::LinkText("Log in with WeChat")).await;
    assert_eq!(text_of(c, "account").await, "wx demo shop");
}

#[tokio::test]
async fn oauth_login_clicked_through_in_headless_chromium() {
    let Some((chromedriver, chromium)) = browser() else {
        assert!(
            std::env::var_os(REQUIRE).is_none(),
            "{REQUIRE} is set but chromium / chromedriver are not on PATH \
             (apt-get install chromium chromium-driver)"
        );
        eprintln!(
            "\n!!!!!!!!!! SKIPPED oauth_login_clicked_through_in_headless_chromium: chromium \
             and chromedriver are not on PATH (apt-get install chromium chromium-driver, or run \
             scripts/test.sh, which installs them) !!!!!!!!!!\n"
        );
        return;
    };
    let site = demo_site().await;
    let driver = start_driver(&chromedriver).await;
    let c = open_browser(&driver, &chromium).await;

    // Allow: the profile page shows the nickname.
    to_consent_page(&c, &site).await;
    assert!(text_of(&c, "permission").await.contains("昵称、头像"));
    assert_eq!(text_of(&c, "nickname").await, "Ming 小明 <sandbox user>");
    screenshot(&c, "consent.png").await;
    click(&c, Locator::Id("allow")).await;
    // The consent page shows the nickname too: wait until the login landed on `/me` (the
    // callback redirects there, away from the URL that holds the code).
    wait_for_path(&c, "/me").await;
    assert_eq!(text_of(&c, "nickname").await, "Ming 小明 <sandbox user>");
    assert_eq!(text_of(&c, "openid").await, "o-demo-ming");
    assert_eq!(heading_once(&c, "Welcome").await, "Welcome");
    screenshot(&c, "profile.png").await;

    // Deny (consent asked again): the declined page, no code exchanged.
    site.sandbox
        .set_consent(oauth_login::DEMO_APPID, Consent::Ask)
        .expect("known app");
    let exchanges = site.sandbox.count(wx_sandbox::paths::CODE_EXCHANGE);
    to_consent_page(&c, &site).await;
    click(&c, Locator::Id("deny")).await;
    assert_eq!(heading_once(&c, "Login cancelled").await, "Login cancelled");
    assert_eq!(
        site.sandbox.count(wx_sandbox::paths::CODE_EXCHANGE),
        exchanges
    );

    // A tampered state: the authorize URL's state changed, then allowed: the error page.
    to_consent_page(&c, &site).await;
    let authorize = c.current_url().await.expect("the consent page URL");
    let state = authorize
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("a state in the authorize URL");
    let mut tampered_state = state.clone();
    let last = tampered_state.pop().expect("a non-empty state");
    tampered_state.push(if last == 'A' { 'B' } else { 'A' });
    let mut tampered = authorize.clone();
    let pairs: Vec<(String, String)> = authorize
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" {
                tampered_state.clone()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    tampered.query_pairs_mut().clear().extend_pairs(pairs);
    c.goto(tampered.as_str())
        .await
        .expect("the tampered authorize URL");
    click(&c, Locator::Id("allow")).await;
    assert_eq!(heading_once(&c, "Login refused").await, "Login refused");
    assert_eq!(
        site.sandbox.count(wx_sandbox::paths::CODE_EXCHANGE),
        exchanges
    );

    c.close().await.expect("close the browser");
}
