//! Hold ids are unique across sessions: a second hold under a used id is refused as invalid
//! and leaves the stock of its session as it was (the compensation path of the batched hold).

mod common;

use std::time::Duration;

use ticket_core::ids::HoldId;
use ticket_core::model::hold::NewHold;
use ticket_core::store::{Inventory, Reservations};
use ticket_core::testkit::{Fixture, T0, user};
use ticket_core::{Error, InvalidInput};

/// A request for 2 units by user 1 under hold id `id` in the fixture's session.
fn new_hold(f: &Fixture, id: HoldId) -> NewHold {
    NewHold {
        id,
        ..f.new_hold(&user(1), 2, T0, T0.plus(Duration::from_secs(300)))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_id_used_in_another_session_is_refused_and_changes_nothing() {
    for max_batch in [1, 64] {
        let store = common::isolated_store(max_batch).await;
        let a = Fixture::general(store.stores(), 5, Duration::ZERO).await;
        let b = Fixture::general(store.stores(), 5, Duration::ZERO).await;
        let id = HoldId::new_at(T0);
        store.hold(new_hold(&a, id)).await.expect("first hold");
        let err = store
            .hold(new_hold(&b, id))
            .await
            .expect_err("same id in another session");
        assert!(
            matches!(err, Error::Invalid(InvalidInput::Definition(_))),
            "{err:?}"
        );
        let b_totals = store.snapshot(b.session).await.expect("snapshot").totals();
        assert_eq!((b_totals.available, b_totals.held), (5, 0), "{b_totals:?}");
        let kept = store
            .get(id)
            .await
            .expect("the first hold is still reachable");
        assert_eq!(kept.session, a.session);
        let a_totals = store.snapshot(a.session).await.expect("snapshot").totals();
        assert_eq!((a_totals.available, a_totals.held), (3, 2));
        // Same id again in the same session: refused too, nothing overwritten.
        let err = store
            .hold(new_hold(&a, id))
            .await
            .expect_err("same id, same session");
        assert!(matches!(err, Error::Invalid(_)), "{err:?}");
        assert_eq!(store.get(id).await.expect("hold"), kept);
    }
}
