//! The jobs a server runs on timers: the admission rounds (every live session, every
//! [`ADMIT_EVERY`], one round per session per tick across every process through a lease in
//! the store), the sweeper (expired holds return their units and wake the queue), the
//! payment reconcilers (checkouts whose webhook never came, hosted pages left open as their
//! hold ends; wallet top-ups still pending, settled or given up past their deadline), the
//! capture follower (every confirmed reservation's authorized payment is captured, a
//! capture that failed after the confirmation retried), the purge of expired refresh
//! tokens, and at start the refund runs of every cancelled show
//! ([`crate::services::refund_runs`]). Safe on every process at once: each is idempotent
//! and claims its work atomically. Starting the jobs also starts following the live
//! sessions ([`crate::live`]).

use std::time::Duration;

use crate::runtime::state::AppState;

/// How often the sweeper runs.
pub const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// How often the reconciler polls, and how far before expiry it looks.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(5);
/// How long before a hold expires its checkout is polled.
pub const RECONCILE_LEAD: Duration = Duration::from_secs(30);
/// How often each live session gets an admission round (across every process: the first
/// process to take the session's lease for the tick runs it).
pub const ADMIT_EVERY: Duration = Duration::from_secs(1);
/// How often each live session's new changes are turned into in-app notifications.
pub const NOTIFY_EVERY: Duration = Duration::from_millis(500);
/// How often each live session's new confirmations are checked for a capture owed.
pub const CAPTURE_EVERY: Duration = Duration::from_millis(500);
/// How often expired refresh tokens are deleted.
pub const PURGE_EVERY: Duration = Duration::from_secs(3_600);

/// The running jobs; [`Jobs::stop`] ends them.
#[derive(Debug)]
pub struct Jobs {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Jobs {
    /// Stops the jobs and waits for them: a job already running finishes its step (each
    /// step is idempotent, so one cut short by a crash is redone by the next process).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            if let Err(e) = task.await {
                tracing::warn!("background jobs ended abnormally: {e}");
            }
        }
    }
}

impl Jobs {
    /// Stops the jobs at once, without waiting (a step cut short is redone later: every
    /// step is idempotent).
    pub fn abort(&self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Starts the jobs on the current runtime; [`Jobs::stop`] stops them.
pub fn spawn(state: AppState) -> Jobs {
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    state.live.start();
    let admissions = tokio::spawn(admission_rounds(state.clone(), stopped.clone()));
    let notifications = tokio::spawn(notifications(state.clone(), stopped.clone()));
    let captures = tokio::spawn(captures(state.clone(), stopped.clone()));
    // Refund runs of cancelled shows cut short by a crash or a stop go on (each pass is
    // idempotent, so starting one again is safe).
    let resume = state.clone();
    tokio::spawn(async move {
        match crate::services::refund_runs::resume_all(&resume).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(sessions = n, "refund runs of cancelled shows resumed"),
            Err(e) => tracing::warn!("cannot resume the refund runs: {e}"),
        }
    });
    let task = tokio::spawn(async move {
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        let mut reconcile = tokio::time::interval(RECONCILE_EVERY);
        let mut purge = tokio::time::interval(PURGE_EVERY);
        loop {
            tokio::select! {
                _ = stopped.changed() => return,
                _ = sweep.tick() => {
                    match state.rush.expiry.sweep(1_000).await {
                        // Close the payment pages of holds that expired while paying, and
                        // settle what they took (late payments), without waiting for webhooks.
                        Ok(swept) if !swept.expired.is_empty() => {
                            if let Err(e) = state.checkout.settle_expired(&swept.expired).await {
                                tracing::warn!("settling expired checkouts failed: {e}");
                            }
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!("sweep failed: {e}"),
                    }
                }
                _ = reconcile.tick() => {
                    match state.checkout.reconcile(RECONCILE_LEAD, 500).await {
                        Ok(r) if r.confirmed + r.failed + r.refunded + r.voided > 0 => tracing::info!(
                            confirmed = r.confirmed,
                            failed = r.failed,
                            refunded = r.refunded,
                            voided = r.voided,
                            pending = r.pending,
                            errors = r.errors,
                            "checkouts reconciled with the provider"
                        ),
                        Ok(_) => {}
                        Err(e) => tracing::warn!("payment reconciliation failed: {e}"),
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
    Jobs {
        stop,
        tasks: vec![admissions, notifications, captures, task],
    }
}

/// Every [`ADMIT_EVERY`], an admission round for each live session whose lease
/// `admission:<session>` this process gets for the tick (so with several processes one
/// round runs per session per tick; a process that dies leaves the lease to run out).
async fn admission_rounds(state: AppState, mut stopped: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(ADMIT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stopped.changed() => return,
            _ = tick.tick() => {}
        }
        for session in state.live.live_sessions() {
            admission_round(&state, session).await;
        }
    }
}

/// Every [`NOTIFY_EVERY`], a pass of the notification dispatcher over each live session:
/// its changes since the `inbox` consumer's checkpoint become in-app notifications
/// ([`crate::stores::inbox::InboxNotifier`]), each delivered once however many processes
/// run (the library's delivery log; the capture follower's records of the same
/// confirmations are addressed to its job, apart from these).
async fn notifications(state: AppState, mut stopped: tokio::sync::watch::Receiver<bool>) {
    use ticket_core::service::{DispatchConfig, NotificationDispatcher};
    let notifier = std::sync::Arc::new(crate::stores::inbox::InboxNotifier::new(
        state.inbox.clone(),
    ));
    let config = DispatchConfig {
        consumer: INBOX_CONSUMER.to_owned(),
        ..DispatchConfig::new(state.process_id.clone())
    };
    // The capture follower follows `HoldConfirmed` too; its delivery records are addressed
    // to its job (`DispatchConfig::captures`), so they never meet the inbox's.
    let dispatcher = match NotificationDispatcher::new(
        state.rush.stores().clone(),
        notifier,
        state.clock.clone(),
        config,
    ) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!("notification dispatcher: {e}");
            return;
        }
    };
    let mut tick = tokio::time::interval(NOTIFY_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stopped.changed() => return,
            _ = tick.tick() => {}
        }
        for session in state.live.live_sessions() {
            match dispatcher.dispatch(session).await {
                Ok(_) | Err(ticket_core::Error::NotFound { .. }) => {}
                Err(e) => tracing::warn!(%session, "notification dispatch failed: {e}"),
            }
        }
    }
}

/// Every [`CAPTURE_EVERY`], a pass of the checkout's capture follower over each live
/// session (consumer [`ticket_core::service::CAPTURE_CONSUMER`]): each confirmation since
/// the checkpoint has its authorized payment captured (or its reservation cancelled when
/// the authorization ended uncaptured), each delivered once however many processes run
/// (the library's delivery claims, as for the notifications). A capture still pending is
/// retried with backoff inside its session's pass, so sessions run their passes side by
/// side: one provider that does not answer for one reservation holds up no other session.
/// With automatic capture a pass only checks each confirmed payment (one provider read).
async fn captures(state: AppState, mut stopped: tokio::sync::watch::Receiver<bool>) {
    let follower = match state.checkout.capture_follower(state.process_id.clone()) {
        Ok(f) => std::sync::Arc::new(f),
        Err(e) => {
            tracing::error!("capture follower: {e}");
            return;
        }
    };
    // One pass at a time per session; dropped (aborting the passes) when the job stops: a
    // capture is idempotent and its claim runs out, so the next pass redoes it.
    let mut running: tokio::task::JoinSet<ticket_core::SessionId> = tokio::task::JoinSet::new();
    let mut busy = std::collections::HashSet::new();
    let mut tick = tokio::time::interval(CAPTURE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stopped.changed() => return,
            Some(done) = running.join_next() => {
                match done {
                    Ok(session) => { busy.remove(&session); }
                    Err(e) => {
                        // A pass that panicked: forget every session it may have been, so
                        // they run again (a session running twice is safe: claims).
                        tracing::warn!("capture pass ended abnormally: {e}");
                        busy.clear();
                    }
                }
                continue;
            }
            _ = tick.tick() => {}
        }
        for session in state.live.live_sessions() {
            if !busy.insert(session) {
                continue;
            }
            let follower = follower.clone();
            running.spawn(async move {
                match follower.dispatch(session).await {
                    Ok(_) | Err(ticket_core::Error::NotFound { .. }) => {}
                    Err(e) => tracing::warn!(%session, "capture follower failed: {e}"),
                }
                session
            });
        }
    }
}

/// The consumer name of the in-app notifications' checkpoints.
pub const INBOX_CONSUMER: &str = "inbox";

/// One session's round of this tick, if this process holds its lease.
pub async fn admission_round(state: &AppState, session: ticket_core::SessionId) {
    let leases = &state.rush.stores().leases;
    let name = format!("admission:{session}");
    match leases
        .try_lease(&name, &state.process_id, state.clock.now(), ADMIT_EVERY)
        .await
    {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            tracing::warn!(%session, "admission lease failed: {e}");
            return;
        }
    }
    match state
        .admission_rounds
        .run(&state.rush.admission, session)
        .await
    {
        Ok(admitted) => state.metrics.admitted(admitted),
        Err(ticket_core::Error::NotFound { .. }) => {}
        Err(e) => tracing::warn!(%session, "admission round failed: {e}"),
    }
}
