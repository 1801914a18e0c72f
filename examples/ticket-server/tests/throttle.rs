//! The throttle stores' guarantees, one shared body per property, run on memory, Redis and
//! PostgreSQL with two handles (separate connections, as two server processes have): the
//! Lua and SQL steps give exactly the verdicts of the pure rules in `throttle::policy`
//! (time is passed in, so the whole backoff ladder runs in microseconds), and racing steps
//! never let more through than the rules allow.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Kind, Namespace};
use ticket_core::Timestamp;
use ticket_server::stores::throttle::{
    Backoff, MemoryThrottle, PgThrottle, PgThrottleConfig, Rate, RedisThrottle,
    RedisThrottleConfig, ThrottleStore, Verdict, attempt_step, gcra_step,
};
use ticketrush_test_support::{Service, database_url, redis_url};

/// Two handles on one isolated store, and its namespace (removed when dropped).
async fn stores(kind: Kind) -> (Arc<dyn ThrottleStore>, Arc<dyn ThrottleStore>, Namespace) {
    let ns = Namespace::new(kind);
    let (redis, pg) = (redis_url(), database_url());
    let (a, b): (Arc<dyn ThrottleStore>, Arc<dyn ThrottleStore>) = match kind {
        Kind::Memory => {
            let m = Arc::new(MemoryThrottle::new());
            (m.clone(), m)
        }
        Kind::Redis => {
            let config = RedisThrottleConfig::new(&redis).with_prefix(format!("{}:app", ns.name));
            let connect = async |config| {
                Service::Redis.connected(&redis, RedisThrottle::connect(config).await)
            };
            (
                Arc::new(connect(config.clone()).await),
                Arc::new(connect(config).await),
            )
        }
        Kind::Pg => {
            let config = PgThrottleConfig::new(&pg).with_schema(format!("{}_app", ns.name));
            let a = Service::Postgres.connected(&pg, PgThrottle::connect(config.clone()).await);
            a.migrate().await.expect("migrate");
            let b = PgThrottle::connect(config).await.expect("postgres");
            b.migrate().await.expect("migrate twice");
            (Arc::new(a), Arc::new(b))
        }
    };
    (a, b, ns)
}

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(1_700_000_000_000 + ms)
}

fn backoff() -> Backoff {
    Backoff {
        threshold: 3,
        first: Duration::from_millis(100),
        max: Duration::from_millis(1_000),
        forget_after: Duration::from_millis(5_000),
    }
}

/// A script of steps at chosen instants on alternating handles: every verdict equals the
/// pure rule's, through the burst, refusals, refill and a key going idle.
async fn gcra_steps_match_the_rule(kind: Kind) {
    let (a, b, _ns) = stores(kind).await;
    let rate = Rate::new(4, Duration::from_secs(1)).expect("rate");
    let mut tat = None;
    let times = [
        0, 0, 1, 2, 3, 4, 250, 251, 600, 2_000, 2_000, 2_001, 2_002, 2_003, 2_004,
    ];
    for (i, t) in times.into_iter().enumerate() {
        let store = if i % 2 == 0 { &a } else { &b };
        let got = store
            .acquire("login:ip:192.0.2.1", rate, at(t))
            .await
            .expect("acquire");
        let (want, next) = gcra_step(tat, rate, at(t).as_millis());
        assert_eq!(got, want, "step {i} at +{t} ms");
        if next.is_some() {
            tat = next;
        }
    }
    // Keys are independent.
    assert_eq!(
        a.acquire("login:ip:192.0.2.2", rate, at(2_004))
            .await
            .unwrap(),
        Verdict::Allowed
    );
}

/// The failure ladder through the threshold, the doubling, the cap, a success's reset and a
/// forgotten key: every verdict equals the pure rule's.
async fn attempt_steps_match_the_rule(kind: Kind) {
    let (a, b, _ns) = stores(kind).await;
    let backoff = backoff();
    let key = "login:acct:abc";
    let mut state = None;
    let mut t = 0;
    let check = |got: Verdict, t: i64, state: &mut Option<_>, i: usize| {
        let (want, next) = attempt_step(*state, backoff, at(t).as_millis());
        assert_eq!(got, want, "attempt {i} at +{t} ms");
        if next.is_some() {
            *state = next;
        }
        got
    };
    let mut locks = Vec::new();
    for i in 0..40 {
        let store = if i % 2 == 0 { &a } else { &b };
        let got = store.attempt(key, backoff, at(t)).await.expect("attempt");
        match check(got, t, &mut state, i) {
            // Wait out the lock (and 1 ms more) every other refusal; retry early otherwise.
            Verdict::Refused { retry_after } => {
                locks.push(retry_after.as_millis());
                if i % 3 == 0 {
                    t += 1;
                } else {
                    t += i64::try_from(retry_after.as_millis()).unwrap();
                }
            }
            Verdict::Allowed => t += 1,
        }
    }
    // Locks of 100, 200, 400, 800 ms, then capped at 1 000 (seen 1 ms into each).
    for lock in [99, 199, 399, 799, 999] {
        assert!(locks.contains(&lock), "the ladder ran: {locks:?}");
    }
    assert!(locks.iter().all(|&l| l < 1_000), "{locks:?}");
    // A success clears the key: the next attempt is the first again.
    a.clear(key).await.expect("clear");
    state = None;
    let got = b.attempt(key, backoff, at(t)).await.unwrap();
    check(got, t, &mut state, 100);
    assert_eq!(state.map(|s| s.count), Some(1));
    // Forgotten after `forget_after` of quiet.
    for _ in 0..2 {
        let got = a.attempt(key, backoff, at(t)).await.unwrap();
        check(got, t, &mut state, 101);
    }
    t += 20_000;
    let got = a.attempt(key, backoff, at(t)).await.unwrap();
    assert_eq!(got, Verdict::Allowed);
    check(got, t, &mut state, 102);
    assert_eq!(state.map(|s| s.count), Some(1), "counting started again");
}

/// 60 tasks on two handles take from one bucket of 10 at the same instant: exactly 10 pass.
async fn racing_acquires_never_exceed_the_burst(kind: Kind) {
    let (a, b, _ns) = stores(kind).await;
    let rate = Rate::new(10, Duration::from_secs(60)).expect("rate");
    let mut tasks = Vec::new();
    for i in 0..60 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            store
                .acquire("signup:ip:192.0.2.9", rate, at(0))
                .await
                .expect("acquire")
        }));
    }
    let mut allowed = 0;
    for t in tasks {
        allowed += usize::from(t.await.unwrap() == Verdict::Allowed);
    }
    assert_eq!(allowed, 10);
}

/// 60 racing login attempts for one account: exactly `threshold` are counted and allowed.
async fn racing_attempts_never_pass_the_threshold(kind: Kind) {
    let (a, b, _ns) = stores(kind).await;
    let mut tasks = Vec::new();
    for i in 0..60 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            store
                .attempt("login:acct:race", backoff(), at(0))
                .await
                .expect("attempt")
        }));
    }
    let mut allowed = 0;
    for t in tasks {
        allowed += usize::from(t.await.unwrap() == Verdict::Allowed);
    }
    assert_eq!(allowed, 3);
}

/// Keys out of bounds are refused without touching the store.
async fn bad_keys_are_refused(kind: Kind) {
    let (a, _b, _ns) = stores(kind).await;
    let rate = Rate::new(1, Duration::from_secs(1)).expect("rate");
    assert!(a.acquire("", rate, at(0)).await.is_err());
    assert!(a.acquire(&"k".repeat(201), rate, at(0)).await.is_err());
    assert!(a.attempt("", backoff(), at(0)).await.is_err());
    assert!(a.clear("").await.is_err());
}

common::on_all_backends!(
    gcra_steps_match_the_rule,
    attempt_steps_match_the_rule,
    racing_acquires_never_exceed_the_burst,
    racing_attempts_never_pass_the_threshold,
    bad_keys_are_refused,
);
