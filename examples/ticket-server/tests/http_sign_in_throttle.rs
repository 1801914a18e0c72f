//! Sign-in throttling over real HTTP on every backend: the per-account login backoff (and
//! that racing guesses cannot pass it), the per-IP signup, login and refresh limits, limits
//! shared by two servers on one Redis or PostgreSQL, `--trusted-proxies`, and the security
//! audit records every refusal writes.

mod common;

use std::time::Duration;

use common::{Answer, Kind, Server, call, ga_session, server, twin, user_token};
use serde_json::{Value, json};

const PASSWORD: &str = "correct-horse-1";

fn code(a: &Answer) -> &str {
    a.json["error"]["code"].as_str().unwrap_or("<no code>")
}

/// `Retry-After` in whole seconds (at least 1).
fn retry_after(a: &Answer) -> u64 {
    let secs: u64 = a
        .retry_after
        .as_deref()
        .unwrap_or_else(|| panic!("Retry-After: {a:?}"))
        .parse()
        .expect("whole seconds");
    assert!(secs >= 1, "{a:?}");
    secs
}

async fn post(s: &Server, path: &str, body: &Value, headers: &[(&str, &str)]) -> Answer {
    call(s, "POST", path, None, headers, Some(&body.to_string())).await
}

async fn signup(s: &Server, email: &str) -> Answer {
    post(
        s,
        "/api/auth/signup",
        &json!({"email": email, "password": PASSWORD}),
        &[],
    )
    .await
}

async fn login(s: &Server, email: &str, password: &str) -> Answer {
    login_from(s, email, password, &[]).await
}

async fn login_from(s: &Server, email: &str, password: &str, headers: &[(&str, &str)]) -> Answer {
    post(
        s,
        "/api/auth/login",
        &json!({"email": email, "password": password}),
        headers,
    )
    .await
}

/// The security audit's newest records (up to 500), read through the admin route.
async fn audit_records(s: &Server) -> Vec<Value> {
    let token = common::admin_token(s).await;
    let a = call(
        s,
        "GET",
        "/api/admin/security-audit?limit=500",
        Some(&token),
        &[],
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    a.json["records"].as_array().cloned().unwrap_or_default()
}

fn records_of<'a>(records: &'a [Value], reason: &str, route: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["reason"] == reason && r["route"] == route)
        .collect()
}

/// After `threshold` failures an account's logins are refused with 429 `LOGIN_THROTTLED`
/// for a backoff that doubles per further failure; a success resets it; other accounts are
/// untouched; the refusal is in the security audit with the account as actor.
async fn login_failures_back_off_exponentially_and_a_success_resets(kind: Kind) {
    let s = server(kind, &["--login-failures-before-backoff", "3"]).await;
    let amy = signup(&s, "amy@example.com").await;
    assert_eq!(amy.status, 201, "{amy:?}");
    assert_eq!(signup(&s, "bo@example.com").await.status, 201);
    for i in 0..3 {
        let a = login(&s, "amy@example.com", "wrong-pass-1").await;
        assert_eq!(a.status, 401, "failure {i}: {a:?}");
    }
    // Locked for 1 s: even the right password is refused, and says how long to wait.
    let locked = login(&s, "amy@example.com", PASSWORD).await;
    assert_eq!(
        (locked.status, code(&locked)),
        (429, "LOGIN_THROTTLED"),
        "{locked:?}"
    );
    assert_eq!(retry_after(&locked), 1);
    // Another account is not affected.
    assert_eq!(login(&s, "bo@example.com", PASSWORD).await.status, 200);

    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(
        login(&s, "amy@example.com", "wrong-pass-1").await.status,
        401
    );
    let doubled = login(&s, "AMY@example.com ", PASSWORD).await;
    assert_eq!(
        code(&doubled),
        "LOGIN_THROTTLED",
        "the same account in any spelling"
    );
    assert_eq!(retry_after(&doubled), 2, "the lock doubled: {doubled:?}");

    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(login(&s, "amy@example.com", PASSWORD).await.status, 200);
    // The success reset the count: three more failures before the next lock.
    for i in 0..3 {
        let a = login(&s, "amy@example.com", "wrong-pass-1").await;
        assert_eq!(a.status, 401, "failure {i} after the reset: {a:?}");
    }
    assert_eq!(
        code(&login(&s, "amy@example.com", PASSWORD).await),
        "LOGIN_THROTTLED"
    );

    let records = audit_records(&s).await;
    let throttled = records_of(&records, "LOGIN_THROTTLED", "POST /api/auth/login");
    assert!(!throttled.is_empty(), "{records:?}");
    assert_eq!(throttled[0]["actor"], amy.json["id"], "{throttled:?}");
    assert_eq!(throttled[0]["client_ip"], "127.0.0.1");
    // Unknown emails are throttled alike (no hint which emails have accounts).
    for _ in 0..3 {
        assert_eq!(login(&s, "nobody@example.com", PASSWORD).await.status, 401);
    }
    assert_eq!(
        code(&login(&s, "nobody@example.com", PASSWORD).await),
        "LOGIN_THROTTLED"
    );
}

/// Twenty guesses racing for one account: exactly `threshold` reach the password check, the
/// rest are refused — the attempt is counted atomically before the check.
async fn racing_guesses_cannot_pass_the_backoff(kind: Kind) {
    let s = server(kind, &["--login-failures-before-backoff", "3"]).await;
    assert_eq!(signup(&s, "cy@example.com").await.status, 201);
    let url = s.url.clone();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let body = json!({"email": "cy@example.com", "password": format!("guess-{i}-x")});
            reqwest::Client::new()
                .post(format!("{url}/api/auth/login"))
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .expect("login")
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.expect("task"));
    }
    statuses.sort_unstable();
    let checked = statuses.iter().filter(|&&st| st == 401).count();
    let refused = statuses.iter().filter(|&&st| st == 429).count();
    assert_eq!((checked, refused), (3, 17), "{statuses:?}");
}

/// Per client address: signups per hour, logins and refreshes per minute, each with 429
/// `RATE_LIMITED` and `Retry-After`; a flood of refusals writes one audit record per route
/// and address within the window.
async fn per_ip_limits_on_signup_login_and_refresh(kind: Kind) {
    let s = server(
        kind,
        &[
            "--signup-limit-per-ip-per-hour",
            "2",
            "--login-limit-per-ip-per-minute",
            "3",
            "--refresh-limit-per-ip-per-minute",
            "2",
        ],
    )
    .await;
    assert_eq!(signup(&s, "d1@example.com").await.status, 201);
    assert_eq!(signup(&s, "d2@example.com").await.status, 201);
    let third = signup(&s, "d3@example.com").await;
    assert_eq!(
        (third.status, code(&third)),
        (429, "RATE_LIMITED"),
        "{third:?}"
    );
    let wait = retry_after(&third);
    assert!((1_700..=1_800).contains(&wait), "2 per hour: {third:?}");
    assert!(
        s.state
            .accounts
            .user_by_email("d3@example.com")
            .await
            .is_err(),
        "no account was made"
    );

    for _ in 0..3 {
        assert_eq!(
            login(&s, "d1@example.com", "wrong-pass-1").await.status,
            401
        );
    }
    for _ in 0..5 {
        let l = login(&s, "d1@example.com", PASSWORD).await;
        assert_eq!((l.status, code(&l)), (429, "RATE_LIMITED"), "{l:?}");
        assert!((1..=20).contains(&retry_after(&l)), "{l:?}");
    }

    let refresh = |s: &Server| {
        let s_url = s.url.clone();
        async move {
            let resp = reqwest::Client::new()
                .post(format!("{s_url}/api/auth/refresh"))
                .header("content-type", "application/json")
                .body(r#"{"refresh_token":"not-a-token"}"#)
                .send()
                .await
                .expect("refresh");
            (
                resp.status().as_u16(),
                resp.headers().contains_key("retry-after"),
            )
        }
    };
    assert_eq!(refresh(&s).await.0, 401);
    assert_eq!(refresh(&s).await.0, 401);
    assert_eq!(refresh(&s).await, (429, true));

    let records = audit_records(&s).await;
    for route in [
        "POST /api/auth/signup",
        "POST /api/auth/login",
        "POST /api/auth/refresh",
    ] {
        let found = records_of(&records, "RATE_LIMITED", route);
        assert_eq!(
            found.len(),
            1,
            "one record per window for {route}: {records:?}"
        );
        assert_eq!(found[0]["client_ip"], "127.0.0.1");
        assert_eq!(found[0]["actor"], Value::Null);
    }
}

/// Two servers on one Redis or PostgreSQL namespace share the per-account backoff, the
/// per-IP limits and the audit.
async fn two_servers_share_the_sign_in_limits(kind: Kind) {
    let flags = [
        "--login-failures-before-backoff",
        "3",
        "--signup-limit-per-ip-per-hour",
        "3",
    ];
    let a = server(kind, &flags).await;
    let b = twin(&a, &flags).await;
    assert_eq!(signup(&a, "eli@example.com").await.status, 201);
    assert_eq!(signup(&b, "fay@example.com").await.status, 201);
    assert_eq!(signup(&a, "gil@example.com").await.status, 201);
    let fourth = signup(&b, "hal@example.com").await;
    assert_eq!(
        code(&fourth),
        "RATE_LIMITED",
        "3 signups across both: {fourth:?}"
    );

    assert_eq!(
        login(&a, "eli@example.com", "wrong-pass-1").await.status,
        401
    );
    assert_eq!(
        login(&b, "eli@example.com", "wrong-pass-1").await.status,
        401
    );
    assert_eq!(
        login(&a, "eli@example.com", "wrong-pass-1").await.status,
        401
    );
    let locked = login(&b, "eli@example.com", PASSWORD).await;
    assert_eq!(
        code(&locked),
        "LOGIN_THROTTLED",
        "failures on both count: {locked:?}"
    );
    // b's refusal is in the audit a reads.
    let records = audit_records(&a).await;
    assert!(!records_of(&records, "LOGIN_THROTTLED", "POST /api/auth/login").is_empty());
    assert!(!records_of(&records, "RATE_LIMITED", "POST /api/auth/signup").is_empty());
}

/// `X-Forwarded-For` counts only from `--trusted-proxies`, read from the right; without the
/// flag it is ignored. The queue and hold limits count the same address.
async fn trusted_proxies_decide_which_address_is_counted(kind: Kind) {
    let limits = [
        "--login-limit-per-ip-per-minute",
        "2",
        "--login-failures-before-backoff",
        "0",
        "--rate-limit-per-ip-per-minute",
        "1",
    ];
    let mut flags = limits.to_vec();
    flags.extend(["--trusted-proxies", "127.0.0.0/8,::1"]);
    let s = server(kind, &flags).await;
    let from = |ip: &'static str| [("x-forwarded-for", ip)];
    for _ in 0..2 {
        let a = login_from(&s, "ivy@example.com", PASSWORD, &from("203.0.113.1")).await;
        assert_eq!(a.status, 401, "{a:?}");
    }
    let third = login_from(&s, "ivy@example.com", PASSWORD, &from("203.0.113.1")).await;
    assert_eq!(code(&third), "RATE_LIMITED", "{third:?}");
    let other = login_from(&s, "ivy@example.com", PASSWORD, &from("203.0.113.2")).await;
    assert_eq!(
        other.status, 401,
        "another client has its own bucket: {other:?}"
    );
    let spoofed = login_from(
        &s,
        "ivy@example.com",
        PASSWORD,
        &from("198.51.100.7, 203.0.113.1"),
    )
    .await;
    assert_eq!(
        code(&spoofed),
        "RATE_LIMITED",
        "a spoofed leftmost entry is not read"
    );
    let records = audit_records(&s).await;
    let found = records_of(&records, "RATE_LIMITED", "POST /api/auth/login");
    assert_eq!(
        found.first().map(|r| r["client_ip"].clone()),
        Some(json!("203.0.113.1"))
    );

    // The per-IP queue and hold limit counts the forwarded client too.
    let session = ga_session(&s, 5).await;
    let hold = |token: String, ip: &'static str| {
        let s = &s;
        async move {
            let body = format!(r#"{{"session_id":"{session}","grade":"GA","quantity":1}}"#);
            let headers = [("idempotency-key", "k"), ("x-forwarded-for", ip)];
            call(s, "POST", "/api/holds", Some(&token), &headers, Some(&body)).await
        }
    };
    assert_eq!(hold(user_token(&s).0, "203.0.113.1").await.status, 403);
    assert_eq!(
        code(&hold(user_token(&s).0, "203.0.113.1").await),
        "RATE_LIMITED"
    );
    assert_eq!(hold(user_token(&s).0, "203.0.113.2").await.status, 403);
    let records = audit_records(&s).await;
    let held = records_of(&records, "RATE_LIMITED", "POST /api/holds");
    assert_eq!(held.len(), 1, "{records:?}");
    assert_eq!(held[0]["client_ip"], "203.0.113.1");
    assert_eq!(held[0]["detail"], "queue and holds per IP");

    // Without the flag the header is ignored: every request is the loopback client.
    let plain = server(kind, &limits).await;
    for ip in ["203.0.113.1", "203.0.113.2"] {
        assert_eq!(
            login_from(&plain, "ivy@example.com", PASSWORD, &from(ip))
                .await
                .status,
            401
        );
    }
    let third = login_from(&plain, "ivy@example.com", PASSWORD, &from("203.0.113.3")).await;
    assert_eq!(code(&third), "RATE_LIMITED", "{third:?}");
}

common::on_all_backends!(
    login_failures_back_off_exponentially_and_a_success_resets,
    racing_guesses_cannot_pass_the_backoff,
    per_ip_limits_on_signup_login_and_refresh,
    trusted_proxies_decide_which_address_is_counted,
);

mod shared {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_two_servers_share_the_sign_in_limits() {
        super::two_servers_share_the_sign_in_limits(super::Kind::Redis).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pg_two_servers_share_the_sign_in_limits() {
        super::two_servers_share_the_sign_in_limits(super::Kind::Pg).await;
    }
}
