//! The jobs a server runs on timers: the sweeper (expired holds return their units and wake
//! the queue) and the payment reconciler (checkouts whose webhook never came). Safe on every
//! process at once: both are idempotent and claim their work atomically.

use std::time::Duration;

use crate::state::AppState;

/// How often the sweeper runs.
pub const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// How often the reconciler polls, and how far before expiry it looks.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(5);
/// How long before a hold expires its checkout is polled.
pub const RECONCILE_LEAD: Duration = Duration::from_secs(30);

/// Starts the jobs; abort the handle to stop them.
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        let mut reconcile = tokio::time::interval(RECONCILE_EVERY);
        loop {
            tokio::select! {
                _ = sweep.tick() => {
                    if let Err(e) = state.rush.expiry.sweep(1_000).await {
                        tracing::warn!("sweep failed: {e}");
                    }
                }
                _ = reconcile.tick() => {
                    if let Err(e) = state.checkout.reconcile(RECONCILE_LEAD, 500).await {
                        tracing::warn!("payment reconciliation failed: {e}");
                    }
                }
            }
        }
    })
}
