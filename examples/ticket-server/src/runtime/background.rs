//! The jobs a server runs on timers: the sweeper (expired holds return their units and wake
//! the queue), the payment reconcilers (checkouts whose webhook never came; wallet top-ups
//! still pending, settled or given up past their deadline) and the purge of
//! expired refresh tokens. Safe on every process at once: each is idempotent and claims its
//! work atomically.

use std::time::Duration;

use crate::runtime::state::AppState;

/// How often the sweeper runs.
pub const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// How often the reconciler polls, and how far before expiry it looks.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(5);
/// How long before a hold expires its checkout is polled.
pub const RECONCILE_LEAD: Duration = Duration::from_secs(30);
/// How often expired refresh tokens are deleted.
pub const PURGE_EVERY: Duration = Duration::from_secs(3_600);

/// The running jobs; [`Jobs::stop`] ends them.
#[derive(Debug)]
pub struct Jobs {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Jobs {
    /// Stops the jobs and waits for them: a job already running finishes its step (each
    /// step is idempotent, so one cut short by a crash is redone by the next process).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::warn!("background jobs ended abnormally: {e}");
        }
    }
}

impl Jobs {
    /// Stops the jobs at once, without waiting (a step cut short is redone later: every
    /// step is idempotent).
    pub fn abort(&self) {
        self.task.abort();
    }
}

/// Starts the jobs on the current runtime; [`Jobs::stop`] stops them.
pub fn spawn(state: AppState) -> Jobs {
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        let mut reconcile = tokio::time::interval(RECONCILE_EVERY);
        let mut purge = tokio::time::interval(PURGE_EVERY);
        loop {
            tokio::select! {
                _ = stopped.changed() => return,
                _ = sweep.tick() => {
                    if let Err(e) = state.rush.expiry.sweep(1_000).await {
                        tracing::warn!("sweep failed: {e}");
                    }
                }
                _ = reconcile.tick() => {
                    if let Err(e) = state.checkout.reconcile(RECONCILE_LEAD, 500).await {
                        tracing::warn!("payment reconciliation failed: {e}");
                    }
                    match state.topups.reconcile(500).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(topups = n, "pending wallet top-ups settled"),
                        Err(e) => tracing::warn!("wallet top-up reconciliation failed: {e}"),
                    }
                }
                _ = purge.tick() => {
                    match state.accounts.purge_expired(state.clock.now()).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(tokens = n, "expired refresh tokens purged"),
                        Err(e) => tracing::warn!("refresh token purge failed: {e}"),
                    }
                }
            }
        }
    });
    Jobs { stop, task }
}
