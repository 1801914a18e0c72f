//! Blocked users and tiers over real HTTP on every backend (memory, Redis, PostgreSQL): a
//! blocked user cannot queue, hold or pay and leaves the queue; a buyer's tier comes from
//! the account (set by admins), never from the request; presale buyers queue unless the
//! policy says they skip it.

mod common;

use std::time::Duration;

use common::{Answer, Kind, Server, call, server};
use serde_json::{Value, json};
use ticket_core::model::inventory::{Grade, GradeStock, InventoryPlan};
use ticket_core::model::money::{Currency, Money};
use ticket_core::model::policy::{Presale, SalesPolicy};
use ticket_core::model::session::{Event, SalesWindow, Session};
use ticket_core::{EventId, SessionId};

const PASSWORD: &str = "correct-horse-1";

fn code(a: &Answer) -> &str {
    a.json["error"]["code"].as_str().unwrap_or("<no code>")
}

async fn login(server: &Server, email: &str) -> Answer {
    let body = json!({"email": email, "password": PASSWORD}).to_string();
    call(server, "POST", "/api/auth/login", None, &[], Some(&body)).await
}

/// Signs up and logs in: (id, access token).
async fn new_user(server: &Server, email: &str) -> (String, String) {
    let body = json!({"email": email, "password": PASSWORD}).to_string();
    let s = call(server, "POST", "/api/auth/signup", None, &[], Some(&body)).await;
    assert_eq!(s.status, 201, "{s:?}");
    let l = login(server, email).await;
    (
        s.json["id"].as_str().unwrap().to_owned(),
        l.json["access_token"].as_str().unwrap().to_owned(),
    )
}

async fn admin_token(server: &Server) -> String {
    let body = json!({"email": "admin@example.com", "password": "admin-pass-1"}).to_string();
    let l = call(server, "POST", "/api/auth/login", None, &[], Some(&body)).await;
    l.json["access_token"].as_str().unwrap().to_owned()
}

async fn join(server: &Server, session: SessionId, token: &str) -> Answer {
    let path = format!("/api/sessions/{session}/queue");
    call(server, "POST", &path, Some(token), &[], None).await
}

async fn hold(server: &Server, token: &str, key: &str, body: &Value) -> Answer {
    call(
        server,
        "POST",
        "/api/holds",
        Some(token),
        &[("idempotency-key", key)],
        Some(&body.to_string()),
    )
    .await
}

async fn admin_post(server: &Server, admin: &str, path: &str) -> Answer {
    call(server, "POST", path, Some(admin), &[], None).await
}

async fn set_policy(server: &Server, session: SessionId, policy: &SalesPolicy) {
    server
        .state
        .rush
        .set_policy(session, policy)
        .await
        .expect("policy");
}

/// A blocked user's tokens stop, their waiting ticket leaves the queue, and they cannot
/// join, hold or pay (403 `USER_BLOCKED`) until unblocked.
async fn blocked_users_cannot_queue_hold_or_pay(kind: Kind) {
    let server = server(kind, &[]).await;
    let admin = admin_token(&server).await;
    let session = common::ga_session(&server, 10).await;
    let mut one_at_a_time = SalesPolicy::default();
    one_at_a_time.queue.max_active = 1;
    set_policy(&server, session, &one_at_a_time).await;
    let (ahead, _) = common::user_token(&server);
    assert_eq!(
        join(&server, session, &ahead).await.json["status"],
        "active"
    );
    let (id, token) = new_user(&server, "bad@example.com").await;
    let waiting = join(&server, session, &token).await;
    assert_eq!(waiting.json["status"], "waiting", "{waiting:?}");

    let blocked = admin_post(&server, &admin, &format!("/api/admin/users/{id}/block")).await;
    assert_eq!(blocked.status, 200, "{blocked:?}");
    assert_eq!(blocked.json["blocked"], true);
    let stale = call(&server, "GET", "/api/me", Some(&token), &[], None).await;
    assert_eq!((stale.status, code(&stale)), (401, "TOKEN_REVOKED"));
    let stats = server
        .state
        .rush
        .stores()
        .queue
        .stats(session, server.state.clock.now())
        .await
        .expect("stats");
    assert_eq!(stats.waiting, 0, "the blocked user's ticket left the queue");

    let token = login(&server, "bad@example.com").await.json["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let me = call(&server, "GET", "/api/me", Some(&token), &[], None).await;
    assert_eq!(me.json["blocked"], true, "{me:?}");
    let place = call(
        &server,
        "GET",
        &format!("/api/sessions/{session}/queue"),
        Some(&token),
        &[],
        None,
    )
    .await;
    assert_eq!(
        (place.status, code(&place)),
        (404, "LEFT_QUEUE"),
        "{place:?}"
    );
    let before = common::totals(&server, session).await;
    let refused = [
        join(&server, session, &token).await,
        hold(
            &server,
            &token,
            "k1",
            &json!({"session_id": session.to_string(), "grade": "GA", "quantity": 1}),
        )
        .await,
        call(
            &server,
            "POST",
            &format!("/api/holds/{}/checkout", uuid::Uuid::now_v7()),
            Some(&token),
            &[("idempotency-key", "k2")],
            Some(r#"{"method":"wallet"}"#),
        )
        .await,
    ];
    for a in &refused {
        assert_eq!((a.status, code(a)), (403, "USER_BLOCKED"), "{a:?}");
    }
    assert_eq!(common::totals(&server, session).await, before);
    // every refusal of the blocked user is in the security audit, with the route template
    let audit = call(
        &server,
        "GET",
        "/api/admin/security-audit?limit=500",
        Some(&admin),
        &[],
        None,
    )
    .await;
    assert_eq!(audit.status, 200, "{audit:?}");
    let mut routes: Vec<&str> = audit.json["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["reason"] == "USER_BLOCKED" && r["actor"] == id.as_str())
        .map(|r| r["route"].as_str().unwrap())
        .collect();
    routes.sort_unstable();
    assert_eq!(
        routes,
        [
            "POST /api/holds",
            "POST /api/holds/{id}/checkout",
            "POST /api/sessions/{id}/queue"
        ],
        "{audit:?}"
    );

    let own = admin_post(&server, &admin, "/api/admin/users/not-an-id/block").await;
    assert_eq!(own.status, 400);
    let unblocked = admin_post(&server, &admin, &format!("/api/admin/users/{id}/unblock")).await;
    assert_eq!(unblocked.json["blocked"], false, "{unblocked:?}");
    assert_eq!(join(&server, session, &token).await.status, 200);
    let trail = call(
        &server,
        "GET",
        "/api/admin/account-audit",
        Some(&admin),
        &[],
        None,
    )
    .await;
    let changes: Vec<_> = trail.json["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["change"].clone(), r["to"].clone()))
        .collect();
    assert_eq!(
        changes,
        [
            (json!("BLOCKED"), json!("true")),
            (json!("BLOCKED"), json!("false"))
        ]
    );
}

/// A GA session whose public sales open in an hour, with a GOLD presale open now.
async fn presale_session(server: &Server) -> SessionId {
    let now = server.state.clock.now();
    let (event_id, session) = (EventId::new_at(now), SessionId::new_at(now));
    let hour = Duration::from_secs(3_600);
    server
        .state
        .rush
        .create_event(&Event {
            id: event_id,
            name: "Presale".into(),
            sessions: vec![Session {
                id: session,
                event_id,
                starts_at: now.plus(hour * 48),
                sales: SalesWindow {
                    open_at: now.plus(hour),
                    close_at: now.plus(hour * 24),
                },
                inventory: InventoryPlan::General {
                    grades: vec![GradeStock {
                        grade: Grade::new("GA").unwrap(),
                        capacity: 10,
                        price: Money::new(50_000, Currency::new("KRW").unwrap()).unwrap(),
                    }],
                },
            }],
        })
        .await
        .expect("event");
    let policy = SalesPolicy {
        tiers: vec!["SILVER".into(), "GOLD".into()],
        presales: vec![Presale {
            min_tier: "GOLD".into(),
            opens_at: now.minus(Duration::from_secs(60)),
        }],
        ..SalesPolicy::default()
    };
    set_policy(server, session, &policy).await;
    session
}

/// Attack: a buyer names `"tier": "GOLD"` to buy in a presale. Refused with 400; tiers
/// come from the account (set by an admin), and presale buyers queue like everyone else.
async fn tiers_come_from_the_account_and_presale_buyers_queue(kind: Kind) {
    let server = server(kind, &[]).await;
    let admin = admin_token(&server).await;
    let session = presale_session(&server).await;
    let ga = json!({"session_id": session.to_string(), "grade": "GA", "quantity": 1});
    let (_, buyer) = new_user(&server, "buyer@example.com").await;
    let before = common::totals(&server, session).await;

    let mut forged = ga.clone();
    forged["tier"] = json!("GOLD");
    let attack = hold(&server, &buyer, "attack", &forged).await;
    assert_eq!(
        (attack.status, code(&attack)),
        (400, "VALIDATION"),
        "{attack:?}"
    );
    let no_tier = hold(&server, &buyer, "plain", &ga).await;
    assert_eq!(
        (no_tier.status, code(&no_tier)),
        (409, "SALES_NOT_OPEN"),
        "{no_tier:?}"
    );
    let early = join(&server, session, &buyer).await;
    assert_eq!(
        (early.status, code(&early)),
        (409, "QUEUE_NOT_OPEN"),
        "{early:?}"
    );
    assert_eq!(common::totals(&server, session).await, before);

    // an admin gives a buyer GOLD (names checked)
    let (gold_id, gold) = new_user(&server, "gold@example.com").await;
    let tiers_path = format!("/api/admin/users/{gold_id}/tiers");
    for bad in [
        json!({"tiers": ["gold"]}),
        json!({"tiers": ["A", "A"]}),
        json!({"tiers": "GOLD"}),
    ] {
        let a = call(
            &server,
            "PUT",
            &tiers_path,
            Some(&admin),
            &[],
            Some(&bad.to_string()),
        )
        .await;
        assert_eq!((a.status, code(&a)), (400, "VALIDATION"), "{bad}: {a:?}");
    }
    let by_buyer = call(
        &server,
        "PUT",
        &tiers_path,
        Some(&gold),
        &[],
        Some(r#"{"tiers":["GOLD"]}"#),
    )
    .await;
    assert_eq!(by_buyer.status, 403, "buyers cannot set tiers");
    let set = call(
        &server,
        "PUT",
        &tiers_path,
        Some(&admin),
        &[],
        Some(r#"{"tiers":["SILVER","GOLD","PLATINUM"]}"#),
    )
    .await;
    assert_eq!(
        set.json["tiers"],
        json!(["SILVER", "GOLD", "PLATINUM"]),
        "{set:?}"
    );
    // GOLD (the highest tier the policy knows) still needs an admission in the presale
    let unqueued = hold(&server, &gold, "g1", &ga).await;
    assert_eq!(
        (unqueued.status, code(&unqueued)),
        (403, "NOT_ADMITTED"),
        "{unqueued:?}"
    );
    let joined = join(&server, session, &gold).await;
    assert_eq!(joined.json["status"], "active", "{joined:?}");
    let held = hold(&server, &gold, "g2", &ga).await;
    assert_eq!(held.status, 201, "{held:?}");

    // a policy that lets presale buyers skip the queue
    let (gold2_id, gold2) = new_user(&server, "gold2@example.com").await;
    let path = format!("/api/admin/users/{gold2_id}/tiers");
    let set = call(
        &server,
        "PUT",
        &path,
        Some(&admin),
        &[],
        Some(r#"{"tiers":["GOLD"]}"#),
    )
    .await;
    assert_eq!(set.status, 200);
    let policy_path = format!("/api/admin/sessions/{session}/policy");
    let current = server
        .state
        .rush
        .stores()
        .policies
        .policy(session)
        .await
        .unwrap();
    let mut body = serde_json::to_value(&current).unwrap();
    body["queue"]["presale_skips_queue"] = json!(true);
    let put = call(
        &server,
        "PUT",
        &policy_path,
        Some(&admin),
        &[],
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(put.status, 200, "{put:?}");
    assert_eq!(put.json["queue"]["presale_skips_queue"], true);
    let skipped = hold(&server, &gold2, "g3", &ga).await;
    assert_eq!(skipped.status, 201, "{skipped:?}");
}

common::on_all_backends!(
    blocked_users_cannot_queue_hold_or_pay,
    tiers_come_from_the_account_and_presale_buyers_queue,
);
