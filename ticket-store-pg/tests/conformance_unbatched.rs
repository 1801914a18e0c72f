//! The conformance suite again with coalescing off (`max_batch = 1`): one transaction per
//! hold and per join, the path a single buyer takes.

mod common;

async fn stores() -> ticket_core::Stores {
    common::isolated_store(1).await.stores()
}

ticket_core::conformance_tests!(stores);
