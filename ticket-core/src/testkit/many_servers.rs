//! Several app servers on one backend sell one session together (not part of
//! `conformance_tests!`: it needs several handles on the same store).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{Fixture, grade, user};
use crate::config::TimeLimits;
use crate::model::hold::{HoldState, Selection};
use crate::service::{HoldCommand, Settlement, TicketRush};
use crate::store::Stores;
use crate::{Error, Refusal};

const CAPACITY: u32 = 60;
const BUYERS: usize = 240;

/// Several app servers sell one session together: each of `first` and `others` is one
/// server's handle on the same backend (its own connection, batches and caches). Holds,
/// payments, releases and sweeps race across them; the stock never oversells and is always
/// conserved, every hold ends once (confirmed, released or expired by exactly one sweep),
/// and sold units equal confirmed holds. Needs a multi-threaded runtime.
pub async fn app_servers_sell_one_session_without_overselling(first: Stores, others: Vec<Stores>) {
    assert!(!others.is_empty(), "give at least two servers");
    let servers_n = others.len() + 1;
    let f = Arc::new(Fixture::general(first, CAPACITY, Duration::ZERO).await);
    let mut servers = vec![f.rush.clone()];
    for store in others {
        servers.push(
            TicketRush::new(store, Arc::new(f.clock.clone()), TimeLimits::default())
                .expect("limits"),
        );
    }
    let servers = Arc::new(servers);

    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (f, done) = (f.clone(), done.clone());
        tokio::spawn(async move {
            let mut checks = 0;
            while !done.load(Ordering::SeqCst) {
                let t = f.totals().await; // asserts conservation
                assert!(t.sold + t.held <= u64::from(CAPACITY));
                checks += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            checks
        })
    };
    // Every buyer holds 1 unit through some server, then pays through another, releases,
    // or walks away (the hold expires later).
    let buyers: Vec<_> = (0..BUYERS)
        .map(|i| {
            let (servers, session) = (servers.clone(), f.session);
            tokio::spawn(async move {
                let u = user(i);
                let via = &servers[i % servers_n];
                let cmd = HoldCommand {
                    session,
                    user: u.clone(),
                    tier: None,
                    selection: Selection::Units {
                        grade: grade("GA"),
                        quantity: 1,
                    },
                };
                let hold = match via.holds.hold(cmd, None).await {
                    Ok(h) => h,
                    Err(Error::Refused(Refusal::SoldOut { .. })) => return None,
                    Err(e) => panic!("hold: {e:?}"),
                };
                let other = &servers[(i + 1) % servers_n];
                match i % 3 {
                    0 => {
                        let r = format!("pay-{i}");
                        other.payments.start(hold.id, &u, &r).await.expect("start");
                        let settled = other.payments.succeeded(hold.id, &r).await.expect("paid");
                        assert!(
                            matches!(settled, Settlement::Confirmed(_)),
                            "payment within the TTL not confirmed: {settled:?}"
                        );
                    }
                    1 => {
                        other.holds.release(hold.id, &u).await.expect("release");
                    }
                    _ => {}
                }
                Some(hold.id)
            })
        })
        .collect();
    let mut held = Vec::new();
    for b in buyers {
        if let Some(id) = b.await.expect("buyer") {
            held.push(id);
        }
    }
    // Past every TTL: all servers sweep at once.
    f.clock.advance(Duration::from_secs(600));
    let sweeps: Vec<_> = (0..servers_n)
        .map(|s| {
            let servers = servers.clone();
            tokio::spawn(async move {
                let mut expired = Vec::new();
                loop {
                    let r = servers[s].expiry.sweep(5).await.expect("sweep");
                    if r.expired.is_empty() {
                        break expired;
                    }
                    expired.extend(r.expired.into_iter().map(|h| h.id));
                }
            })
        })
        .collect();
    let mut expired = Vec::new();
    for s in sweeps {
        expired.extend(s.await.expect("sweeper"));
    }
    done.store(true, Ordering::SeqCst);
    assert!(watcher.await.expect("watcher") > 0);

    let mut unique = expired.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        expired.len(),
        "a hold was expired by two sweeps"
    );
    let totals = f.totals().await;
    assert_eq!(
        totals.held, 0,
        "units still held after every TTL: {totals:?}"
    );
    let mut confirmed = 0u64;
    for id in &held {
        let h = servers[0]
            .stores()
            .reservations
            .get(*id)
            .await
            .expect("hold");
        match h.state {
            HoldState::Confirmed => confirmed += 1,
            HoldState::Released | HoldState::Expired => {}
            other => panic!("hold {id} ended {other:?}"),
        }
    }
    assert_eq!(
        totals.sold, confirmed,
        "sold units and confirmed holds disagree"
    );
    assert_eq!(totals.available + totals.sold, u64::from(CAPACITY));
    assert!(
        held.len() as u32 >= CAPACITY,
        "every unit was held at least once"
    );
}
