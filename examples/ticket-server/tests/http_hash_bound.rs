//! The bound on concurrent password hashing over real HTTP on every backend: a flood of
//! logins past `--hash-concurrency` gets 503 `OVERLOADED` with `Retry-After` instead of
//! queueing without bound, no more hashes than the bound ever run at once, and normal logins
//! work again right after.

mod common;

use common::{Kind, call, server};
use serde_json::json;

const PASSWORD: &str = "correct-horse-1";

async fn a_login_flood_is_shed_past_the_hashing_bound(kind: Kind) {
    let s = server(
        kind,
        &[
            "--hash-concurrency",
            "1",
            "--hash-wait-ms",
            "1",
            "--login-limit-per-ip-per-minute",
            "0",
            "--login-failures-before-backoff",
            "0",
        ],
    )
    .await;
    let body = json!({"email": "flo@example.com", "password": PASSWORD}).to_string();
    let made = call(&s, "POST", "/api/auth/signup", None, &[], Some(&body)).await;
    assert_eq!(made.status, 201, "{made:?}");

    let mut tasks = Vec::new();
    for i in 0..48 {
        let url = s.url.clone();
        tasks.push(tokio::spawn(async move {
            // Unknown emails: each one still costs a hash (the dummy check).
            let body = json!({"email": format!("x{i}@example.com"), "password": PASSWORD});
            let resp = reqwest::Client::new()
                .post(format!("{url}/api/auth/login"))
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .expect("login");
            let status = resp.status().as_u16();
            let retry = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let bytes = resp.bytes().await.unwrap_or_default();
            let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            (
                status,
                retry,
                json["error"]["code"].as_str().map(str::to_owned),
            )
        }));
    }
    let (mut shed, mut checked) = (0, 0);
    for t in tasks {
        match t.await.expect("task") {
            (401, _, _) => checked += 1,
            (503, Some(retry), Some(code)) => {
                assert_eq!((retry.as_str(), code.as_str()), ("1", "OVERLOADED"));
                shed += 1;
            }
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert!(checked >= 1 && shed >= 1, "checked {checked}, shed {shed}");
    let pool = &s.state.hashing;
    assert_eq!(pool.size(), 1);
    assert!(pool.peak_running() <= 1, "{} at once", pool.peak_running());
    assert!(
        pool.peak_waiting() <= 4,
        "{} waited at once",
        pool.peak_waiting()
    );

    let ok = call(&s, "POST", "/api/auth/login", None, &[], Some(&body)).await;
    assert_eq!(ok.status, 200, "a normal login after the flood: {ok:?}");
}

common::on_all_backends!(a_login_flood_is_shed_past_the_hashing_bound);
