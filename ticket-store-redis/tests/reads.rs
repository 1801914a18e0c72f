//! The read side on Redis: the feed, counts and audit trail agree with the memory backend
//! record for record; a user's holds and audit trail page across sessions; the audit trail
//! is complete; counts stay consistent under a race.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use ticket_core::ids::{AuditId, HoldId, UserId};
use ticket_core::memory::MemoryStore;
use ticket_core::model::audit::{Actor, AuditRecord, AuditScope, Subject};
use ticket_core::model::change::Change;
use ticket_core::model::hold::{AdmissionCheck, HoldState, TransitionRequest};
use ticket_core::model::page::{AuditQuery, HoldCursor, PageOrder};
use ticket_core::model::queue::{AdmissionPacing, JoinRequest};
use ticket_core::testkit::{Fixture, T0, user};
use ticket_core::{Error, InvalidInput, Stores, Timestamp};

fn at(ms: u64) -> Timestamp {
    T0.plus(Duration::from_millis(ms))
}

/// The same story on any backend: joins (with the implicit draw), admissions, holds that
/// sell out and come back, payment, expiry, a late re-booking. Returns the session.
async fn story(stores: &Stores, ids: &[HoldId]) -> Fixture {
    let f = Fixture::general(stores.clone(), 3, Duration::ZERO).await;
    let s = f.session;
    for (i, now) in [(0, at(1)), (1, at(2)), (2, at(3))] {
        stores
            .queue
            .join(JoinRequest {
                session: s,
                user: user(i),
                now,
                pre_queue: false,
                max_waiting: None,
            })
            .await
            .expect("join");
    }
    let pacing = AdmissionPacing {
        max_active: 2,
        max_per_minute: 100,
        admission_ttl: Duration::from_secs(60),
        units_per_user: 1,
    };
    stores.queue.admit(s, pacing, at(4)).await.expect("admit");
    let hold = |id: HoldId, u: usize, q: u32, now: Timestamp, adm: bool| {
        let mut h = f.new_hold(&user(u), q, now, now.plus(Duration::from_secs(10)));
        h.id = id;
        if adm {
            h.admission = AdmissionCheck::Required;
        }
        h
    };
    let r = &stores.reservations;
    r.hold(hold(ids[0], 0, 2, at(5), true)).await.expect("h0");
    r.hold(hold(ids[1], 1, 1, at(6), true))
        .await
        .expect("h1 sells out");
    let mv = |id: HoldId, to: HoldState, now: Timestamp| TransitionRequest {
        hold: id,
        to,
        now,
        actor: Actor::system("test"),
        reason: "test".into(),
        correlation_id: None,
        payment_ref: Some("pay".into()),
    };
    r.transition(mv(ids[0], HoldState::Paying, at(7)))
        .await
        .expect("paying");
    r.transition(mv(ids[1], HoldState::Released, at(8)))
        .await
        .expect("released");
    r.transition(mv(ids[0], HoldState::Confirmed, at(9)))
        .await
        .expect("confirmed");
    r.hold(hold(ids[2], 2, 1, at(10), false))
        .await
        .expect("h2 sells out again");
    stores
        .queue
        .leave(s, &user(2), at(11))
        .await
        .expect("leave");
    let due = r.expire_due(at(20_000), 10).await.expect("sweep");
    assert_eq!(due.len(), 1, "h2 expires");
    let late = ticket_core::model::hold::RebookRequest {
        hold: ids[2],
        new_id: ids[3],
        payment_ref: "late".into(),
        now: at(20_001),
        actor: Actor::system("test"),
        per_user_limit: None,
    };
    r.rebook(late).await.expect("rebook");
    f
}

/// A change without what differs between backends (session id, minted ticket ids).
fn comparable(c: &Change) -> String {
    let subject = match c.subject {
        Some(Subject::Hold(h)) => format!("hold {h}"),
        Some(Subject::Ticket(_)) => "ticket".into(),
        Some(Subject::Session(_)) => "session".into(),
        None => "-".into(),
    };
    format!(
        "{} {} {:?} {subject} {:?} {:?}",
        c.seq, c.at, c.kind, c.owner, c.line
    )
}

/// A record without what differs between backends (minted ticket ids, the session's bits
/// at the end of the record id).
fn comparable_record(r: &AuditRecord) -> String {
    let id = r.id.to_string();
    let id = id.get(..28).unwrap_or_default();
    let subject = match r.subject {
        Subject::Hold(h) => format!("hold {h}"),
        Subject::Ticket(_) => "ticket".into(),
        Subject::Session(_) => "session".into(),
    };
    format!(
        "{id} {} {subject} {} {:?} {:?} {}",
        r.at, r.owner, r.from, r.to, r.reason
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_counts_and_audit_agree_with_the_memory_backend() {
    let ids: Vec<HoldId> = (0..4).map(|i| HoldId::new_at(at(i))).collect();
    let redis = common::isolated_store(64).await;
    let memory = MemoryStore::new();
    let (rs, ms) = (redis.stores(), memory.stores());
    let rf = story(&rs, &ids).await;
    let mf = story(&ms, &ids).await;

    let rc = rs
        .feed
        .changes(rf.session, 0, 500)
        .await
        .expect("redis feed");
    let mc = ms
        .feed
        .changes(mf.session, 0, 500)
        .await
        .expect("memory feed");
    assert_eq!(rc.head, mc.head, "heads");
    let r: Vec<String> = rc.changes.iter().map(comparable).collect();
    let m: Vec<String> = mc.changes.iter().map(comparable).collect();
    assert_eq!(r, m, "feeds");

    let mut rcounts = rs.inventory.counts(rf.session).await.expect("redis counts");
    let mcounts = ms
        .inventory
        .counts(mf.session)
        .await
        .expect("memory counts");
    rcounts.session = mcounts.session;
    assert_eq!(rcounts, mcounts, "counts");
    assert!(rcounts.is_consistent());

    for order in [PageOrder::OldestFirst, PageOrder::NewestFirst] {
        let page = |stores: &Stores, scope: AuditScope| {
            let stores = stores.clone();
            async move {
                stores
                    .reservations
                    .audit_page(&AuditQuery {
                        scope,
                        order,
                        after: None,
                        limit: 500,
                    })
                    .await
                    .expect("audit page")
                    .items
                    .iter()
                    .map(comparable_record)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(
            page(&rs, AuditScope::Session(rf.session)).await,
            page(&ms, AuditScope::Session(mf.session)).await,
            "session trail {order:?}"
        );
        for id in &ids {
            assert_eq!(
                page(&rs, AuditScope::Hold(*id)).await,
                page(&ms, AuditScope::Hold(*id)).await,
                "hold trail {order:?}"
            );
        }
        for u in 0..3 {
            assert_eq!(
                page(&rs, AuditScope::User(user(u))).await,
                page(&ms, AuditScope::User(user(u))).await,
                "user trail {order:?}"
            );
        }
    }
    // The ids are built in Lua with AuditId::sequenced's layout.
    let first = rs
        .reservations
        .audit(&AuditScope::Session(rf.session), 1)
        .await
        .expect("audit");
    assert_eq!(first[0].id, AuditId::sequenced(first[0].at, 1, rf.session));

    for u in 0..3 {
        let r = rs
            .reservations
            .holds_of_user(&user(u), None, 10)
            .await
            .expect("redis");
        let m = ms
            .reservations
            .holds_of_user(&user(u), None, 10)
            .await
            .expect("memory");
        let strip = |p: ticket_core::model::page::HoldPage| {
            p.items
                .into_iter()
                .map(|mut h| {
                    h.session = mf.session;
                    h.admission = None;
                    h
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(r), strip(m), "holds of user {u}");
    }
    let rl = rs
        .queue
        .waiting_line(rf.session, None, 10)
        .await
        .expect("line");
    let ml = ms
        .queue
        .waiting_line(mf.session, None, 10)
        .await
        .expect("line");
    assert_eq!(rl.len(), ml.len(), "waiting line");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_holds_page_across_sessions_newest_first() {
    let store = common::isolated_store(64).await;
    let a = Fixture::general(store.stores(), 100, Duration::ZERO).await;
    let b = Fixture::general(store.stores(), 100, Duration::ZERO).await;
    let r = store.stores().reservations;
    let buyer = UserId::new("buyer").expect("user");
    let mut made = Vec::new();
    for i in 0..23u64 {
        let f = if i % 2 == 0 { &a } else { &b };
        // Several holds share a millisecond: ties go by id.
        let now = at(i / 3);
        let h = f.new_hold(&buyer, 1, now, now.plus(Duration::from_secs(600)));
        made.push(r.hold(h).await.expect("hold"));
        r.hold(f.new_hold(&user(1), 1, now, now.plus(Duration::from_secs(600))))
            .await
            .expect("someone else's hold");
    }
    made.sort_by_key(|h| std::cmp::Reverse(HoldCursor::of(h)));
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = r.holds_of_user(&buyer, after, 5).await.expect("page");
        seen.extend(page.items);
        match page.next {
            Some(c) => after = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, made, "every hold once, newest first");
    for bad in [0, 501] {
        let err = r.holds_of_user(&buyer, None, bad).await.expect_err("limit");
        assert!(
            matches!(err, Error::Invalid(InvalidInput::PageLimit { .. })),
            "{err:?}"
        );
    }
    let none = r
        .holds_of_user(&UserId::new("nobody").expect("user"), None, 10)
        .await
        .expect("unknown user");
    assert!(none.items.is_empty() && none.next.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_trail_is_complete_and_pages_both_ways() {
    let store = common::isolated_store(64).await;
    let f = Fixture::general(store.stores(), 2_000, Duration::ZERO).await;
    let g = Fixture::general(store.stores(), 10, Duration::ZERO).await;
    let r = store.stores().reservations;
    // 1 200 records, more than the 1 000 a cap of old could have been set to, from
    // concurrent batches, with clocks that do not agree.
    let mut tasks = Vec::new();
    for i in 0..1_200u64 {
        let r = r.clone();
        let now = at((i * 7919) % 50);
        let h = f.new_hold(
            &user((i % 40) as usize),
            1,
            now,
            now.plus(Duration::from_secs(600)),
        );
        tasks.push(tokio::spawn(async move { r.hold(h).await.expect("hold") }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    r.hold(g.new_hold(&user(0), 1, at(1), at(600_000)))
        .await
        .expect("other session");
    for order in [PageOrder::OldestFirst, PageOrder::NewestFirst] {
        for (scope, expected) in [
            (AuditScope::Session(f.session), 1_200),
            (AuditScope::User(user(0)), 31),
        ] {
            let mut all: Vec<AuditRecord> = Vec::new();
            let mut after = None;
            loop {
                let page = r
                    .audit_page(&AuditQuery {
                        scope: scope.clone(),
                        order,
                        after,
                        limit: 97,
                    })
                    .await
                    .expect("page");
                all.extend(page.items);
                match page.next {
                    Some(c) => after = Some(c),
                    None => break,
                }
            }
            assert_eq!(all.len(), expected, "{scope:?} {order:?}");
            let ids: HashSet<AuditId> = all.iter().map(|r| r.id).collect();
            assert_eq!(ids.len(), expected, "no record twice");
            let keys: Vec<(Timestamp, AuditId)> = all.iter().map(|r| (r.at, r.id)).collect();
            let mut sorted = keys.clone();
            sorted.sort();
            if order == PageOrder::NewestFirst {
                sorted.reverse();
            }
            assert_eq!(keys, sorted, "ordered by (at, id) {order:?}");
        }
    }
    let old = r
        .audit(&AuditScope::Session(f.session), 5_000)
        .await
        .expect("audit");
    assert_eq!(old.len(), 1_200, "audit() reads the whole trail too");
    let err = r
        .audit_page(&AuditQuery {
            scope: AuditScope::Session(f.session),
            order: PageOrder::OldestFirst,
            after: None,
            limit: 0,
        })
        .await
        .expect_err("limit 0");
    assert!(matches!(
        err,
        Error::Invalid(InvalidInput::PageLimit { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counts_stay_consistent_under_a_race() {
    let store = common::isolated_store(64).await;
    let f = Fixture::general(store.stores(), 50, Duration::ZERO).await;
    let stores = store.stores();
    let mut tasks = Vec::new();
    for i in 0..120usize {
        let stores = stores.clone();
        let req = f.new_hold(&user(i), 1 + (i % 2) as u32, at(1), at(600_000));
        tasks.push(tokio::spawn(async move {
            let Ok(h) = stores.reservations.hold(req).await else {
                return;
            };
            let moves: &[HoldState] = match i % 4 {
                0 => &[HoldState::Paying],
                1 => &[HoldState::Released],
                2 => &[HoldState::Paying, HoldState::Confirmed],
                _ => &[],
            };
            for &to in moves {
                let counts = stores.inventory.counts(h.session).await.expect("counts");
                assert!(counts.is_consistent(), "{counts:?}");
                stores
                    .reservations
                    .transition(TransitionRequest {
                        hold: h.id,
                        to,
                        now: at(2),
                        actor: Actor::system("test"),
                        reason: "race".into(),
                        correlation_id: None,
                        payment_ref: None,
                    })
                    .await
                    .expect("transition");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let counts = stores.inventory.counts(f.session).await.expect("counts");
    assert!(counts.is_consistent(), "{counts:?}");
    let snapshot = stores
        .inventory
        .snapshot(f.session)
        .await
        .expect("snapshot");
    let g = &counts.grades[0];
    assert_eq!(
        (g.available, g.held, g.sold),
        (
            snapshot.grades[0].available,
            snapshot.grades[0].held,
            snapshot.grades[0].sold
        )
    );
    let holds = counts.holds;
    let feed = stores.feed.changes(f.session, 0, 500).await.expect("feed");
    let created = feed
        .changes
        .iter()
        .filter(|c| c.kind == ticket_core::model::change::ChangeKind::HoldCreated)
        .count() as u64;
    assert_eq!(holds.total(), created, "every hold counted once");
    assert!(g.paying <= g.held);
}
