//! Notifications: the host's [`Notifier`] (e-mail, SMS, push, an in-app inbox) fed from the
//! change feed by a [`NotificationDispatcher`] that retries with backoff and records each
//! delivery, so with several processes each notification is sent once.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::clock::Clock;
use crate::error::{InvalidInput, Result};
use crate::ids::{SessionId, UserId};
use crate::model::change::{Change, ChangeKind};
use crate::model::delivery::{DeliveryClaim, DeliveryKey, DeliveryRecord, DeliveryStatus};
use crate::model::page::MAX_PAGE_LIMIT;
use crate::store::Stores;

/// One notification: a change of the recipient's reservation or admission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Which delivery this is (the change and the recipient): the host can use it as its
    /// own idempotency key with its provider.
    pub key: DeliveryKey,
    /// The change.
    pub change: Change,
}

impl Notification {
    /// The user told: the change's owner.
    pub fn recipient(&self) -> &UserId {
        self.change.owner.as_ref().unwrap_or(&self.key.recipient)
    }
}

/// Why a notification could not be sent this time (the dispatcher retries).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("notification not sent: {0}")]
pub struct NotifyError(pub String);

/// What the host implements to tell a user: send an e-mail, an SMS, a push, or write an
/// in-app message. Called at least once per notification and, thanks to the delivery log,
/// at most once per success: a call that returns `Ok` is never repeated for that
/// notification; one that fails is retried with backoff (and may have been delivered, so a
/// provider with idempotency keys should get [`Notification::key`]).
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Sends one notification.
    async fn notify(&self, notification: &Notification) -> std::result::Result<(), NotifyError>;
}

/// How the dispatcher works.
#[derive(Debug, Clone)]
pub struct DispatchConfig {
    /// Names this dispatcher in delivery claims and records (unique per process).
    pub holder: String,
    /// Names the consumer whose checkpoints are kept (the same for every process that
    /// sends the same notifications).
    pub consumer: String,
    /// Which changes notify their owner.
    pub kinds: Vec<ChangeKind>,
    /// Attempts before giving up (at least 1).
    pub max_attempts: u32,
    /// Wait before the second attempt; doubled before each further one.
    pub backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
    /// Whom the delivery records name. Records are keyed by the change and this recipient,
    /// so two dispatchers that follow the same changes must not share it: `None` names the
    /// change's owner (one dispatcher per deployment may do so); `Some(job)` names `job`
    /// instead, keeping this dispatcher's records apart from every other's (a change has
    /// one owner, so a record per change and job is still one per notification). The
    /// capture follower uses it; so should a second notification channel (e-mail beside an
    /// in-app inbox). [`Notification::recipient`] is always the owner.
    pub job: Option<UserId>,
}

impl DispatchConfig {
    /// Defaults for `holder`: the reservation and admission changes a buyer cares about,
    /// 5 attempts, backoff 200 ms doubling up to 5 s.
    pub fn new(holder: impl Into<String>) -> Self {
        Self {
            holder: holder.into(),
            consumer: "notifications".to_owned(),
            kinds: vec![
                ChangeKind::HoldConfirmed,
                ChangeKind::HoldExpired,
                ChangeKind::HoldPaymentFailed,
                ChangeKind::HoldCancelled,
                ChangeKind::HoldRefunded,
                ChangeKind::Admitted,
                ChangeKind::AdmissionExpired,
            ],
            max_attempts: 5,
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            job: None,
        }
    }

    fn validate(&self) -> std::result::Result<(), InvalidInput> {
        if self.max_attempts == 0 || self.holder.is_empty() || self.consumer.is_empty() {
            return Err(InvalidInput::Config(
                "a dispatcher needs a holder, a consumer and at least one attempt".into(),
            ));
        }
        Ok(())
    }

    /// The wait before attempt `n + 1` (after `n` failures).
    fn backoff_after(&self, failures: u32) -> Duration {
        let factor = 1u32
            .checked_shl(failures.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.backoff.saturating_mul(factor).min(self.max_backoff)
    }

    /// How long a claim lasts: every attempt and wait, with room to spare.
    fn lease(&self) -> Duration {
        let waits: Duration = (1..self.max_attempts).map(|n| self.backoff_after(n)).sum();
        waits + Duration::from_secs(30)
    }
}

/// What one dispatch pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DispatchReport {
    /// Notifications this pass sent.
    pub sent: u64,
    /// Notifications this pass gave up on after every attempt.
    pub gave_up: u64,
    /// Notifications already finished (by this or another dispatcher) or claimed by
    /// another live dispatcher.
    pub skipped: u64,
    /// The checkpoint after the pass.
    pub checkpoint: u64,
}

/// Feeds a [`Notifier`] from the change feed: for each change of a kind in
/// [`DispatchConfig::kinds`], claims the delivery to the change's owner, sends it with
/// retries and backoff, and records the outcome. The consumer's checkpoint moves past a
/// change only when its delivery is finished, so a restart resumes where it stopped; a
/// delivery another dispatcher is sending is left to it (it becomes claimable again if that
/// dispatcher dies).
pub struct NotificationDispatcher {
    stores: Stores,
    notifier: Arc<dyn Notifier>,
    clock: Arc<dyn Clock>,
    config: DispatchConfig,
}

impl std::fmt::Debug for NotificationDispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationDispatcher")
            .field("config", &self.config)
            .finish()
    }
}

impl NotificationDispatcher {
    /// A dispatcher; `InvalidInput::Config` for a config without holder, consumer or
    /// attempts.
    pub fn new(
        stores: Stores,
        notifier: Arc<dyn Notifier>,
        clock: Arc<dyn Clock>,
        config: DispatchConfig,
    ) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            stores,
            notifier,
            clock,
            config,
        })
    }

    /// One pass over `session`: every change after the checkpoint that is written now (one
    /// page of up to 500 at a time), until caught up or until a delivery is left to another
    /// dispatcher.
    pub async fn dispatch(&self, session: SessionId) -> Result<DispatchReport> {
        let d = &self.stores.deliveries;
        let mut report = DispatchReport {
            checkpoint: d.checkpoint(&self.config.consumer, session).await?,
            ..DispatchReport::default()
        };
        loop {
            let page = self
                .stores
                .feed
                .changes(session, report.checkpoint, MAX_PAGE_LIMIT)
                .await?;
            if page.changes.is_empty() {
                return Ok(report);
            }
            for change in page.changes {
                if !self.deliver(change.clone(), &mut report).await? {
                    return Ok(report);
                }
                report.checkpoint = change.seq;
                d.advance_checkpoint(&self.config.consumer, session, change.seq)
                    .await?;
            }
        }
    }

    /// Delivers `change` if it notifies someone; `false` when another dispatcher holds it.
    async fn deliver(&self, change: Change, report: &mut DispatchReport) -> Result<bool> {
        let Some(owner) = change.owner.clone() else {
            return Ok(true);
        };
        if !self.config.kinds.contains(&change.kind) {
            return Ok(true);
        }
        let key = DeliveryKey {
            session: change.session,
            seq: change.seq,
            recipient: self.config.job.clone().unwrap_or(owner),
        };
        let d = &self.stores.deliveries;
        match d
            .claim_delivery(
                &key,
                &self.config.holder,
                self.clock.now(),
                self.config.lease(),
            )
            .await?
        {
            DeliveryClaim::Done(_) => {
                report.skipped += 1;
                return Ok(true);
            }
            DeliveryClaim::Busy => {
                report.skipped += 1;
                return Ok(false);
            }
            DeliveryClaim::Claimed => {}
        }
        let notification = Notification { key, change };
        let mut attempts = 0;
        let mut last_error = None;
        let status = loop {
            attempts += 1;
            match self.notifier.notify(&notification).await {
                Ok(()) => break DeliveryStatus::Sent,
                Err(e) => {
                    tracing::warn!(seq = notification.key.seq, attempts, error = %e, "notification failed");
                    last_error = Some(e.0);
                    if attempts >= self.config.max_attempts {
                        break DeliveryStatus::GaveUp;
                    }
                    tokio::time::sleep(self.config.backoff_after(attempts)).await;
                }
            }
        };
        match status {
            DeliveryStatus::Sent => report.sent += 1,
            DeliveryStatus::GaveUp => report.gave_up += 1,
        }
        d.finish_delivery(&DeliveryRecord {
            key: notification.key,
            status,
            attempts,
            last_error,
            at: self.clock.now(),
            by: self.config.holder.clone(),
        })
        .await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let c = DispatchConfig {
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
            ..DispatchConfig::new("a")
        };
        assert_eq!(c.backoff_after(1), Duration::from_millis(100));
        assert_eq!(c.backoff_after(2), Duration::from_millis(200));
        assert_eq!(c.backoff_after(3), Duration::from_millis(350));
        assert_eq!(c.backoff_after(60), Duration::from_millis(350));
    }

    #[test]
    fn a_dispatcher_needs_an_attempt() {
        let c = DispatchConfig {
            max_attempts: 0,
            ..DispatchConfig::new("a")
        };
        assert!(c.validate().is_err());
    }
}
