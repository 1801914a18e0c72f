//! The full `ticket-core` conformance suite against a real PostgreSQL (`DATABASE_URL`), each
//! test in its own schema, with holds coalesced as in production.

mod common;

async fn stores() -> ticket_core::Stores {
    common::isolated_store(64).await.stores()
}

ticket_core::conformance_tests!(stores);
