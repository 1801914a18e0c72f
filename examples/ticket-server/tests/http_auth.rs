//! Accounts and tokens over real HTTP on every backend (memory, Redis, PostgreSQL): signup,
//! login, refresh-token rotation with reuse detection, logout, `/api/me`, the bearer and
//! admin extractors, and every bad input answering the documented error without changing
//! anything.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use common::{Answer, Kind, Server, call, server};
use serde_json::{Value, json};
use ticket_server::http::extract::{AdminUser, AuthUser};
use ticket_server::services::auth::TokenKeys;
use ticket_server::stores::accounts::{AccountError, FamilyId, TokenHash, UserId};

const PASSWORD: &str = "correct-horse-1";

fn code(a: &Answer) -> &str {
    a.json["error"]["code"].as_str().unwrap_or("<no code>")
}

fn assert_error(a: &Answer, status: u16, expected: &str, what: &str) {
    assert_eq!(a.status, status, "{what}: {a:?}");
    assert_eq!(code(a), expected, "{what}: {a:?}");
    assert!(
        a.json["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: a message: {a:?}"
    );
}

async fn post(server: &Server, path: &str, body: &Value) -> Answer {
    call(server, "POST", path, None, &[], Some(&body.to_string())).await
}

async fn signup(server: &Server, email: &str, password: &str) -> Answer {
    post(
        server,
        "/api/auth/signup",
        &json!({"email": email, "password": password}),
    )
    .await
}

async fn signup_raw(server: &Server, body: &str) -> Answer {
    call(server, "POST", "/api/auth/signup", None, &[], Some(body)).await
}

async fn login(server: &Server, email: &str, password: &str) -> Answer {
    post(
        server,
        "/api/auth/login",
        &json!({"email": email, "password": password}),
    )
    .await
}

async fn refresh(server: &Server, token: &str) -> Answer {
    post(
        server,
        "/api/auth/refresh",
        &json!({"refresh_token": token}),
    )
    .await
}

/// Signs up and logs in; returns (user id, access token, refresh token).
async fn new_user(server: &Server, email: &str) -> (String, String, String) {
    let s = signup(server, email, PASSWORD).await;
    assert_eq!(s.status, 201, "{s:?}");
    let l = login(server, email, PASSWORD).await;
    assert_eq!(l.status, 200, "{l:?}");
    (
        s.json["id"].as_str().unwrap().to_owned(),
        l.json["access_token"].as_str().unwrap().to_owned(),
        l.json["refresh_token"].as_str().unwrap().to_owned(),
    )
}

async fn me(server: &Server, token: &str) -> Answer {
    call(server, "GET", "/api/me", Some(token), &[], None).await
}

/// Signup normalises the email and stores an argon2id hash; login and `/api/me` follow.
async fn signup_then_login_then_me(kind: Kind) {
    let server = server(kind, &[]).await;
    let s = signup(&server, "  Ann@Example.ORG ", PASSWORD).await;
    assert_eq!(s.status, 201, "{s:?}");
    assert_eq!(s.json["email"], "ann@example.org", "normalised");
    let id = s.json["id"].as_str().unwrap().to_owned();
    let stored = server
        .state
        .accounts
        .user_by_email("ann@example.org")
        .await
        .unwrap();
    assert_eq!(stored.id.to_string(), id);
    assert!(stored.password_hash.starts_with("$argon2id$"));

    let l = login(&server, "ANN@example.org", PASSWORD).await;
    assert_eq!(l.status, 200, "{l:?}");
    assert_eq!(l.json["token_type"], "Bearer");
    assert_eq!(l.json["expires_in"], 900);
    let access = l.json["access_token"].as_str().unwrap();
    assert!(
        l.json["refresh_token"]
            .as_str()
            .is_some_and(|t| t.len() == 64)
    );

    let m = me(&server, access).await;
    assert_eq!(m.status, 200, "{m:?}");
    assert_eq!(m.json["id"], id.as_str());
    assert_eq!(m.json["email"], "ann@example.org");
    assert_eq!(m.json["role"], "USER");
}

/// Malformed or refused signups answer 400 `VALIDATION` and create no account.
async fn bad_signups_answer_validation_and_create_nothing(kind: Kind) {
    let server = server(kind, &[]).await;
    let email = "bob@example.com";
    let cases: [(&str, Option<&str>); 13] = [
        ("null", Some("null")),
        (
            "malformed JSON",
            Some(r#"{"email": "bob@example.com", "password": "#),
        ),
        ("not JSON", Some("email=bob@example.com")),
        ("an array", Some(r#"["bob@example.com", "pass1234"]"#)),
        (
            "password of the wrong type",
            Some(r#"{"email": "bob@example.com", "password": 12345678}"#),
        ),
        (
            "email of the wrong type",
            Some(r#"{"email": ["bob@example.com"], "password": "pass1234"}"#),
        ),
        ("missing password", Some(r#"{"email": "bob@example.com"}"#)),
        ("missing email", Some(r#"{"password": "pass1234"}"#)),
        ("no body", None),
        (
            "not an email",
            Some(r#"{"email": "bob-at-example.com", "password": "pass1234"}"#),
        ),
        (
            "undotted domain",
            Some(r#"{"email": "bob@localhost", "password": "pass1234"}"#),
        ),
        (
            "short password",
            Some(r#"{"email": "bob@example.com", "password": "pass12"}"#),
        ),
        (
            "password without digits",
            Some(r#"{"email": "bob@example.com", "password": "password-only"}"#),
        ),
    ];
    for (what, body) in cases {
        let a = call(&server, "POST", "/api/auth/signup", None, &[], body).await;
        assert_error(&a, 400, "VALIDATION", what);
        assert_eq!(
            server
                .state
                .accounts
                .user_by_email(email)
                .await
                .unwrap_err(),
            AccountError::NotFound,
            "{what}: no account"
        );
    }
    let missing = signup_raw(&server, r#"{"email": "bob@example.com"}"#).await;
    assert!(
        missing.json["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("password")),
        "the message names the field: {missing:?}"
    );
    // Nothing was created under any of those emails: logins fail.
    for (e, p) in [
        (email, "pass1234"),
        (email, "pass12"),
        ("bob-at-example.com", "pass1234"),
    ] {
        assert_error(&login(&server, e, p).await, 401, "UNAUTHORIZED", "login");
    }
    // And the email is still free.
    assert_eq!(signup(&server, email, "pass1234").await.status, 201);
}

/// A taken email (in any case) answers 409 `EMAIL_TAKEN`; the first account is untouched.
async fn a_duplicate_email_is_409_and_changes_nothing(kind: Kind) {
    let server = server(kind, &[]).await;
    let first = signup(&server, "cat@example.com", PASSWORD).await;
    assert_eq!(first.status, 201);
    for variant in ["cat@example.com", " CAT@Example.com"] {
        let dup = signup(&server, variant, "other-pass-2").await;
        assert_error(&dup, 409, "EMAIL_TAKEN", variant);
    }
    let user = server
        .state
        .accounts
        .user_by_email("cat@example.com")
        .await
        .unwrap();
    assert_eq!(user.id.to_string(), first.json["id"].as_str().unwrap());
    assert_eq!(
        login(&server, "cat@example.com", PASSWORD).await.status,
        200
    );
    assert_error(
        &login(&server, "cat@example.com", "other-pass-2").await,
        401,
        "UNAUTHORIZED",
        "the duplicate's password",
    );
    // The admin's email is taken too.
    assert_error(
        &signup(&server, "admin@example.com", PASSWORD).await,
        409,
        "EMAIL_TAKEN",
        "admin email",
    );
}

/// A wrong password and an unknown email answer the same 401.
async fn wrong_password_and_unknown_email_answer_alike(kind: Kind) {
    let server = server(kind, &[]).await;
    new_user(&server, "dan@example.com").await;
    let wrong = login(&server, "dan@example.com", "wrong-pass-1").await;
    assert_error(&wrong, 401, "UNAUTHORIZED", "wrong password");
    let unknown = login(&server, "nobody@example.com", PASSWORD).await;
    assert_error(&unknown, 401, "UNAUTHORIZED", "unknown email");
    assert_eq!(wrong.json, unknown.json, "no hint which one was wrong");
    let invalid = login(&server, "not-an-email", PASSWORD).await;
    assert_eq!(invalid.json, unknown.json);
    let no_token = call(
        &server,
        "POST",
        "/api/auth/login",
        None,
        &[],
        Some(r#"{"email": "dan@example.com"}"#),
    )
    .await;
    assert_error(&no_token, 400, "VALIDATION", "missing password");
    let typed = call(
        &server,
        "POST",
        "/api/auth/login",
        None,
        &[],
        Some(r#"{"email": "dan@example.com", "password": null}"#),
    )
    .await;
    assert_error(&typed, 400, "VALIDATION", "null password");
}

/// `/api/me` refuses a missing, malformed, forged or tampered bearer token.
async fn me_needs_a_valid_bearer_token(kind: Kind) {
    let server = server(kind, &[]).await;
    let (id, access, _) = new_user(&server, "eve@example.com").await;
    let none = call(&server, "GET", "/api/me", None, &[], None).await;
    assert_error(&none, 401, "UNAUTHORIZED", "no header");
    for header in [
        format!("Basic {access}"),
        access.clone(),
        "Bearer".to_owned(),
        "Bearer ".to_owned(),
        "Bearer not.a.jwt".to_owned(),
    ] {
        let a = call(
            &server,
            "GET",
            "/api/me",
            None,
            &[("authorization", header.as_str())],
            None,
        )
        .await;
        assert_error(&a, 401, "UNAUTHORIZED", &header);
    }
    // Scheme is case-insensitive.
    let lower = format!("bearer {access}");
    let ok = call(
        &server,
        "GET",
        "/api/me",
        None,
        &[("authorization", lower.as_str())],
        None,
    )
    .await;
    assert_eq!(ok.json["id"], id.as_str());

    // Signed with another secret, claiming admin.
    let other = TokenKeys::from_secret(b"another-secret-of-thirty-two-bytes!!").unwrap();
    let now = server.state.clock.now();
    let (forged, _) = other
        .issue(&id, "ADMIN", now, Duration::from_secs(900))
        .unwrap();
    assert_error(&me(&server, &forged).await, 401, "UNAUTHORIZED", "forged");
    // A tampered payload with the original signature.
    let parts: Vec<&str> = access.split('.').collect();
    let tampered = format!("{}.{}x.{}", parts[0], parts[1], parts[2]);
    assert_error(
        &me(&server, &tampered).await,
        401,
        "UNAUTHORIZED",
        "tampered",
    );
}

/// An expired access token answers 401 `TOKEN_EXPIRED`.
async fn expired_access_tokens_answer_token_expired(kind: Kind) {
    let server = server(kind, &[]).await;
    let (id, _, _) = new_user(&server, "fay@example.com").await;
    // Issued with the server's own keys, 20 minutes ago, for 15 minutes.
    let then = server.state.clock.now().minus(Duration::from_secs(1_200));
    let (old, _) = server
        .state
        .keys
        .issue(&id, "USER", then, Duration::from_secs(900))
        .unwrap();
    assert_error(&me(&server, &old).await, 401, "TOKEN_EXPIRED", "old token");
    let logout = call(&server, "POST", "/api/auth/logout", Some(&old), &[], None).await;
    assert_error(&logout, 401, "TOKEN_EXPIRED", "logout with an old token");
}

/// Access tokens expire after `--access-token-ttl-secs`; the refresh token still works.
async fn access_tokens_expire_after_the_configured_lifetime(kind: Kind) {
    let server = server(kind, &["--access-token-ttl-secs", "1"]).await;
    new_user(&server, "gus@example.com").await;
    let l = login(&server, "gus@example.com", PASSWORD).await;
    assert_eq!(l.json["expires_in"], 1);
    let access = l.json["access_token"].as_str().unwrap();
    // JWT times are whole seconds and the expiry is rounded up: a 1 s token lives at least
    // 1 s and less than 2 s.
    tokio::time::sleep(Duration::from_millis(2_050)).await;
    assert_error(
        &me(&server, access).await,
        401,
        "TOKEN_EXPIRED",
        "after its lifetime",
    );
    // The refresh token still gets a fresh one, good for at least its whole second.
    let r = refresh(&server, l.json["refresh_token"].as_str().unwrap()).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        me(&server, r.json["access_token"].as_str().unwrap())
            .await
            .status,
        200
    );
}

/// Refresh rotates; presenting a rotated token again revokes its whole family.
async fn refresh_rotates_and_a_reused_token_kills_the_family(kind: Kind) {
    let server = server(kind, &[]).await;
    let (id, _, r0) = new_user(&server, "hal@example.com").await;

    let a1 = refresh(&server, &r0).await;
    assert_eq!(a1.status, 200, "{a1:?}");
    assert_eq!(a1.json["token_type"], "Bearer");
    assert_eq!(a1.json["expires_in"], 900);
    let r1 = a1.json["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(r1, r0);
    let m = me(&server, a1.json["access_token"].as_str().unwrap()).await;
    assert_eq!(
        (m.json["id"].as_str(), m.json["role"].as_str()),
        (Some(id.as_str()), Some("USER"))
    );

    let a2 = refresh(&server, &r1).await;
    assert_eq!(a2.status, 200, "{a2:?}");
    let r2 = a2.json["refresh_token"].as_str().unwrap().to_owned();

    // r0 was rotated already: presenting it again revokes the whole family.
    assert_error(&refresh(&server, &r0).await, 401, "TOKEN_REUSED", "reuse");
    let rec = server
        .state
        .accounts
        .refresh_token(&TokenHash::of(&r2))
        .await
        .unwrap()
        .unwrap();
    assert!(rec.revoked && !rec.used, "{rec:?}");
    assert_error(
        &refresh(&server, &r2).await,
        401,
        "UNAUTHORIZED",
        "the legitimate successor is dead too",
    );
    assert_error(
        &refresh(&server, &r1).await,
        401,
        "TOKEN_REUSED",
        "r1 reused",
    );

    // A new login starts a new family that works.
    let l = login(&server, "hal@example.com", PASSWORD).await;
    let fresh = refresh(&server, l.json["refresh_token"].as_str().unwrap()).await;
    assert_eq!(fresh.status, 200);
}

/// Unknown, empty, malformed and expired refresh tokens are refused and change nothing.
async fn bad_refresh_requests(kind: Kind) {
    let server = server(kind, &[]).await;
    let (id, _, _) = new_user(&server, "ida@example.com").await;
    assert_error(
        &refresh(&server, &"ab".repeat(32)).await,
        401,
        "UNAUTHORIZED",
        "unknown token",
    );
    assert_error(
        &refresh(&server, "").await,
        401,
        "UNAUTHORIZED",
        "empty token",
    );
    for body in [r#"{}"#, r#"{"refresh_token": 7}"#, r#"{"refresh_token": "#] {
        let a = call(&server, "POST", "/api/auth/refresh", None, &[], Some(body)).await;
        assert_error(&a, 400, "VALIDATION", body);
    }
    // An expired refresh token (stored behind the API with a past expiry).
    let now = server.state.clock.now();
    let token = "cd".repeat(32);
    let user: UserId = id.parse().unwrap();
    server
        .state
        .accounts
        .issue_refresh(
            user,
            &TokenHash::of(&token),
            FamilyId::new_at(now),
            now.minus(Duration::from_secs(1)),
            now.plus(Duration::from_secs(86_400)),
            now,
        )
        .await
        .unwrap();
    assert_error(
        &refresh(&server, &token).await,
        401,
        "TOKEN_EXPIRED",
        "expired",
    );
    let rec = server
        .state
        .accounts
        .refresh_token(&TokenHash::of(&token))
        .await
        .unwrap()
        .unwrap();
    assert!(!rec.used && !rec.revoked, "nothing written: {rec:?}");
}

/// Logout revokes every refresh token of the user, and only theirs.
async fn logout_revokes_every_refresh_token_of_the_user(kind: Kind) {
    let server = server(kind, &[]).await;
    let (_, access, r_a) = new_user(&server, "jon@example.com").await;
    let second = login(&server, "jon@example.com", PASSWORD).await;
    let r_b = second.json["refresh_token"].as_str().unwrap().to_owned();
    let (_, _, other_user) = new_user(&server, "kim@example.com").await;

    let none = call(&server, "POST", "/api/auth/logout", None, &[], None).await;
    assert_error(&none, 401, "UNAUTHORIZED", "logout without token");
    // Nothing changed: both families still rotate (family A once more, B later).
    let r_a = server_refresh_token_after(&server, &r_a).await;
    let r_b = server_refresh_token_after(&server, &r_b).await;

    let out = call(
        &server,
        "POST",
        "/api/auth/logout",
        Some(&access),
        &[],
        None,
    )
    .await;
    assert_eq!(out.status, 204, "{out:?}");
    for (family, token) in [("family A", &r_a), ("family B", &r_b)] {
        assert_error(&refresh(&server, token).await, 401, "UNAUTHORIZED", family);
        let rec = server
            .state
            .accounts
            .refresh_token(&TokenHash::of(token))
            .await
            .unwrap()
            .unwrap();
        assert!(rec.revoked, "{family}: {rec:?}");
    }
    // The logout revoked the access token it was sent with: a second logout with it is
    // refused (a new login's token logs out again).
    let again = call(
        &server,
        "POST",
        "/api/auth/logout",
        Some(&access),
        &[],
        None,
    )
    .await;
    assert_error(&again, 401, "TOKEN_REVOKED", "logout with a revoked token");
    // Another user's tokens are untouched.
    assert_eq!(refresh(&server, &other_user).await.status, 200);
    // Logging in again works.
    let again = login(&server, "jon@example.com", PASSWORD).await;
    assert_eq!(
        refresh(&server, again.json["refresh_token"].as_str().unwrap())
            .await
            .status,
        200
    );
}

/// Rotates `token` once and returns its successor.
async fn server_refresh_token_after(server: &Server, token: &str) -> String {
    let a = refresh(server, token).await;
    assert_eq!(a.status, 200, "{a:?}");
    a.json["refresh_token"].as_str().unwrap().to_owned()
}

/// The start-up admin logs in with the ADMIN role, which survives a refresh.
async fn the_configured_admin_logs_in_as_admin(kind: Kind) {
    let server = server(kind, &[]).await;
    let l = login(&server, "admin@example.com", "admin-pass-1").await;
    assert_eq!(l.status, 200, "{l:?}");
    let access = l.json["access_token"].as_str().unwrap();
    let m = me(&server, access).await;
    assert_eq!(m.json["role"], "ADMIN", "{m:?}");
    assert_eq!(m.json["email"], "admin@example.com");
    // The role survives a refresh (read from the store).
    let r = refresh(&server, l.json["refresh_token"].as_str().unwrap()).await;
    let m = me(&server, r.json["access_token"].as_str().unwrap()).await;
    assert_eq!(m.json["role"], "ADMIN");
}

/// `AdminUser` lets only unexpired admin tokens in; `AuthUser` any valid token.
async fn the_admin_extractor_lets_only_admins_in(kind: Kind) {
    let server = server(kind, &[]).await;
    // A tiny app on the same state, with one admin-only and one user route.
    let app = Router::new()
        .route(
            "/admin-only",
            get(|AdminUser(u): AdminUser| async move { u.id.to_string() }),
        )
        .route(
            "/users",
            get(|u: AuthUser| async move { u.role.to_string() }),
        )
        .with_state(server.state.clone());
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    let probe = |path: &'static str, token: Option<String>| {
        let url = url.clone();
        async move {
            let mut req = reqwest::Client::new().get(format!("{url}{path}"));
            if let Some(t) = token {
                req = req.header("authorization", format!("Bearer {t}"));
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let body: Value =
                serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap_or(Value::Null);
            (status, body["error"]["code"].as_str().map(str::to_owned))
        }
    };
    let (_, user_access, _) = new_user(&server, "lou@example.com").await;
    let admin = login(&server, "admin@example.com", "admin-pass-1").await;
    let admin_access = admin.json["access_token"].as_str().unwrap().to_owned();

    assert_eq!(
        probe("/admin-only", None).await,
        (401, Some("UNAUTHORIZED".into()))
    );
    assert_eq!(
        probe("/admin-only", Some(user_access.clone())).await,
        (403, Some("FORBIDDEN".into()))
    );
    assert_eq!(
        probe("/admin-only", Some(admin_access.clone())).await.0,
        200
    );
    assert_eq!(probe("/users", Some(user_access)).await.0, 200);
    assert_eq!(probe("/users", Some(admin_access)).await.0, 200);
    // An expired admin token is expired, not forbidden.
    let then = server.state.clock.now().minus(Duration::from_secs(3_600));
    let admin_id = server
        .state
        .accounts
        .user_by_email("admin@example.com")
        .await
        .unwrap()
        .id;
    let (old, _) = server
        .state
        .keys
        .issue(
            &admin_id.to_string(),
            "ADMIN",
            then,
            Duration::from_secs(900),
        )
        .unwrap();
    assert_eq!(
        probe("/admin-only", Some(old)).await,
        (401, Some("TOKEN_EXPIRED".into()))
    );
    task.abort();
}

common::on_all_backends!(
    signup_then_login_then_me,
    bad_signups_answer_validation_and_create_nothing,
    a_duplicate_email_is_409_and_changes_nothing,
    wrong_password_and_unknown_email_answer_alike,
    me_needs_a_valid_bearer_token,
    expired_access_tokens_answer_token_expired,
    access_tokens_expire_after_the_configured_lifetime,
    refresh_rotates_and_a_reused_token_kills_the_family,
    bad_refresh_requests,
    logout_revokes_every_refresh_token_of_the_user,
    the_configured_admin_logs_in_as_admin,
    the_admin_extractor_lets_only_admins_in,
);
