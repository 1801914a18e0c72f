//! Driving headless Chromium for the demo-page tests (`browser.rs`, `browser_admin.rs`):
//! finding chromedriver and Chromium, starting a browser with its own profile, waiting for
//! the page, clicking and filling, and screenshots at desktop and phone size.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

/// How long the page gets to show something.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Where the screenshots go: `<target>/screenshots/`.
pub fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(|p| p.join("screenshots"))
        .unwrap_or_else(|| PathBuf::from("target/screenshots"));
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    dir
}

/// Saves the page, scrolled to `css`, as `<name>-desktop.png` and `<name>-phone.png`, and
/// checks that nothing is wider than a phone's screen.
pub async fn shoot(c: &Client, name: &str, css: &str) {
    let dir = screenshots();
    for (size, (w, h)) in [("desktop", (1280, 1200)), ("phone", (390, 844))] {
        c.set_window_size(w, h).await.expect("window size");
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.execute(
            "document.querySelector(arguments[0]).scrollIntoView({block: 'center'})",
            vec![serde_json::json!(css)],
        )
        .await
        .expect("scroll");
        let overflow = c
            .execute(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
                vec![],
            )
            .await
            .expect("widths");
        assert!(
            overflow.as_i64().unwrap_or(0) <= 0,
            "{name} at {size} size scrolls sideways by {overflow}px"
        );
        let png = c.screenshot().await.expect("screenshot");
        std::fs::write(dir.join(format!("{name}-{size}.png")), png).expect("save screenshot");
    }
    c.set_window_size(1280, 1200).await.expect("window size");
}

// ---------------------------------------------------------------------------------------
// Driving the page

pub fn testid(id: &str) -> String {
    format!("[data-testid=\"{id}\"]")
}

/// Everything the page shows, for failure messages.
pub async fn page_text(c: &Client) -> String {
    c.execute("return document.body.innerText", vec![])
        .await
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "(unreadable)".into())
}

/// Waits until `css` shows text satisfying `ok`; panics with what the page shows.
pub async fn wait_until(c: &Client, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + PATIENCE;
    let mut last = String::new();
    loop {
        if let Ok(e) = c.find(Locator::Css(css)).await
            && let Ok(text) = e.text().await
        {
            if ok(&text) {
                return text;
            }
            last = text;
        }
        if Instant::now() > deadline {
            panic!(
                "{css} never showed {what}; it shows {last:?}. The page:\n{}",
                page_text(c).await
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `css` shows text containing `needle` (visible text: hidden elements show none).
pub async fn wait_text(c: &Client, css: &str, needle: &str) -> String {
    wait_until(c, css, &format!("{needle:?}"), |t| {
        t.contains(needle) && !t.is_empty()
    })
    .await
}

/// Waits until `css` shows exactly `expected`.
pub async fn wait_text_exact(c: &Client, css: &str, expected: &str) {
    wait_until(c, css, &format!("exactly {expected:?}"), |t| {
        t.trim() == expected
    })
    .await;
}

/// Waits until `css` matches at least `count` elements.
pub async fn wait_count(c: &Client, css: &str, count: usize) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let found = c.find_all(Locator::Css(css)).await.map_or(0, |f| f.len());
        if found >= count {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "{css} matched {found}, never {count}. The page:\n{}",
                page_text(c).await
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until attribute `name` of `css` contains `needle`.
pub async fn wait_attr(c: &Client, css: &str, name: &str, needle: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let value = match c.find(Locator::Css(css)).await {
            Ok(e) => e.attr(name).await.ok().flatten(),
            Err(_) => None,
        };
        if value.as_deref().is_some_and(|v| v.contains(needle)) {
            return;
        }
        if Instant::now() > deadline {
            panic!("{css}'s {name} never contained {needle:?}: {value:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The element, once it is displayed and enabled.
pub async fn ready(c: &Client, css: &str) -> fantoccini::elements::Element {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(e) = c.find(Locator::Css(css)).await
            && e.is_displayed().await.unwrap_or(false)
            && e.is_enabled().await.unwrap_or(false)
        {
            return e;
        }
        if Instant::now() > deadline {
            panic!(
                "{css} never became visible and enabled. The page:\n{}",
                page_text(c).await
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn click(c: &Client, css: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match ready(c, css).await.click().await {
            Ok(()) => return,
            Err(e) if Instant::now() < deadline => {
                eprintln!("click {css}: {e}; again");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("click {css}: {e}"),
        }
    }
}

pub async fn fill(c: &Client, css: &str, value: &str) {
    let e = ready(c, css).await;
    e.clear()
        .await
        .unwrap_or_else(|e| panic!("clear {css}: {e}"));
    e.send_keys(value)
        .await
        .unwrap_or_else(|e| panic!("type into {css}: {e}"));
}

pub async fn select(c: &Client, css: &str, value: &str) {
    ready(c, css)
        .await
        .select_by_value(value)
        .await
        .unwrap_or_else(|e| panic!("select {value} in {css}: {e}"));
}

pub async fn displayed(c: &Client, css: &str) -> bool {
    match c.find(Locator::Css(css)).await {
        Ok(e) => e.is_displayed().await.unwrap_or(false),
        Err(_) => false,
    }
}

pub async fn enabled(c: &Client, css: &str) -> bool {
    match c.find(Locator::Css(css)).await {
        Ok(e) => e.is_enabled().await.unwrap_or(false),
        Err(_) => false,
    }
}

// ---------------------------------------------------------------------------------------
// The browser

/// Paths of the browser and its driver.
pub struct Tools {
    chromium: PathBuf,
    chromedriver: PathBuf,
}

/// The installed tools; `None` (with a note) when missing outside CI, a failure in CI.
pub fn browser_tools() -> Option<Tools> {
    let path = |var: &str, default: &str| {
        PathBuf::from(std::env::var(var).unwrap_or_else(|_| default.to_owned()))
    };
    let tools = Tools {
        chromium: path("CHROMIUM", "/usr/bin/chromium"),
        chromedriver: path("CHROMEDRIVER", "/usr/bin/chromedriver"),
    };
    let missing: Vec<String> = [&tools.chromium, &tools.chromedriver]
        .into_iter()
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if missing.is_empty() {
        return Some(tools);
    }
    ticketrush_test_support::MissingTool::new(format!(
        "the browser test needs {} (install with `apt-get install chromium chromium-driver`)",
        missing.join(" and ")
    ))
    .skip_or_fail();
    None
}

/// chromedriver on a free port and a WebDriver session of headless Chromium.
pub struct Browser {
    driver: Child,
    pub client: Client,
    profile: PathBuf,
}

impl Browser {
    pub async fn start(tools: &Tools) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut driver = Command::new(&tools.chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", tools.chromedriver.display()));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = driver.try_wait() {
                panic!("chromedriver exited: {status}");
            }
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile =
            std::env::temp_dir().join(format!("ticketrush-chromium-{}", uuid::Uuid::now_v7()));
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": tools.chromium,
                "args": [
                    "--headless=new",
                    // root in containers and CI has no user namespace sandbox
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--window-size=1280,1200",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        let connected =
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps)
                .connect(&format!("http://{addr}"))
                .await;
        let client = match connected {
            Ok(client) => client,
            Err(e) => {
                let _ = driver.kill();
                let _ = driver.wait();
                panic!("no WebDriver session with headless Chromium: {e}");
            }
        };
        Self {
            driver,
            client,
            profile,
        }
    }

    /// Ends the session (Chromium exits), then chromedriver.
    pub async fn close(mut self) {
        if let Err(e) = self.client.clone().close().await {
            eprintln!("closing the browser: {e}");
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
