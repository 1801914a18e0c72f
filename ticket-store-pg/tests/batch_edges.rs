//! Requests that meet inside one coalesced batch: the batch decides them against each other,
//! not only against what is stored. One admission serves one hold, one hold id one hold.

mod common;

use std::time::Duration;

use ticket_core::model::hold::AdmissionCheck;
use ticket_core::testkit::{Fixture, T0, user};
use ticket_core::{Error, InvalidInput, Refusal};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_admission_and_one_hold_id_serve_one_hold_inside_a_batch() {
    let store = common::isolated_store(64).await;
    let stores = store.stores();
    let f = Fixture::general(stores.clone(), 100, Duration::ZERO).await;
    f.join(1).await;
    assert_eq!(f.admit().await.admitted.len(), 1);
    let expires = T0.plus(Duration::from_secs(600));

    // Hold the session's batch in flight on a locked stock row, so the next requests queue
    // and go together in the following batch.
    let mut side = common::side_connection(&store).await;
    sqlx::query("BEGIN")
        .execute(&mut side)
        .await
        .expect("begin");
    sqlx::query("SELECT 1 FROM stock FOR UPDATE")
        .execute(&mut side)
        .await
        .expect("lock");
    let first = {
        let (stores, req) = (stores.clone(), f.new_hold(&user(0), 1, T0, expires));
        tokio::spawn(async move { stores.reservations.hold(req).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut admitted = f.new_hold(&user(1), 1, T0, expires);
    admitted.admission = AdmissionCheck::Required;
    let mut admitted_again = f.new_hold(&user(1), 1, T0, expires);
    admitted_again.admission = AdmissionCheck::Required;
    let same_id = f.new_hold(&user(2), 1, T0, expires);
    let requests = [admitted, admitted_again, same_id.clone(), same_id];
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|req| {
            let stores = stores.clone();
            tokio::spawn(async move { stores.reservations.hold(req).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    sqlx::query("ROLLBACK")
        .execute(&mut side)
        .await
        .expect("rollback");

    first.await.expect("task").expect("first hold");
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.expect("task"));
    }
    let admission: Vec<_> = results[..2].iter().collect();
    assert_eq!(
        admission.iter().filter(|r| r.is_ok()).count(),
        1,
        "{admission:?}"
    );
    assert!(
        admission
            .iter()
            .any(|r| matches!(r, Err(Error::Refused(Refusal::NotAdmitted)))),
        "{admission:?}"
    );
    let same: Vec<_> = results[2..].iter().collect();
    assert_eq!(same.iter().filter(|r| r.is_ok()).count(), 1, "{same:?}");
    assert!(
        same.iter()
            .any(|r| matches!(r, Err(Error::Invalid(InvalidInput::Definition(_))))),
        "{same:?}"
    );
    assert_eq!(f.ga().await, (97, 3, 0));
    let used: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit WHERE subject_kind = 'ticket' AND to_state = 'USED'",
    )
    .fetch_one(&mut side)
    .await
    .expect("count");
    assert_eq!(used, 1);
}
