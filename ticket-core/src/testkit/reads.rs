//! The read side: a user's holds across sessions, the audit trail in pages, counts kept with
//! every change, the waiting line. Complete, ordered and stable while writers write.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::fixture::{Fixture, T0, grade, user};
use crate::error::{Error, InvalidInput};
use crate::ids::{HoldId, UserId};
use crate::model::audit::{Actor, AuditScope};
use crate::model::counts::SessionCounts;
use crate::model::hold::{Hold, HoldState, TransitionRequest};
use crate::model::page::{AuditCursor, AuditQuery, HoldCursor, MAX_PAGE_LIMIT, PageOrder};
use crate::store::Stores;

/// Holds made before the paging starts (more than 10 000).
const PRESENT: usize = 10_050;
/// Writers that keep writing during the paging.
const WRITERS: usize = 64;

/// Makes `n` one-unit holds for `owner` in `f`'s session with 64 tasks, at instants spread
/// over `T0 + 1 ms ..`, returning their ids.
async fn make_holds(f: &Fixture, owner: &UserId, n: usize) -> Vec<HoldId> {
    let f_session = f.session;
    let stores = f.rush.stores().clone();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let stores = stores.clone();
        let owner = owner.clone();
        let template = f.new_hold(&owner, 1, T0, T0);
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in (w..n).step_by(WRITERS) {
                let now = T0.plus(Duration::from_millis(1 + i as u64 / 7));
                let req = crate::model::hold::NewHold {
                    id: HoldId::new_at(now),
                    session: f_session,
                    user: owner.clone(),
                    now,
                    expires_at: now.plus(Duration::from_secs(3600)),
                    ..template.clone()
                };
                ids.push(stores.reservations.hold(req).await.expect("hold").id);
            }
            ids
        }));
    }
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        all.extend(t.await.expect("writer"));
    }
    all
}

/// Every hold of `owner` through keyset pages of `limit`, checking that cursors strictly
/// decrease and no hold repeats.
async fn page_user_holds(stores: &Stores, owner: &UserId, limit: usize) -> Vec<Hold> {
    let mut out: Vec<Hold> = Vec::new();
    let mut after: Option<HoldCursor> = None;
    loop {
        let page = stores
            .reservations
            .holds_of_user(owner, after, limit)
            .await
            .expect("holds_of_user");
        assert!(page.items.len() <= limit, "a page longer than its limit");
        for h in &page.items {
            assert_eq!(&h.user, owner, "another user's hold in the page");
            let c = HoldCursor::of(h);
            if let Some(prev) = out.last() {
                assert!(
                    c < HoldCursor::of(prev),
                    "holds not newest first: {c} after {}",
                    HoldCursor::of(prev)
                );
            }
            if let Some(a) = after {
                assert!(c < a, "a page started at or before its cursor");
            }
            out.push(h.clone());
        }
        match page.next {
            Some(n) => {
                assert_eq!(Some(&n), page.items.last().map(HoldCursor::of).as_ref());
                after = Some(n);
            }
            None => return out,
        }
    }
}

/// Every record of `scope` through keyset pages in `order`, checking order and uniqueness.
async fn page_audit(
    stores: &Stores,
    scope: AuditScope,
    order: PageOrder,
) -> Vec<crate::model::audit::AuditRecord> {
    let mut out: Vec<crate::model::audit::AuditRecord> = Vec::new();
    let mut after: Option<AuditCursor> = None;
    loop {
        let q = AuditQuery {
            scope: scope.clone(),
            order,
            after,
            limit: MAX_PAGE_LIMIT,
        };
        let page = stores
            .reservations
            .audit_page(&q)
            .await
            .expect("audit_page");
        for r in &page.items {
            let c = AuditCursor::of(r);
            if let Some(prev) = out.last() {
                let p = AuditCursor::of(prev);
                match order {
                    PageOrder::OldestFirst => assert!(c > p, "audit not oldest first"),
                    PageOrder::NewestFirst => assert!(c < p, "audit not newest first"),
                }
            }
            out.push(r.clone());
        }
        match page.next {
            Some(n) => after = Some(n),
            None => return out,
        }
    }
}

/// Spawns writers that keep making holds for `owner` and releasing them until `stop`.
fn keep_writing(
    f: &Fixture,
    owner: &UserId,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<usize>> {
    (0..WRITERS)
        .map(|w| {
            let stores = f.rush.stores().clone();
            let stop = stop.clone();
            let template = f.new_hold(owner, 1, T0, T0);
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let now = T0.plus(Duration::from_secs(60 + (w * 1000 + n) as u64));
                    let req = crate::model::hold::NewHold {
                        id: HoldId::new_at(now),
                        now,
                        expires_at: now.plus(Duration::from_secs(3600)),
                        ..template.clone()
                    };
                    let h = stores.reservations.hold(req).await.expect("writer hold");
                    stores
                        .reservations
                        .transition(TransitionRequest {
                            hold: h.id,
                            to: HoldState::Released,
                            payment_ref: None,
                            actor: Actor::system("writer"),
                            reason: "writer".into(),
                            correlation_id: None,
                            now,
                        })
                        .await
                        .expect("writer release");
                    n += 1;
                    tokio::task::yield_now().await;
                }
                n
            })
        })
        .collect()
}

/// A user's holds (more than 10 000 in one session, a few in another), the session's audit
/// trail in both directions, the user's and one hold's: every item that existed before
/// the paging is listed exactly once, in `(time, id)` order, while 64 tasks keep writing;
/// afterwards a full paging lists everything. Bad page sizes are `PageLimit`.
pub async fn reads_are_complete_ordered_and_stable_while_64_tasks_write(stores: Stores) {
    let f = Fixture::general(stores.clone(), 1_000_000, Duration::ZERO).await;
    let other = Fixture::general(stores.clone(), 10, Duration::ZERO).await;
    let owner = user(1);
    let mut present: Vec<HoldId> = make_holds(&f, &owner, PRESENT).await;
    present.extend(make_holds(&other, &owner, 3).await);
    let bystander = f.hold(&user(2), 1).await;

    let stop = Arc::new(AtomicBool::new(false));
    let writers = keep_writing(&f, &owner, stop.clone());
    let listed = page_user_holds(&stores, &owner, MAX_PAGE_LIMIT).await;
    let session_old = page_audit(
        &stores,
        AuditScope::Session(f.session),
        PageOrder::OldestFirst,
    )
    .await;
    let user_new = page_audit(
        &stores,
        AuditScope::User(owner.clone()),
        PageOrder::NewestFirst,
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    let mut written = 0;
    for w in writers {
        written += w.await.expect("writer");
    }
    assert!(written > 0, "the writers never wrote during the paging");

    let listed_ids: HashSet<HoldId> = listed.iter().map(|h| h.id).collect();
    assert_eq!(listed_ids.len(), listed.len(), "a hold was listed twice");
    for id in &present {
        assert!(
            listed_ids.contains(id),
            "hold {id} made before the paging is missing"
        );
    }
    assert!(
        !listed_ids.contains(&bystander.id),
        "another user's hold was listed"
    );
    let created: HashSet<HoldId> = session_old
        .iter()
        .filter(|r| r.from.is_none())
        .filter_map(|r| match r.subject {
            crate::model::audit::Subject::Hold(h) => Some(h),
            _ => None,
        })
        .collect();
    for id in present.iter().take(PRESENT) {
        assert!(
            created.contains(id),
            "the session trail lacks the creation of {id}"
        );
    }
    assert!(
        user_new.iter().all(|r| r.owner == owner),
        "another user's record in the user trail"
    );
    let user_holds: HashSet<_> = user_new.iter().map(|r| r.subject).collect();
    for id in &present {
        assert!(
            user_holds.contains(&crate::model::audit::Subject::Hold(*id)),
            "the user trail lacks hold {id}"
        );
    }

    // Quiet now: complete, and the two directions agree.
    let all = page_user_holds(&stores, &owner, 137).await;
    assert_eq!(
        all.len(),
        present.len() + written,
        "holds_of_user is incomplete"
    );
    let old = page_audit(
        &stores,
        AuditScope::Session(f.session),
        PageOrder::OldestFirst,
    )
    .await;
    let mut new = page_audit(
        &stores,
        AuditScope::Session(f.session),
        PageOrder::NewestFirst,
    )
    .await;
    new.reverse();
    assert_eq!(old, new, "the two directions disagree");
    let expected_records = PRESENT + 1 + 2 * written;
    assert_eq!(
        old.len(),
        expected_records,
        "the session trail is incomplete"
    );
    let one = present[0];
    let trail = page_audit(&stores, AuditScope::Hold(one), PageOrder::OldestFirst).await;
    assert_eq!(trail.len(), 1);
    assert_eq!(trail[0].to, "HELD");

    for bad in [0, MAX_PAGE_LIMIT + 1] {
        let err = stores
            .reservations
            .holds_of_user(&owner, None, bad)
            .await
            .expect_err("bad page size");
        assert!(
            matches!(err, Error::Invalid(InvalidInput::PageLimit { .. })),
            "{err:?}"
        );
        let q = AuditQuery {
            scope: AuditScope::User(owner.clone()),
            order: PageOrder::NewestFirst,
            after: None,
            limit: bad,
        };
        let err = stores
            .reservations
            .audit_page(&q)
            .await
            .expect_err("bad page size");
        assert!(
            matches!(err, Error::Invalid(InvalidInput::PageLimit { .. })),
            "{err:?}"
        );
    }
    let nobody = UserId::new("nobody").expect("user id");
    let empty = stores
        .reservations
        .holds_of_user(&nobody, None, 10)
        .await
        .expect("unknown user");
    assert!(empty.items.is_empty() && empty.next.is_none());
}

/// A hold's trail lists its transitions in the order they happened, even within one
/// millisecond, and pages by `(at, id)` from both ends.
pub async fn a_holds_trail_is_in_transition_order_within_one_millisecond(stores: Stores) {
    let f = Fixture::general(stores.clone(), 5, Duration::ZERO).await;
    let h = f.hold(&user(1), 1).await;
    f.pay(&h).await;
    f.rush
        .cancellations
        .cancel(h.id, &user(1), "changed plans")
        .await
        .expect("cancel");
    let states: Vec<String> = page_audit(&stores, AuditScope::Hold(h.id), PageOrder::OldestFirst)
        .await
        .into_iter()
        .map(|r| r.to)
        .collect();
    assert_eq!(states, ["HELD", "PAYING", "CONFIRMED", "CANCELLED"]);
    let q = AuditQuery {
        scope: AuditScope::Hold(h.id),
        order: PageOrder::NewestFirst,
        after: None,
        limit: 1,
    };
    let first = stores.reservations.audit_page(&q).await.expect("page");
    assert_eq!(first.items[0].to, "CANCELLED");
    let second = stores
        .reservations
        .audit_page(&AuditQuery {
            after: first.next,
            ..q
        })
        .await
        .expect("page");
    assert_eq!(second.items[0].to, "CONFIRMED");
}

/// A session's records never go back in time: a change made with a clock behind the
/// previous record's instant is recorded at that instant, so the trail and the feed list
/// records in write order whatever the callers' clocks.
pub async fn a_sessions_trail_never_goes_back_in_time(stores: Stores) {
    let f = Fixture::general(stores.clone(), 5, Duration::ZERO).await;
    let late = T0.plus(Duration::from_secs(10));
    let owner = user(1);
    let hold = stores
        .reservations
        .hold(f.new_hold(&owner, 1, late, late.plus(Duration::from_secs(600))))
        .await
        .expect("hold");
    // Another caller whose clock is 5 s behind releases it.
    stores
        .reservations
        .transition(TransitionRequest {
            hold: hold.id,
            to: HoldState::Released,
            payment_ref: None,
            actor: Actor::system("behind"),
            reason: "clock behind".into(),
            correlation_id: None,
            now: T0.plus(Duration::from_secs(5)),
        })
        .await
        .expect("release");
    let trail = page_audit(
        &stores,
        AuditScope::Session(f.session),
        PageOrder::OldestFirst,
    )
    .await;
    let states: Vec<&str> = trail.iter().map(|r| r.to.as_str()).collect();
    assert_eq!(
        states,
        ["HELD", "RELEASED"],
        "the trail is not in write order"
    );
    assert!(
        trail.iter().all(|r| r.at == late),
        "a record went back in time: {trail:?}"
    );
    let feed = stores
        .feed
        .changes(f.session, 0, 10)
        .await
        .expect("changes")
        .changes;
    assert!(
        feed.windows(2).all(|w| w[0].at <= w[1].at),
        "the feed went back in time"
    );
}

fn ga_counts(c: &SessionCounts) -> (u32, u32, u32, u32) {
    let g = c
        .grades
        .iter()
        .find(|g| g.grade == grade("GA"))
        .expect("GA counts");
    (g.available, g.held, g.paying, g.sold)
}

/// Counts follow every transition: units by state per grade (PAYING within held) and holds
/// by state, equal to what the holds themselves say.
pub async fn counts_follow_every_transition(stores: Stores) {
    let f = Fixture::general(stores.clone(), 10, Duration::ZERO).await;
    let counts = || async { stores.inventory.counts(f.session).await.expect("counts") };
    let c = counts().await;
    assert_eq!(c.session, f.session);
    assert_eq!(ga_counts(&c), (10, 0, 0, 0));
    assert_eq!(c.holds.total(), 0);

    let a = f.hold(&user(1), 2).await;
    let b = f.hold(&user(2), 3).await;
    let c = counts().await;
    assert_eq!(ga_counts(&c), (5, 5, 0, 0));
    assert_eq!(c.holds.held, 2);
    f.rush
        .payments
        .start(a.id, &user(1), "pay-a")
        .await
        .expect("start");
    let c = counts().await;
    assert_eq!(ga_counts(&c), (5, 5, 2, 0));
    assert_eq!((c.holds.held, c.holds.paying), (1, 1));
    let _ = f
        .rush
        .payments
        .succeeded(a.id, "pay-a")
        .await
        .expect("paid");
    let c = counts().await;
    assert_eq!(ga_counts(&c), (5, 3, 0, 2));
    assert_eq!((c.holds.held, c.holds.paying, c.holds.confirmed), (1, 0, 1));
    f.rush.holds.release(b.id, &user(2)).await.expect("release");
    f.rush
        .cancellations
        .cancel(a.id, &user(1), "plans")
        .await
        .expect("cancel");
    let c = counts().await;
    assert_eq!(ga_counts(&c), (10, 0, 0, 0));
    assert_eq!(
        (c.holds.released, c.holds.cancelled, c.holds.confirmed),
        (1, 1, 0)
    );
    let d = f.hold(&user(3), 1).await;
    f.clock.advance(Duration::from_secs(24 * 3600));
    f.rush.expiry.sweep(1000).await.expect("sweep");
    let c = counts().await;
    assert_eq!(ga_counts(&c), (10, 0, 0, 0));
    assert_eq!(c.holds.expired, 1, "{d:?} did not count as expired");
    assert_eq!(c.holds.total(), 3);
    assert!(c.is_consistent());
    assert!(matches!(
        stores
            .inventory
            .counts(crate::ids::SessionId::new_at(T0))
            .await,
        Err(Error::NotFound { .. })
    ));
}

/// 64 tasks hold, start payments, confirm and release at once; afterwards the counts equal
/// the stock snapshot and the holds' own states, and never broke conservation on the way.
pub async fn counts_stay_exact_under_race(stores: Stores) {
    let f = Arc::new(Fixture::general(stores.clone(), 200, Duration::ZERO).await);
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let stores = stores.clone();
        let stop = stop.clone();
        let session = f.session;
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let c = stores.inventory.counts(session).await.expect("counts");
                assert!(c.is_consistent(), "inconsistent counts mid-race: {c:?}");
                tokio::task::yield_now().await;
            }
        })
    };
    let mut tasks = Vec::new();
    for t in 0..WRITERS {
        let f = f.clone();
        tasks.push(tokio::spawn(async move {
            let u = user(100 + t);
            for i in 0..4 {
                let Ok(h) = f.rush.holds.hold(f.units(&u, 1 + (i % 2)), None).await else {
                    continue;
                };
                match (t + i as usize) % 3 {
                    0 => {
                        f.rush.holds.release(h.id, &u).await.expect("release");
                    }
                    1 => {
                        let r = format!("p-{}", h.id);
                        f.rush.payments.start(h.id, &u, &r).await.expect("start");
                        let _ = f.rush.payments.succeeded(h.id, &r).await.expect("paid");
                    }
                    _ => {
                        let r = format!("p-{}", h.id);
                        f.rush.payments.start(h.id, &u, &r).await.expect("start");
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    stop.store(true, Ordering::Relaxed);
    watcher.await.expect("watcher");
    let c = stores.inventory.counts(f.session).await.expect("counts");
    let (available, held, sold) = f.ga().await;
    let (ca, ch, cp, cs) = ga_counts(&c);
    assert_eq!(
        (ca, ch, cs),
        (available, held, sold),
        "counts disagree with the stock"
    );
    let mut by_state = crate::model::counts::HoldStateCounts::default();
    let mut paying_units = 0;
    for t in 0..WRITERS {
        for h in page_user_holds(&stores, &user(100 + t), MAX_PAGE_LIMIT).await {
            *by_state.get_mut(h.state) += 1;
            if h.state == HoldState::Paying {
                paying_units += h.units();
            }
        }
    }
    assert_eq!(c.holds, by_state, "hold counts disagree with the holds");
    assert_eq!(
        cp, paying_units,
        "paying units disagree with the PAYING holds"
    );
}

/// The waiting line lists WAITING tickets with their places, in line order, by keyset
/// pages: admitted and departed users are gone, and the order agrees with positions.
pub async fn waiting_line_lists_the_line_in_order(stores: Stores) {
    let f = super::queue::queued(stores.clone(), 100).await;
    f.set_policy(|p| p.queue.max_active = 3).await;
    f.join_all(10).await;
    let round = f.admit().await;
    assert_eq!(round.admitted.len(), 3);
    f.rush
        .admission
        .leave(f.session, &user(5))
        .await
        .expect("leave");
    let mut line = Vec::new();
    let mut after = None;
    loop {
        let page = stores
            .queue
            .waiting_line(f.session, after, 2)
            .await
            .expect("waiting_line");
        if page.is_empty() {
            break;
        }
        after = page.last().map(|p| p.line);
        line.extend(page);
    }
    let users: Vec<UserId> = line.iter().map(|p| p.user.clone()).collect();
    assert_eq!(users, [3, 4, 6, 7, 8, 9].map(user));
    assert!(line.windows(2).all(|w| w[0].line < w[1].line));
    for (i, p) in line.iter().enumerate() {
        let v = f.view(users_index(&p.user)).await;
        assert_eq!(v.ticket.id, p.ticket);
        assert_eq!(v.ticket.seq, Some(p.line));
        assert_eq!(
            v.position,
            Some(i as u64 + 1),
            "position disagrees with the line"
        );
    }
    let err = stores
        .queue
        .waiting_line(f.session, None, 0)
        .await
        .expect_err("bad page size");
    assert!(matches!(
        err,
        Error::Invalid(InvalidInput::PageLimit { .. })
    ));
}

fn users_index(u: &UserId) -> usize {
    u.as_str()
        .trim_start_matches("user-")
        .parse()
        .expect("fixture user")
}
