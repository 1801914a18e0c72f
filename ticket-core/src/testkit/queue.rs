//! The waiting queue: one ticket per user, FIFO order, length cap, fair start, leaving.

use std::sync::Arc;
use std::time::Duration;

use super::fixture::{Fixture, user};
use crate::error::{Error, Refusal};
use crate::model::queue::{TicketState, draw_order};
use crate::store::Stores;

/// A session of `capacity` GA units whose holds need a queue admission, with generous pacing.
pub(super) async fn queued(stores: Stores, capacity: u32) -> Fixture {
    let f = Fixture::general(stores, capacity, Duration::ZERO).await;
    f.set_policy(|p| {
        p.queue.require_admission = true;
        p.queue.max_active = 1_000;
        p.queue.max_admissions_per_minute = 1_000;
    })
    .await;
    f
}

/// Joining again while WAITING returns the same ticket and position.
pub async fn duplicate_join_returns_same_ticket_and_position(stores: Stores) {
    let f = queued(stores, 10).await;
    let q = &f.rush.admission;
    for i in 0..3 {
        q.join(f.session, &user(i)).await.expect("join");
    }
    let first = q.join(f.session, &user(1)).await.expect("join");
    let view = q.view(f.session, &user(1)).await.expect("view");
    let again = q.join(f.session, &user(1)).await.expect("join again");
    assert_eq!(again, first);
    let view2 = q.view(f.session, &user(1)).await.expect("view");
    assert_eq!(view2.position, Some(2));
    assert_eq!(view2.position, view.position);
    assert_eq!(view2.waiting, 3);
    let err = q.view(f.session, &user(9)).await.expect_err("never joined");
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

/// Concurrent joins get distinct positions 1..n, and admission follows that order: nobody is
/// admitted while someone who joined earlier still waits.
pub async fn concurrent_joins_are_admitted_in_fifo_order(stores: Stores) {
    let f = Arc::new(queued(stores, 1_000).await);
    let joins: Vec<_> = (0..64)
        .map(|i| {
            let f = f.clone();
            tokio::spawn(async move { f.rush.admission.join(f.session, &user(i)).await })
        })
        .collect();
    let mut tickets = Vec::new();
    for j in joins {
        tickets.push(j.await.expect("task").expect("join"));
    }
    let mut by_position = Vec::new();
    for t in &tickets {
        let v = f
            .rush
            .admission
            .view(f.session, &t.user)
            .await
            .expect("view");
        by_position.push((
            v.position.expect("waiting has a position"),
            t.seq,
            t.user.clone(),
        ));
    }
    by_position.sort();
    let positions: Vec<u64> = by_position.iter().map(|p| p.0).collect();
    assert_eq!(
        positions,
        (1..=64).collect::<Vec<u64>>(),
        "positions are not 1..n"
    );
    assert!(
        by_position.windows(2).all(|w| w[0].1 < w[1].1),
        "position disagrees with join order"
    );
    // Admit in small rounds; each round takes the head of the line.
    f.set_policy(|p| p.queue.max_admissions_per_minute = 10)
        .await;
    let mut admitted = Vec::new();
    for _ in 0..7 {
        let round = f.admit().await;
        admitted.extend(round.admitted.into_iter().map(|t| t.user));
        f.clock.advance(Duration::from_secs(61));
    }
    let expected: Vec<_> = by_position.iter().map(|p| p.2.clone()).collect();
    assert_eq!(admitted, expected, "admission order is not FIFO");
}

/// A join beyond the length cap is `QueueFull` and changes nothing; a duplicate join of a
/// waiting user still succeeds.
pub async fn queue_length_cap_answers_queue_full(stores: Stores) {
    let f = queued(stores, 10).await;
    f.set_policy(|p| p.queue.max_waiting = Some(3)).await;
    f.join_all(3).await;
    let err = f
        .rush
        .admission
        .join(f.session, &user(3))
        .await
        .expect_err("full");
    assert!(
        matches!(err, Error::Refused(Refusal::QueueFull { cap: 3 })),
        "{err:?}"
    );
    f.join(0).await;
    let stats = f.stats().await;
    assert_eq!(stats.waiting, 3);
    f.rush
        .admission
        .leave(f.session, &user(1))
        .await
        .expect("leave");
    f.join(3).await;
}

/// Users who join before the open wait in a pre-queue that is shuffled once at the open with
/// a recorded, replayable seed; later joiners are FIFO behind them.
pub async fn pre_queue_is_shuffled_once_with_a_recorded_seed(stores: Stores) {
    let f = Fixture::general(stores, 1_000, Duration::from_secs(600)).await;
    f.set_policy(|p| p.queue.require_admission = true).await;
    let q = &f.rush.admission;
    let early = f.rush.limits().pre_queue_opens_before + Duration::from_secs(600);
    f.clock.set(crate::clock::Clock::now(&f.clock).minus(early));
    let err = q.join(f.session, &user(0)).await.expect_err("too early");
    assert!(
        matches!(err, Error::Refused(Refusal::QueueNotOpen { .. })),
        "{err:?}"
    );
    f.clock.advance(early);
    for i in 0..20 {
        let t = q.join(f.session, &user(i)).await.expect("pre-queue join");
        assert!(t.pre_queue && t.seq.is_none());
    }
    let v = q.view(f.session, &user(5)).await.expect("view");
    assert_eq!((v.position, v.pre_queue), (None, 20));
    let err = q
        .draw(f.session, 1)
        .await
        .expect_err("no draw before the open");
    assert!(
        matches!(err, Error::Refused(Refusal::SalesNotOpen { .. })),
        "{err:?}"
    );
    f.clock.advance(Duration::from_secs(600));
    let draw = q.draw(f.session, 0xC0FFEE).await.expect("draw");
    assert_eq!(draw.seed, 0xC0FFEE);
    assert_eq!(draw.joined, (0..20).map(user).collect::<Vec<_>>());
    assert_eq!(
        draw.order,
        draw_order(&draw.joined, draw.seed),
        "draw is not replayable"
    );
    assert_eq!(
        q.draw(f.session, 7).await.expect("again"),
        draw,
        "the pre-queue was drawn twice"
    );
    q.join(f.session, &user(20)).await.expect("after the open");
    q.join(f.session, &user(21)).await.expect("after the open");
    for (i, u) in draw
        .order
        .iter()
        .chain([user(20), user(21)].iter())
        .enumerate()
    {
        let v = q.view(f.session, u).await.expect("view");
        assert_eq!(
            v.position,
            Some(i as u64 + 1),
            "{u} is not where the draw put them"
        );
    }
}

/// Leaving is idempotent; a user who left can join again at the back.
pub async fn leaving_is_idempotent(stores: Stores) {
    let f = queued(stores, 10).await;
    f.join_all(3).await;
    let left = f
        .rush
        .admission
        .leave(f.session, &user(0))
        .await
        .expect("leave");
    assert_eq!(left.state, TicketState::Left);
    assert_eq!(
        f.rush
            .admission
            .leave(f.session, &user(0))
            .await
            .expect("again"),
        left
    );
    assert_eq!(f.view(1).await.position, Some(1));
    let back = f.join(0).await;
    assert_ne!(back.id, left.id);
    assert_eq!(f.view(0).await.position, Some(3));
}
