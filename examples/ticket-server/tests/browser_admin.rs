//! The demo page's sales controls and cancellations in headless Chromium (see
//! `browser_kit` for the tools): a buyer's login survives a reload (the refresh cookie), the
//! buyer cancels a reservation after seeing the fee, an admin pauses (the buyer's page shows
//! it live), resumes, adds capacity and cancels a buyer's reservation on their behalf with
//! the fee shown. Screenshots of the main screens at desktop and phone size go to
//! `<target>/screenshots/`.

mod browser_kit;
mod common;

use browser_kit::*;
use common::{Server, call, memory_server};
use fantoccini::Client;
use ticket_core::SessionId;
use ticket_core::model::policy::{QueueRules, SalesPolicy};
use ticket_core::model::refund_policy::{FeeTier, RefundPolicy};

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
