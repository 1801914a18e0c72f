//! The live side of issue 17 over HTTP: a user's reservations paged (12 000 of them, every
//! one once), `GET /api/me/events` (paid, expired and refunded holds arrive; a resume with
//! `Last-Event-ID` gets every missed change once), the in-app notifications with read
//! marks, queue watchers that cost no store reads each (1 vs 500 watchers), and two server
//! processes on Redis and PostgreSQL where a watcher on one sees an admission made through
//! the other within a second.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use common::{Kind, Server, buy, call, ga_session, join_and_hold, server, twin, user_token};
use serde_json::Value;
use ticket_core::model::audit::Actor;
use ticket_core::model::hold::{AdmissionCheck, NewHold};
use ticket_core::model::inventory::Grade;
use ticket_core::model::selection::Selection;
use ticket_core::{HoldId, SessionId, UserId};
use tokio::sync::mpsc;

/// One Server-Sent Event.
#[derive(Debug, Clone)]
struct Sse {
    id: Option<String>,
    event: String,
    data: String,
}

/// Opens `path` as an event stream and forwards its events until the stream ends or the
/// receiver is dropped.
async fn open_stream(
    server: &Server,
    path: &str,
    token: &str,
    last_id: Option<&str>,
) -> mpsc::UnboundedReceiver<Sse> {
    let mut req = reqwest::Client::new()
        .get(format!("{}{path}", server.url))
        .header("authorization", format!("Bearer {token}"));
    if let Some(id) = last_id {
        req = req.header("last-event-id", id);
    }
    let mut resp = req.send().await.expect("request");
    assert_eq!(resp.status(), 200, "{path}");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut text = String::new();
        while let Ok(Some(chunk)) = resp.chunk().await {
            text.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = text.find("\n\n") {
                let block: String = text.drain(..end + 2).collect();
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_owned))
                };
                if let Some(event) = field("event") {
                    let sse = Sse {
                        id: field("id"),
                        event,
                        data: field("data").unwrap_or_default(),
                    };
                    if tx.send(sse).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// The next event within `limit`.
async fn next(rx: &mut mpsc::UnboundedReceiver<Sse>, limit: Duration) -> Option<Sse> {
    tokio::time::timeout(limit, rx.recv()).await.ok().flatten()
}

/// Events until one named `until` (included) or `limit` passes.
async fn until(rx: &mut mpsc::UnboundedReceiver<Sse>, name: &str, limit: Duration) -> Vec<Sse> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut out = Vec::new();
    while let Ok(Some(e)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        let done = e.event == name;
        out.push(e);
        if done {
            break;
        }
    }
    out
}

/// A hold of one GA unit made straight in the store (no queue), expiring after `ttl`.
fn new_hold(
    session: SessionId,
    user: &UserId,
    now: ticket_core::Timestamp,
    ttl: Duration,
) -> NewHold {
    NewHold {
        id: HoldId::new_at(now),
        session,
        user: user.clone(),
        selection: Selection::Units {
            grade: Grade::new("GA").expect("grade"),
            quantity: 1,
        },
        now,
        expires_at: now.plus(ttl),
        per_user_limit: None,
        admission: AdmissionCheck::NotRequired,
        actor: Actor::User(user.clone()),
        correlation_id: None,
    }
}

/// A user with 12 000 reservations sees every one of them, once, through paging (500 a
/// page), newest first.
async fn a_user_with_12000_reservations_sees_all_of_them(kind: Kind) {
    const N: usize = 12_000;
    let s = server(kind, &[]).await;
    let session = ga_session(&s, N as u32).await;
    let (token, id) = user_token(&s);
    let user = UserId::new(id).expect("user");
    let reservations = s.state.rush.stores().reservations.clone();
    let mut made = HashSet::new();
    for chunk in 0..N / 200 {
        let now = s.state.clock.now();
        let holds: Vec<NewHold> = (0..200)
            .map(|_| new_hold(session, &user, now, Duration::from_secs(3_600)))
            .collect();
        made.extend(holds.iter().map(|h| h.id.to_string()));
        let mut set = tokio::task::JoinSet::new();
        for h in holds {
            let r = reservations.clone();
            set.spawn(async move { r.hold(h).await.map(|_| ()) });
        }
        while let Some(r) = set.join_next().await {
            r.expect("task")
                .unwrap_or_else(|e| panic!("hold in chunk {chunk}: {e}"));
        }
    }
    assert_eq!(made.len(), N);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let more = cursor
            .as_ref()
            .map_or(String::new(), |c| format!("&cursor={c}"));
        let page = call(
            &s,
            "GET",
            &format!("/api/me/reservations?limit=500{more}"),
            Some(&token),
            &[],
            None,
        )
        .await;
        assert_eq!(page.status, 200, "{page:?}");
        pages += 1;
        let items = page.json["reservations"].as_array().expect("items");
        seen.extend(items.iter().map(|r| {
            (
                r["created_at"].as_i64().expect("created_at"),
                r["id"].as_str().expect("id").to_owned(),
            )
        }));
        match page.json["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages <= N / 500 + 1, "paging does not end");
    }
    let ids: HashSet<String> = seen.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(seen.len(), N, "each reservation once");
    assert_eq!(ids, made, "every reservation");
    assert!(
        seen.windows(2).all(|w| w[0] >= w[1]),
        "newest first by (created_at, id)"
    );
    // A malformed cursor or limit is refused.
    for bad in [
        "limit=0",
        "limit=501",
        "cursor=nope",
        "cursor=1_x",
        "extra=1",
    ] {
        let a = call(
            &s,
            "GET",
            &format!("/api/me/reservations?{bad}"),
            Some(&token),
            &[],
            None,
        )
        .await;
        assert_eq!(a.status, 400, "{bad}: {a:?}");
    }
}

/// `GET /api/me/events` carries my paid, expired and refunded holds (and nothing of
/// another user's).
async fn my_events_carry_paid_expired_and_refunded_holds(kind: Kind) {
    let s = server(kind, &[]).await;
    let session = ga_session(&s, 10).await;
    let (me, my_id) = user_token(&s);
    let (other, _) = user_token(&s);
    let mut events = open_stream(&s, "/api/me/events", &me, None).await;
    let ready = next(&mut events, Duration::from_secs(10))
        .await
        .expect("ready");
    assert_eq!(ready.event, "ready", "{ready:?}");
    assert!(ready.id.as_deref().is_some_and(|id| id.starts_with("1.")));

    let (bought, _) = buy(&s, session, &me, "buy-1", 1).await;
    let _ = buy(&s, session, &other, "buy-2", 1).await;
    let user = UserId::new(my_id).expect("user");
    let expiring = new_hold(
        session,
        &user,
        s.state.clock.now(),
        Duration::from_millis(300),
    );
    let expiring_id = expiring.id.to_string();
    s.state
        .rush
        .stores()
        .reservations
        .hold(expiring)
        .await
        .expect("hold");
    let cancelled = call(
        &s,
        "POST",
        &format!("/api/reservations/{bought}/cancel"),
        Some(&me),
        &[("idempotency-key", "c-1")],
        None,
    )
    .await;
    assert_eq!(cancelled.status, 200, "{cancelled:?}");

    let mut got: Vec<(String, String)> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let wanted = [
        ("hold_confirmed", bought.clone()),
        ("hold_refunded", bought.clone()),
        ("hold_expired", expiring_id.clone()),
    ];
    while !wanted
        .iter()
        .all(|(k, h)| got.iter().any(|(gk, gh)| gk == k && gh == h))
    {
        let Ok(Some(e)) = tokio::time::timeout_at(deadline, events.recv()).await else {
            panic!("missing events; got {got:?}");
        };
        let data: Value = serde_json::from_str(&e.data).expect("json");
        assert_eq!(data["kind"].as_str(), Some(e.event.as_str()), "{e:?}");
        assert_eq!(
            data["session_id"].as_str(),
            Some(session.to_string().as_str())
        );
        let hold = data["hold_id"].as_str().unwrap_or_default().to_owned();
        assert!(
            hold.is_empty() || hold == bought || hold == expiring_id,
            "only my holds: {e:?}"
        );
        got.push((e.event, hold));
    }
    // The order of one hold's changes is the feed's.
    let of_bought: Vec<&str> = got
        .iter()
        .filter(|(_, h)| *h == bought)
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(
        of_bought,
        [
            "hold_created",
            "hold_paying",
            "hold_confirmed",
            "hold_cancelled",
            "hold_refunded"
        ],
        "{got:?}"
    );
    // A Last-Event-ID that is no id of this stream starts from now, after a resync of
    // every session.
    for bad in ["41", "1.!!", "2.AA", "1.AAAA"] {
        let mut fresh = open_stream(&s, "/api/me/events", &me, Some(bad)).await;
        let first = until(&mut fresh, "ready", Duration::from_secs(10)).await;
        let names: Vec<(&str, &str)> = first
            .iter()
            .map(|e| (e.event.as_str(), e.data.as_str()))
            .collect();
        assert_eq!(
            names.first(),
            Some(&("resync", r#"{"session_id":null}"#)),
            "{bad}: {first:?}"
        );
        assert_eq!(names.last().map(|e| e.0), Some("ready"), "{bad}: {first:?}");
        assert_eq!(names.len(), 2, "{bad}: {first:?}");
    }
    assert_eq!(
        call(&s, "GET", "/api/me/events", None, &[], None)
            .await
            .status,
        401
    );
}

/// A stream resumed with `Last-Event-ID` replays every change missed while disconnected,
/// each once (in two sessions), then `ready`; resuming from the last id replays nothing.
async fn my_events_resume_gets_every_missed_change_once(kind: Kind) {
    let s = server(kind, &[]).await;
    let (a, b) = (ga_session(&s, 10).await, ga_session(&s, 10).await);
    let (me, _) = user_token(&s);
    let mut first = open_stream(&s, "/api/me/events", &me, None).await;
    let ready = next(&mut first, Duration::from_secs(10))
        .await
        .expect("ready");
    let (held_a, _) = buy(&s, a, &me, "a-1", 1).await;
    let seen = until(&mut first, "hold_confirmed", Duration::from_secs(10)).await;
    let last = seen.last().expect("events").clone();
    assert_eq!(last.event, "hold_confirmed", "{seen:?}");
    drop(first);

    // Missed while away: a hold and its payment in b, a release in a.
    let (held_b, _) = buy(&s, b, &me, "b-1", 1).await;
    let released = join_and_hold(&s, a, &me, "a-2", 1).await;
    let gone = call(
        &s,
        "DELETE",
        &format!("/api/holds/{released}"),
        Some(&me),
        &[],
        None,
    )
    .await;
    assert_eq!(gone.status, 200, "{gone:?}");

    let mut resumed = open_stream(&s, "/api/me/events", &me, last.id.as_deref()).await;
    let replay = until(&mut resumed, "ready", Duration::from_secs(10)).await;
    assert_eq!(
        replay.last().map(|e| e.event.as_str()),
        Some("ready"),
        "{replay:?}"
    );
    let changes: Vec<Value> = replay[..replay.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(&e.data).expect("json"))
        .collect();
    let keys: Vec<(String, u64)> = changes
        .iter()
        .map(|c| {
            (
                c["session_id"].as_str().unwrap_or_default().to_owned(),
                c["seq"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let unique: BTreeSet<&(String, u64)> = keys.iter().collect();
    assert_eq!(unique.len(), keys.len(), "each once: {changes:?}");
    let of = |hold: &str| -> Vec<String> {
        changes
            .iter()
            .filter(|c| c["hold_id"].as_str() == Some(hold))
            .map(|c| c["kind"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert!(
        of(&held_a).is_empty(),
        "nothing seen before is replayed: {changes:?}"
    );
    assert_eq!(
        of(&held_b),
        ["hold_created", "hold_paying", "hold_confirmed"],
        "{changes:?}"
    );
    assert_eq!(
        of(&released),
        ["hold_created", "hold_released"],
        "{changes:?}"
    );
    // Both sessions are in the cursor; the ids only grow.
    let ready_id = replay.last().and_then(|e| e.id.clone()).expect("id");
    assert_ne!(ready_id, ready.id.clone().unwrap_or_default());
    drop(resumed);
    // Resuming from the latest id replays nothing.
    let mut again = open_stream(&s, "/api/me/events", &me, Some(&ready_id)).await;
    let nothing = until(&mut again, "ready", Duration::from_secs(10)).await;
    assert_eq!(
        nothing.iter().map(|e| e.event.as_str()).collect::<Vec<_>>(),
        ["ready"],
        "{nothing:?}"
    );
}

/// My notifications: written for my admission and my paid reservation, listed newest
/// first with the unread count, paged, and marked read (idempotent; not another user's).
async fn notifications_are_listed_and_marked_read(kind: Kind) {
    let s = server(kind, &[]).await;
    let session = ga_session(&s, 10).await;
    let (me, _) = user_token(&s);
    let (other, _) = user_token(&s);
    let (bought, _) = buy(&s, session, &me, "buy-1", 1).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let list = loop {
        let list = call(&s, "GET", "/api/me/notifications", Some(&me), &[], None).await;
        assert_eq!(list.status, 200, "{list:?}");
        if list.json["notifications"]
            .as_array()
            .is_some_and(|n| n.len() >= 2)
        {
            break list;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no notifications: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let items = list.json["notifications"]
        .as_array()
        .expect("items")
        .clone();
    let kinds: Vec<&str> = items
        .iter()
        .map(|n| n["kind"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        kinds,
        ["hold_confirmed", "admitted"],
        "newest first: {items:?}"
    );
    assert_eq!(items[0]["hold_id"].as_str(), Some(bought.as_str()));
    assert_eq!(list.json["unread"], 2);
    assert!(items.iter().all(|n| n["read"] == false));

    let first = items[0]["id"].as_str().expect("id");
    let page = call(
        &s,
        "GET",
        "/api/me/notifications?limit=1",
        Some(&me),
        &[],
        None,
    )
    .await;
    assert_eq!(page.json["notifications"][0]["id"].as_str(), Some(first));
    let cursor = page.json["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let rest = call(
        &s,
        "GET",
        &format!("/api/me/notifications?limit=1&cursor={cursor}"),
        Some(&me),
        &[],
        None,
    )
    .await;
    assert_eq!(
        rest.json["notifications"][0]["kind"], "admitted",
        "{rest:?}"
    );

    let path = format!("/api/me/notifications/{first}/read");
    let marked = call(&s, "POST", &path, Some(&me), &[], None).await;
    assert_eq!(
        (marked.status, marked.json["read"].clone()),
        (200, Value::Bool(true)),
        "{marked:?}"
    );
    assert_eq!(
        call(&s, "POST", &path, Some(&me), &[], None).await.status,
        200
    );
    let after = call(&s, "GET", "/api/me/notifications", Some(&me), &[], None).await;
    assert_eq!(after.json["unread"], 1, "{after:?}");
    assert_eq!(after.json["notifications"][0]["read"], true);
    assert_eq!(
        call(&s, "POST", &path, Some(&other), &[], None)
            .await
            .status,
        404
    );
    for bad in ["0", "abc", "01", "99999999999999999999"] {
        let a = call(
            &s,
            "POST",
            &format!("/api/me/notifications/{bad}/read"),
            Some(&me),
            &[],
            None,
        )
        .await;
        assert_eq!(a.status, 400, "{bad}: {a:?}");
    }
    // Exactly once per change, however many passes the dispatcher made.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let settled = call(&s, "GET", "/api/me/notifications", Some(&me), &[], None).await;
    assert_eq!(
        settled.json["notifications"].as_array().map(Vec::len),
        Some(2)
    );
}

/// A session whose queue admits one user at a time.
async fn one_at_a_time(server: &Server, capacity: u32) -> SessionId {
    let session = ga_session(server, capacity).await;
    let rush = &server.state.rush;
    let mut policy = rush
        .stores()
        .policies
        .policy(session)
        .await
        .expect("policy");
    policy.queue.require_admission = true;
    policy.queue.max_active = 1;
    rush.set_policy(session, &policy).await.expect("set policy");
    session
}

/// Store reads of the live hub while `watchers` users watch the queue and the line moves.
async fn hub_reads_with(watchers: usize) -> (u64, u64) {
    let s = server(
        Kind::Memory,
        &[
            "--rate-limit-per-minute",
            "100000",
            "--rate-limit-per-ip-per-minute",
            "10000000",
        ],
    )
    .await;
    let session = one_at_a_time(&s, 10).await;
    let admission = s.state.rush.admission.clone();
    let (front, front_id) = user_token(&s);
    let _ = front;
    admission
        .join(session, &UserId::new(front_id).expect("user"))
        .await
        .expect("join");
    admission.admit_next(session).await.expect("admit");
    let mut streams = Vec::new();
    for _ in 0..watchers {
        let (token, id) = user_token(&s);
        admission
            .join(session, &UserId::new(id).expect("user"))
            .await
            .expect("join");
        streams.push(token);
    }
    let mut rxs = Vec::new();
    for token in &streams {
        let path = format!("/api/sessions/{session}/queue/events");
        rxs.push(open_stream(&s, &path, token, None).await);
    }
    // Every watcher has its first position.
    for rx in &mut rxs {
        let e = next(rx, Duration::from_secs(10))
            .await
            .expect("first event");
        assert_eq!(e.event, "position", "{e:?}");
    }
    // The line moves: a newcomer every 50 ms, for 3 s; count the hub's reads meanwhile.
    let live = s.state.live.clone();
    let before = (live.counters.feed_reads(), live.counters.store_reads());
    for _ in 0..60 {
        admission
            .join(
                session,
                &UserId::new(uuid::Uuid::now_v7().to_string()).expect("user"),
            )
            .await
            .expect("join");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = (live.counters.feed_reads(), live.counters.store_reads());
    // Watchers saw the line grow (their `waiting` count changed) without reading it.
    for rx in rxs.iter_mut().take(5) {
        let mut waiting = 0;
        while let Ok(e) = rx.try_recv() {
            let v: Value = serde_json::from_str(&e.data).expect("json");
            waiting = waiting.max(v["waiting"].as_u64().unwrap_or(0));
        }
        assert!(waiting > watchers as u64, "watchers follow the line");
    }
    (after.0 - before.0, after.1 - before.1)
}

/// The hub's store reads per second do not grow with the number of watchers: 500 watchers
/// cost what 1 does (one follower per session; positions from the in-memory line).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_watchers_cost_no_store_reads_each() {
    let (feed_1, other_1) = hub_reads_with(1).await;
    let (feed_500, other_500) = hub_reads_with(500).await;
    let (one, many) = (feed_1 + other_1, feed_500 + other_500);
    eprintln!(
        "hub reads over 3 s: 1 watcher {feed_1}+{other_1}, 500 watchers {feed_500}+{other_500}"
    );
    assert!(
        many <= one * 2 + 20,
        "reads grew with watchers: {one} with 1, {many} with 500"
    );
    // Figures are read at most once per 500 ms tick (2 reads each), not per watcher.
    assert!(other_500 <= 2 * 8 + 4, "figures per tick: {other_500}");
}

/// Two server processes on one backend: a watcher connected to B sees, within 1 s, the
/// admission that a leave through A made.
async fn a_watcher_on_b_sees_an_admission_made_through_a(kind: Kind) {
    let a = server(kind, &[]).await;
    let b = twin(&a, &[]).await;
    let session = one_at_a_time(&a, 10).await;
    let (first, _) = user_token(&a);
    let (second, _) = user_token(&a);
    let q = format!("/api/sessions/{session}/queue");
    assert_eq!(
        call(&a, "POST", &q, Some(&first), &[], None).await.json["status"],
        "active"
    );
    assert_eq!(
        call(&a, "POST", &q, Some(&second), &[], None).await.json["status"],
        "waiting"
    );
    let mut watch = open_stream(&b, &format!("{q}/events"), &second, None).await;
    let e = next(&mut watch, Duration::from_secs(10))
        .await
        .expect("first event");
    assert_eq!(e.event, "position", "{e:?}");
    // Give B's follower a moment to load the line, then free the slot through A.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let left = call(&a, "DELETE", &q, Some(&first), &[], None).await;
    assert_eq!(left.status, 200, "{left:?}");
    let t0 = std::time::Instant::now();
    let seen = until(&mut watch, "admitted", Duration::from_secs(5)).await;
    let took = t0.elapsed();
    assert_eq!(
        seen.last().map(|e| e.event.as_str()),
        Some("admitted"),
        "{seen:?}"
    );
    assert!(
        took < Duration::from_secs(1),
        "admission seen after {took:?}"
    );
}

common::on_all_backends!(
    a_user_with_12000_reservations_sees_all_of_them,
    my_events_carry_paid_expired_and_refunded_holds,
    my_events_resume_gets_every_missed_change_once,
    notifications_are_listed_and_marked_read,
);

mod redis_twins {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_watcher_on_b_sees_an_admission_made_through_a() {
        super::a_watcher_on_b_sees_an_admission_made_through_a(crate::common::Kind::Redis).await;
    }
}

mod pg_twins {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_watcher_on_b_sees_an_admission_made_through_a() {
        super::a_watcher_on_b_sees_an_admission_made_through_a(crate::common::Kind::Pg).await;
    }
}
