//! Idempotency: one execution per key, replays, key reuse, in-flight repeats, expiry.

use std::sync::Arc;
use std::time::Duration;

use super::fixture::{Fixture, user};
use crate::error::{Error, InvalidInput, Refusal};
use crate::model::idempotency::{Claim, Fingerprint, IdempotencyKey, StoredOutcome};
use crate::store::Stores;

/// The same key and payload return the same response, and the operation ran once.
pub async fn idempotent_repeat_returns_the_same_outcome(stores: Stores) {
    let f = Fixture::general(stores, 10, Duration::ZERO).await;
    let u = user(1);
    let first = f
        .rush
        .holds
        .hold(f.units(&u, 2), Some("k-1"))
        .await
        .expect("hold");
    f.clock.advance(Duration::from_secs(5));
    let again = f
        .rush
        .holds
        .hold(f.units(&u, 2), Some("k-1"))
        .await
        .expect("replay");
    assert_eq!(again, first, "a repeat did not return the first response");
    assert_eq!(f.ga().await, (8, 2, 0), "the repeat held again");
    // The same key string under another user is another record.
    let other = f
        .rush
        .holds
        .hold(f.units(&user(2), 2), Some("k-1"))
        .await
        .expect("hold");
    assert_ne!(other.id, first.id);
    assert_eq!(f.ga().await, (6, 4, 0));
}

/// Another payload under a used key is `KeyReused` and runs nothing.
pub async fn reused_key_with_other_payload_is_rejected(stores: Stores) {
    let f = Fixture::general(stores, 10, Duration::ZERO).await;
    let u = user(1);
    f.rush
        .holds
        .hold(f.units(&u, 1), Some("k"))
        .await
        .expect("hold");
    let err = f
        .rush
        .holds
        .hold(f.units(&u, 3), Some("k"))
        .await
        .expect_err("reused");
    assert!(matches!(err, Error::KeyReused), "{err:?}");
    assert_eq!(f.ga().await, (9, 1, 0));
    let long = "x".repeat(256);
    let err = f
        .rush
        .holds
        .hold(f.units(&u, 1), Some(&long))
        .await
        .expect_err("too long");
    assert!(
        matches!(
            err,
            Error::Invalid(InvalidInput::IdempotencyKey { len: 256 })
        ),
        "{err:?}"
    );
    f.rush
        .holds
        .hold(f.units(&u, 1), Some(&"y".repeat(255)))
        .await
        .expect("255 is fine");
}

/// Concurrent repeats of one request execute once: one hold, every other caller gets the
/// same hold or `InFlight`.
pub async fn concurrent_repeats_execute_once(stores: Stores) {
    let f = Arc::new(Fixture::general(stores, 100, Duration::ZERO).await);
    let u = user(1);
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (f, u) = (f.clone(), u.clone());
            tokio::spawn(async move { f.rush.holds.hold(f.units(&u, 1), Some("same")).await })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        match t.await.expect("task") {
            Ok(h) => {
                ids.insert(h.id);
            }
            Err(Error::InFlight) => {}
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    assert_eq!(ids.len(), 1, "the request executed {} times", ids.len());
    assert_eq!(f.ga().await, (99, 1, 0));
    // The store alone: exactly one of many concurrent claims starts.
    let store = f.rush.stores().idempotency.clone();
    let key = IdempotencyKey::new("u", "op", "raw").expect("key");
    let fp = Fingerprint::of("payload").expect("fingerprint");
    let now = super::T0;
    let claims: Vec<_> = (0..32)
        .map(|_| {
            let (store, key) = (store.clone(), key.clone());
            tokio::spawn(async move {
                store
                    .claim(&key, fp, now, now.plus(Duration::from_secs(60)))
                    .await
            })
        })
        .collect();
    let mut started = 0;
    for c in claims {
        match c.await.expect("task") {
            Ok(Claim::Started) => started += 1,
            Err(Error::InFlight) => {}
            other => panic!("unexpected claim result: {other:?}"),
        }
    }
    assert_eq!(started, 1);
}

/// A refusal is stored and replayed even after the cause is gone; input rejected before
/// anything ran is not stored, so a corrected retry runs.
pub async fn refusals_are_replayed_and_rejected_input_is_not_stored(stores: Stores) {
    let f = Fixture::general(stores, 2, Duration::ZERO).await;
    let u = user(1);
    let blocker = f.hold(&user(2), 2).await;
    let err = f
        .rush
        .holds
        .hold(f.units(&u, 1), Some("r"))
        .await
        .expect_err("sold out");
    assert!(
        matches!(err, Error::Refused(Refusal::SoldOut { .. })),
        "{err:?}"
    );
    f.rush
        .holds
        .release(blocker.id, &user(2))
        .await
        .expect("release");
    let replay = f
        .rush
        .holds
        .hold(f.units(&u, 1), Some("r"))
        .await
        .expect_err("replayed");
    assert_eq!(
        replay.refusal(),
        err.refusal(),
        "the refusal was not replayed"
    );
    assert_eq!(f.ga().await, (2, 0, 0));
    // Invalid input (0 units) is not stored: the same key with a valid payload runs.
    let err = f
        .rush
        .holds
        .hold(f.units(&u, 0), Some("v"))
        .await
        .expect_err("invalid");
    assert!(
        matches!(err, Error::Invalid(InvalidInput::Quantity { .. })),
        "{err:?}"
    );
    f.rush
        .holds
        .hold(f.units(&u, 1), Some("v"))
        .await
        .expect("runs after invalid input");
}

/// Records are forgotten after the retention period; an in-flight marker lapses after its
/// TTL so a crashed request can be retried.
pub async fn idempotency_keys_expire_after_retention(stores: Stores) {
    let f = Fixture::general(stores, 10, Duration::ZERO).await;
    let u = user(1);
    let first = f
        .rush
        .holds
        .hold(f.units(&u, 1), Some("e"))
        .await
        .expect("hold");
    f.clock.advance(f.rush.limits().idempotency_retention);
    let second = f
        .rush
        .holds
        .hold(f.units(&u, 1), Some("e"))
        .await
        .expect("new run");
    assert_ne!(second.id, first.id, "a record outlived its retention");
    let store = f.rush.stores().idempotency.clone();
    let key = IdempotencyKey::new("u", "op", "crash").expect("key");
    let fp = Fingerprint::of(&1).expect("fingerprint");
    let now = crate::clock::Clock::now(&f.clock);
    let until = now.plus(Duration::from_secs(60));
    assert_eq!(
        store.claim(&key, fp, now, until).await.expect("claim"),
        Claim::Started
    );
    assert!(matches!(
        store.claim(&key, fp, now, until).await,
        Err(Error::InFlight)
    ));
    let other = Fingerprint::of(&2).expect("fingerprint");
    assert!(matches!(
        store.claim(&key, other, now, until).await,
        Err(Error::KeyReused)
    ));
    assert_eq!(
        store
            .claim(&key, fp, until, until.plus(Duration::from_secs(60)))
            .await
            .expect("claim"),
        Claim::Started
    );
    let outcome = StoredOutcome::Ok(serde_json::json!({"ok": true}));
    store
        .complete(&key, fp, &outcome, until.plus(Duration::from_secs(3_600)))
        .await
        .expect("complete");
    assert_eq!(
        store.claim(&key, fp, until, until).await.expect("claim"),
        Claim::Completed(outcome)
    );
    store.release(&key, fp).await.expect("release");
    assert!(
        matches!(
            store.claim(&key, fp, until, until).await,
            Ok(Claim::Completed(_))
        ),
        "release dropped a completed record"
    );
}
