//! The demo page (`GET /`) in a real browser: headless Chromium driven over WebDriver
//! (chromedriver, through `fantoccini`) against a memory-backed server on a free port. The
//! test reads what the page shows (element text, enabled state), not only the API's state.
//! Tickets are paid on the payment provider's hosted page (the in-process sandbox's, under
//! `/sandbox`): a declined card (the provider's page says so; "Cancel and return" comes back
//! to the demo page, which offers to try again), a card that pays, and the challenge card
//! (its code entered on the provider's page). Screenshots of the provider's page and of the
//! result at desktop and phone size go to `<target>/screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`/usr/bin/chromium`,
//! `/usr/bin/chromedriver`; `CHROMIUM` and `CHROMEDRIVER` override the paths). Without them
//! the browser test fails under `CI=true` and is skipped with a note otherwise.

mod browser_kit;
mod common;

use std::time::{Duration, Instant};

use browser_kit::*;
use common::{Server, call, memory_server};
use fantoccini::{Client, Locator};
use ticket_core::SessionId;
use ticket_core::model::policy::{QueueRules, SalesPolicy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_assets_are_served_with_a_strict_policy() {
    let s = memory_server(&[]).await;
    let client = reqwest::Client::new();
    for (path, content_type, needle) in [
        ("/", "text/html; charset=utf-8", "<script src=\"/app.js\""),
        ("/app.js", "text/javascript; charset=utf-8", "queue/events"),
        // the wallet is topped up by card and followed until the payment settles
        (
            "/",
            "text/html; charset=utf-8",
            "data-testid=\"topup-card\"",
        ),
        (
            "/app.js",
            "text/javascript; charset=utf-8",
            "/api/me/wallet/topups/${t.id}",
        ),
        ("/app.css", "text/css; charset=utf-8", ".seat"),
        // checkout on the provider's hosted page, followed on return
        (
            "/app.js",
            "text/javascript; charset=utf-8",
            "method: \"hosted\"",
        ),
        (
            "/app.js",
            "text/javascript; charset=utf-8",
            "params.get(\"canceled\")",
        ),
        // the demo page draws each ticket's QR code; the gate page checks tickets in
        ("/app.js", "text/javascript; charset=utf-8", "/qr.svg"),
        (
            "/gate",
            "text/html; charset=utf-8",
            "<script src=\"/gate.js\"",
        ),
        (
            "/gate.js",
            "text/javascript; charset=utf-8",
            "/api/tickets/verify",
        ),
        ("/gate.css", "text/css; charset=utf-8", "#verdict"),
    ] {
        let resp = client
            .get(format!("{}{path}", s.url))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 200, "{path}");
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(header("content-type"), content_type, "{path}");
        let csp = header("content-security-policy");
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        let body = resp.text().await.expect("body");
        assert!(body.contains(needle), "{path} lacks {needle:?}");
    }
    for html in [
        ticket_server::http::routes::demo_page::INDEX_HTML,
        ticket_server::http::routes::gate_page::GATE_HTML,
    ] {
        assert!(
            !html.contains("<script>") && !html.contains("style="),
            "nothing inline: the policy would block it"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyer_and_an_admin_use_the_demo_page_in_headless_chromium() {
    let Some(tools) = browser_tools() else {
        return;
    };
    let started = Instant::now();
    let browser = Browser::start(&tools).await;
    let client = browser.client.clone();
    // The flow runs on a thread of its own (its panic caught by the join), so that the
    // browser is closed whatever happens to it; `block_on` there needs no `Send` future.
    let runtime = tokio::runtime::Handle::current();
    let outcome =
        tokio::task::spawn_blocking(move || runtime.block_on(buyer_and_admin(&client))).await;
    browser.close().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
    eprintln!("browser flow took {:?}", started.elapsed());
}

/// The whole flow: sign up, log in, queue live, GA hold, declined then accepted payment,
/// ticket codes, admin stats, and a seat bought on the seat map.
async fn buyer_and_admin(c: &Client) {
    let s = memory_server(&[]).await;
    let event = ticket_server::runtime::demo::ensure_demo_event(&s.state)
        .await
        .expect("demo event");
    let (ga, seated) = (event.sessions[0].id, event.sessions[1].id);
    assert!(!event.sessions[0].inventory.is_seated() && event.sessions[1].inventory.is_seated());
    // One admission at a time on the GA session, so the buyer waits behind someone first.
    let one_at_a_time = SalesPolicy {
        queue: QueueRules {
            max_active: 1,
            ..QueueRules::default()
        },
        ..SalesPolicy::default()
    };
    s.state
        .rush
        .set_policy(ga, &one_at_a_time)
        .await
        .expect("policy");
    let (ahead, _) = common::user_token(&s);
    let queue = format!("/api/sessions/{ga}/queue");
    let first = call(&s, "POST", &queue, Some(&ahead), &[], None).await;
    assert_eq!(first.json["status"], "active", "{first:?}");

    c.goto(&s.url).await.expect("open the page");
    wait_text(c, &testid(&format!("session-{ga}")), "Choose").await;

    // Sign up (which logs in), log out, fail to sign up twice, log in.
    let email = format!("buyer-{}@example.com", uuid::Uuid::now_v7().simple());
    let password = "buyer-pass-1";
    fill(c, "#email", &email).await;
    fill(c, "#password", password).await;
    click(c, "#signup").await;
    wait_text(c, "#whoami", &format!("{email} (user)")).await;
    click(c, "#logout").await;
    wait_text(c, "#whoami", "Not logged in").await;
    fill(c, "#email", &email).await;
    fill(c, "#password", password).await;
    click(c, "#signup").await;
    wait_text(c, "#error", "EMAIL_TAKEN").await;
    click(c, "#login").await;
    wait_text(c, "#whoami", &format!("{email} (user)")).await;
    assert!(
        !displayed(c, "#error").await,
        "a success clears the error banner"
    );

    // The GA session: wait behind the admitted user, then get admitted live over SSE.
    click(c, &testid(&format!("session-{ga}"))).await;
    wait_text(c, "#session-title", "General admission").await;
    wait_text(c, "#session-stock", "GA: 100 of 100 left").await;
    click(c, "#join").await;
    wait_text(c, "#queue-status", "Waiting: position 1 of 1").await;
    assert!(!displayed(c, "#pick-step").await, "no picker while waiting");
    let left = call(&s, "DELETE", &queue, Some(&ahead), &[], None).await;
    assert_eq!(left.status, 200, "{left:?}");
    wait_text(c, "#queue-status", "Admitted").await;

    // Two GA tickets, paid on the provider's page: the demo page asks for no card number.
    assert!(
        c.find(Locator::Css("#pay-step input")).await.is_err(),
        "no card field on the app's own page"
    );
    fill(c, "#quantity", "2").await;
    wait_text(c, "#selection", "2 × GA").await;
    click(c, "#hold").await;
    wait_text(c, "#hold-status", "Hold held: 2 ticket(s)").await;
    wait_text(c, "#hold-status", "100,000").await;
    wait_text(c, "#session-stock", "GA: 98 of 100 left").await;
    click(c, "#pay").await;
    // The provider's page: a declined card is said so there, and the page stays open.
    on_provider_page(c, &s).await;
    wait_text(c, "body", "100,000").await;
    shoot(c, "hosted-page", "form").await;
    enter_card(c, "4000000000000002").await;
    wait_text(c, "body", "declined").await;
    shoot(c, "hosted-declined", "form").await;
    // Giving up there comes back to the demo page: not paid, try again (the hold waits).
    click_link(c, "Cancel and return").await;
    wait_text(c, "#pay-status", "Payment not completed").await;
    wait_text(c, "#hold-status", "Hold paying: 2 ticket(s)").await;
    wait_text(c, "#session-stock", "GA: 98 of 100 left").await;
    assert!(
        !current_url(c).await.contains("checkout="),
        "the return query is cleared"
    );
    // Again, on the same page, with the card that succeeds: back here, the result shown live.
    click(c, "#pay").await;
    on_provider_page(c, &s).await;
    enter_card(c, "4242424242424242").await;
    wait_text(
        c,
        "#pay-status",
        "Payment succeeded: reservation confirmed.",
    )
    .await;
    assert!(
        current_url(c).await.starts_with(&s.url),
        "back on the demo page"
    );
    shoot(c, "hosted-returned", "#pay-step").await;
    wait_text(c, "#hold-status", "Hold confirmed").await;
    wait_text(c, "#reservations", "confirmed · 2 ticket(s)").await;
    wait_text(c, "#session-stock", "GA: 98 of 100 left (2 sold)").await;
    // One ticket per unit, each code shown; the gate admits each once.
    let codes = ticket_codes(c, 2).await;
    assert_eq!(codes.len(), 2, "one ticket per unit: {codes:?}");
    // each valid ticket shows its QR code (fetched with the token, inline SVG)
    wait_count(c, &format!("{} svg path", testid("ticket-qr")), 2).await;
    gate_admits(&s, ga, &codes).await;
    click(c, "#refresh-mine").await;
    wait_text(c, "#tickets", "used").await;

    // The admin sees the sale in the live figures.
    click(c, "#logout").await;
    wait_text(c, "#whoami", "Not logged in").await;
    assert!(!displayed(c, "#admin-section").await);
    fill(c, "#email", "admin@example.com").await;
    fill(c, "#password", "admin-pass-1").await;
    click(c, "#login").await;
    wait_text(c, "#whoami", "admin@example.com (admin)").await;
    select(c, "#admin-session", &ga.to_string()).await;
    wait_text_exact(c, "#stat-sold", "2").await;
    wait_text_exact(c, "#stat-capacity", "100").await;
    wait_text_exact(c, "#stat-available", "98").await;
    wait_text(c, "#stat-reservations", "confirmed: 1").await;
    let totals = s
        .state
        .rush
        .stores()
        .inventory
        .snapshot(ga)
        .await
        .expect("snapshot")
        .totals();
    assert_eq!(
        (totals.sold, totals.available),
        (2, 98),
        "the page showed the store's figures"
    );
    // Live: a sale made elsewhere shows up without touching the page.
    let (other, _) = common::user_token(&s);
    buy_ga_unit(&s, ga, &other).await;
    wait_text_exact(c, "#stat-sold", "3").await;

    // A second buyer picks two seats on the seat map.
    click(c, "#logout").await;
    let email2 = format!("seats-{}@example.com", uuid::Uuid::now_v7().simple());
    fill(c, "#email", &email2).await;
    fill(c, "#password", password).await;
    click(c, "#signup").await;
    wait_text(c, "#whoami", &email2).await;
    click(c, &testid(&format!("session-{seated}"))).await;
    wait_text(c, "#session-title", "Seated").await;
    click(c, "#join").await;
    wait_text(c, "#queue-status", "Admitted").await;
    assert!(displayed(c, "#seat-map").await && !displayed(c, "#ga-picker").await);
    click(c, &testid("seat-B3")).await;
    click(c, &testid("seat-B4")).await;
    wait_text(c, "#selection", "Seats B3, B4").await;
    wait_text(c, "#selection", "198,000").await;
    click(c, "#hold").await;
    wait_text(c, "#hold-status", "Hold held: 2 ticket(s)").await;
    // The challenge card: the provider's page asks for a code, entered there.
    click(c, "#pay").await;
    on_provider_page(c, &s).await;
    enter_card(c, "4000002760003184").await;
    fill(c, "input[name=\"code\"]", "123456").await;
    shoot(c, "hosted-challenge", "form").await;
    submit(c).await;
    wait_text(
        c,
        "#pay-status",
        "Payment succeeded: reservation confirmed.",
    )
    .await;
    wait_text(c, "#reservations", "confirmed · 2 ticket(s)").await;
    assert_eq!(ticket_codes(c, 2).await.len(), 2, "one ticket per seat");
    // The next admission's seat map shows them sold.
    click(c, "#join").await;
    wait_text(c, "#queue-status", "Admitted").await;
    wait_attr(c, &testid("seat-B3"), "class", "sold").await;
    assert!(
        !enabled(c, &testid("seat-B4")).await,
        "a sold seat cannot be picked"
    );
    assert!(
        enabled(c, &testid("seat-B5")).await,
        "the next seat is free"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gate_staff_check_tickets_in_on_the_gate_page_in_headless_chromium() {
    let Some(tools) = browser_tools() else {
        return;
    };
    let browser = Browser::start(&tools).await;
    let client = browser.client.clone();
    let runtime = tokio::runtime::Handle::current();
    let outcome = tokio::task::spawn_blocking(move || runtime.block_on(gate_page(&client))).await;
    browser.close().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// The gate page (`GET /gate`) on a phone-sized window: a buyer's account is refused by the
/// API (403 shown); a `GATE` account pastes a valid code (ADMITTED), the same code again
/// (REFUSED, already used), and a ticket of another session (REFUSED, wrong session).
async fn gate_page(c: &Client) {
    let s = memory_server(&[]).await;
    let session = common::ga_session(&s, 10).await;
    let elsewhere = common::ga_session(&s, 10).await;
    let (buyer, _) = common::user_token(&s);
    common::buy(&s, session, &buyer, "buy", 2).await;
    common::buy(&s, elsewhere, &buyer, "buy-elsewhere", 1).await;
    let tickets = call(&s, "GET", "/api/me/tickets", Some(&buyer), &[], None).await;
    let code_of = |session: SessionId| {
        tickets.json["tickets"]
            .as_array()
            .expect("tickets")
            .iter()
            .find(|t| t["session_id"] == session.to_string())
            .and_then(|t| t["code"].as_str())
            .expect("a ticket of the session")
            .to_owned()
    };
    let (code, foreign) = (code_of(session), code_of(elsewhere));

    // A buyer's account and a gate account (made GATE by the admin), both with passwords.
    let password = "gate-pass-123";
    let account = |who: &str| {
        let email = format!("{who}-{}@example.com", uuid::Uuid::now_v7().simple());
        let body = serde_json::json!({ "email": email, "password": password }).to_string();
        (email, body)
    };
    let (user_email, user_body) = account("user");
    let (gate_email, gate_body) = account("gate");
    for body in [&user_body, &gate_body] {
        let made = call(&s, "POST", "/api/auth/signup", None, &[], Some(body)).await;
        assert_eq!(made.status, 201, "{made:?}");
    }
    let gate_id = s
        .state
        .accounts
        .user_by_email(&gate_email)
        .await
        .expect("the gate account")
        .id;
    let admin = common::admin_token(&s).await;
    let granted = call(
        &s,
        "PUT",
        &format!("/api/admin/users/{gate_id}/role"),
        Some(&admin),
        &[],
        Some(r#"{"role":"GATE"}"#),
    )
    .await;
    assert_eq!(granted.status, 200, "{granted:?}");

    c.set_window_size(390, 844)
        .await
        .expect("a phone-sized window");
    c.goto(&format!("{}/gate", s.url))
        .await
        .expect("open the gate page");

    // A buyer may log in, but the gate API refuses its check-ins, and the page says so.
    fill(c, "#email", &user_email).await;
    fill(c, "#password", password).await;
    click(c, "#login").await;
    wait_text(c, "#whoami", &format!("{user_email} (user)")).await;
    select(c, "#session", &session.to_string()).await;
    fill(c, "#code", &code).await;
    click(c, "#check-in").await;
    wait_text(c, "#error", "FORBIDDEN").await;
    assert!(
        !displayed(c, "#result").await,
        "no verdict for a refused account"
    );
    click(c, "#logout").await;
    wait_text(c, "#whoami", "Not logged in").await;

    // Gate staff: the first scan admits, the second is refused as already used.
    fill(c, "#email", &gate_email).await;
    fill(c, "#password", password).await;
    click(c, "#login").await;
    wait_text(c, "#whoami", &format!("{gate_email} (gate)")).await;
    select(c, "#session", &session.to_string()).await;
    fill(c, "#code", &code).await;
    click(c, "#check-in").await;
    wait_text(c, "#verdict", "ADMITTED").await;
    wait_text(c, "#result", "GA").await;
    assert!(!displayed(c, "#error").await);
    fill(c, "#code", &code).await;
    click(c, "#check-in").await;
    wait_text(c, "#verdict", "REFUSED").await;
    wait_text(c, "#reason", "Already used").await;
    wait_text(c, "#detail", "TICKET_ALREADY_USED").await;
    // A ticket of another session, and a code that is not one.
    fill(c, "#code", &foreign).await;
    click(c, "#check-in").await;
    wait_text(c, "#reason", "Wrong session").await;
    fill(c, "#code", &format!("{code}x")).await;
    click(c, "#check-in").await;
    wait_text(c, "#reason", "Bad code").await;
    wait_text(c, "#verdict", "REFUSED").await;
    // The phone-sized page does not scroll sideways.
    let wider = c
        .execute(
            "return [...document.querySelectorAll('body *')]
                .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5)
                .map((e) => e.id || e.tagName)",
            vec![],
        )
        .await
        .expect("measure");
    assert_eq!(
        wider,
        serde_json::json!([]),
        "wider than the phone's screen"
    );
    // The API agrees: exactly the pasted ticket was marked used.
    let id: ticket_server::services::tickets::TicketId = tickets.json["tickets"]
        .as_array()
        .expect("tickets")
        .iter()
        .find(|t| t["code"] == code.as_str())
        .and_then(|t| t["ticket_id"].as_str())
        .expect("its id")
        .parse()
        .expect("a ticket id");
    let marks = s.state.rush.gate.check_ins(id.hold()).await.expect("marks");
    assert_eq!(marks.len(), 1, "{marks:?}");
    assert_eq!(marks[0].ticket, id.number());
}

/// The ticket codes the page lists (`GET /api/me/tickets`), once there are `count`, each
/// with the status `valid` shown next to it.
async fn ticket_codes(c: &Client, count: usize) -> Vec<String> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut codes = Vec::new();
        if let Ok(found) = c.find_all(Locator::Css(&testid("ticket"))).await {
            for item in found {
                let code = match item.find(Locator::Css(&testid("ticket-code"))).await {
                    Ok(e) => e.text().await.unwrap_or_default(),
                    Err(_) => String::new(),
                };
                let text = item.text().await.unwrap_or_default();
                if !code.trim().is_empty() && text.contains("valid") {
                    codes.push(code.trim().to_owned());
                }
            }
        }
        if codes.len() >= count {
            return codes;
        }
        if Instant::now() > deadline {
            panic!(
                "{count} ticket codes never shown (got {codes:?}); the page shows:\n{}",
                page_text(c).await
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The gate of `session` (`POST /api/tickets/verify`, admin) admits each code the page
/// showed, once.
async fn gate_admits(s: &Server, session: SessionId, codes: &[String]) {
    let mut unique = codes.to_vec();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), codes.len(), "distinct codes: {codes:?}");
    let login = call(
        s,
        "POST",
        "/api/auth/login",
        None,
        &[],
        Some(r#"{"email":"admin@example.com","password":"admin-pass-1"}"#),
    )
    .await;
    let admin = login.json["access_token"].as_str().expect("admin token");
    for code in codes {
        let body =
            serde_json::json!({ "code": code, "session_id": session.to_string() }).to_string();
        let first = call(
            s,
            "POST",
            "/api/tickets/verify",
            Some(admin),
            &[],
            Some(&body),
        )
        .await;
        assert_eq!(
            first.status, 200,
            "the shown code {code} is a real ticket: {first:?}"
        );
        let again = call(
            s,
            "POST",
            "/api/tickets/verify",
            Some(admin),
            &[],
            Some(&body),
        )
        .await;
        assert_eq!(again.status, 409, "{again:?}");
    }
}

/// Sells one GA unit to `token`'s user over the API (join, hold, pay).
async fn buy_ga_unit(s: &Server, session: SessionId, token: &str) {
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
        &[("idempotency-key", "other-hold")],
        Some(&body),
    )
    .await;
    assert_eq!(held.status, 201, "{held:?}");
    let hold = held.json["id"].as_str().expect("hold id");
    let paid = call(
        s,
        "POST",
        &format!("/api/holds/{hold}/checkout"),
        Some(token),
        &[("idempotency-key", "other-pay")],
        Some(r#"{"method":"card","card_number":"4242424242424242"}"#),
    )
    .await;
    assert_eq!(paid.json["hold"]["status"], "confirmed", "{paid:?}");
}

// ---------------------------------------------------------------------------------------
// The provider's hosted page

/// Waits until the browser is on the sandbox's payment page of server `s`.
async fn on_provider_page(c: &Client, s: &Server) {
    let page = format!("{}/sandbox/pay/", s.url);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let url = current_url(c).await;
        if url.starts_with(&page) && c.find(Locator::Css("form")).await.is_ok() {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "never sent to the payment page ({url}). The page:\n{}",
                page_text(c).await
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Enters `card` (and an expiry, a CVC and a name) on the provider's page and pays.
async fn enter_card(c: &Client, card: &str) {
    fill(c, "input[name=\"card_number\"]", card).await;
    fill(c, "input[name=\"expiry\"]", "12/34").await;
    fill(c, "input[name=\"cvc\"]", "123").await;
    fill(c, "input[name=\"name\"]", "Ann Buyer").await;
    submit(c).await;
}

/// Clicks the submit button of the page's form.
async fn submit(c: &Client) {
    click(c, "form button, form input[type=\"submit\"]").await;
}

/// Clicks the link whose text is `text`.
async fn click_link(c: &Client, text: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(link) = c.find(Locator::LinkText(text)).await
            && link.click().await.is_ok()
        {
            return;
        }
        if Instant::now() > deadline {
            panic!("no link {text:?}. The page:\n{}", page_text(c).await);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn current_url(c: &Client) -> String {
    c.current_url()
        .await
        .map(|u| u.to_string())
        .unwrap_or_default()
}
