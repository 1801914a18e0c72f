//! The built binary stops gracefully on SIGTERM (what `kill`, systemd and container
//! runtimes send), as on Ctrl-C: it answers until the signal, then exits with code 0.

#![cfg(unix)]

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A port free a moment ago on 127.0.0.1.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

#[tokio::test]
async fn sigterm_stops_the_server_cleanly() {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_ticket-server"))
        .args(["--store", "memory", "--listen", &addr])
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
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill -TERM failed: {sent}");
    let signalled = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if signalled.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            panic!("ticket-server still running 5 s after SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status.code(), Some(0), "exit after SIGTERM: {status}");
}
