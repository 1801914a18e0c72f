//! Test support: a server on a free loopback port, and a small JSON client.

use std::net::SocketAddr;

use clap::Parser;
use ticket_server::runtime::config::Config;
use ticket_server::runtime::state::AppState;
use ticketrush_test_support::{Service, database_url, redis_url, unique_name};

/// The backend a test server runs on.
#[allow(dead_code)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// In-process memory.
    Memory,
    /// Redis at `REDIS_URL` (default `redis://127.0.0.1:6379`).
    Redis,
    /// PostgreSQL at `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
    Pg,
}

impl Kind {
    /// The service the backend needs, if any.
    fn service(self) -> Option<Service> {
        match self {
            Kind::Memory => None,
            Kind::Redis => Some(Service::Redis),
            Kind::Pg => Some(Service::Postgres),
        }
    }
}

/// A fresh namespace name (`tr_test_srv_<uuid>`, a Redis key prefix or the PostgreSQL schemas
/// `<ns>` and `<ns>_app`) and, on Redis and PostgreSQL, the guard that removes everything
/// under it when dropped (also when the test failed).
fn isolate(kind: Kind) -> (String, Option<ticketrush_test_support::Namespace>) {
    let guard = match kind {
        Kind::Memory => None,
        Kind::Redis => Some(ticketrush_test_support::Namespace::redis("srv")),
        Kind::Pg => Some(ticketrush_test_support::Namespace::postgres("srv")),
    };
    let name = guard
        .as_ref()
        .map_or_else(|| unique_name("srv"), |g| g.name().to_owned());
    (name, guard)
}

/// Fails the test: `kind`'s service is missing (with how to start it), or, on memory, the
/// server did not start.
fn not_started(kind: Kind, err: impl std::fmt::Display) -> ! {
    match kind.service() {
        Some(service) => service.unreachable(&service.url(), err.to_string()).fail(),
        None => panic!("the memory-backed server did not start: {err}"),
    }
}

/// A running server.
#[allow(dead_code)] // each test binary uses part of it
pub struct Server {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Its state (stores, services), for assertions behind the API.
    pub state: AppState,
    /// Its backend.
    pub kind: Kind,
    /// Its namespace (Redis key prefix, PostgreSQL schemas `<ns>` and `<ns>_app`).
    pub namespace: String,
    /// Removes the namespace when dropped (the first of twins has it; memory has none).
    guard: Option<ticketrush_test_support::Namespace>,
    /// Asks the server to stop (graceful: requests in flight finish).
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    /// Says when the server stopped, so nothing writes after the clean-up.
    stopped: Option<std::sync::Mutex<std::sync::mpsc::Receiver<()>>>,
    /// The background jobs (admission rounds on a timer, sweeper, reconcilers), as the
    /// binary runs them.
    jobs: Option<ticket_server::runtime::background::Jobs>,
}

impl Drop for Server {
    /// Stops the server, then (through its namespace guard) removes its Redis keys or
    /// PostgreSQL schemas, also when the test failed.
    fn drop(&mut self) {
        if let Some(jobs) = self.jobs.take() {
            jobs.abort();
        }
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
        let Some(guard) = self.guard.take() else {
            return;
        };
        // A request still running (a late webhook, a stream) could write after the keys are
        // gone: wait for the server to finish first (bounded, for a stuck stream).
        if let Some(Ok(stopped)) = self.stopped.take().map(std::sync::Mutex::into_inner) {
            let _ = stopped.recv_timeout(std::time::Duration::from_secs(5));
        }
        drop(guard);
    }
}

/// A memory-backed server with an admin `admin@example.com` / `admin-pass-1` and the
/// extra flags given.
#[allow(dead_code)]
pub async fn memory_server(extra: &[&str]) -> Server {
    server(Kind::Memory, extra).await
}

/// The configuration a test server of `kind` in namespace `ns` starts with.
#[allow(dead_code)]
pub fn config(kind: Kind, ns: &str, extra: &[&str]) -> Config {
    let (redis, pg) = (redis_url(), database_url());
    let store = match kind {
        Kind::Memory => "memory",
        Kind::Redis => "redis",
        Kind::Pg => "pg",
    };
    let mut args = vec![
        "ticket-server",
        "--store",
        store,
        "--namespace",
        ns,
        "--redis-url",
        &redis,
        "--database-url",
        &pg,
        "--admin-email",
        "admin@example.com",
        "--admin-password",
        "admin-pass-1",
        "--jwt-secret",
        "test-secret-of-at-least-thirty-two-bytes",
    ];
    args.extend_from_slice(extra);
    Config::try_parse_from(args).expect("config")
}

/// A server on backend `kind` in a fresh namespace (removed when the server is dropped),
/// with an admin `admin@example.com` / `admin-pass-1` and the extra flags given.
#[allow(dead_code)]
pub async fn server(kind: Kind, extra: &[&str]) -> Server {
    let (ns, guard) = isolate(kind);
    serve(kind, ns, guard, extra).await
}

/// Another server process's twin: a second server on the same backend and namespace as
/// `first` (so the two sell the same sessions), with its own in-process state.
#[allow(dead_code)]
pub async fn twin(first: &Server, extra: &[&str]) -> Server {
    assert_ne!(first.kind, Kind::Memory, "memory servers share nothing");
    // Only the first one removes the namespace.
    serve(first.kind, first.namespace.clone(), None, extra).await
}

async fn serve(
    kind: Kind,
    ns: String,
    guard: Option<ticketrush_test_support::Namespace>,
    extra: &[&str],
) -> Server {
    // Bound first, as the binary does: the address bound is the server's `--listen`, so its
    // default public URL (the payment page's return URL, the in-process sandbox's page) is
    // where the server really is.
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut config = config(kind, &ns, extra);
    config.listen = addr;
    let state = match AppState::build(config).await {
        Ok(s) => s,
        Err(e) => not_started(kind, e),
    };
    ticket_server::runtime::bootstrap::ensure_admin(&state)
        .await
        .expect("admin");
    ticket_server::runtime::bootstrap::connect_sandbox_webhooks(&state, &format!("http://{addr}"))
        .expect("webhooks");
    let app = ticket_server::http::router(state.clone());
    let jobs = ticket_server::runtime::background::spawn(state.clone());
    let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
    let (stopped_tx, stopped) = std::sync::mpsc::channel();
    tokio::spawn(async move {
        // With the client's address, as main.rs serves (the per-IP rate limit reads it).
        let served = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = stop.await;
        })
        .await;
        let _ = stopped_tx.send(());
        served.expect("serve");
    });
    Server {
        url: format!("http://{addr}"),
        state,
        kind,
        namespace: ns,
        guard,
        shutdown: Some(shutdown),
        stopped: Some(std::sync::Mutex::new(stopped)),
        jobs: Some(jobs),
    }
}

/// Runs each named `async fn name(kind: Kind)` on every backend: `memory::name`,
/// `redis::name` and `pg::name`.
#[allow(unused_macros)]
macro_rules! on_all_backends {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::common::Kind::Memory).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::common::Kind::Redis).await;
                }
            )*
        }
        mod pg {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::common::Kind::Pg).await;
                }
            )*
        }
    };
}
#[allow(unused_imports)]
pub(crate) use on_all_backends;

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

/// An access token for the start-up admin (`admin@example.com`).
#[allow(dead_code)]
pub async fn admin_token(server: &Server) -> String {
    let admin = server
        .state
        .accounts
        .user_by_email("admin@example.com")
        .await
        .expect("the admin exists");
    server
        .state
        .keys
        .issue(
            &admin.id.to_string(),
            "ADMIN",
            server.state.clock.now(),
            std::time::Duration::from_secs(900),
        )
        .expect("token")
        .0
}

/// (available, held, sold) of the session, read from the store behind the API.
#[allow(dead_code)]
pub async fn totals(server: &Server, session: ticket_core::SessionId) -> (u64, u64, u64) {
    let t = server
        .state
        .rush
        .stores()
        .inventory
        .snapshot(session)
        .await
        .expect("snapshot")
        .totals();
    (t.available, t.held, t.sold)
}

/// Joins the queue (which must admit at once) and holds `quantity` GA units through the
/// API under Idempotency-Key `key`; the hold's id.
#[allow(dead_code)]
pub async fn join_and_hold(
    server: &Server,
    session: ticket_core::SessionId,
    token: &str,
    key: &str,
    quantity: u32,
) -> String {
    let joined = call(
        server,
        "POST",
        &format!("/api/sessions/{session}/queue"),
        Some(token),
        &[],
        None,
    )
    .await;
    assert_eq!(joined.json["status"], "active", "{joined:?}");
    let body = format!(r#"{{"session_id":"{session}","grade":"GA","quantity":{quantity}}}"#);
    let held = call(
        server,
        "POST",
        "/api/holds",
        Some(token),
        &[("idempotency-key", key)],
        Some(&body),
    )
    .await;
    assert_eq!(held.status, 201, "{held:?}");
    held.json["id"].as_str().expect("hold id").to_owned()
}

/// A `ticket-server` binary running as a child process (killed when dropped).
#[allow(dead_code)]
pub struct Process {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    child: std::process::Child,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A namespace on a shared backend, removed when dropped (also when the test fails).
#[allow(dead_code)]
pub struct Namespace {
    /// The backend.
    pub kind: Kind,
    /// `tr_test_srv_<uuid>`.
    pub name: String,
    /// Removes it (none on memory).
    _guard: Option<ticketrush_test_support::Namespace>,
}

impl Namespace {
    /// A fresh namespace on `kind`.
    #[allow(dead_code)]
    pub fn new(kind: Kind) -> Self {
        let (name, guard) = isolate(kind);
        Self {
            kind,
            name,
            _guard: guard,
        }
    }
}

/// Starts the real `ticket-server` binary on a free port in namespace `ns` and waits until
/// it answers `/healthz`.
#[allow(dead_code)]
pub async fn spawn_process(ns: &Namespace, extra: &[&str]) -> Process {
    spawn_process_on(ns, free_port(), extra).await
}

/// A loopback port free at the time of asking.
#[allow(dead_code)]
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// [`spawn_process`] on a given port (for a URL that must be known before the start, e.g.
/// a webhook endpoint registered at a shared sandbox).
#[allow(dead_code)]
pub async fn spawn_process_on(ns: &Namespace, port: u16, extra: &[&str]) -> Process {
    let listen = format!("127.0.0.1:{port}");
    let store = match ns.kind {
        Kind::Memory => "memory",
        Kind::Redis => "redis",
        Kind::Pg => "pg",
    }
    .to_owned();
    let mut args = vec![
        "--listen".to_owned(),
        listen.clone(),
        "--store".to_owned(),
        store,
        "--namespace".to_owned(),
        ns.name.clone(),
        "--redis-url".to_owned(),
        redis_url(),
        "--database-url".to_owned(),
        database_url(),
        "--admin-email".to_owned(),
        "admin@example.com".to_owned(),
        "--admin-password".to_owned(),
        "admin-pass-1".to_owned(),
        "--jwt-secret".to_owned(),
        "test-secret-of-at-least-thirty-two-bytes".to_owned(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_ticket-server"))
        .args(&args)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start ticket-server");
    let mut process = Process {
        url: format!("http://{listen}"),
        child,
    };
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(Some(status)) = process.child.try_wait() {
            not_started(
                ns.kind,
                format!("ticket-server exited at start ({status}), see its stderr above"),
            );
        }
        if let Ok(r) = client.get(format!("{}/healthz", process.url)).send().await
            && r.status().is_success()
        {
            return process;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("ticket-server did not answer /healthz within 15 s");
}

/// Access tokens signed with the test servers' secret (every test server and process
/// accepts them).
#[allow(dead_code)]
pub fn token_for(user: &str, role: &str) -> String {
    let keys = ticket_server::services::auth::TokenKeys::from_secret(
        b"test-secret-of-at-least-thirty-two-bytes",
    )
    .expect("keys");
    keys.issue(
        user,
        role,
        ticket_core::Timestamp::from_millis(
            i64::try_from(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("clock")
                    .as_millis(),
            )
            .expect("millis"),
        ),
        std::time::Duration::from_secs(3_600),
    )
    .expect("token")
    .0
}

/// Buys `quantity` GA units through the API: joins the queue (which must admit at once),
/// holds under Idempotency-Key `key` and pays with the sandbox's card that succeeds at
/// once, under the same key; (hold id, payment id).
#[allow(dead_code)]
pub async fn buy(
    server: &Server,
    session: ticket_core::SessionId,
    token: &str,
    key: &str,
    quantity: u32,
) -> (String, String) {
    let hold = join_and_hold(server, session, token, key, quantity).await;
    let paid = call(
        server,
        "POST",
        &format!("/api/holds/{hold}/checkout"),
        Some(token),
        &[("idempotency-key", key)],
        Some(r#"{"method":"card","card_number":"4242424242424242"}"#),
    )
    .await;
    assert_eq!(paid.status, 200, "{paid:?}");
    assert_eq!(paid.json["hold"]["status"], "confirmed", "{paid:?}");
    let payment = paid.json["payment_id"].as_str().expect("payment id");
    (hold, payment.to_owned())
}

/// Tops the caller's wallet up by `amount` under Idempotency-Key `key` with the sandbox's
/// success card, and checks it was credited at once (202 `succeeded`).
#[allow(dead_code)]
pub async fn top_up(server: &Server, token: &str, key: &str, amount: i64) {
    let a = call(
        server,
        "POST",
        "/api/me/wallet/topups",
        Some(token),
        &[("idempotency-key", key)],
        Some(&format!(
            r#"{{"amount":{amount},"card_number":"4242424242424242"}}"#
        )),
    )
    .await;
    assert_eq!(a.status, 202, "{a:?}");
    assert_eq!(a.json["status"], "succeeded", "{a:?}");
}
