//! Accounts as an attacker would try them, over real HTTP on every backend (memory, Redis,
//! PostgreSQL): the start-up admin is never a stranger, logout and role changes revoke
//! access tokens at once, refresh sessions end, admins manage roles, tiers and blocks with
//! an audit trail, and a buyer's tier comes from the account, never from the request.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Answer, Kind, Server, call, server};
use serde_json::{Value, json};
use ticket_server::stores::accounts::Role;

const PASSWORD: &str = "correct-horse-1";

fn code(a: &Answer) -> &str {
    a.json["error"]["code"].as_str().unwrap_or("<no code>")
}

async fn post(server: &Server, path: &str, token: Option<&str>, body: &Value) -> Answer {
    call(server, "POST", path, token, &[], Some(&body.to_string())).await
}

async fn login(server: &Server, email: &str, password: &str) -> Answer {
    post(
        server,
        "/api/auth/login",
        None,
        &json!({"email": email, "password": password}),
    )
    .await
}

/// Signs up and logs in: (id, access token, refresh token).
async fn new_user(server: &Server, email: &str) -> (String, String, String) {
    let body = json!({"email": email, "password": PASSWORD});
    let s = post(server, "/api/auth/signup", None, &body).await;
    assert_eq!(s.status, 201, "{s:?}");
    let l = login(server, email, PASSWORD).await;
    assert_eq!(l.status, 200, "{l:?}");
    (
        s.json["id"].as_str().unwrap().to_owned(),
        l.json["access_token"].as_str().unwrap().to_owned(),
        l.json["refresh_token"].as_str().unwrap().to_owned(),
    )
}

/// The start-up admin's access token, from a real login.
async fn admin_login(server: &Server) -> (String, String) {
    let l = login(server, "admin@example.com", "admin-pass-1").await;
    assert_eq!(l.status, 200, "{l:?}");
    let me = call(
        server,
        "GET",
        "/api/me",
        l.json["access_token"].as_str(),
        &[],
        None,
    )
    .await;
    (
        me.json["id"].as_str().unwrap().to_owned(),
        l.json["access_token"].as_str().unwrap().to_owned(),
    )
}

async fn me(server: &Server, token: &str) -> Answer {
    call(server, "GET", "/api/me", Some(token), &[], None).await
}

async fn refresh(server: &Server, token: &str) -> Answer {
    post(
        server,
        "/api/auth/refresh",
        None,
        &json!({"refresh_token": token}),
    )
    .await
}

async fn put(server: &Server, path: &str, token: &str, body: &Value) -> Answer {
    call(
        server,
        "PUT",
        path,
        Some(token),
        &[],
        Some(&body.to_string()),
    )
    .await
}

/// Another server on the same store (Redis, PostgreSQL), or the same one on memory.
async fn peer_of(first: &Server) -> Option<Server> {
    match first.kind {
        Kind::Memory => None,
        _ => Some(common::twin(first, &[]).await),
    }
}

// ---------------------------------------------------------------------------------------
// admin bootstrap

/// Attack: sign up with the admin's email before the admin exists. At start the server
/// refuses (saying what to do) and the stranger stays a buyer.
async fn a_stranger_with_the_admin_email_is_never_promoted(kind: Kind) {
    let ns = common::Namespace::new(kind);
    let mut config = common::config(kind, &ns.name, &[]);
    let (email, password) = (config.admin_email.take(), config.admin_password.take());
    let state = ticket_server::runtime::state::AppState::build(config.clone())
        .await
        .expect("state");
    let stranger = state
        .accounts
        .create_user(
            "Admin@Example.com",
            &ticket_server::services::auth::hash_password("stranger-pass-1").unwrap(),
            Role::User,
            state.clock.now(),
        )
        .await
        .expect("the stranger signs up first");
    let mut with_admin = state.clone();
    config.admin_email = email;
    config.admin_password = password;
    with_admin.config = Arc::new(config);
    let err = ticket_server::runtime::bootstrap::ensure_admin(&with_admin)
        .await
        .expect_err("refuses to start");
    assert!(
        err.message.contains("is not an admin") && err.message.contains("--admin-email"),
        "{}",
        err.message
    );
    assert!(
        err.message.contains(&stranger.id.to_string()),
        "{}",
        err.message
    );
    let after = state.accounts.user(stranger.id).await.expect("stranger");
    assert_eq!((after.role, after.token_version), (Role::User, 0));
    assert_eq!(after.password_hash, stranger.password_hash);

    if kind != Kind::Memory {
        // The real binary on the same store exits with that message.
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_ticket-server"))
                .args(start_args(kind, &ns.name))
                .env("RUST_LOG", "off")
                .output()
                .expect("run ticket-server")
        })
        .await
        .expect("join");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "it must not start: {stderr}");
        assert!(stderr.contains("is not an admin"), "{stderr}");
    }
}

fn start_args(kind: Kind, ns: &str) -> Vec<String> {
    let store = if kind == Kind::Redis { "redis" } else { "pg" };
    [
        "--listen",
        "127.0.0.1:0",
        "--store",
        store,
        "--namespace",
        ns,
        "--redis-url",
        &ticketrush_test_support::redis_url(),
        "--database-url",
        &ticketrush_test_support::database_url(),
        "--admin-email",
        "admin@example.com",
        "--admin-password",
        "admin-pass-1",
        "--no-demo",
    ]
    .map(String::from)
    .to_vec()
}

/// A changed `--admin-password` takes effect at start; the old password and tokens stop.
/// The same password again changes nothing (a restart does not log the admin out).
async fn a_changed_admin_password_takes_effect(kind: Kind) {
    let server = server(kind, &[]).await;
    let old = login(&server, "admin@example.com", "admin-pass-1").await;
    let old_access = old.json["access_token"].as_str().unwrap().to_owned();
    let old_refresh = old.json["refresh_token"].as_str().unwrap().to_owned();
    // a restart with the same password: tokens keep working
    ticket_server::runtime::bootstrap::ensure_admin(&server.state)
        .await
        .expect("restart");
    assert_eq!(me(&server, &old_access).await.status, 200);

    let mut restarted = server.state.clone();
    let mut config = (*server.state.config).clone();
    config.admin_password = Some("new-admin-pass-2".into());
    restarted.config = Arc::new(config);
    ticket_server::runtime::bootstrap::ensure_admin(&restarted)
        .await
        .expect("new password");
    assert_eq!(
        login(&server, "admin@example.com", "admin-pass-1")
            .await
            .status,
        401
    );
    let new = login(&server, "admin@example.com", "new-admin-pass-2").await;
    assert_eq!(new.status, 200, "{new:?}");
    let m = me(&server, new.json["access_token"].as_str().unwrap()).await;
    assert_eq!(m.json["role"], "ADMIN");
    let revoked = me(&server, &old_access).await;
    assert_eq!((revoked.status, code(&revoked)), (401, "TOKEN_REVOKED"));
    assert_eq!(refresh(&server, &old_refresh).await.status, 401);
}

// ---------------------------------------------------------------------------------------
// tokens

/// Logout revokes the caller's access tokens at once, on every server sharing the store.
async fn logout_revokes_access_tokens_at_once(kind: Kind) {
    let server = server(kind, &[]).await;
    let peer = peer_of(&server).await;
    let (_, access, _) = new_user(&server, "out@example.com").await;
    let second = login(&server, "out@example.com", PASSWORD).await;
    let other_device = second.json["access_token"].as_str().unwrap().to_owned();
    assert_eq!(me(&server, &access).await.status, 200);
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
    for token in [&access, &other_device] {
        let a = me(&server, token).await;
        assert_eq!((a.status, code(&a)), (401, "TOKEN_REVOKED"), "{a:?}");
        if let Some(peer) = &peer {
            let a = me(peer, token).await;
            assert_eq!((a.status, code(&a)), (401, "TOKEN_REVOKED"), "peer: {a:?}");
        }
    }
    let again = login(&server, "out@example.com", PASSWORD).await;
    let fresh = again.json["access_token"].as_str().unwrap();
    assert_eq!(me(&server, fresh).await.status, 200);
}

/// Answers carrying tokens are never cached.
async fn token_answers_are_not_cached(kind: Kind) {
    let server = server(kind, &[]).await;
    let client = reqwest::Client::new();
    let send = |path: &str, body: Value| {
        client
            .post(format!("{}{path}", server.url))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    let creds = json!({"email": "cache@example.com", "password": PASSWORD});
    let signup = send("/api/auth/signup", creds.clone()).await.unwrap();
    let login = send("/api/auth/login", creds).await.unwrap();
    let headers = login.headers().clone();
    let body: Value = serde_json::from_slice(&login.bytes().await.unwrap()).unwrap();
    let refreshed = send(
        "/api/auth/refresh",
        json!({"refresh_token": body["refresh_token"]}),
    )
    .await
    .unwrap();
    for (what, status, h) in [
        ("signup", signup.status(), signup.headers()),
        ("login", reqwest::StatusCode::OK, &headers),
        ("refresh", refreshed.status(), refreshed.headers()),
    ] {
        assert!(status.is_success(), "{what}: {status}");
        assert_eq!(h.get("cache-control").unwrap(), "no-store", "{what}");
        assert_eq!(h.get("pragma").unwrap(), "no-cache", "{what}");
    }
}

/// A login's refresh tokens stop at the absolute lifetime, however often they rotate.
async fn refresh_sessions_end_at_their_absolute_lifetime(kind: Kind) {
    let flags = [
        "--access-token-ttl-secs",
        "1",
        "--refresh-token-ttl-secs",
        "2",
        "--refresh-absolute-ttl-secs",
        "3",
    ];
    let server = server(kind, &flags).await;
    let (_, _, mut token) = new_user(&server, "abs@example.com").await;
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        let r = refresh(&server, &token).await;
        assert_eq!(r.status, 200, "idle lifetime not over: {r:?}");
        assert!(r.json["refresh_expires_in"].as_u64().unwrap() <= 2, "{r:?}");
        token = r.json["refresh_token"].as_str().unwrap().to_owned();
    }
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let r = refresh(&server, &token).await;
    assert_eq!((r.status, code(&r)), (401, "TOKEN_EXPIRED"), "{r:?}");
}

// ---------------------------------------------------------------------------------------
// roles and the account audit trail

/// Admins grant and revoke roles (audited); the user's tokens stop at once; GATE staff
/// cannot buy; an admin cannot change their own role; bad input answers 400/404.
async fn admins_manage_roles_with_an_audit_trail(kind: Kind) {
    let server = server(kind, &[]).await;
    let (admin_id, admin) = admin_login(&server).await;
    let (id, access, refresh_token) = new_user(&server, "staff@example.com").await;
    let role_path = format!("/api/admin/users/{id}/role");

    let by_user = put(&server, &role_path, &access, &json!({"role": "ADMIN"})).await;
    assert_eq!((by_user.status, code(&by_user)), (403, "FORBIDDEN"));
    for bad in [
        json!({"role": "ROOT"}),
        json!({"role": "GATE", "x": 1}),
        json!({}),
    ] {
        let a = put(&server, &role_path, &admin, &bad).await;
        assert_eq!((a.status, code(&a)), (400, "VALIDATION"), "{bad}: {a:?}");
    }
    let unknown = format!("/api/admin/users/{}/role", uuid::Uuid::now_v7());
    let a = put(&server, &unknown, &admin, &json!({"role": "GATE"})).await;
    assert_eq!(a.status, 404, "{a:?}");
    let a = put(
        &server,
        "/api/admin/users/nope/role",
        &admin,
        &json!({"role": "GATE"}),
    )
    .await;
    assert_eq!(a.status, 400, "{a:?}");

    let granted = put(&server, &role_path, &admin, &json!({"role": "GATE"})).await;
    assert_eq!(granted.status, 200, "{granted:?}");
    assert_eq!(granted.json["role"], "GATE");
    let stale = me(&server, &access).await;
    assert_eq!((stale.status, code(&stale)), (401, "TOKEN_REVOKED"));
    let r = refresh(&server, &refresh_token).await;
    let gate = r.json["access_token"].as_str().unwrap().to_owned();
    assert_eq!(me(&server, &gate).await.json["role"], "GATE");
    let session = common::ga_session(&server, 10).await;
    let join = call(
        &server,
        "POST",
        &format!("/api/sessions/{session}/queue"),
        Some(&gate),
        &[],
        None,
    )
    .await;
    assert_eq!(
        (join.status, code(&join)),
        (403, "FORBIDDEN"),
        "gate staff cannot buy"
    );

    let own = put(
        &server,
        &format!("/api/admin/users/{admin_id}/role"),
        &admin,
        &json!({"role": "USER"}),
    )
    .await;
    assert_eq!((own.status, code(&own)), (409, "OWN_ACCOUNT"));
    let revoked = put(&server, &role_path, &admin, &json!({"role": "USER"})).await;
    assert_eq!(revoked.json["role"], "USER");

    let view = call(
        &server,
        "GET",
        &format!("/api/admin/users/{id}"),
        Some(&admin),
        &[],
        None,
    )
    .await;
    assert_eq!(
        (
            view.json["role"].clone(),
            view.json["tiers"].clone(),
            view.json["blocked"].clone()
        ),
        (json!("USER"), json!([]), json!(false)),
        "{view:?}"
    );
    let found = call(
        &server,
        "GET",
        "/api/admin/users?email=STAFF@example.com",
        Some(&admin),
        &[],
        None,
    )
    .await;
    assert_eq!(found.json["id"], id.as_str(), "{found:?}");

    let page = call(
        &server,
        "GET",
        "/api/admin/account-audit?limit=1",
        Some(&admin),
        &[],
        None,
    )
    .await;
    assert_eq!(page.status, 200, "{page:?}");
    let first = &page.json["records"][0];
    assert_eq!(
        (
            &first["actor"],
            &first["target"],
            &first["change"],
            &first["from"],
            &first["to"]
        ),
        (
            &json!(admin_id),
            &json!(id),
            &json!("ROLE"),
            &json!("USER"),
            &json!("GATE")
        )
    );
    assert!(first["at"].as_i64().unwrap() > 0);
    let next = page.json["next_after"].as_u64().expect("a next page");
    let rest = call(
        &server,
        "GET",
        &format!("/api/admin/account-audit?after={next}"),
        Some(&admin),
        &[],
        None,
    )
    .await;
    assert_eq!(rest.json["records"][0]["to"], "USER", "{rest:?}");
    assert_eq!(rest.json["next_after"], Value::Null);
    for bad in ["limit=0", "limit=101", "after=-1", "after=x", "other=1"] {
        let a = call(
            &server,
            "GET",
            &format!("/api/admin/account-audit?{bad}"),
            Some(&admin),
            &[],
            None,
        )
        .await;
        assert_eq!((a.status, code(&a)), (400, "VALIDATION"), "{bad}: {a:?}");
    }
    let by_user = call(
        &server,
        "GET",
        "/api/admin/account-audit",
        Some(&gate),
        &[],
        None,
    )
    .await;
    assert_eq!(
        by_user.status, 401,
        "the gate token was revoked by the demotion"
    );
}

/// Two admins demoting each other at once (on two servers when the store is shared)
/// always leave one admin.
async fn racing_demotions_over_http_leave_an_admin(kind: Kind) {
    let server = server(kind, &[]).await;
    let peer = peer_of(&server).await;
    let (first_id, first) = admin_login(&server).await;
    let (second_id, _, _) = new_user(&server, "second@example.com").await;
    let promote = put(
        &server,
        &format!("/api/admin/users/{second_id}/role"),
        &first,
        &json!({"role": "ADMIN"}),
    )
    .await;
    assert_eq!(promote.status, 200);
    let second = login(&server, "second@example.com", PASSWORD).await.json["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = peer.as_ref().unwrap_or(&server);
    let body = json!({"role": "USER"});
    let (path_a, path_b) = (
        format!("/api/admin/users/{second_id}/role"),
        format!("/api/admin/users/{first_id}/role"),
    );
    let (a, b) = tokio::join!(
        put(&server, &path_a, &first, &body),
        put(other, &path_b, &second, &body),
    );
    let won = [&a, &b].iter().filter(|x| x.status == 200).count();
    assert_eq!(won, 1, "{a:?} {b:?}");
    let mut admins = 0;
    for id in [&first_id, &second_id] {
        let user = server
            .state
            .accounts
            .user(id.parse().unwrap())
            .await
            .unwrap();
        admins += usize::from(user.role == Role::Admin);
    }
    assert_eq!(admins, 1, "{a:?} {b:?}");
}

common::on_all_backends!(
    a_stranger_with_the_admin_email_is_never_promoted,
    a_changed_admin_password_takes_effect,
    logout_revokes_access_tokens_at_once,
    token_answers_are_not_cached,
    refresh_sessions_end_at_their_absolute_lifetime,
    admins_manage_roles_with_an_audit_trail,
    racing_demotions_over_http_leave_an_admin,
);
