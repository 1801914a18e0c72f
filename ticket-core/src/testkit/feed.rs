//! The change feed: every change once, in order, in the same step as the change; resumable
//! from any cursor; woken by writes.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::fixture::{Fixture, user};
use crate::error::{Error, InvalidInput};
use crate::model::audit::{AuditScope, Subject};
use crate::model::change::{Change, ChangeKind};
use crate::model::page::{AuditQuery, MAX_PAGE_LIMIT, PageOrder};
use crate::store::{ChangeSubscription, Stores};

/// Every change of the session, read by pages from the start.
async fn all_changes(stores: &Stores, f: &Fixture) -> Vec<Change> {
    let mut out: Vec<Change> = Vec::new();
    loop {
        let after = out.last().map_or(0, |c| c.seq);
        let page = stores
            .feed
            .changes(f.session, after, MAX_PAGE_LIMIT)
            .await
            .expect("changes");
        if page.changes.is_empty() {
            assert_eq!(
                page.head, after,
                "the head is ahead of the last change read"
            );
            return out;
        }
        out.extend(page.changes);
    }
}

fn assert_dense(changes: &[Change]) {
    for (i, c) in changes.iter().enumerate() {
        assert_eq!(c.seq, i as u64 + 1, "sequence numbers are not 1, 2, 3, …");
    }
}

/// The feed mirrors the audit trail one to one, in order (a change per hold or ticket
/// record, with its subject and owner), plus `SoldOut` when the last unit goes (once until
/// units come back) and `QueueDrawn` at the draw; sequence numbers are dense from 1.
pub async fn every_change_is_in_the_feed_once_in_order(stores: Stores) {
    let f = super::queue::queued(stores.clone(), 2).await;
    let before = stores
        .feed
        .changes(f.session, 0, 10)
        .await
        .expect("changes");
    assert!(before.changes.is_empty() && before.head == 0);
    f.join_all(3).await;
    f.admit().await;
    let a = f.hold(&user(0), 1).await;
    let b = f.hold(&user(1), 1).await;
    f.pay(&a).await;
    f.rush.holds.release(b.id, &user(1)).await.expect("release");
    f.admit().await;
    let c = f.hold(&user(2), 1).await;
    f.rush
        .cancellations
        .cancel(a.id, &user(0), "plans")
        .await
        .expect("cancel");
    f.rush
        .cancellations
        .record_refund(a.id, "refund-a", crate::model::audit::Actor::system("test"))
        .await
        .expect("refund");
    f.clock.advance(Duration::from_secs(24 * 3600));
    f.rush.expiry.sweep(100).await.expect("sweep");

    let changes = all_changes(&stores, &f).await;
    assert_dense(&changes);
    assert!(changes.iter().all(|c| c.session == f.session));
    let records = stores
        .reservations
        .audit_page(&AuditQuery {
            scope: AuditScope::Session(f.session),
            order: PageOrder::OldestFirst,
            after: None,
            limit: MAX_PAGE_LIMIT,
        })
        .await
        .expect("audit")
        .items;
    let mirrored: Vec<(ChangeKind, Option<Subject>, Option<String>)> = changes
        .iter()
        .filter(|c| !matches!(c.kind, ChangeKind::SoldOut | ChangeKind::QueueDrawn))
        .map(|c| (c.kind, c.subject, c.owner.as_ref().map(|u| u.to_string())))
        .collect();
    let expected: Vec<(ChangeKind, Option<Subject>, Option<String>)> = records
        .iter()
        .filter_map(|r| {
            ChangeKind::of_record(r).map(|k| (k, Some(r.subject), Some(r.owner.to_string())))
        })
        .collect();
    assert_eq!(
        mirrored, expected,
        "the feed does not mirror the audit trail"
    );

    let kinds: Vec<ChangeKind> = changes.iter().map(|c| c.kind).collect();
    let count = |k| kinds.iter().filter(|x| **x == k).count();
    assert_eq!(count(ChangeKind::QueueDrawn), 1, "{kinds:?}");
    assert_eq!(
        count(ChangeKind::SoldOut),
        2,
        "sold out twice (units came back once): {kinds:?}"
    );
    let first_sold_out = kinds.iter().position(|k| *k == ChangeKind::SoldOut);
    let b_created = changes
        .iter()
        .position(|x| x.kind == ChangeKind::HoldCreated && x.hold() == Some(b.id));
    assert_eq!(
        first_sold_out,
        b_created.map(|i| i + 1),
        "SoldOut must follow the hold that took the last unit"
    );
    for k in [
        ChangeKind::Joined,
        ChangeKind::Admitted,
        ChangeKind::AdmissionUsed,
        ChangeKind::HoldCreated,
        ChangeKind::HoldPaying,
        ChangeKind::HoldConfirmed,
        ChangeKind::HoldReleased,
        ChangeKind::HoldCancelled,
        ChangeKind::HoldRefunded,
        ChangeKind::HoldExpired,
    ] {
        assert!(count(k) >= 1, "no {k:?} in {kinds:?}");
    }
    let joined: Vec<&Change> = changes
        .iter()
        .filter(|x| x.kind == ChangeKind::Joined)
        .collect();
    assert!(
        joined
            .iter()
            .all(|j| j.owner.is_some() && j.ticket().is_some())
    );
    let admitted = changes
        .iter()
        .find(|x| x.kind == ChangeKind::Admitted)
        .expect("admitted");
    assert!(
        admitted.line.is_some(),
        "an admission carries the ticket's place in line"
    );
    assert!(
        changes
            .iter()
            .any(|x| x.kind == ChangeKind::HoldExpired && x.hold() == Some(c.id))
    );

    // Paging from any cursor returns the same tail.
    for after in [0, 1, 5, changes.len() as u64 - 1, changes.len() as u64] {
        let page = stores
            .feed
            .changes(f.session, after, 3)
            .await
            .expect("changes");
        let want: Vec<&Change> = changes.iter().skip(after as usize).take(3).collect();
        assert_eq!(page.changes.iter().collect::<Vec<_>>(), want);
        assert_eq!(page.head, changes.len() as u64);
    }
    let err = stores
        .feed
        .changes(f.session, 0, 0)
        .await
        .expect_err("limit 0");
    assert!(
        matches!(err, Error::Invalid(InvalidInput::PageLimit { .. })),
        "{err:?}"
    );
    let missing = crate::ids::SessionId::new_at(super::fixture::T0);
    assert!(matches!(
        stores.feed.changes(missing, 0, 10).await,
        Err(Error::NotFound { .. })
    ));
}

/// A subscriber that drops its subscription every few changes and resumes from its cursor
/// sees every change exactly once, in order, while 64 tasks hold and release.
pub async fn a_resuming_subscriber_sees_every_change_once_while_64_tasks_write(stores: Stores) {
    let f = Arc::new(Fixture::general(stores.clone(), 40, Duration::ZERO).await);
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let feed = stores.feed.clone();
        let session = f.session;
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut seen: Vec<Change> = Vec::new();
            let mut cursor = 0;
            let mut round = 0u64;
            loop {
                let mut sub = ChangeSubscription::new(feed.clone(), session, cursor);
                // Take a few changes, then drop the subscription (a reconnect).
                for _ in 0..(1 + round % 7) {
                    let next = tokio::time::timeout(Duration::from_millis(300), sub.next()).await;
                    match next {
                        Ok(c) => seen.push(c.expect("change")),
                        Err(_) => break,
                    }
                }
                cursor = sub.cursor();
                round += 1;
                if stop.load(Ordering::Relaxed) {
                    let rest = sub.pending().await.expect("pending");
                    if rest.is_empty() {
                        return seen;
                    }
                    seen.extend(rest);
                    cursor = sub.cursor();
                }
            }
        })
    };
    let mut tasks = Vec::new();
    for t in 0..64 {
        let f = f.clone();
        tasks.push(tokio::spawn(async move {
            let u = user(t);
            for _ in 0..6 {
                if let Ok(h) = f.rush.holds.hold(f.units(&u, 1), None).await {
                    f.rush.holds.release(h.id, &u).await.expect("release");
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    stop.store(true, Ordering::Relaxed);
    let seen = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("the reader caught up")
        .expect("reader");
    let all = all_changes(&stores, &f).await;
    assert!(
        all.len() >= 64 * 2,
        "the writers wrote too little: {}",
        all.len()
    );
    let seqs: HashSet<u64> = seen.iter().map(|c| c.seq).collect();
    assert_eq!(seqs.len(), seen.len(), "a change was seen twice");
    assert_eq!(
        seen, all,
        "the resuming subscriber missed or reordered changes"
    );
}

/// `wait_for_change` returns soon after a change is written (not at its timeout), and at
/// once when a change after the cursor already exists.
pub async fn waiting_for_a_change_wakes_on_the_write(stores: Stores) {
    let f = Arc::new(Fixture::general(stores.clone(), 5, Duration::ZERO).await);
    let head = stores
        .feed
        .changes(f.session, 0, 1)
        .await
        .expect("head")
        .head;
    let started = std::time::Instant::now();
    let writer = {
        let f = f.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            f.hold(&user(1), 1).await
        })
    };
    stores
        .feed
        .wait_for_change(f.session, head, Duration::from_secs(20))
        .await
        .expect("wait");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the wait was not woken by the write"
    );
    writer.await.expect("writer");
    let page = stores
        .feed
        .changes(f.session, head, 10)
        .await
        .expect("changes");
    assert_eq!(
        page.changes.first().map(|c| c.kind),
        Some(ChangeKind::HoldCreated)
    );
    let started = std::time::Instant::now();
    stores
        .feed
        .wait_for_change(f.session, head, Duration::from_secs(20))
        .await
        .expect("wait");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a pending change did not return at once"
    );
}
