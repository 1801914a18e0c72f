//! The refund run of a cancelled show: every confirmed reservation of the session refunded in
//! full, exactly once, in the background.
//!
//! A run repeats the library's one-pass [`ticket_core::service::RefundService::refund_cancelled_show`]
//! until a pass reports [`ticket_core::service::RefundRunReport::is_complete`] (nothing still
//! paying, no refund failed), waiting longer between passes each time ([`BACKOFF_FIRST`]
//! doubling up to [`BACKOFF_MAX`]). Each pass runs under the lease `refund-run:<session>` in
//! the shared store, so with several server processes one of them runs it at a time; the
//! lease is renewed before every pass and lapses [`LEASE_TTL`] after a process died.
//!
//! Crash safety: a pass is idempotent (each reservation's state machine and the provider's
//! refund key per hold see to it that money goes back once), so a run cut short by a crash
//! is simply started again: by `POST /api/admin/sessions/{id}/cancel` repeated, and by every
//! server at start for every CANCELLED session ([`resume_all`]).
//!
//! Progress (the last pass's counts) is kept by the process that runs the passes and read by
//! `GET /api/admin/sessions/{id}/refund-run`.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use ticket_core::SessionId;
use ticket_core::model::audit::Actor;
use ticket_core::model::sale::SaleState;
use ticket_core::service::RefundRunReport;

use crate::runtime::state::AppState;

/// The first wait between two passes of an incomplete run.
pub const BACKOFF_FIRST: Duration = Duration::from_millis(200);
/// The longest wait between two passes.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How long a pass's lease lasts (renewed before every pass).
pub const LEASE_TTL: Duration = Duration::from_secs(60);
/// The component named as the actor of the run's transitions.
pub const ACTOR: &str = "refund-run";

/// Where a session's refund run stands in this process.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RunProgress {
    /// A task of this process is running it now.
    pub running: bool,
    /// The last pass left nothing pending or failed: every reservation is settled.
    pub complete: bool,
    /// Passes made by this process.
    pub passes: u64,
    /// Of the last pass: reservations it cancelled and refunded (or finished refunding).
    pub refunded: u64,
    /// Of the last pass: reservations refunded before it.
    pub already_refunded: u64,
    /// Of the last pass: HELD holds it released (nothing was paid).
    pub released: u64,
    /// Of the last pass: holds still paying (settled by a later pass).
    pub pending: u64,
    /// Of the last pass: refunds that failed (retried by a later pass).
    pub failed: u64,
    /// Why the last pass failed as a whole, if it did (storage unavailable, …).
    pub last_error: Option<String>,
    /// When the last pass ended, epoch ms.
    pub last_pass_at: Option<i64>,
}

/// This process's refund runs.
#[derive(Debug, Default)]
pub struct RefundRuns {
    progress: Mutex<HashMap<SessionId, RunProgress>>,
    running: Mutex<HashSet<SessionId>>,
}

impl RefundRuns {
    /// The progress of `session`'s run as this process knows it (`None`: no pass here yet).
    pub fn progress(&self, session: SessionId) -> Option<RunProgress> {
        let mut p = self.progress.lock().get(&session).cloned();
        let running = self.running.lock().contains(&session);
        if running {
            p.get_or_insert_with(RunProgress::default).running = true;
        } else if let Some(p) = p.as_mut() {
            p.running = false;
        }
        p
    }

    fn record(&self, session: SessionId, f: impl FnOnce(&mut RunProgress)) {
        let mut all = self.progress.lock();
        f(all.entry(session).or_default());
    }
}

/// Starts `session`'s refund run in the background unless this process runs it already.
pub fn start(state: &AppState, session: SessionId) {
    if !state.refund_runs.running.lock().insert(session) {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        run(&state, session).await;
        state.refund_runs.running.lock().remove(&session);
    });
}

/// Passes until one completes (or the session turns out not to be cancelled).
async fn run(state: &AppState, session: SessionId) {
    let leases = state.rush.stores().leases.clone();
    let name = format!("refund-run:{session}");
    let refunds = state.rush.refunds(state.checkout.gateway().clone());
    let mut backoff = BACKOFF_FIRST;
    loop {
        match leases
            .try_lease(&name, &state.process_id, state.clock.now(), LEASE_TTL)
            .await
        {
            Ok(true) => {
                let pass = refunds
                    .refund_cancelled_show(session, Actor::system(ACTOR))
                    .await;
                let now = state.clock.now().as_millis();
                match pass {
                    Ok(report) => {
                        let complete = report.is_complete();
                        log_pass(session, &report);
                        state.refund_runs.record(session, |p| {
                            *p = RunProgress {
                                running: true,
                                complete,
                                passes: p.passes + 1,
                                refunded: report.refunded,
                                already_refunded: report.already_refunded,
                                released: report.released,
                                pending: report.pending,
                                failed: report.failed.len() as u64,
                                last_error: None,
                                last_pass_at: Some(now),
                            };
                        });
                        if complete {
                            return;
                        }
                    }
                    Err(ticket_core::Error::Refused(
                        ticket_core::Refusal::IllegalSaleTransition { .. },
                    ))
                    | Err(ticket_core::Error::NotFound { .. }) => {
                        // Not a cancelled show (or no such session): nothing to refund.
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(%session, "refund run pass failed: {e}");
                        state.refund_runs.record(session, |p| {
                            p.passes += 1;
                            p.complete = false;
                            p.last_error = Some(e.to_string());
                            p.last_pass_at = Some(now);
                        });
                    }
                }
            }
            // Another process runs it: look again once its lease could have lapsed.
            Ok(false) => backoff = BACKOFF_MAX,
            Err(e) => tracing::warn!(%session, "refund run lease failed: {e}"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

fn log_pass(session: SessionId, r: &RefundRunReport) {
    tracing::info!(
        %session,
        refunded = r.refunded,
        already_refunded = r.already_refunded,
        released = r.released,
        pending = r.pending,
        failed = r.failed.len(),
        "refund run pass"
    );
    for (hold, why) in &r.failed {
        tracing::warn!(%session, %hold, "refund failed: {why}");
    }
}

/// Starts the run of every CANCELLED session of the backend (at start: a run cut short by a
/// crash or a stop goes on; a complete one costs one pass that changes nothing).
pub async fn resume_all(state: &AppState) -> Result<usize, ticket_core::Error> {
    let mut started = 0;
    for event in crate::services::catalog::all_events(&state.rush).await? {
        for s in &event.sessions {
            if state.rush.sales.switch(s.id).await?.state == SaleState::Cancelled {
                start(state, s.id);
                started += 1;
            }
        }
    }
    Ok(started)
}
