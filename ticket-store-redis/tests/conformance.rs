//! The full `ticket-core` conformance suite against a real Redis (`REDIS_URL`), each test on
//! its own key prefix, with holds and joins coalesced as in production.

mod common;

async fn stores() -> ticket_core::Stores {
    common::isolated_store(64).await.stores()
}

ticket_core::conformance_tests!(stores);
