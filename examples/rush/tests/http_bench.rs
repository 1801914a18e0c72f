//! `rush-http-bench` end to end: the real binary against a ticket-server running in this
//! process on the memory store. A clean run measures every scenario with no error, a
//! ratio to its own ping, and holds that really happened; a server that refuses requests
//! (its rate limit) shows up as errors by status and a failing exit status, never as
//! throughput.

use std::net::SocketAddr;
use std::process::Output;

use clap::Parser;
use serde_json::Value;
use ticket_server::runtime::config::Config;
use ticket_server::runtime::state::AppState;

const SECRET: &str = "http-bench-test-secret-of-32-bytes-or-more";

/// A memory server on a free loopback port with the extra flags; stops when the sender is
/// dropped.
async fn server(extra: &[&str]) -> (String, AppState, tokio::sync::oneshot::Sender<()>) {
    let mut argv = vec![
        "ticket-server",
        "--store",
        "memory",
        "--no-demo",
        "--jwt-secret",
        SECRET,
    ];
    argv.extend_from_slice(extra);
    let config = Config::try_parse_from(argv).expect("config");
    let state = AppState::build(config).await.expect("state");
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = state.clone();
    tokio::spawn(async move {
        ticket_server::runtime::serve::serve(listener, served, async {
            let _ = stopped.await;
        })
        .await
        .expect("serve");
    });
    (url, state, stop)
}

/// Runs the benchmark binary with `args` (off the runtime's threads, which serve).
async fn bench(url: &str, args: &[&str]) -> Output {
    let mut argv = vec![
        "--url".to_owned(),
        url.to_owned(),
        "--jwt-secret".to_owned(),
        SECRET.to_owned(),
        "--json".to_owned(),
    ];
    argv.extend(args.iter().map(|s| (*s).to_owned()));
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_rush-http-bench"))
            .args(&argv)
            .output()
            .expect("run rush-http-bench")
    })
    .await
    .expect("join")
}

fn report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "JSON report ({e}); stdout: {}; stderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_run_measures_every_scenario_against_its_own_ping() {
    let (url, state, _stop) = server(&[
        "--rate-limit-per-minute",
        "0",
        "--rate-limit-per-ip-per-minute",
        "0",
    ])
    .await;
    let out = bench(
        &url,
        &[
            "--scenario",
            "all",
            "--clients",
            "4",
            "--duration-secs",
            "1",
            "--warmup-secs",
            "0",
        ],
    )
    .await;
    let r = report(&out);
    assert_eq!(out.status.code(), Some(0), "{r:#}");
    let results = r["results"].as_array().expect("results");
    let names: Vec<&str> = results
        .iter()
        .map(|x| x["scenario"].as_str().expect("scenario"))
        .collect();
    assert_eq!(names, ["ping", "read", "hold"]);
    for x in results {
        assert_eq!(x["clients"], 4);
        assert!(x["requests"].as_u64().expect("requests") > 0, "{x:#}");
        assert!(x["requests_per_sec"].as_f64().expect("rps") > 0.0, "{x:#}");
        assert_eq!(x["errors"], serde_json::json!({}), "{x:#}");
        assert_eq!(x["warmup_errors"], serde_json::json!({}), "{x:#}");
        let (p50, p99, max) = (
            x["p50_ms"].as_f64().expect("p50"),
            x["p99_ms"].as_f64().expect("p99"),
            x["max_ms"].as_f64().expect("max"),
        );
        assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{x:#}");
        let ratio = x["ratio_to_ping"].as_f64().expect("a ratio");
        let expected = x["requests_per_sec"].as_f64().expect("rps")
            / results[0]["requests_per_sec"].as_f64().expect("ping");
        assert!((ratio - expected).abs() < 1e-9, "{x:#}");
    }
    assert_eq!(results[0]["ratio_to_ping"], 1.0);

    // The holds happened: the session holds at least as many units as holds were counted.
    let session: ticket_core::SessionId = r["session_id"]
        .as_str()
        .expect("session id")
        .parse()
        .expect("a session id");
    let totals = state
        .rush
        .stores()
        .inventory
        .snapshot(session)
        .await
        .expect("snapshot")
        .totals();
    let counted = results[2]["requests"].as_u64().expect("holds");
    assert!(
        totals.held >= counted,
        "{} held, {counted} counted",
        totals.held
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_are_errors_by_status_and_fail_the_run() {
    // 20 holds per minute from this address: the first pass, the rest answer 429.
    let (url, _state, _stop) = server(&[
        "--rate-limit-per-minute",
        "0",
        "--rate-limit-per-ip-per-minute",
        "20",
    ])
    .await;
    let out = bench(
        &url,
        &[
            "--scenario",
            "hold",
            "--clients",
            "2",
            "--duration-secs",
            "1",
            "--warmup-secs",
            "0",
        ],
    )
    .await;
    let r = report(&out);
    assert_eq!(out.status.code(), Some(2), "{r:#}");
    let hold = &r["results"][0];
    let limited = hold["errors"]["429"].as_u64().expect("429s counted");
    assert!(limited > 0, "{hold:#}");
    assert!(
        hold["requests"].as_u64().expect("requests") < 20,
        "only the burst succeeded: {hold:#}"
    );
    assert!(
        hold["first_error"]
            .as_str()
            .is_some_and(|e| e.contains("RATE_LIMITED")),
        "{hold:#}"
    );
    assert!(hold["ratio_to_ping"].is_null(), "no ping, no ratio");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_stops_before_measuring() {
    let (url, _state, _stop) = server(&[]).await;
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_rush-http-bench"))
            .args([
                "--url",
                &url,
                "--jwt-secret",
                "another-secret-of-at-least-32-bytes!!",
                "--duration-secs",
                "1",
            ])
            .output()
            .expect("run")
    })
    .await
    .expect("join");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("401"), "{err}");
}
