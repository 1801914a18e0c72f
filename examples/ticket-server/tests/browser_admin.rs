//! The demo page's sales controls and cancellations in headless Chromium (see
//! `browser.rs` for the tools): a buyer's login survives a reload (the refresh cookie), the
//! buyer cancels a reservation after seeing the fee, an admin pauses (the buyer's page shows
//! it live), resumes, adds capacity and cancels a buyer's reservation on their behalf with
//! the fee shown. Screenshots of the main screens at desktop and phone size go to
//! `<target>/screenshots/`.

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, call, memory_server};
use fantoccini::{Client, ClientBuilder, Locator};
use ticket_core::SessionId;
use ticket_core::model::policy::{QueueRules, SalesPolicy};
use ticket_core::model::refund_policy::{FeeTier, RefundPolicy};

/// How long the page gets to show something.
const PATIENCE: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sales_controls_and_cancellations_in_headless_chromium() {
    let Some(tools) = browser_tools() else {
        return;
    };
    let browser = Browser::start(&tools).await;
    let admin_browser = Browser::start(&tools).await;
    let client = browser.client.clone();
    let admin = admin_browser.client.clone();
    let runtime = tokio::runtime::Handle::current();
    let outcome =
        tokio::task::spawn_blocking(move || runtime.block_on(flow(&client, &admin))).await;
    browser.close().await;
    admin_browser.close().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Where the screenshots go: `<target>/screenshots/`.
fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(|p| p.join("screenshots"))
        .unwrap_or_else(|| PathBuf::from("target/screenshots"));
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    dir
}

/// Saves the page, scrolled to `css`, as `<name>-desktop.png` and `<name>-phone.png`, and
/// checks that nothing is wider than a phone's screen.
async fn shoot(c: &Client, name: &str, css: &str) {
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

/// Logs `email` in over the API: an access token.
async fn api_login(s: &Server, email: &str, password: &str) -> String {
    let body = serde_json::json!({ "email": email, "password": password }).to_string();
    let login = call(s, "POST", "/api/auth/login", None, &[], Some(&body)).await;
    assert_eq!(login.status, 200, "{login:?}");
    login.json["access_token"]
        .as_str()
        .expect("token")
        .to_owned()
}

/// Buys one GA unit for `token`'s user over the API; the reservation's id.
async fn buy_one(s: &Server, session: SessionId, token: &str, key: &str) -> String {
    let joined = call(
        s,
        "POST",
        &format!("/api/sessions/{session}/queue"),
        Some(token),
        &[],
        None,
    )
    .await;
    assert_eq!(joined.json["status"], "active", "{joined:?}");
    let body = format!(r#"{{"session_id":"{session}","grade":"GA","quantity":1}}"#);
    let held = call(
        s,
        "POST",
        "/api/holds",
        Some(token),
        &[("idempotency-key", key)],
        Some(&body),
    )
    .await;
    assert_eq!(held.status, 201, "{held:?}");
    let hold = held.json["id"].as_str().expect("hold id").to_owned();
    let paid = call(
        s,
        "POST",
        &format!("/api/holds/{hold}/checkout"),
        Some(token),
        &[("idempotency-key", key)],
        Some(r#"{"method":"card","card_number":"4242424242424242"}"#),
    )
    .await;
    assert_eq!(paid.json["hold"]["status"], "confirmed", "{paid:?}");
    hold
}

/// `c`: the buyer's browser; `admin`: the admin's.
async fn flow(c: &Client, admin: &Client) {
    let s = memory_server(&[]).await;
    let event = ticket_server::runtime::demo::ensure_demo_event(&s.state)
        .await
        .expect("demo event");
    let ga = event.sessions[0].id;
    // One admission at a time (so the buyer waits), and a 10 % fee whenever one cancels.
    let policy = SalesPolicy {
        queue: QueueRules {
            max_active: 1,
            ..QueueRules::default()
        },
        refund: RefundPolicy {
            cancel_until_before_start_secs: 0,
            tiers: vec![FeeTier {
                before_start_secs: 0,
                fee_bps: 1_000,
            }],
        },
        ..SalesPolicy::default()
    };
    s.state.rush.set_policy(ga, &policy).await.expect("policy");

    // The buyer signs up on the page; two reservations are bought for them over the API.
    c.goto(&s.url).await.expect("open the page");
    wait_text(c, &testid(&format!("session-{ga}")), "Choose").await;
    let email = format!("canceller-{}@example.com", uuid::Uuid::now_v7().simple());
    let password = "buyer-pass-1";
    fill(c, "#email", &email).await;
    fill(c, "#password", password).await;
    click(c, "#signup").await;
    wait_text(c, "#whoami", &format!("{email} (user)")).await;
    let token = api_login(&s, &email, password).await;
    buy_one(&s, ga, &token, "first").await;

    // A reload keeps the login (the HttpOnly refresh cookie), and no script can read it.
    c.refresh().await.expect("reload");
    wait_text(c, "#whoami", &format!("{email} (user)")).await;
    let cookies = c
        .execute("return document.cookie", vec![])
        .await
        .expect("document.cookie");
    assert!(
        !cookies.as_str().unwrap_or_default().contains("tr_refresh"),
        "the refresh token is not readable by scripts: {cookies}"
    );
    wait_text(c, "#reservations", "confirmed · 1 ticket(s)").await;

    // Cancel: the fee first, then the confirmation.
    click(c, &testid("cancel-reservation")).await;
    wait_text(c, "#cancel-quote", "10 %").await;
    wait_text(c, "#cancel-quote", "₩5,000").await;
    wait_text(c, "#cancel-quote", "₩45,000").await;
    shoot(c, "buyer", "#cancel-dialog").await;
    click(c, "#cancel-confirm").await;
    wait_text(c, "#cancel-result", "₩45,000 refunded").await;
    wait_text(c, "#reservations", "refunded · 1 ticket(s)").await;
    let refunds = s.state.sandbox.as_ref().expect("sandbox").refunds();
    assert_eq!(refunds.len(), 1);
    assert_eq!(
        refunds[0].amount.amount_minor, 45_000,
        "the shown refund went back"
    );

    // Another buyer's reservation, for the admin to cancel on their behalf.
    let (other, _) = common::user_token(&s);
    let theirs = buy_one(&s, ga, &other, "theirs").await;

    // The buyer waits in the queue behind someone admitted.
    let (ahead, _) = common::user_token(&s);
    let first = call(
        &s,
        "POST",
        &format!("/api/sessions/{ga}/queue"),
        Some(&ahead),
        &[],
        None,
    )
    .await;
    assert_eq!(first.json["status"], "active", "{first:?}");
    click(c, &testid(&format!("session-{ga}"))).await;
    click(c, "#join").await;
    wait_text(c, "#queue-status", "Waiting: position 1").await;
    // The admin, in a browser of their own (the refresh cookie is per browser).
    let a = admin;
    a.goto(&s.url).await.expect("open the page");
    wait_text(a, &testid(&format!("session-{ga}")), "Choose").await;
    fill(a, "#email", "admin@example.com").await;
    fill(a, "#password", "admin-pass-1").await;
    click(a, "#login").await;
    wait_text(a, "#whoami", "admin@example.com (admin)").await;
    select(a, "#admin-session", &ga.to_string()).await;
    wait_text(a, "#admin-sale", "OPEN").await;
    fill(a, "#admin-reason", "sound check").await;
    click(a, "#admin-pause").await;
    wait_text(a, "#admin-sale", "PAUSED").await;

    // The buyer's page shows it live.
    wait_text(c, "#sale-banner", "PAUSED").await;
    wait_text(c, "#queue-status", "Sales are paused").await;
    click(a, "#admin-resume").await;
    wait_text(a, "#admin-sale", "OPEN").await;
    wait_until(c, "#queue-status", "no pause", |t| {
        !t.contains("paused") && !t.is_empty()
    })
    .await;
    assert!(
        !displayed(c, "#sale-banner").await,
        "the banner goes with the pause"
    );

    // Add capacity; cancel a buyer's reservation on their behalf with the fee shown.
    fill(a, "#capacity-grade", "GA").await;
    fill(a, "#capacity-units", "10").await;
    click(a, "#capacity-add").await;
    wait_text(a, "#capacity-status", "Capacity now 110").await;
    wait_text_exact(a, "#stat-capacity", "110").await;
    fill(a, "#behalf-hold", &theirs).await;
    fill(a, "#behalf-reason", "asked by phone").await;
    select(a, "#behalf-refund", "policy").await;
    click(a, "#behalf-cancel").await;
    wait_text(a, "#behalf-status", "₩45,000 refunded").await;
    wait_text(a, "#behalf-status", "fee ₩5,000").await;
    wait_attr(a, "#stats-chart", "data-points", "").await;
    shoot(a, "admin", "#admin-controls").await;
    assert_eq!(
        s.state.sandbox.as_ref().expect("sandbox").refunds().len(),
        2
    );
}

// ---------------------------------------------------------------------------------------
// Driving the page

fn testid(id: &str) -> String {
    format!("[data-testid=\"{id}\"]")
}

/// Everything the page shows, for failure messages.
async fn page_text(c: &Client) -> String {
    c.execute("return document.body.innerText", vec![])
        .await
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "(unreadable)".into())
}

/// Waits until `css` shows text satisfying `ok`; panics with what the page shows.
async fn wait_until(c: &Client, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
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
async fn wait_text(c: &Client, css: &str, needle: &str) -> String {
    wait_until(c, css, &format!("{needle:?}"), |t| {
        t.contains(needle) && !t.is_empty()
    })
    .await
}

/// Waits until `css` shows exactly `expected`.
async fn wait_text_exact(c: &Client, css: &str, expected: &str) {
    wait_until(c, css, &format!("exactly {expected:?}"), |t| {
        t.trim() == expected
    })
    .await;
}

/// Waits until attribute `name` of `css` contains `needle`.
async fn wait_attr(c: &Client, css: &str, name: &str, needle: &str) {
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
async fn ready(c: &Client, css: &str) -> fantoccini::elements::Element {
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

/// Clicks `css` once it is ready (again, if the page re-rendered it meanwhile).
async fn click(c: &Client, css: &str) {
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

async fn fill(c: &Client, css: &str, value: &str) {
    let e = ready(c, css).await;
    e.clear()
        .await
        .unwrap_or_else(|e| panic!("clear {css}: {e}"));
    e.send_keys(value)
        .await
        .unwrap_or_else(|e| panic!("type into {css}: {e}"));
}

async fn select(c: &Client, css: &str, value: &str) {
    ready(c, css)
        .await
        .select_by_value(value)
        .await
        .unwrap_or_else(|e| panic!("select {value} in {css}: {e}"));
}

async fn displayed(c: &Client, css: &str) -> bool {
    match c.find(Locator::Css(css)).await {
        Ok(e) => e.is_displayed().await.unwrap_or(false),
        Err(_) => false,
    }
}

// ---------------------------------------------------------------------------------------
// The browser

/// Paths of the browser and its driver.
struct Tools {
    chromium: PathBuf,
    chromedriver: PathBuf,
}

/// The installed tools; `None` (with a note) when missing outside CI, a failure in CI.
fn browser_tools() -> Option<Tools> {
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
struct Browser {
    driver: Child,
    client: Client,
    profile: PathBuf,
}

impl Browser {
    async fn start(tools: &Tools) -> Self {
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
    async fn close(mut self) {
        if let Err(e) = self.client.clone().close().await {
            eprintln!("closing the browser: {e}");
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
