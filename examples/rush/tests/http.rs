//! The rush simulator's HTTP mode against a real `ticket-server` (its app, served on a
//! loopback port by this test) on Redis and on PostgreSQL, with a payment sandbox shared
//! over HTTP whose signed webhooks go to the server: every correctness counter, read back
//! from the server's store and the sandbox's books, is 0, and nothing is oversold.
//!
//! Each run uses its own namespace (Redis key prefix / PostgreSQL schemas), removed at the
//! end. Redis and PostgreSQL must be running: a missing server fails the test (with how to
//! start it), never skips it.

use std::time::Duration;

use clap::Parser;
use payment_sandbox::{Sandbox, SandboxConfig};
use rush::{Checks, Config, Mix, Remote, Report, StoreKind};
use ticketrush_test_support::{Namespace, Service};

const SECRET: &str = "rush-http-test-secret-of-32-bytes-or-more";
/// The shared payment sandbox's API key.
const SANDBOX_KEY: &str = "sk_test_rush_http_0123456789abcdef";

/// A ticket-server app on a free port, selling through `store` under namespace `ns`,
/// paying through the sandbox at `sandbox_url`; returns its URL and a handle that stops it.
async fn serve(
    store: StoreKind,
    ns: &str,
    sandbox: &str,
) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    // The deployment's webhook endpoint at the shared sandbox is this server.
    let endpoint: serde_json::Value = reqwest::Client::new()
        .post(format!("{sandbox}/v1/webhook_endpoints"))
        .bearer_auth(SANDBOX_KEY)
        .json(&serde_json::json!({"url": format!("{url}/api/payments/webhook")}))
        .send()
        .await
        .expect("register the webhook endpoint")
        .json()
        .await
        .expect("endpoint");
    let webhook_secret = endpoint["verification_key"].as_str().expect("key");
    let config = ticket_server::runtime::config::Config::try_parse_from([
        "ticket-server",
        "--store",
        store.as_str(),
        "--namespace",
        ns,
        "--jwt-secret",
        SECRET,
        "--payment-sandbox-url",
        sandbox,
        "--payment-sandbox-key",
        SANDBOX_KEY,
        "--webhook-secret",
        webhook_secret,
        "--no-demo",
        "--rate-limit-per-minute",
        "0",
        "--rate-limit-per-ip-per-minute",
        "0",
        "--request-timeout-secs",
        "60",
        // Abandoned holds come back within the test.
        "--hold-ttl-secs",
        "3",
        "--payment-timeout-secs",
        "2",
        "--admission-ttl-secs",
        "20",
    ])
    .expect("server flags");
    let state = match ticket_server::runtime::state::AppState::build(config).await {
        Ok(s) => s,
        Err(e) => {
            let service = match store {
                StoreKind::Redis => Service::Redis,
                _ => Service::Postgres,
            };
            service.unreachable(&service.url(), e.to_string()).fail()
        }
    };
    let jobs = ticket_server::runtime::background::spawn(state.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        ticket_server::runtime::serve::serve(listener, state, shutdown)
            .await
            .expect("serve");
        jobs.abort();
    });
    (url, stop)
}

/// Removes everything the server and the run wrote under `ns` (the Redis keys `<ns>*`, which
/// cover the app's `<ns>:app:*` keys too, or the schemas `<ns>` and `<ns>_app`), and checks
/// that nothing is left. Dropping `ns` does the same when the test fails before.
async fn remove(ns: Namespace) {
    ns.clear().await.expect("remove the run's keys or schemas");
    assert_eq!(ns.left().await.expect("count"), 0);
}

async fn rush_over_http(store: StoreKind, users: u32, units: u32) -> Report {
    let sandbox = Sandbox::new(SandboxConfig::default()).expect("sandbox");
    let (addr, _serving) = payment_sandbox::http::serve(
        sandbox.clone(),
        payment_sandbox::auth::ApiKey::new(SANDBOX_KEY).expect("key"),
        "127.0.0.1:0".parse().expect("addr"),
    )
    .await
    .expect("serve the sandbox");
    let sandbox_url = format!("http://{addr}");
    let ns = match store {
        StoreKind::Redis => Namespace::redis("rush"),
        _ => Namespace::postgres("rush"),
    };
    let (url, stop) = serve(store, ns.name(), &sandbox_url).await;

    let mut config = Config::new(users, units, store);
    config.seed = 5;
    config.workers = 32;
    config.queue_max_active = units;
    config.mix = Mix {
        pay_success: 0.6,
        decline: 0.15,
        abandon: 0.1,
        cancel_later: 0.15,
    };
    config.remote = Some(Remote {
        url,
        jwt_secret: SECRET.into(),
        sandbox_url,
        sandbox_key: SANDBOX_KEY.into(),
        namespace: ns.name().to_owned(),
    });
    let report = rush::run(&config).await;
    // Let the sandbox deliver what it still has (webhooks of settled payments), then stop.
    sandbox.wait_idle(Duration::from_secs(10)).await;
    let _ = stop.send(());
    remove(ns).await;
    report.expect("the run")
}

fn assert_correct(report: &Report, units: u32) {
    let text = report.to_text();
    println!("{text}");
    assert_eq!(report.checks, Checks::default(), "{text}");
    assert_eq!(report.exit_code(), 0, "{text}");
    assert_eq!((report.failed_calls, report.users.lost), (0, 0), "{text}");
    let u = &report.units;
    assert_eq!(u.capacity, u64::from(units), "{text}");
    assert_eq!(u.sold + u.held + u.available, u.capacity, "{text}");
    assert!(report.remainder_explained, "{text}");
    // The checks read real records: joins, admissions, holds and payments.
    let e = &report.evidence;
    assert!(
        e.joins > 0 && e.admissions > 0 && e.holds > 0 && e.succeeded_intents > 0,
        "{text}"
    );
    let t = &report.users;
    assert!(t.bought > 0 && t.declined > 0 && t.cancelled > 0, "{text}");
    let ns = &report.config.remote.as_ref().expect("HTTP mode").namespace;
    assert!(report.location.contains(ns.as_str()), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rush_over_http_on_redis_is_correct() {
    let report = rush_over_http(StoreKind::Redis, 1_000, 100).await;
    assert_correct(&report, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rush_over_http_on_postgres_is_correct() {
    let report = rush_over_http(StoreKind::Pg, 300, 30).await;
    assert_correct(&report, 30);
}
