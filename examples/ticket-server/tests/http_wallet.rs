//! The wallet over HTTP on every backend (memory, Redis, PostgreSQL): the balance is the
//! ledger's sum; paying from the wallet debits once and a cancellation credits back once.
//! Top-ups themselves are tested in `http_wallet_topups.rs`.

mod common;

use common::{Kind, Server, call, join_and_hold, server, top_up, totals, user_token};

/// Top-ups are listed newest first, per user; the balance is the ledger's sum.
async fn topups_are_listed(kind: Kind) {
    let s = server(kind, &[]).await;
    let (me, _) = user_token(&s);
    top_up(&s, &me, "c1", 10_000).await;
    top_up(&s, &me, "c1", 10_000).await;
    top_up(&s, &me, "c2", 2_500).await;
    let wallet = call(&s, "GET", "/api/me/wallet", Some(&me), &[], None).await;
    assert_eq!(
        (
            wallet.json["balance"].as_i64(),
            wallet.json["currency"].as_str()
        ),
        (Some(12_500), Some("KRW"))
    );
    assert_eq!(wallet.json["entry_count"], 2);
    assert_eq!(
        wallet.json["entries"][0]["amount_minor"], 2_500,
        "newest first"
    );
    let (other, _) = user_token(&s);
    let theirs = call(&s, "GET", "/api/me/wallet", Some(&other), &[], None).await;
    assert_eq!(theirs.json["balance"], 0, "wallets are per user");
    for bad in [
        "/api/me/wallet?limit=0",
        "/api/me/wallet?limit=201",
        "/api/me/wallet?limit=ten",
        "/api/me/wallet?x=1",
    ] {
        let a = call(&s, "GET", bad, Some(&me), &[], None).await;
        assert_eq!(
            (a.status, a.json["error"]["code"].as_str()),
            (400, Some("VALIDATION")),
            "{bad}: {a:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// paying from the wallet

async fn pay_by_wallet(s: &Server, token: &str, hold: &str, key: &str) -> common::Answer {
    call(
        s,
        "POST",
        &format!("/api/holds/{hold}/checkout"),
        Some(token),
        &[("idempotency-key", key)],
        Some(r#"{"method":"wallet"}"#),
    )
    .await
}

async fn wallet_of(s: &Server, token: &str) -> serde_json::Value {
    call(s, "GET", "/api/me/wallet", Some(token), &[], None)
        .await
        .json
}

/// A wallet payment confirms the hold and debits the price once, whatever is repeated;
/// cancelling the reservation credits it back once.
async fn wallet_pays_once_and_cancel_refunds_once(kind: Kind) {
    let s = server(kind, &[]).await;
    let session = common::ga_session(&s, 10).await;
    let (me, _) = user_token(&s);
    top_up(&s, &me, "top-up", 120_000).await;
    let hold = join_and_hold(&s, session, &me, "h1", 2).await;

    let paid = pay_by_wallet(&s, &me, &hold, "pay-1").await;
    assert_eq!(paid.status, 200, "{paid:?}");
    assert_eq!(paid.json["status"], "succeeded", "{paid:?}");
    assert_eq!(paid.json["hold"]["status"], "confirmed", "{paid:?}");
    let payment = paid.json["payment_id"].as_str().unwrap().to_owned();
    assert_eq!(payment, format!("wallet_{hold}"));
    assert_eq!(totals(&s, session).await, (8, 0, 2));

    // the same request again answers the same; another key pays nothing more
    let again = pay_by_wallet(&s, &me, &hold, "pay-1").await;
    assert_eq!(again.json, paid.json);
    let other_key = pay_by_wallet(&s, &me, &hold, "pay-2").await;
    assert_eq!(other_key.status, 200, "{other_key:?}");
    assert_eq!(
        other_key.json["hold"]["status"], "confirmed",
        "{other_key:?}"
    );
    let w = wallet_of(&s, &me).await;
    assert_eq!(w["balance"], 20_000, "{w}");
    assert_eq!(w["entry_count"], 2, "{w}");
    assert_eq!(
        (
            w["entries"][0]["kind"].as_str(),
            w["entries"][0]["amount_minor"].as_i64()
        ),
        (Some("payment"), Some(-100_000))
    );

    // the payment reads back as the provider's would
    let read = call(
        &s,
        "GET",
        &format!("/api/payments/{payment}"),
        Some(&me),
        &[],
        None,
    )
    .await;
    assert_eq!(read.status, 200, "{read:?}");
    assert_eq!(
        (read.json["status"].as_str(), read.json["amount"].as_i64()),
        (Some("succeeded"), Some(100_000))
    );
    let (stranger, _) = user_token(&s);
    let theirs = call(
        &s,
        "GET",
        &format!("/api/payments/{payment}"),
        Some(&stranger),
        &[],
        None,
    )
    .await;
    assert_eq!(theirs.status, 404, "{theirs:?}");

    // cancelling refunds to the wallet, once
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
        assert_eq!(c.json["status"], "refunded", "{c:?}");
    }
    let w = wallet_of(&s, &me).await;
    assert_eq!(w["balance"], 120_000, "{w}");
    assert_eq!(w["entry_count"], 3, "one refund: {w}");
    assert_eq!(w["entries"][0]["kind"], "refund");
    assert_eq!(totals(&s, session).await, (10, 0, 0));
    let read = call(
        &s,
        "GET",
        &format!("/api/payments/{payment}"),
        Some(&me),
        &[],
        None,
    )
    .await;
    assert_eq!(read.json["amount_refunded"], 100_000, "{read:?}");
}

/// Too little in the wallet: the payment fails with `insufficient_funds`, nothing is
/// debited, and the units go back on sale.
async fn a_short_wallet_fails_the_payment_and_debits_nothing(kind: Kind) {
    let s = server(kind, &[]).await;
    let session = common::ga_session(&s, 5).await;
    let (me, _) = user_token(&s);
    top_up(&s, &me, "top-up", 30_000).await;
    let hold = join_and_hold(&s, session, &me, "h1", 1).await;
    let paid = pay_by_wallet(&s, &me, &hold, "pay-1").await;
    assert_eq!(paid.status, 200, "{paid:?}");
    assert_eq!(paid.json["status"], "failed", "{paid:?}");
    assert_eq!(
        paid.json["failure"]["code"], "insufficient_funds",
        "{paid:?}"
    );
    assert_eq!(paid.json["hold"]["status"], "payment_failed", "{paid:?}");
    let w = wallet_of(&s, &me).await;
    assert_eq!(
        (w["balance"].as_i64(), w["entry_count"].as_u64()),
        (Some(30_000), Some(1))
    );
    assert_eq!(totals(&s, session).await, (5, 0, 0));

    // a user with no wallet at all
    let (poor, _) = user_token(&s);
    let hold = join_and_hold(&s, session, &poor, "h2", 1).await;
    let paid = pay_by_wallet(&s, &poor, &hold, "pay-1").await;
    assert_eq!(
        paid.json["failure"]["code"], "insufficient_funds",
        "{paid:?}"
    );
    assert_eq!(wallet_of(&s, &poor).await["entry_count"], 0);
    assert_eq!(totals(&s, session).await, (5, 0, 0));

    // another user's hold is not found, and pays nothing
    let (me2, _) = user_token(&s);
    top_up(&s, &me2, "top-up", 100_000).await;
    let hold = join_and_hold(&s, session, &me2, "h3", 1).await;
    let stolen = pay_by_wallet(&s, &me, &hold, "pay-x").await;
    assert_eq!(stolen.status, 404, "{stolen:?}");
    assert_eq!(wallet_of(&s, &me).await["balance"], 30_000);
    assert_eq!(wallet_of(&s, &me2).await["balance"], 100_000);
    assert_eq!(totals(&s, session).await, (4, 1, 0));
}

/// Many wallet checkouts of one hold at once (same and different keys) debit it once.
async fn racing_wallet_checkouts_debit_once(kind: Kind) {
    let s = server(kind, &[]).await;
    let session = common::ga_session(&s, 5).await;
    let (me, _) = user_token(&s);
    top_up(&s, &me, "top-up", 500_000).await;
    let hold = join_and_hold(&s, session, &me, "h1", 1).await;
    let s = std::sync::Arc::new(s);
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let (s, me, hold) = (s.clone(), me.clone(), hold.clone());
            tokio::spawn(async move { pay_by_wallet(&s, &me, &hold, &format!("k{}", i % 4)).await })
        })
        .collect();
    for t in tasks {
        let a = t.await.unwrap();
        // the same key while the first is in flight may answer 409 (in progress)
        assert!(matches!(a.status, 200 | 409), "{a:?}");
        if a.status == 200 {
            assert_eq!(a.json["hold"]["status"], "confirmed", "{a:?}");
        }
    }
    let w = wallet_of(&s, &me).await;
    assert_eq!(
        (w["balance"].as_i64(), w["entry_count"].as_u64()),
        (Some(450_000), Some(2)),
        "{w}"
    );
    assert_eq!(totals(&s, session).await, (4, 0, 1));
}

common::on_all_backends!(
    topups_are_listed,
    wallet_pays_once_and_cancel_refunds_once,
    a_short_wallet_fails_the_payment_and_debits_nothing,
    racing_wallet_checkouts_debit_once,
);
