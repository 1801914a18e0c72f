//! Issue 20: `GET /api/sessions/{id}` answered from this process's cached snapshot, kept
//! valid by the change feed. Repeated reads of a followed session make no store call; a
//! hold, a pause and a close made in this process show on the next read, one made behind
//! the API (as another process would) within the freshness bound
//! (`ticket_server::live::session::STOCK_MAX_LAG`); two server processes on one Redis see
//! each other's changes within it.

mod common;

use std::time::{Duration, Instant};

use common::{
    Kind, Server, admin_token, call, ga_session, join_and_hold, server, twin, user_token,
};
use serde_json::Value;
use ticket_core::SessionId;
use ticket_core::model::audit::Actor;
use ticket_server::live::session::STOCK_MAX_LAG;

/// `GET /api/sessions/{id}`'s answer.
async fn read(s: &Server, session: SessionId) -> Value {
    let a = call(
        s,
        "GET",
        &format!("/api/sessions/{session}"),
        None,
        &[],
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    a.json
}

/// Units held of grade `GA` in a read.
fn held(v: &Value) -> u64 {
    v["grades"][0]["held"].as_u64().expect("held")
}

/// Waits (at most 10 s) until `s` follows `session` and answers its reads from memory.
async fn until_cached(s: &Server, session: SessionId) {
    s.state.live.refresh_soon();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let hits = s.state.live.counters.stock_hits();
        read(s, session).await;
        if s.state.live.counters.stock_hits() > hits {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{session} never read from memory"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `s`'s reads of `session` until `ok` holds; how long that took (fails past the
/// freshness bound and a margin for a loaded test machine).
async fn within_bound(s: &Server, session: SessionId, ok: impl Fn(&Value) -> bool) -> Duration {
    let start = Instant::now();
    loop {
        let v = read(s, session).await;
        if ok(&v) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < STOCK_MAX_LAG + Duration::from_secs(1),
            "not visible within the bound: {v}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Reads come from memory; this process's holds and switch moves show at once, changes made
/// behind the API within the bound.
async fn reads_come_from_memory_and_see_every_change(kind: Kind) {
    let s = server(kind, &[]).await;
    s.state.live.ready().await;
    let session = ga_session(&s, 100).await;
    until_cached(&s, session).await;

    // Repeated reads: no store call.
    let (hits, reads) = (
        s.state.live.counters.stock_hits(),
        s.state.live.counters.stock_reads(),
    );
    for _ in 0..20 {
        assert_eq!(held(&read(&s, session).await), 0);
    }
    assert_eq!(s.state.live.counters.stock_hits(), hits + 20);
    assert_eq!(s.state.live.counters.stock_reads(), reads);

    // A hold through this process's API: the very next read shows it.
    let (token, _) = user_token(&s);
    join_and_hold(&s, session, &token, "k1", 2).await;
    let v = read(&s, session).await;
    assert_eq!(held(&v), 2, "{v}");
    assert_eq!(v["grades"][0]["available"], 98, "{v}");

    // A hold behind the API (as another process would make it): within the bound.
    let (_, other) = user_token(&s);
    let now = s.state.clock.now();
    s.state
        .rush
        .stores()
        .reservations
        .hold(ticket_core::model::hold::NewHold {
            id: ticket_core::HoldId::new_at(now),
            session,
            user: ticket_core::UserId::new(other).expect("user"),
            selection: ticket_core::model::selection::Selection::Units {
                grade: ticket_core::model::inventory::Grade::new("GA").expect("grade"),
                quantity: 1,
            },
            now,
            expires_at: now.plus(Duration::from_secs(600)),
            per_user_limit: None,
            admission: ticket_core::model::hold::AdmissionCheck::NotRequired,
            actor: Actor::System("test".into()),
            correlation_id: None,
        })
        .await
        .expect("hold");
    let took = within_bound(&s, session, |v| held(v) == 3).await;
    eprintln!("{kind:?}: a hold behind the API visible after {took:?}");
    // Cached again once seen.
    let hits = s.state.live.counters.stock_hits();
    read(&s, session).await;
    read(&s, session).await;
    assert!(s.state.live.counters.stock_hits() > hits);

    // A pause through the admin API: at once.
    let admin = admin_token(&s).await;
    let paused = call(
        &s,
        "POST",
        &format!("/api/admin/sessions/{session}/pause"),
        Some(&admin),
        &[],
        None,
    )
    .await;
    assert_eq!(paused.status, 200, "{paused:?}");
    assert_eq!(read(&s, session).await["status"], "paused");

    // A resume, then a close, behind the API: within the bound.
    let sales = &s.state.rush.sales;
    let op = || Actor::Operator("test".into());
    sales.resume(session, op(), "test").await.expect("resume");
    within_bound(&s, session, |v| v["status"] == "on_sale").await;
    sales.close(session, op(), "test").await.expect("close");
    within_bound(&s, session, |v| v["status"] == "closed").await;
    assert_eq!(held(&read(&s, session).await), 3);
}

/// Two server processes on one Redis: a hold through one shows in the other's cached read
/// within the bound, and a pause through the other shows in the first's.
async fn twins_see_each_others_changes(kind: Kind) {
    let a = server(kind, &[]).await;
    let b = twin(&a, &[]).await;
    a.state.live.ready().await;
    b.state.live.ready().await;
    let session = ga_session(&a, 100).await;
    until_cached(&a, session).await;
    until_cached(&b, session).await;

    let (token, _) = user_token(&a);
    join_and_hold(&a, session, &token, "k1", 3).await;
    let took = within_bound(&b, session, |v| held(v) == 3).await;
    eprintln!("hold on A seen by B after {took:?}");

    let admin = admin_token(&b).await;
    let paused = call(
        &b,
        "POST",
        &format!("/api/admin/sessions/{session}/pause"),
        Some(&admin),
        &[],
        None,
    )
    .await;
    assert_eq!(paused.status, 200, "{paused:?}");
    let took = within_bound(&a, session, |v| v["status"] == "paused").await;
    eprintln!("pause on B seen by A after {took:?}");
    // Both read from memory again.
    until_cached(&a, session).await;
    until_cached(&b, session).await;
    assert_eq!(held(&read(&a, session).await), 3);
}

mod memory {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_come_from_memory_and_see_every_change() {
        super::reads_come_from_memory_and_see_every_change(super::Kind::Memory).await;
    }
}

mod redis {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_come_from_memory_and_see_every_change() {
        super::reads_come_from_memory_and_see_every_change(super::Kind::Redis).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn twins_see_each_others_changes() {
        super::twins_see_each_others_changes(super::Kind::Redis).await;
    }
}
