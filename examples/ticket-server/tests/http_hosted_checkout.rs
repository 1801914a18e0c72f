//! Checkout on the payment provider's hosted page, driven over HTTP without a browser, as a
//! buyer's browser would: `{"method": "hosted"}` answers the provider's page
//! (`payment_url`, here the in-process sandbox's page mounted under `/sandbox`), the buyer
//! posts the card form there, follows the provider's `303` back to the server's own page,
//! and the hold is confirmed by the provider's webhook with its payment captured.
//!
//! Also: a declined card leaves the page open (the hold stays `paying`) and a second card
//! pays; the challenge card asks for a code; "Cancel and return" comes back with
//! `canceled=1`; asking again answers the same session; nobody pays for someone else's hold
//! or confirms one hold with another hold's page; the return URL is the server's own,
//! whatever the request says; an authorization that comes after its hold ended and its
//! units were resold is voided, never charged.

mod common;
#[path = "common/forms.rs"]
mod forms;

use std::time::{Duration, Instant};

use common::{Server, call, ga_session, join_and_hold, memory_server, user_token};
use forms::{Form, forms, links, text};
use serde_json::{Value, json};
use ticket_core::gateway::{CaptureMethod, IntentId, IntentStatus, PaymentIntent};

/// The sandbox's cards.
const SUCCEEDS: &str = "4242424242424242";
const DECLINED: &str = "4000000000000002";
const CHALLENGE: &str = "4000002760003184";
/// The code that passes the sandbox's challenge.
const CODE: &str = "123456";

/// A browser-like client: cookies are not needed, redirects are looked at, not followed.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// An answer of the provider's page.
#[derive(Debug)]
struct Page {
    status: u16,
    location: Option<String>,
    html: String,
}

async fn get(url: &str) -> Page {
    let resp = browser().get(url).send().await.expect("GET the page");
    page(resp).await
}

async fn page(resp: reqwest::Response) -> Page {
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let html = resp.text().await.expect("body");
    Page {
        status,
        location,
        html,
    }
}

/// `application/x-www-form-urlencoded` of `fields`.
fn urlencoded(fields: &[(String, String)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_owned(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `href` (absolute, or a path on the page's origin) as an absolute URL.
fn absolute(page_url: &str, href: &str) -> String {
    if href.starts_with("http://") || href.starts_with("https://") {
        return href.to_owned();
    }
    let origin_end = page_url
        .find("://")
        .and_then(|i| page_url[i + 3..].find('/').map(|j| i + 3 + j))
        .unwrap_or(page_url.len());
    format!("{}{href}", &page_url[..origin_end])
}

/// Submits `form` of the page at `page_url` with `values` set.
async fn submit(page_url: &str, form: &Form, values: &[(&str, &str)]) -> Page {
    assert_eq!(form.method, "POST", "the payment form posts: {form:?}");
    let action = if form.action.is_empty() {
        page_url.to_owned()
    } else {
        absolute(page_url, &form.action)
    };
    let resp = browser()
        .post(action)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(urlencoded(&form.filled(values)))
        .send()
        .await
        .expect("POST the form");
    page(resp).await
}

/// Pays on the card form of the page at `url` with `card` (expiry, CVC and name filled).
async fn pay_with(url: &str, card: &str) -> Page {
    let shown = get(url).await;
    assert_eq!(shown.status, 200, "{shown:?}");
    let form = card_form(&shown.html);
    let field = |needles: &[&str]| {
        form.field_like(needles)
            .unwrap_or_else(|| panic!("no {needles:?} field in {form:?}"))
            .to_owned()
    };
    let (number, expiry, cvc, name) = (
        field(&["card", "number"]),
        field(&["exp"]),
        field(&["cvc", "cvv"]),
        field(&["name"]),
    );
    submit(
        url,
        &form,
        &[
            (&number, card),
            (&expiry, "12/34"),
            (&cvc, "123"),
            (&name, "Ann Buyer"),
        ],
    )
    .await
}

/// The page's card form (the one with a card number field).
fn card_form(html: &str) -> Form {
    forms(html)
        .into_iter()
        .find(|f| f.field_like(&["card", "number"]).is_some())
        .unwrap_or_else(|| panic!("no card form on the page:\n{html}"))
}

/// Starts a hosted checkout of `hold` under Idempotency-Key `key`: the answer.
async fn hosted(s: &Server, token: &str, hold: &str, key: &str) -> common::Answer {
    call(
        s,
        "POST",
        &format!("/api/holds/{hold}/checkout"),
        Some(token),
        &[("idempotency-key", key)],
        Some(r#"{"method":"hosted"}"#),
    )
    .await
}

/// The hold as its owner reads it.
async fn hold_of(s: &Server, token: &str, hold: &str) -> Value {
    let a = call(
        s,
        "GET",
        &format!("/api/holds/{hold}"),
        Some(token),
        &[],
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    a.json
}

/// Waits (10 s at most) until the hold's status is `status` (the webhook settles it).
async fn wait_status(s: &Server, token: &str, hold: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let h = hold_of(s, token, hold).await;
        if h["status"] == status {
            return h;
        }
        assert!(
            Instant::now() < deadline,
            "hold {hold} never became {status}: {h}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The intent as the provider has it.
async fn intent(s: &Server, id: &str) -> PaymentIntent {
    s.state
        .checkout
        .gateway()
        .get_intent(&IntentId::new(id).expect("intent id"))
        .await
        .expect("the provider knows the intent")
}

/// Waits (10 s at most) until the provider's intent `id` satisfies `ok`.
async fn wait_intent(s: &Server, id: &str, ok: impl Fn(&PaymentIntent) -> bool) -> PaymentIntent {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let i = intent(s, id).await;
        if ok(&i) {
            return i;
        }
        assert!(Instant::now() < deadline, "intent {id} stuck at {i:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What a successful payment leaves: the hold confirmed by an intent of this session that
/// was captured for the hold's price (manual capture where the provider offers it).
async fn assert_paid(s: &Server, token: &str, hold: &str, session: &str) {
    let h = wait_status(s, token, hold, "confirmed").await;
    let paid_by = h["payment_id"]
        .as_str()
        .expect("paid by an intent")
        .to_owned();
    assert_ne!(
        paid_by, session,
        "the reference becomes the intent that paid"
    );
    let i = wait_intent(s, &paid_by, |i| i.status == IntentStatus::Succeeded).await;
    assert_eq!(
        i.checkout_session
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some(session),
        "{i:?}"
    );
    assert_eq!(i.amount.amount_minor, h["amount"].as_i64().expect("amount"));
    assert_eq!(i.received_minor(), i.amount.amount_minor, "captured: {i:?}");
    assert_eq!(i.capture_method, s.state.checkout.capture_method());
    let payment = call(
        s,
        "GET",
        &format!("/api/payments/{paid_by}"),
        Some(token),
        &[],
        None,
    )
    .await;
    assert_eq!(payment.status, 200, "{payment:?}");
    assert_eq!(payment.json["status"], "succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyer_pays_on_the_providers_page_and_comes_back() {
    let s = memory_server(&[]).await;
    assert_eq!(
        s.state.checkout.capture_method(),
        CaptureMethod::Manual,
        "the in-process sandbox authorizes, the checkout captures"
    );
    let session = ga_session(&s, 10).await;
    let (token, _) = user_token(&s);
    let hold = join_and_hold(&s, session, &token, "h1", 2).await;

    let started = hosted(&s, &token, &hold, "c1").await;
    assert_eq!(started.status, 200, "{started:?}");
    let a = &started.json;
    let cs = a["payment_id"].as_str().expect("the session").to_owned();
    let url = a["payment_url"].as_str().expect("the page").to_owned();
    assert_eq!(url, format!("{}/sandbox/pay/{cs}", s.url), "{a}");
    assert_eq!(a["hold"]["status"], "paying");
    assert_eq!(
        a["hold"]["payment_id"],
        cs.as_str(),
        "the hold names the session"
    );
    assert_eq!((&a["status"], &a["outcome"]), (&Value::Null, &Value::Null));

    // Asking again (another key), or for a card payment, answers the same page: one
    // payment per hold.
    let again = hosted(&s, &token, &hold, "c2").await;
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(again.json["payment_id"], cs.as_str());
    assert_eq!(again.json["payment_url"], url.as_str());
    let card = call(
        &s,
        "POST",
        &format!("/api/holds/{hold}/checkout"),
        Some(&token),
        &[("idempotency-key", "c3")],
        Some(&format!(
            r#"{{"method":"card","card_number":"{SUCCEEDS}"}}"#
        )),
    )
    .await;
    assert_eq!(card.status, 200, "{card:?}");
    assert_eq!(card.json["payment_url"], url.as_str(), "{card:?}");
    assert_eq!(card.json["hold"]["status"], "paying");
    // The same key again answers the first answer.
    let replay = hosted(&s, &token, &hold, "c1").await;
    assert_eq!(replay.json, started.json);

    // The session names no payment until the buyer makes an attempt.
    let read = |who: String| {
        let (s, cs) = (&s, cs.clone());
        async move {
            call(
                s,
                "GET",
                &format!("/api/payments/{cs}"),
                Some(&who),
                &[],
                None,
            )
            .await
        }
    };
    assert_eq!(read(token.clone()).await.status, 404);

    // The page shows the price; a declined card leaves it open, the hold paying.
    let shown = get(&url).await;
    assert_eq!(shown.status, 200, "{shown:?}");
    assert!(text(&shown.html).contains("100,000"), "{}", shown.html);
    let declined = pay_with(&url, DECLINED).await;
    assert_eq!(declined.status, 402, "{declined:?}");
    assert!(
        text(&declined.html).to_lowercase().contains("declined"),
        "{}",
        declined.html
    );
    card_form(&declined.html);
    assert_eq!(hold_of(&s, &token, &hold).await["status"], "paying");
    // The session's id reads its latest attempt, for its buyer only.
    let attempt = read(token.clone()).await;
    assert_eq!(attempt.status, 200, "{attempt:?}");
    assert_eq!(attempt.json["status"], "failed", "{attempt:?}");
    assert_eq!(attempt.json["hold"]["id"], hold.as_str());
    let (stranger, _) = user_token(&s);
    assert_eq!(read(stranger).await.status, 404, "not someone else's");

    // A card that pays: back to the server's own page, with the session named.
    let paid = pay_with(&url, SUCCEEDS).await;
    assert_eq!(paid.status, 303, "{paid:?}");
    let back = paid.location.clone().expect("sent back");
    assert_eq!(
        back,
        format!("{}/?checkout={hold}&session_id={cs}", s.url),
        "the return URL is the server's page for this hold"
    );
    let landed = get(&back).await;
    assert_eq!(landed.status, 200);
    assert!(
        landed.html.contains("<script src=\"/app.js\""),
        "the demo page"
    );
    assert_paid(&s, &token, &hold, &cs).await;
    // The buyer is told in the app too (the capture follower, which follows the same
    // confirmations, takes no notification from the inbox).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = call(&s, "GET", "/api/me/notifications", Some(&token), &[], None).await;
        let told = list.json["notifications"].as_array().is_some_and(|n| {
            n.iter()
                .any(|x| x["kind"] == "hold_confirmed" && x["hold_id"] == hold.as_str())
        });
        if told {
            break;
        }
        assert!(Instant::now() < deadline, "never told: {list:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The page says it is paid and takes no second payment.
    let after = get(&url).await;
    assert!(card_form_absent(&after.html), "{}", after.html);
    assert_eq!(
        hosted(&s, &token, &hold, "c4").await.status,
        409,
        "a confirmed hold is not paid again"
    );
}

fn card_form_absent(html: &str) -> bool {
    forms(html)
        .iter()
        .all(|f| f.field_like(&["card", "number"]).is_none())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_challenge_card_asks_for_a_code_and_cancel_comes_back() {
    let s = memory_server(&[]).await;
    let session = ga_session(&s, 10).await;
    let (token, _) = user_token(&s);
    let hold = join_and_hold(&s, session, &token, "h1", 1).await;
    let started = hosted(&s, &token, &hold, "c1").await;
    let cs = started.json["payment_id"]
        .as_str()
        .expect("session")
        .to_owned();
    let url = started.json["payment_url"]
        .as_str()
        .expect("page")
        .to_owned();

    // "Cancel and return": back to the server's page, saying so; the page stays open.
    let shown = get(&url).await;
    let (cancel, _) = links(&shown.html)
        .into_iter()
        .find(|(_, t)| t.to_lowercase().contains("cancel"))
        .expect("a cancel link");
    let canceled = get(&absolute(&url, &cancel)).await;
    assert_eq!(canceled.status, 303, "{canceled:?}");
    let back = canceled.location.expect("sent back");
    assert!(
        back.starts_with(&format!("{}/?checkout={hold}&", s.url)),
        "{back}"
    );
    assert!(
        back.contains(&format!("session_id={cs}")) && back.contains("canceled=1"),
        "{back}"
    );
    assert_eq!(hold_of(&s, &token, &hold).await["status"], "paying");

    // The challenge card: a code is asked; a wrong one is refused, the right one pays.
    let asked = pay_with(&url, CHALLENGE).await;
    assert_eq!(asked.status, 200, "{asked:?}");
    let challenge = forms(&asked.html)
        .into_iter()
        .find(|f| f.field_like(&["code"]).is_some())
        .unwrap_or_else(|| panic!("no code form:\n{}", asked.html));
    assert_eq!(hold_of(&s, &token, &hold).await["status"], "paying");
    let field = challenge.field_like(&["code"]).expect("code").to_owned();
    let wrong = submit(&url, &challenge, &[(&field, "000000")]).await;
    assert_ne!(wrong.status, 303, "a wrong code does not pay: {wrong:?}");
    assert_eq!(hold_of(&s, &token, &hold).await["status"], "paying");
    // Whatever the wrong code left (another challenge or the card form), the page goes on.
    let now = get(&url).await;
    let passed = match forms(&now.html)
        .into_iter()
        .find(|f| f.field_like(&["code"]).is_some())
    {
        Some(again) => {
            let field = again.field_like(&["code"]).expect("code").to_owned();
            submit(&url, &again, &[(&field, CODE)]).await
        }
        None => {
            let asked = pay_with(&url, CHALLENGE).await;
            let again = forms(&asked.html)
                .into_iter()
                .find(|f| f.field_like(&["code"]).is_some())
                .expect("a code form");
            let field = again.field_like(&["code"]).expect("code").to_owned();
            submit(&url, &again, &[(&field, CODE)]).await
        }
    };
    assert_eq!(passed.status, 303, "{passed:?}");
    assert_eq!(
        passed.location.as_deref(),
        Some(format!("{}/?checkout={hold}&session_id={cs}", s.url).as_str())
    );
    assert_paid(&s, &token, &hold, &cs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_pays_for_someone_elses_hold_nor_with_another_holds_page() {
    let s = memory_server(&[]).await;
    let session = ga_session(&s, 10).await;
    let (ann, _) = user_token(&s);
    let (bob, _) = user_token(&s);
    let first = join_and_hold(&s, session, &ann, "h1", 1).await;

    // Bob cannot start (or read) a checkout of Ann's hold: it does not exist for him.
    let theirs = hosted(&s, &bob, &first, "b1").await;
    assert_eq!(theirs.status, 404, "{theirs:?}");
    assert_eq!(theirs.json["error"]["code"], "NOT_FOUND");
    assert_eq!(hold_of(&s, &ann, &first).await["status"], "held");

    // The return URL is the server's own: a request naming one is refused outright.
    for body in [
        json!({"method": "hosted", "return_url": "https://evil.example/"}),
        json!({"method": "hosted", "success_url": "https://evil.example/"}),
        json!({"method": "hosted", "amount": 1}),
    ] {
        let refused = call(
            &s,
            "POST",
            &format!("/api/holds/{first}/checkout"),
            Some(&ann),
            &[("idempotency-key", "bad")],
            Some(&body.to_string()),
        )
        .await;
        assert_eq!(refused.status, 400, "{body}: {refused:?}");
    }

    // Ann pays hold 1 on its page; hold 2 (her second, paying on its own page) is not
    // confirmed by that payment, and a page pays only its own hold's price.
    let started = hosted(&s, &ann, &first, "a1").await;
    let (cs1, url1) = (
        started.json["payment_id"]
            .as_str()
            .expect("session")
            .to_owned(),
        started.json["payment_url"]
            .as_str()
            .expect("page")
            .to_owned(),
    );
    let joined = call(
        &s,
        "POST",
        &format!("/api/sessions/{session}/queue"),
        Some(&ann),
        &[],
        None,
    )
    .await;
    assert_eq!(joined.json["status"], "active", "{joined:?}");
    let second = call(
        &s,
        "POST",
        "/api/holds",
        Some(&ann),
        &[("idempotency-key", "h2")],
        Some(&format!(
            r#"{{"session_id":"{session}","grade":"GA","quantity":2}}"#
        )),
    )
    .await;
    assert_eq!(second.status, 201, "{second:?}");
    let second = second.json["id"].as_str().expect("hold").to_owned();
    let started2 = hosted(&s, &ann, &second, "a2").await;
    let cs2 = started2.json["payment_id"]
        .as_str()
        .expect("session")
        .to_owned();
    assert_ne!(cs1, cs2, "a page per hold");
    let paid = pay_with(&url1, SUCCEEDS).await;
    assert_eq!(paid.status, 303, "{paid:?}");
    assert_paid(&s, &ann, &first, &cs1).await;
    let h2 = hold_of(&s, &ann, &second).await;
    assert_eq!(h2["status"], "paying", "{h2}");
    assert_eq!(h2["payment_id"], cs2.as_str());
    // Coming back with another session's id changes nothing either: the return proves
    // nothing, only the provider's word does.
    let forged = get(&format!("{}/?checkout={second}&session_id={cs1}", s.url)).await;
    assert_eq!(forged.status, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hold_of(&s, &ann, &second).await["status"], "paying");
    let first_paid = hold_of(&s, &ann, &first).await;
    let i = intent(&s, first_paid["payment_id"].as_str().expect("intent")).await;
    assert_eq!(i.amount.amount_minor, 50_000, "hold 1's price, one unit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorization_after_the_hold_ended_and_was_resold_is_voided_not_charged() {
    let s = memory_server(&[]).await;
    assert_eq!(s.state.checkout.capture_method(), CaptureMethod::Manual);
    let session = ga_session(&s, 1).await;
    let (ann, _) = user_token(&s);
    let (bob, _) = user_token(&s);
    let hold = join_and_hold(&s, session, &ann, "h1", 1).await;
    let started = hosted(&s, &ann, &hold, "a1").await;
    let url = started.json["payment_url"]
        .as_str()
        .expect("page")
        .to_owned();
    let cs = started.json["payment_id"]
        .as_str()
        .expect("session")
        .to_owned();
    assert_eq!(get(&url).await.status, 200, "Ann is on the page");

    // Meanwhile her hold ends (a sweeper expires it: here, as if its TTL were over) while
    // the provider's page is still open, and Bob buys the one unit.
    let later = s.state.clock.now().plus(Duration::from_secs(3_600));
    let expired = s
        .state
        .rush
        .stores()
        .reservations
        .expire_due(later, 10)
        .await
        .expect("expire");
    assert!(
        expired.iter().any(|h| h.id.to_string() == hold),
        "{expired:?}"
    );
    let bought = common::buy(&s, session, &bob, "b1", 1).await;
    assert_eq!(common::totals(&s, session).await, (0, 0, 1));

    // Ann pays on the still-open page: the card is authorized, but nothing can be sold
    // for it, so the authorization is released: she is never charged.
    let paid = pay_with(&url, SUCCEEDS).await;
    assert_eq!(paid.status, 303, "{paid:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let voided = loop {
        let session_now = s
            .state
            .checkout
            .gateway()
            .get_checkout_session(
                &ticket_core::gateway::CheckoutSessionId::new(cs.clone()).expect("id"),
            )
            .await
            .expect("session");
        if let Some(id) = session_now.intent {
            let i = intent(&s, id.as_str()).await;
            if i.status.is_final() {
                break i;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the late authorization was never settled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(voided.capture_method, CaptureMethod::Manual);
    assert_eq!(voided.status, IntentStatus::Canceled, "{voided:?}");
    assert_eq!(voided.received_minor(), 0, "nothing taken: {voided:?}");
    assert_eq!(voided.amount_refunded, 0, "nothing to refund: {voided:?}");
    let h = hold_of(&s, &ann, &hold).await;
    assert_ne!(h["status"], "confirmed", "{h}");
    // Bob keeps his ticket; the unit was sold once.
    assert_eq!(common::totals(&s, session).await, (0, 0, 1));
    let bob_hold = hold_of(&s, &bob, &bought.0).await;
    assert_eq!(bob_hold["status"], "confirmed");
}
