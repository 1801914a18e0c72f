//! The wallet over HTTP: charges once per key, the balance is the ledger's sum, bad input
//! answers the documented error and changes nothing.

mod common;

use common::{call, memory_server, user_token};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charges_are_credited_once_and_listed() {
    let s = memory_server(&[]).await;
    let (me, _) = user_token(&s);
    let charge = |key: &'static str, body: &'static str| {
        let me = me.clone();
        let s = &s;
        async move {
            call(
                s,
                "POST",
                "/api/me/wallet/charge",
                Some(&me),
                &[("idempotency-key", key)],
                Some(body),
            )
            .await
        }
    };
    let first = charge("c1", r#"{"amount":10000}"#).await;
    assert_eq!(first.status, 201, "{first:?}");
    assert_eq!(
        (
            first.json["kind"].as_str(),
            first.json["amount_minor"].as_i64()
        ),
        (Some("charge"), Some(10_000))
    );
    let repeat = charge("c1", r#"{"amount":10000}"#).await;
    assert_eq!(
        repeat.json["id"], first.json["id"],
        "a repeat credits nothing"
    );
    charge("c2", r#"{"amount":2500}"#).await;

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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_charges_change_nothing() {
    let s = memory_server(&[]).await;
    let (me, _) = user_token(&s);
    let ok = call(
        &s,
        "POST",
        "/api/me/wallet/charge",
        Some(&me),
        &[("idempotency-key", "k")],
        Some(r#"{"amount":100}"#),
    )
    .await;
    assert_eq!(ok.status, 201);
    let key = [("idempotency-key", "k2")];
    for (token, headers, body, status, code) in [
        (
            Some(me.as_str()),
            &key[..],
            r#"{"amount":0}"#,
            422,
            "VALIDATION",
        ),
        (
            Some(me.as_str()),
            &key[..],
            r#"{"amount":-5}"#,
            422,
            "VALIDATION",
        ),
        (
            Some(me.as_str()),
            &key[..],
            r#"{"amount":99999999999}"#,
            422,
            "VALIDATION",
        ),
        (
            Some(me.as_str()),
            &key[..],
            r#"{"amount":"ten"}"#,
            400,
            "VALIDATION",
        ),
        (
            Some(me.as_str()),
            &key[..],
            r#"{"amount":1,"extra":true}"#,
            400,
            "VALIDATION",
        ),
        (Some(me.as_str()), &key[..], "{oops", 400, "VALIDATION"),
        (
            Some(me.as_str()),
            &[][..],
            r#"{"amount":1}"#,
            400,
            "VALIDATION",
        ),
        (
            Some(me.as_str()),
            &[("idempotency-key", "k")][..],
            r#"{"amount":999}"#,
            422,
            "IDEMPOTENCY_KEY_REUSED",
        ),
        (None, &key[..], r#"{"amount":1}"#, 401, "UNAUTHORIZED"),
    ] {
        let a = call(
            &s,
            "POST",
            "/api/me/wallet/charge",
            token,
            headers,
            Some(body),
        )
        .await;
        assert_eq!(
            (a.status, a.json["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}: {a:?}"
        );
    }
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
    let wallet = call(&s, "GET", "/api/me/wallet", Some(&me), &[], None).await;
    assert_eq!(
        (
            wallet.json["balance"].as_i64(),
            wallet.json["entry_count"].as_u64()
        ),
        (Some(100), Some(1))
    );
}
