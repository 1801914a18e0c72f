//! The conformance suite on the in-memory backend.

async fn stores() -> ticket_core::Stores {
    ticket_core::memory::MemoryStore::new().stores()
}

ticket_core::conformance_tests!(stores);
