//! Sizes beyond what one Redis command or Lua `unpack` takes at once: a pre-queue of
//! thousands drawn in one script, and an admission round of thousands.

mod common;

use std::time::Duration;

use ticket_core::ids::UserId;
use ticket_core::model::queue::{AdmissionPacing, JoinRequest};
use ticket_core::store::WaitingQueue;
use ticket_core::testkit::{Fixture, T0};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pre_queue_of_thousands_is_drawn_and_admitted_whole() {
    const USERS: usize = 12_000;
    let store = common::isolated_store(64).await;
    let f = Fixture::general(store.stores(), 20_000, Duration::from_secs(60)).await;
    let users: Vec<UserId> = (0..USERS)
        .map(|i| UserId::new(format!("fan-{i}")).expect("user"))
        .collect();
    let joins: Vec<_> = users
        .chunks(USERS / 8)
        .map(|chunk| {
            let (store, chunk, session) = (store.clone(), chunk.to_vec(), f.session);
            tokio::spawn(async move {
                for user in chunk {
                    store
                        .join(JoinRequest {
                            session,
                            user,
                            now: T0,
                            pre_queue: true,
                            max_waiting: None,
                        })
                        .await
                        .expect("pre-queue join");
                }
            })
        })
        .collect();
    for j in joins {
        j.await.expect("joiner");
    }
    let draw = store.draw(f.session, 7, T0).await.expect("draw");
    assert_eq!(draw.joined.len(), USERS);
    assert_eq!(
        draw.order,
        ticket_core::model::queue::draw_order(&draw.joined, 7),
        "the recorded order is not the replay of its seed"
    );
    let stats = store.stats(f.session, T0).await.expect("stats");
    assert_eq!((stats.waiting, stats.pre_queue), (USERS as u64, 0));
    let round = store
        .admit(
            f.session,
            AdmissionPacing {
                max_active: 20_000,
                max_per_minute: 20_000,
                admission_ttl: Duration::from_secs(120),
                units_per_user: 1,
            },
            T0,
        )
        .await
        .expect("admit");
    assert_eq!(round.admitted.len(), USERS, "{:?}", round.limit);
    let admitted: Vec<&UserId> = round.admitted.iter().map(|t| &t.user).collect();
    let drawn: Vec<&UserId> = draw.order.iter().collect();
    assert_eq!(admitted, drawn, "admission did not follow the drawn order");
}
