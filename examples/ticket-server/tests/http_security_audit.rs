//! `GET /api/admin/security-audit` over real HTTP on every backend: cursor pages newest
//! first, admins only, bad input answered 400, the retention bound, and one record per key
//! per window through `SecurityAudit::record` (the function other refusals call).

mod common;

use common::{Kind, Server, admin_token, call, server, user_token};
use serde_json::Value;
use ticket_server::stores::security_audit::{AbuseReason, AbuseRecord, Recorded};

fn refusal(s: &Server, n: u8) -> AbuseRecord {
    AbuseRecord {
        at: s.state.clock.now(),
        actor: None,
        reason: AbuseReason::UserBlocked,
        client_ip: Some(std::net::IpAddr::from([192, 0, 2, n])),
        route: "POST /api/holds".into(),
        detail: format!("test {n}"),
    }
}

async fn page(s: &Server, token: &str, query: &str) -> common::Answer {
    call(
        s,
        "GET",
        &format!("/api/admin/security-audit{query}"),
        Some(token),
        &[],
        None,
    )
    .await
}

fn details(a: &common::Answer) -> Vec<String> {
    a.json["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["detail"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn pages_run_newest_first_by_cursor_for_admins_only(kind: Kind) {
    let s = server(kind, &["--security-audit-retain", "5"]).await;
    for n in 1..=7 {
        assert_eq!(
            s.state.security_audit.record(refusal(&s, n)).await,
            Recorded::Written
        );
    }
    // The same reason, route and address again within the window: not written.
    assert_eq!(
        s.state.security_audit.record(refusal(&s, 7)).await,
        Recorded::Suppressed
    );
    assert_eq!(s.state.security_audit.suppressed(), 1);

    let admin = admin_token(&s).await;
    let first = page(&s, &admin, "?limit=2").await;
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(details(&first), ["test 7", "test 6"]);
    let r = &first.json["records"][0];
    assert_eq!(r["reason"], "USER_BLOCKED");
    assert_eq!(r["client_ip"], "192.0.2.7");
    assert_eq!(r["route"], "POST /api/holds");
    assert_eq!(r["actor"], Value::Null);
    assert!(r["at"].as_i64().is_some_and(|at| at > 0));
    let mut seen = details(&first);
    let mut cursor = first.json["next_cursor"]
        .as_str()
        .expect("a cursor")
        .to_owned();
    loop {
        let next = page(&s, &admin, &format!("?limit=2&cursor={cursor}")).await;
        assert_eq!(next.status, 200, "{next:?}");
        seen.extend(details(&next));
        match next.json["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    // Retention 5: the two oldest are gone.
    assert_eq!(seen, ["test 7", "test 6", "test 5", "test 4", "test 3"]);
    let all = page(&s, &admin, "").await;
    assert_eq!(details(&all).len(), 5);
    assert_eq!(all.json["next_cursor"], Value::Null);
    let past = page(&s, &admin, "?cursor=0-0").await;
    assert_eq!(details(&past).len(), 0, "{past:?}");

    for bad in [
        "?limit=0",
        "?limit=501",
        "?limit=x",
        "?limit=",
        "?cursor=abc",
        "?cursor=1",
        "?cursor=",
        "?cursor=1-2-3",
        "?other=1",
    ] {
        let a = page(&s, &admin, bad).await;
        assert_eq!(
            (a.status, a.json["error"]["code"].as_str()),
            (400, Some("VALIDATION")),
            "{bad}: {a:?}"
        );
    }
    let (user, _) = user_token(&s);
    assert_eq!(page(&s, &user, "").await.status, 403);
    let anonymous = call(&s, "GET", "/api/admin/security-audit", None, &[], None).await;
    assert_eq!(anonymous.status, 401);
}

common::on_all_backends!(pages_run_newest_first_by_cursor_for_admins_only);
