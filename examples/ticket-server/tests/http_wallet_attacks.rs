//! Attacks on the wallet's money, over HTTP on every backend (memory, Redis, PostgreSQL).
//!
//! * Free credit: money put into the wallet without a payment behind it must never pay for
//!   tickets.
//! * Key namespace: a client's `Idempotency-Key` must never name one of the wallet's own
//!   ledger entries (a checkout's debit, its refund), so a wallet checkout always debits its
//!   amount and a cancellation credits it back once.

mod common;

use common::{Kind, Server, call, join_and_hold, server, top_up, totals, user_token};

async fn pay_by_wallet(s: &Server, token: &str, hold: &str) -> common::Answer {
    call(
        s,
        "POST",
        &format!("/api/holds/{hold}/checkout"),
        Some(token),
        &[("idempotency-key", "pay")],
        Some(r#"{"method":"wallet"}"#),
    )
    .await
}

async fn balance(s: &Server, token: &str) -> (i64, Vec<serde_json::Value>) {
    let w = call(s, "GET", "/api/me/wallet", Some(token), &[], None).await;
    assert_eq!(w.status, 200, "{w:?}");
    (
        w.json["balance"].as_i64().expect("balance"),
        w.json["entries"].as_array().cloned().unwrap_or_default(),
    )
}

/// Asking for credit without paying for it (the old charge route, a top-up without a card)
/// puts nothing in the wallet, and a wallet checkout then fails for insufficient funds.
async fn free_credit_is_refused(kind: Kind) {
    let s = server(kind, &[]).await;
    let session = common::ga_session(&s, 5).await;
    let (me, _) = user_token(&s);
    let free = call(
        &s,
        "POST",
        "/api/me/wallet/charge",
        Some(&me),
        &[("idempotency-key", "free")],
        Some(r#"{"amount":10000000}"#),
    )
    .await;
    assert!(
        matches!(free.status, 404 | 405),
        "no route credits without a payment: {free:?}"
    );
    let no_card = call(
        &s,
        "POST",
        "/api/me/wallet/topups",
        Some(&me),
        &[("idempotency-key", "free-2")],
        Some(r#"{"amount":10000000}"#),
    )
    .await;
    assert_eq!(
        (no_card.status, no_card.json["error"]["code"].as_str()),
        (400, Some("VALIDATION")),
        "{no_card:?}"
    );
    assert_eq!(balance(&s, &me).await.0, 0);

    let hold = join_and_hold(&s, session, &me, "h1", 1).await;
    let paid = pay_by_wallet(&s, &me, &hold).await;
    assert_eq!(paid.json["status"], "failed", "{paid:?}");
    assert_eq!(
        paid.json["failure"]["code"], "insufficient_funds",
        "{paid:?}"
    );
    assert_eq!(paid.json["hold"]["status"], "payment_failed", "{paid:?}");
    assert_eq!(totals(&s, session).await, (5, 0, 0), "no ticket was sold");
    assert_eq!(balance(&s, &me).await.0, 0);
}

/// Funding the wallet under the keys the wallet's own debit and refund used to be written
/// under, then paying by wallet and cancelling: the checkout debits the price (balance =
/// before − amount, read from the ledger) and the cancellation credits it back once.
async fn client_keys_never_reach_internal_entries(kind: Kind) {
    let s = server(kind, &[]).await;
    let session = common::ga_session(&s, 5).await;
    let (me, _) = user_token(&s);
    let hold = join_and_hold(&s, session, &me, "h1", 2).await;
    let price = 100_000;
    let intent = format!("wallet_{hold}");
    for key in [
        intent.clone(),
        format!("refund-{intent}"),
        format!("sys:payment:{intent}"),
        format!("sys:refund:{intent}"),
        format!("client:{intent}"),
    ] {
        top_up(&s, &me, &key, price).await;
    }
    let (before, _) = balance(&s, &me).await;
    assert_eq!(before, 5 * price);

    let paid = pay_by_wallet(&s, &me, &hold).await;
    assert_eq!(paid.json["hold"]["status"], "confirmed", "{paid:?}");
    let (after_pay, entries) = balance(&s, &me).await;
    assert_eq!(
        after_pay,
        before - price,
        "the checkout debits: {entries:?}"
    );
    assert_eq!(entries[0]["kind"], "payment", "{entries:?}");
    assert_eq!(entries[0]["amount_minor"], -price, "{entries:?}");

    for key in ["c1", "c1", "c2"] {
        let c = call(
            &s,
            "POST",
            &format!("/api/reservations/{hold}/cancel"),
            Some(&me),
            &[("idempotency-key", key)],
            None,
        )
        .await;
        assert_eq!(c.status, 200, "{c:?}");
    }
    let (after_cancel, entries) = balance(&s, &me).await;
    assert_eq!(after_cancel, before, "refunded once: {entries:?}");
    let refunds = entries.iter().filter(|e| e["kind"] == "refund").count();
    assert_eq!(refunds, 1, "{entries:?}");
    assert_eq!(totals(&s, session).await, (5, 0, 0));
}

common::on_all_backends!(
    free_credit_is_refused,
    client_keys_never_reach_internal_entries,
);
