//! Test support: a server on a free loopback port, and a small JSON client.

use std::net::SocketAddr;

use clap::Parser;
use ticket_server::config::Config;
use ticket_server::state::AppState;

/// A running server.
#[allow(dead_code)] // each test binary uses part of it
pub struct Server {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Its state (stores, services), for assertions behind the API.
    pub state: AppState,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A memory-backed server with an admin `admin@example.com` / `admin-pass-1` and the
/// extra flags given.
#[allow(dead_code)]
pub async fn memory_server(extra: &[&str]) -> Server {
    let mut args = vec![
        "ticket-server",
        "--admin-email",
        "admin@example.com",
        "--admin-password",
        "admin-pass-1",
        "--jwt-secret",
        "test-secret-of-at-least-thirty-two-bytes",
    ];
    args.extend_from_slice(extra);
    let config = Config::try_parse_from(args).expect("config");
    let state = AppState::build(config).await.expect("state");
    ticket_server::admin::ensure_admin(&state)
        .await
        .expect("admin");
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    ticket_server::admin::connect_sandbox_webhooks(&state, &format!("http://{addr}"))
        .expect("webhooks");
    let app = ticket_server::app::router(state.clone());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    Server {
        url: format!("http://{addr}"),
        state,
        task,
    }
}

/// A JSON answer: status, `Retry-After` and body.
#[allow(dead_code)]
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body as JSON (`Null` when empty or not JSON).
    pub json: serde_json::Value,
    /// `Retry-After`, when present.
    pub retry_after: Option<String>,
}

/// Sends `method path` with an optional bearer token, extra headers and a raw body.
#[allow(dead_code)]
pub async fn call(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Answer {
    let client = reqwest::Client::new();
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = client.request(method, format!("{}{path}", server.url));
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_owned());
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = resp.bytes().await.expect("body");
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Answer {
        status,
        json,
        retry_after,
    }
}

/// A GA session of `capacity` units at 50 000 KRW, on sale now (the default policy: the
/// queue is on).
#[allow(dead_code)]
pub async fn ga_session(server: &Server, capacity: u32) -> ticket_core::SessionId {
    use std::time::Duration;
    use ticket_core::model::inventory::{Grade, GradeStock, InventoryPlan};
    use ticket_core::model::money::{Currency, Money};
    use ticket_core::model::session::{Event, SalesWindow, Session};
    let rush = &server.state.rush;
    let now = server.state.clock.now();
    let (event_id, session) = (
        ticket_core::EventId::new_at(now),
        ticket_core::SessionId::new_at(now),
    );
    rush.create_event(&Event {
        id: event_id,
        name: "Rush".into(),
        sessions: vec![Session {
            id: session,
            event_id,
            starts_at: now.plus(Duration::from_secs(86_400 * 7)),
            sales: SalesWindow {
                open_at: now.minus(Duration::from_secs(60)),
                close_at: now.plus(Duration::from_secs(86_400)),
            },
            inventory: InventoryPlan::General {
                grades: vec![GradeStock {
                    grade: Grade::new("GA").expect("grade"),
                    capacity,
                    price: Money::new(50_000, Currency::new("KRW").expect("currency"))
                        .expect("price"),
                }],
            },
        }],
    })
    .await
    .expect("create event");
    session
}

/// An access token for a fresh user, and that user's id.
#[allow(dead_code)]
pub fn user_token(server: &Server) -> (String, String) {
    let id = uuid::Uuid::now_v7().to_string();
    let token = server
        .state
        .keys
        .issue(
            &id,
            "USER",
            server.state.clock.now(),
            std::time::Duration::from_secs(900),
        )
        .expect("token")
        .0;
    (token, id)
}
