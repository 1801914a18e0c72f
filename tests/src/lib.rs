//! End-to-end harness: the whole checkout (ticket-core services on a backend, the payment
//! sandbox, signed webhooks over HTTP to a verifying receiver) and the fault matrix that
//! proves it under duplicate, delayed, reordered and failed deliveries.

pub mod backends;
pub mod fault_matrix;
pub mod receiver;
pub mod shop;
