//! Proptest: random scenarios (joins, admissions, holds, payments, releases, cancellations,
//! time jumps, sweeps) run through the services on Redis and on the in-memory reference must
//! give the same answers and end in the same state. A key prefix per case.

mod common;

#[test]
fn redis_agrees_with_the_memory_backend() {
    ticket_core::testkit::agrees_on_random_scenarios(|| async {
        common::isolated_store(64).await.stores()
    });
}
