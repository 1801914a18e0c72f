//! 500 users rush one session of 50 units through the HTTP API of real `ticket-server`
//! processes: one process on each backend, and two processes sharing one Redis and one
//! PostgreSQL with the users spread over both. Afterwards the admin stats (read from the
//! shared store) must show nothing oversold (`sold ≤ 50`, `available + held + sold == 50`),
//! no hold left over, every sold unit in some buyer's confirmed reservations, and no buyer
//! above the per-user limit.
//!
//! Each user behaves like a person: joins the queue, polls until admitted, asks for 1 to 3
//! units (3 is above the limit of 2 and is refused, so they ask again for fewer), pays by
//! card (one in ten cards is declined, which puts the units back on sale), and gives up
//! when the session sells out.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Kind, Namespace, Process, spawn_process, token_for};
use serde_json::{Value, json};

const USERS: usize = 500;
const CAPACITY: u64 = 50;
const PER_USER: u64 = 2;
const SUCCEEDS: &str = "4242424242424242";
const DECLINED: &str = "4000000000000002";

struct Client {
    http: reqwest::Client,
}

impl Client {
    async fn send(
        &self,
        method: reqwest::Method,
        url: String,
        token: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, url).bearer_auth(token);
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.expect("body");
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, json)
    }
}

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_millis(),
    )
    .expect("millis")
}

/// What one user ended with.
#[derive(Debug, Default)]
struct Outcome {
    token: String,
    bought: u64,
    declined: u64,
}

/// One user's rush against server `base`.
async fn shopper(client: Arc<Client>, base: String, session: String, i: usize) -> Outcome {
    use reqwest::Method;
    let token = token_for(&uuid::Uuid::now_v7().to_string(), "USER");
    let queue = format!("{base}/api/sessions/{session}/queue");
    let mut out = Outcome {
        token: token.clone(),
        ..Outcome::default()
    };
    let (status, mut view) = client
        .send(Method::POST, queue.clone(), &token, None, None)
        .await;
    assert_eq!(status, 200, "join: {view}");
    loop {
        match view["status"].as_str() {
            Some("active") => break,
            Some("waiting") if view["outlook"] == "sold_out" => return out,
            Some("waiting") => {}
            // The admission ran out (or was used): done.
            _ => return out,
        }
        tokio::time::sleep(Duration::from_millis(200 + (i as u64 % 7) * 20)).await;
        let (status, v) = client
            .send(Method::GET, queue.clone(), &token, None, None)
            .await;
        assert_eq!(status, 200, "poll: {v}");
        view = v;
    }
    let mut want = 1 + (i % 3) as u32;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (status, hold) = client
            .send(
                Method::POST,
                format!("{base}/api/holds"),
                &token,
                Some(&format!("hold-{attempt}")),
                Some(json!({"session_id": session, "grade": "GA", "quantity": want})),
            )
            .await;
        match (status, hold["error"]["code"].as_str()) {
            (201, _) => {
                let id = hold["id"].as_str().expect("hold id");
                let card = if i.is_multiple_of(10) {
                    DECLINED
                } else {
                    SUCCEEDS
                };
                let (status, paid) = client
                    .send(
                        Method::POST,
                        format!("{base}/api/holds/{id}/checkout"),
                        &token,
                        Some("pay"),
                        Some(json!({"method": "card", "card_number": card})),
                    )
                    .await;
                assert_eq!(status, 200, "checkout: {paid}");
                match paid["hold"]["status"].as_str() {
                    Some("confirmed") => out.bought += u64::from(want),
                    Some("payment_failed") => out.declined += 1,
                    other => panic!("unexpected hold after checkout: {other:?} {paid}"),
                }
                return out;
            }
            // Above the per-user limit, or more than is left: ask for fewer.
            (409, Some("LIMIT_EXCEEDED" | "SOLD_OUT")) if want > 1 && attempt < 5 => {
                want -= 1;
            }
            // Sold out: give the admission back (as a well-behaved client does) so the
            // slot goes to someone still waiting for a unit a declined card frees.
            (409, Some("SOLD_OUT")) => {
                let (status, left) = client
                    .send(Method::DELETE, queue.clone(), &token, None, None)
                    .await;
                assert_eq!(status, 200, "leave: {left}");
                return out;
            }
            // The admission expired while asking: done.
            (403, Some("NOT_ADMITTED" | "ADMISSION_EXPIRED")) => return out,
            other => panic!("unexpected hold answer {other:?}: {hold}"),
        }
    }
}

/// Creates the 50-unit session and its policy through the admin API of `base`.
async fn create_session(client: &Client, base: &str, admin: &str) -> String {
    use reqwest::Method;
    let now = now_ms();
    let (status, event) = client
        .send(
            Method::POST,
            format!("{base}/api/admin/events"),
            admin,
            None,
            Some(json!({
                "name": "Rush test",
                "sessions": [{
                    "starts_at": now + 86_400_000,
                    "sales_open_at": now - 60_000,
                    "sales_close_at": now + 3_600_000,
                    "grades": [{"grade": "GA", "capacity": CAPACITY, "price_minor": 10_000, "currency": "KRW"}],
                }],
            })),
        )
        .await;
    assert_eq!(status, 201, "create event: {event}");
    let session = event["sessions"][0]["id"]
        .as_str()
        .expect("session id")
        .to_owned();
    let (status, policy) = client
        .send(
            Method::PUT,
            format!("{base}/api/admin/sessions/{session}/policy"),
            admin,
            None,
            Some(json!({
                "max_units_per_user": PER_USER,
                "queue": {
                    "require_admission": true,
                    "max_active": 50,
                    "max_admissions_per_minute": 100_000,
                    "max_waiting": 10_000,
                },
            })),
        )
        .await;
    assert_eq!(status, 200, "policy: {policy}");
    session
}

/// Runs the rush over `processes` servers on `kind` and checks the invariants.
async fn rush(kind: Kind, processes: usize) {
    // One rush at a time: each loads both cores on its own, and latencies measured against
    // the request timeout must not depend on which other test the harness runs beside it.
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _turn = ONE_AT_A_TIME.lock().await;
    let ns = Namespace::new(kind);
    let mut servers: Vec<Process> = Vec::new();
    for _ in 0..processes {
        servers.push(
            spawn_process(
                &ns,
                &[
                    "--no-demo",
                    "--rate-limit-per-minute",
                    "1000000",
                    "--request-timeout-secs",
                    "60",
                ],
            )
            .await,
        );
    }
    let client = Arc::new(Client {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client"),
    });
    let admin = token_for(&uuid::Uuid::now_v7().to_string(), "ADMIN");
    let session = create_session(&client, &servers[0].url, &admin).await;

    let tasks: Vec<_> = (0..USERS)
        .map(|i| {
            let base = servers[i % servers.len()].url.clone();
            tokio::spawn(shopper(client.clone(), base, session.clone(), i))
        })
        .collect();
    let mut outcomes = Vec::with_capacity(USERS);
    for t in tasks {
        outcomes.push(t.await.expect("a shopper panicked"));
    }
    let bought: u64 = outcomes.iter().map(|o| o.bought).sum();
    let declined: u64 = outcomes.iter().map(|o| o.declined).sum();

    // Every server reads the same stats from the shared store.
    let mut seen: Vec<Value> = Vec::new();
    for s in &servers {
        let (status, stats) = client
            .send(
                reqwest::Method::GET,
                format!("{}/api/admin/sessions/{session}/stats", s.url),
                &admin,
                None,
                None,
            )
            .await;
        assert_eq!(status, 200, "stats: {stats}");
        seen.push(stats);
    }
    let stats = &seen[0];
    assert!(
        seen.iter().all(|s| s == stats),
        "servers disagree: {seen:?}"
    );
    let n = |k: &str| {
        stats[k]
            .as_u64()
            .unwrap_or_else(|| panic!("{k} in {stats}"))
    };
    let (capacity, available, held, sold) = (n("capacity"), n("available"), n("held"), n("sold"));
    eprintln!(
        "{kind:?} × {processes}: sold {sold}, available {available}, held {held}, \
         bought by users {bought}, declined {declined}"
    );
    assert_eq!(capacity, CAPACITY);
    assert!(sold <= CAPACITY, "oversold: {stats}");
    assert_eq!(available + held + sold, capacity, "{stats}");
    assert_eq!(held, 0, "every hold was paid or failed: {stats}");
    assert_eq!(
        sold, bought,
        "the store sold what the buyers were told: {stats}"
    );
    assert!(sold > 0, "nothing sold: {stats}");
    let by_status: HashMap<String, Value> =
        serde_json::from_value(stats["reservations_by_status"].clone()).unwrap_or_default();
    assert!(
        by_status.contains_key("CONFIRMED") || by_status.contains_key("confirmed"),
        "{stats}"
    );
    // Per buyer, from the store: confirmed units within the limit, adding up to `sold`.
    let mut confirmed_total = 0;
    for (i, o) in outcomes.iter().enumerate() {
        let (status, mine) = client
            .send(
                reqwest::Method::GET,
                format!("{}/api/me/reservations", servers[i % servers.len()].url),
                &o.token,
                None,
                None,
            )
            .await;
        assert_eq!(status, 200, "{mine}");
        let confirmed: u64 = mine["reservations"]
            .as_array()
            .expect("reservations")
            .iter()
            .filter(|r| r["status"] == "confirmed")
            .map(|r| r["units"].as_u64().expect("units"))
            .sum();
        assert!(
            confirmed <= PER_USER,
            "user {i} holds {confirmed} units: {mine}"
        );
        assert_eq!(confirmed, o.bought, "user {i}: {mine}");
        confirmed_total += confirmed;
    }
    assert_eq!(confirmed_total, sold);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_one_process() {
    rush(Kind::Memory, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_two_processes() {
    rush(Kind::Redis, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_two_processes() {
    rush(Kind::Pg, 2).await;
}
