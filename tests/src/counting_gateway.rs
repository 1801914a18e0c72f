//! A gateway that forwards to another, counts what the checkout asked of it (so the fault
//! matrix can check from the caller's side that no intent was captured twice and none was
//! captured without a confirmed reservation), and injects the provider failures tests need:
//! captures that go unanswered, refunds that fail after a number went through.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use parking_lot::Mutex;
use ticket_core::gateway::{
    Capabilities, CaptureRequest, CheckoutSession, CheckoutSessionId, GatewayError, IntentId,
    IntentStatus, NewCheckoutSession, NewIntent, PaymentGateway, PaymentIntent, Refund,
    RefundRequest,
};

/// Forwards every call to `inner`; records each capture that the provider answered with a
/// captured intent, under its idempotency key.
#[derive(Debug)]
pub struct CountingGateway {
    inner: Arc<dyn PaymentGateway>,
    captures: Mutex<HashMap<IntentId, HashSet<String>>>,
    unanswered_captures: usize,
    captures_tried: AtomicUsize,
    refunds_allowed: usize,
    refunds_tried: AtomicUsize,
}

impl CountingGateway {
    /// Wraps `inner`, injecting no failure.
    pub fn new(inner: Arc<dyn PaymentGateway>) -> Self {
        Self {
            inner,
            captures: Mutex::new(HashMap::new()),
            unanswered_captures: 0,
            captures_tried: AtomicUsize::new(0),
            refunds_allowed: usize::MAX,
            refunds_tried: AtomicUsize::new(0),
        }
    }

    /// The first `n` captures are not answered (`Timeout`; nothing reaches the provider).
    pub fn with_unanswered_captures(mut self, n: usize) -> Self {
        self.unanswered_captures = n;
        self
    }

    /// After `n` refunds, every refund fails (`Unavailable`; nothing reaches the provider).
    pub fn with_refunds_failing_after(mut self, n: usize) -> Self {
        self.refunds_allowed = n;
        self
    }

    /// Intents captured under more than one idempotency key (each key is one capture the
    /// provider took as new).
    pub fn captured_twice(&self) -> usize {
        self.captures
            .lock()
            .values()
            .filter(|k| k.len() > 1)
            .count()
    }

    /// Intents the checkout captured.
    pub fn captured(&self) -> HashSet<IntentId> {
        self.captures.lock().keys().cloned().collect()
    }
}

#[async_trait]
impl PaymentGateway for CountingGateway {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn create_intent(&self, req: NewIntent) -> Result<PaymentIntent, GatewayError> {
        self.inner.create_intent(req).await
    }

    async fn confirm_intent(&self, id: &IntentId) -> Result<PaymentIntent, GatewayError> {
        self.inner.confirm_intent(id).await
    }

    async fn get_intent(&self, id: &IntentId) -> Result<PaymentIntent, GatewayError> {
        self.inner.get_intent(id).await
    }

    async fn cancel_intent(&self, id: &IntentId) -> Result<PaymentIntent, GatewayError> {
        self.inner.cancel_intent(id).await
    }

    async fn refund(&self, req: RefundRequest) -> Result<Refund, GatewayError> {
        if self.refunds_tried.fetch_add(1, Ordering::SeqCst) >= self.refunds_allowed {
            return Err(GatewayError::Unavailable("the provider went down".into()));
        }
        self.inner.refund(req).await
    }

    async fn capture(&self, req: CaptureRequest) -> Result<PaymentIntent, GatewayError> {
        if self.captures_tried.fetch_add(1, Ordering::SeqCst) < self.unanswered_captures {
            return Err(GatewayError::Timeout);
        }
        let key = req.idempotency_key.clone();
        let out = self.inner.capture(req).await;
        if let Ok(i) = &out
            && i.status == IntentStatus::Succeeded
        {
            self.captures
                .lock()
                .entry(i.id.clone())
                .or_default()
                .insert(key);
        }
        out
    }

    async fn void(&self, id: &IntentId) -> Result<PaymentIntent, GatewayError> {
        self.inner.void(id).await
    }

    async fn create_checkout_session(
        &self,
        req: NewCheckoutSession,
    ) -> Result<CheckoutSession, GatewayError> {
        self.inner.create_checkout_session(req).await
    }

    async fn get_checkout_session(
        &self,
        id: &CheckoutSessionId,
    ) -> Result<CheckoutSession, GatewayError> {
        self.inner.get_checkout_session(id).await
    }

    async fn expire_checkout_session(
        &self,
        id: &CheckoutSessionId,
    ) -> Result<CheckoutSession, GatewayError> {
        self.inner.expire_checkout_session(id).await
    }
}
