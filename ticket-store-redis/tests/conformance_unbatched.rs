//! The conformance suite again with coalescing off (`max_batch = 1`): every hold, join, view
//! and leave is its own script call, so both paths are held to the same contract.

mod common;

async fn stores() -> ticket_core::Stores {
    common::isolated_store(1).await.stores()
}

ticket_core::conformance_tests!(stores);
