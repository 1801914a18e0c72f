//! The built binary stops gracefully on SIGTERM (what `kill`, systemd and container
//! runtimes send), as on Ctrl-C: it answers until the signal, then exits with code 0, also
//! while a client holds a queue event stream open (the stream ends; the client resumes on
//! another server with `Last-Event-ID`).

#![cfg(unix)]

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A port free a moment ago on 127.0.0.1.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

const SECRET: &str = "shutdown-test-secret-of-at-least-32-bytes";
const ADMIN: (&str, &str) = ("admin@example.com", "admin-pass-1");

/// Signs `email` up (unless `existing`) and logs in; the access token.
async fn sign_in(
    client: &reqwest::Client,
    url: &str,
    email: &str,
    password: &str,
    existing: bool,
) -> String {
    let credentials = serde_json::json!({ "email": email, "password": password }).to_string();
    let paths: &[&str] = if existing {
        &["login"]
    } else {
        &["signup", "login"]
    };
    let mut token = String::new();
    for path in paths {
        let answer = client
            .post(format!("{url}/api/auth/{path}"))
            .header("content-type", "application/json")
            .body(credentials.clone())
            .send()
            .await
            .expect("sign in");
        assert!(answer.status().is_success(), "{path}: {}", answer.status());
        if *path == "login" {
            let body = answer.bytes().await.expect("login body");
            let login: serde_json::Value = serde_json::from_slice(&body).expect("login json");
            token = login["access_token"]
                .as_str()
                .expect("access token")
                .to_owned();
        }
    }
    token
}

/// Starts the binary on memory (with its demo event) and waits until it answers.
async fn start() -> (std::process::Child, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_ticket-server"))
        .args([
            "--store",
            "memory",
            "--listen",
            &addr,
            "--jwt-secret",
            SECRET,
        ])
        .args(["--admin-email", ADMIN.0, "--admin-password", ADMIN.1])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ticket-server");
    // Ready when it answers.
    let client = reqwest::Client::new();
    let started = Instant::now();
    loop {
        if let Ok(r) = client.get(format!("http://{addr}/healthz")).send().await
            && r.status().is_success()
        {
            break;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("ticket-server did not answer /healthz within 20 s");
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("ticket-server exited before answering: {status}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (child, format!("http://{addr}"))
}

/// Sends SIGTERM and returns the exit status, failing if the process outlives `limit`.
async fn terminate(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill -TERM failed: {sent}");
    let signalled = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if signalled.elapsed() > limit {
            let _ = child.kill();
            panic!("ticket-server still running {limit:?} after SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn sigterm_stops_the_server_cleanly() {
    let (mut child, _url) = start().await;
    let status = terminate(&mut child, Duration::from_secs(5)).await;
    assert_eq!(status.code(), Some(0), "exit after SIGTERM: {status}");
}

#[tokio::test]
async fn sigterm_ends_open_queue_event_streams_and_exits_at_once() {
    let (mut child, url) = start().await;
    let client = reqwest::Client::new();
    // The demo event's general-admission session.
    let body = client
        .get(format!("{url}/api/events"))
        .send()
        .await
        .expect("events")
        .bytes()
        .await
        .expect("events body");
    let events: serde_json::Value = serde_json::from_slice(&body).expect("events json");
    let session = events["items"][0]["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .find(|s| s["kind"] == "general")
        .and_then(|s| s["id"].as_str())
        .expect("the demo's general session")
        .to_owned();
    // One admitted user at a time, so the second stays in line and its stream stays open.
    let admin = sign_in(&client, &url, ADMIN.0, ADMIN.1, true).await;
    let policy = r#"{"queue":{"require_admission":true,"max_active":1,"max_admissions_per_minute":60,"max_waiting":null}}"#;
    let set = client
        .put(format!("{url}/api/admin/sessions/{session}/policy"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(policy)
        .send()
        .await
        .expect("set the policy");
    assert!(set.status().is_success(), "policy: {}", set.status());
    let first = sign_in(&client, &url, "first@example.com", "first-pass-1", false).await;
    let token = sign_in(
        &client,
        &url,
        "watcher@example.com",
        "watcher-pass-1",
        false,
    )
    .await;
    let admitted = client
        .post(format!("{url}/api/sessions/{session}/queue"))
        .bearer_auth(&first)
        .send()
        .await
        .expect("first joins");
    assert!(
        admitted.status().is_success(),
        "join: {}",
        admitted.status()
    );
    let joined = client
        .post(format!("{url}/api/sessions/{session}/queue"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("join");
    assert!(joined.status().is_success(), "join: {}", joined.status());
    let mut stream = client
        .get(format!("{url}/api/sessions/{session}/queue/events"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("open the event stream");
    assert_eq!(stream.status().as_u16(), 200, "event stream");
    let current = stream
        .chunk()
        .await
        .expect("first event")
        .expect("an event");
    let current = String::from_utf8_lossy(&current);
    assert!(
        current.contains("event: position"),
        "waiting, so the stream stays open: {current}"
    );

    // Well inside the server's 10 s grace: the open stream does not hold the stop back.
    let status = terminate(&mut child, Duration::from_secs(5)).await;
    assert_eq!(status.code(), Some(0), "exit after SIGTERM: {status}");
    // The stream ended (cleanly or by the closed connection), it did not hang.
    let rest = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await;
    assert!(rest.is_ok(), "the event stream ended with the server");
}
