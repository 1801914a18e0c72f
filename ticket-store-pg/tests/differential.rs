//! Proptest: random scenarios (joins, admissions, holds, payments, releases, cancellations,
//! time jumps, sweeps) run through the services on PostgreSQL and on the in-memory reference
//! must give the same answers and end in the same state.

mod common;

use proptest::test_runner::{Config, TestRunner};
use ticket_core::testkit::{agrees_with_the_memory_backend, scenarios};

#[test]
fn postgres_agrees_with_the_memory_backend() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(32);
    let mut runner = TestRunner::new(Config {
        cases,
        ..Config::default()
    });
    let result = runner.run(&scenarios(40), |steps| {
        // A schema per case: sweeps are global, so cases must not see each other's holds.
        rt.block_on(async {
            let store = common::isolated_store(64).await;
            agrees_with_the_memory_backend(store.stores(), &steps).await;
        });
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
