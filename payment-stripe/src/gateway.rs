//! [`StripeGateway`]: the [`PaymentGateway`] trait over Stripe's REST API.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde::de::DeserializeOwned;
use ticket_core::Timestamp;
use ticket_core::gateway::{
    Capabilities, CaptureMethod, CaptureRequest, CheckoutSession, CheckoutSessionId,
    CheckoutSessionStatus, GatewayError, IntentId, IntentStatus, NewCheckoutSession, NewIntent,
    PaymentGateway, PaymentIntent, Refund, RefundRequest,
};

use crate::config::{ConfigError, StripeConfig};
use crate::form::{Form, check_idempotency_key, check_metadata, derived_key, path_id};
use crate::objects::{
    CAPTURE_METHOD_METADATA_KEY, ErrorEnvelope, HOSTED_METADATA_KEY, SESSION_ID_PARAM,
    StripeCheckoutSession, StripeError, StripePaymentIntent, StripeRefund,
};

/// Stripe keeps a checkout session open at least this long after its creation…
const SESSION_MIN_LIFETIME_SECS: i64 = 30 * 60;
/// …and at most this long.
const SESSION_MAX_LIFETIME_SECS: i64 = 24 * 60 * 60;
/// Room for the clocks of this host and Stripe's to disagree.
const CLOCK_MARGIN_SECS: i64 = 60;

/// The [`PaymentGateway`] over Stripe's API (PaymentIntents, manual capture, Refunds,
/// Checkout Sessions).
///
/// What it guarantees, on top of the trait's contract:
/// * **Idempotency**: every POST carries an `Idempotency-Key`: the request's own key
///   (`create_intent`, `capture`, `refund`, `create_checkout_session`), or one derived from
///   the operation and Stripe's id (`ticketrush-confirm-<pi>`, `ticketrush-cancel-<pi>`,
///   `ticketrush-expire-<cs>`), so repeating any call after a timeout is safe: Stripe
///   answers a repeat with the first answer, and a key reused with other parameters is
///   [`GatewayError::KeyReused`].
/// * **Retries**: a GET (`get_intent`, `get_checkout_session`) is repeated at most
///   [`StripeConfig::get_retries`] times after a `429`, a `5xx` or a failed connection,
///   waiting `Retry-After` (at most [`StripeConfig::max_retry_wait`]) or a short backoff,
///   and never when Stripe says `Stripe-Should-Retry: false`. A POST is never repeated
///   here; its error says whether the outcome is unknown
///   ([`GatewayError::is_transient`]) and the caller repeats it with the same key.
/// * **Declines are intents**: a declined card is not an error: `confirm_intent` returns
///   the intent, `failed`, with the decline's code and message (see the crate docs for why
///   Stripe's `requires_payment_method` is mapped so).
/// * **Conflicts tell the truth**: when Stripe refuses an action for the intent's status
///   (`payment_intent_unexpected_state`), the gateway reads the intent and reports its
///   current status in [`GatewayError::Conflict`]; cancel and void of a canceled intent,
///   and expire of an expired session, succeed.
///
/// Cheap to clone (the HTTP client's connection pool is shared).
#[derive(Debug, Clone)]
pub struct StripeGateway {
    base: String,
    client: reqwest::Client,
    config: StripeConfig,
}

/// What went wrong with one HTTP exchange, before it is read in the light of the operation.
#[derive(Debug)]
enum Failure {
    /// No usable answer: a timeout, a connection failure, an unreadable body.
    Transport(GatewayError),
    /// Stripe answered with an error object (or a non-JSON error page).
    Api {
        status: StatusCode,
        error: StripeError,
        should_retry: Option<bool>,
        retry_after: Option<Duration>,
    },
}

impl Failure {
    fn code(&self) -> Option<&str> {
        match self {
            Self::Api { error, .. } => error.code.as_deref(),
            Self::Transport(_) => None,
        }
    }

    fn kind(&self) -> Option<&str> {
        match self {
            Self::Api { error, .. } => error.kind.as_deref(),
            Self::Transport(_) => None,
        }
    }

    fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Api { status, .. } => Some(*status),
            Self::Transport(_) => None,
        }
    }

    /// Stripe refused the action because of the intent's status.
    fn unexpected_state(&self) -> bool {
        self.code() == Some("payment_intent_unexpected_state")
    }

    /// A client error that is about the request's parameters and not about the key, the
    /// rate or a missing object: the kind of answer a state conflict comes as.
    fn invalid_request(&self) -> bool {
        self.status() == Some(StatusCode::BAD_REQUEST)
            && self.kind() != Some("idempotency_error")
            && self.code() != Some("resource_missing")
    }

    /// Whether a GET may be repeated after this failure.
    fn retryable(&self) -> bool {
        match self {
            Self::Transport(GatewayError::Unavailable(_)) => true,
            Self::Transport(_) => false,
            Self::Api {
                status,
                should_retry,
                ..
            } => match should_retry {
                Some(s) => *s,
                None => *status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error(),
            },
        }
    }

    /// The error for the caller, when the operation has nothing more specific to say.
    /// `what` names the object of the request (for [`GatewayError::NotFound`]).
    fn into_error(self, what: &str) -> GatewayError {
        let (status, error) = match self {
            Self::Transport(e) => return e,
            Self::Api { status, error, .. } => (status, error),
        };
        let kind = error.kind.as_deref().unwrap_or_default();
        let code = error.code.as_deref().unwrap_or_default();
        if status == StatusCode::TOO_MANY_REQUESTS || code == "rate_limit" {
            return GatewayError::RateLimited;
        }
        if code == "idempotency_key_in_use"
            || (kind == "idempotency_error" && status == StatusCode::CONFLICT)
        {
            // Another request with this key is still running: its outcome is unknown.
            return GatewayError::Unavailable(format!(
                "a concurrent request with the same idempotency key is in progress: {}",
                error.describe()
            ));
        }
        if kind == "idempotency_error" {
            return GatewayError::KeyReused;
        }
        if status == StatusCode::NOT_FOUND {
            return GatewayError::NotFound(what.to_owned());
        }
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return GatewayError::Unavailable(format!(
                "Stripe refused the API key ({status}): {}",
                error.describe()
            ));
        }
        if status.is_server_error() || kind == "api_error" || status == StatusCode::CONFLICT {
            return GatewayError::Unavailable(format!(
                "Stripe answered {status}: {}",
                error.describe()
            ));
        }
        if kind == "card_error" || status == StatusCode::PAYMENT_REQUIRED {
            let f = error.failure();
            return GatewayError::Declined {
                code: f.code,
                message: f.message,
            };
        }
        GatewayError::Invalid(format!("Stripe answered {status}: {}", error.describe()))
    }
}

fn transport(e: &reqwest::Error) -> GatewayError {
    if e.is_timeout() {
        GatewayError::Timeout
    } else {
        // The error's text names the URL (no key: it travels in a header only).
        GatewayError::Unavailable(format!("could not reach Stripe: {e}"))
    }
}

fn conflict(action: &str, status: IntentStatus) -> GatewayError {
    GatewayError::Conflict {
        action: action.to_owned(),
        status,
    }
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Whether `host` is this machine (plain HTTP is allowed there only).
fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The `expires_at` sent for a session that should stop taking payments at `requested`,
/// created at `now` (unix seconds).
///
/// Stripe takes 30 minutes to 24 hours after the session's creation. A hold usually ends
/// sooner than 30 minutes: such a session is asked to close 31 minutes after the hold ends.
/// That value depends on the request alone, so a creation repeated after a timeout sends the
/// very same body (Stripe would refuse a repeat under the same key with another
/// `expires_at`). The checkout expires the session itself when the hold ends
/// (`reconcile` → [`PaymentGateway::expire_checkout_session`]), so the longer lifetime only
/// bounds how long a session nobody closes stays open.
pub(crate) fn session_expiry(requested: Timestamp, now: i64) -> i64 {
    let requested = requested.as_millis().div_euclid(1000);
    let earliest = now + SESSION_MIN_LIFETIME_SECS + CLOCK_MARGIN_SECS;
    let latest = now + SESSION_MAX_LIFETIME_SECS - CLOCK_MARGIN_SECS;
    if requested < earliest {
        (requested + SESSION_MIN_LIFETIME_SECS + CLOCK_MARGIN_SECS).max(earliest)
    } else {
        requested.min(latest)
    }
}

/// `return_url` with `session_id={CHECKOUT_SESSION_ID}` added to its query (before any
/// fragment), or `Invalid` when it is not an absolute `http(s)` URL.
pub(crate) fn success_url(return_url: &str) -> Result<String, GatewayError> {
    let parsed = reqwest::Url::parse(return_url)
        .map_err(|e| GatewayError::Invalid(format!("return URL {return_url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(GatewayError::Invalid(format!(
            "return URL {return_url:?} must be an absolute http(s) URL"
        )));
    }
    let (base, fragment) = match return_url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (return_url, None),
    };
    let separator = if !base.contains('?') {
        "?"
    } else if base.ends_with('?') || base.ends_with('&') {
        ""
    } else {
        "&"
    };
    let mut url = format!("{base}{separator}{SESSION_ID_PARAM}");
    if let Some(f) = fragment {
        url.push('#');
        url.push_str(f);
    }
    Ok(url)
}

/// The cancel URL of a session: its success URL with `canceled=1` added.
fn cancel_url(success_url: &str) -> String {
    match success_url.split_once('#') {
        Some((base, fragment)) => format!("{base}&canceled=1#{fragment}"),
        None => format!("{success_url}&canceled=1"),
    }
}

fn check_amount(amount_minor: i64, what: &str) -> Result<(), GatewayError> {
    if amount_minor <= 0 {
        return Err(GatewayError::Invalid(format!(
            "{what} must be positive, got {amount_minor}"
        )));
    }
    Ok(())
}

impl StripeGateway {
    /// A gateway for `config`: checks the key ([`StripeConfig::validate`]) and the API base
    /// (`https://`, which needs the `rustls` feature, or `http://` to a loopback address),
    /// and builds the HTTP client (the key and `Stripe-Version` on every request, redirects
    /// never followed, [`StripeConfig::timeout`] per request).
    pub fn new(config: StripeConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let base = config.api_base.trim_end_matches('/').to_owned();
        let invalid = |reason: &str| ConfigError::InvalidApiBase {
            url: config.api_base.clone(),
            reason: reason.to_owned(),
        };
        let url = reqwest::Url::parse(&base).map_err(|e| invalid(&e.to_string()))?;
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
            return Err(invalid("no query, fragment or user info, please"));
        }
        match url.scheme() {
            "https" if cfg!(feature = "rustls") => {}
            "https" => {
                return Err(invalid(
                    "https needs the crate's `rustls` feature (on by default)",
                ));
            }
            "http" if is_loopback(&url) => {}
            "http" => {
                return Err(invalid(
                    "plain http only to a loopback address (the secret key must not cross a network in clear)",
                ));
            }
            _ => return Err(invalid("must be an http(s) URL")),
        }
        let mut headers = HeaderMap::new();
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", config.secret_key))
            .map_err(|_| ConfigError::InvalidSecretKey("not a valid header value"))?;
        auth.set_sensitive(true);
        headers.insert(AUTHORIZATION, auth);
        headers.insert(
            "stripe-version",
            HeaderValue::from_str(&config.api_version)
                .map_err(|e| ConfigError::Invalid(format!("API version: {e}")))?,
        );
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .default_headers(headers)
            .user_agent(concat!(
                "ticketrush-payment-stripe/",
                env!("CARGO_PKG_VERSION")
            ))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ConfigError::Client(e.to_string()))?;
        Ok(Self {
            base,
            client,
            config,
        })
    }

    /// The configuration in force (its `Debug` redacts the key).
    pub fn config(&self) -> &StripeConfig {
        &self.config
    }

    async fn send<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T, Failure> {
        let resp = req
            .send()
            .await
            .map_err(|e| Failure::Transport(transport(&e)))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| Failure::Transport(transport(&e)))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| {
                Failure::Transport(GatewayError::Unavailable(format!(
                    "unreadable answer from Stripe ({status}): {e}"
                )))
            });
        }
        let error = serde_json::from_slice::<ErrorEnvelope>(&bytes).map_or_else(
            |_| StripeError {
                message: Some(String::from_utf8_lossy(&bytes).chars().take(500).collect()),
                ..StripeError::default()
            },
            |e| e.error,
        );
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        Err(Failure::Api {
            status,
            error,
            should_retry: header("stripe-should-retry").map(|v| v.eq_ignore_ascii_case("true")),
            retry_after: header("retry-after")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs),
        })
    }

    /// `POST {path}` with `form` under `idempotency_key`. Never repeated here.
    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        form: &Form,
        idempotency_key: &str,
    ) -> Result<T, Failure> {
        check_idempotency_key(idempotency_key).map_err(Failure::Transport)?;
        let req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("idempotency-key", idempotency_key)
            .form(form.pairs());
        self.send(req).await
    }

    /// `GET {path}?{query}`, repeated after a rate limit, a server error or a failed
    /// connection (see [`StripeConfig::get_retries`]).
    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, Failure> {
        let mut attempt = 0;
        loop {
            let req = self.client.get(format!("{}{path}", self.base)).query(query);
            match self.send(req).await {
                Err(f) if attempt < self.config.get_retries && f.retryable() => {
                    let backoff = Duration::from_millis(250).saturating_mul(1 << attempt.min(8));
                    let wait = match &f {
                        Failure::Api {
                            retry_after: Some(after),
                            ..
                        } => *after,
                        _ => backoff,
                    }
                    .min(self.config.max_retry_wait);
                    tracing::warn!(path, attempt, ?wait, "Stripe GET failed, repeating: {f:?}");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// `POST /v1/payment_intents/{id}/{action}` (`expand[]=latest_charge`).
    async fn post_intent(
        &self,
        id: &IntentId,
        action: &str,
        mut form: Form,
        key: &str,
    ) -> Result<StripePaymentIntent, Failure> {
        let path = format!(
            "/v1/payment_intents/{}/{action}",
            path_id(id.as_str()).map_err(Failure::Transport)?
        );
        form.push("expand[]", "latest_charge");
        self.post(&path, &form, key).await
    }

    /// Cancels `id` (for `cancel_intent` and `void`, which are the same call at Stripe):
    /// idempotent on a canceled intent, [`GatewayError::Conflict`] with the current status
    /// for one that was charged or is being charged.
    async fn cancel(&self, id: &IntentId, action: &str) -> Result<PaymentIntent, GatewayError> {
        let key = derived_key("cancel", id.as_str());
        let failure = match self.post_intent(id, "cancel", Form::new(), &key).await {
            Ok(pi) => return pi.into_intent(),
            Err(f) if f.unexpected_state() => f,
            Err(f) => return Err(f.into_error(id.as_str())),
        };
        let now = self.get_intent(id).await?;
        match now.status {
            IntentStatus::Canceled => Ok(now),
            IntentStatus::RequiresConfirmation
            | IntentStatus::RequiresAction
            | IntentStatus::RequiresCapture
            | IntentStatus::Failed => {
                // Cancelable now, yet refused: the refusal was Stripe's replay of an earlier
                // attempt under the same key, made while the intent could not be canceled.
                // Ask again under a key that names the status seen now.
                tracing::info!(intent = %id, "cancel refused ({failure:?}) while {}: asking again", now.status.as_str());
                let again = format!("{key}-from-{}", now.status.as_str());
                match self.post_intent(id, "cancel", Form::new(), &again).await {
                    Ok(pi) => pi.into_intent(),
                    Err(f) if f.unexpected_state() => {
                        let now = self.get_intent(id).await?;
                        if now.status == IntentStatus::Canceled {
                            Ok(now)
                        } else {
                            Err(conflict(action, now.status))
                        }
                    }
                    Err(f) => Err(f.into_error(id.as_str())),
                }
            }
            status => Err(conflict(action, status)),
        }
    }
}

#[async_trait]
impl PaymentGateway for StripeGateway {
    /// Manual capture, partial capture and hosted checkout: Stripe offers all three.
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            manual_capture: true,
            partial_capture: true,
            hosted_checkout: true,
        }
    }

    /// `POST /v1/payment_intents` with `amount`, `currency` (lower case), `payment_method`,
    /// `capture_method`, `automatic_payment_methods[enabled]=true` with
    /// `[allow_redirects]=never` (the server confirms without a return URL, so no payment
    /// method that redirects the buyer may be chosen) and `metadata[…]`, under the request's
    /// idempotency key.
    async fn create_intent(&self, req: NewIntent) -> Result<PaymentIntent, GatewayError> {
        check_amount(req.amount.amount_minor, "amount")?;
        let pm = req.payment_method.trim();
        if pm.is_empty() || pm.len() > 255 || pm.chars().any(|c| c.is_control() || c == ' ') {
            return Err(GatewayError::Invalid(format!(
                "payment method {:?}",
                req.payment_method
            )));
        }
        check_metadata(&req.metadata, 0)?;
        if req.metadata.contains_key(HOSTED_METADATA_KEY) {
            return Err(GatewayError::Invalid(format!(
                "metadata key {HOSTED_METADATA_KEY} is reserved"
            )));
        }
        let mut form = Form::new();
        form.push("amount", req.amount.amount_minor.to_string())
            .push(
                "currency",
                req.amount.currency.as_str().to_ascii_lowercase(),
            )
            .push("payment_method", pm)
            .push("capture_method", req.capture_method.as_str())
            .push("automatic_payment_methods[enabled]", "true")
            .push("automatic_payment_methods[allow_redirects]", "never");
        form.metadata("metadata", &req.metadata);
        self.post::<StripePaymentIntent>("/v1/payment_intents", &form, &req.idempotency_key)
            .await
            .map_err(|f| f.into_error("payment intent"))?
            .into_intent()
    }

    /// `POST /v1/payment_intents/{id}/confirm` under `ticketrush-confirm-<id>`.
    ///
    /// A declined card (`402`, `card_error`) is the intent from the error body, `failed`,
    /// not an error. An intent past confirmation (Stripe answers
    /// `payment_intent_unexpected_state`) is returned as it stands: confirming again is
    /// harmless.
    async fn confirm_intent(&self, id: &IntentId) -> Result<PaymentIntent, GatewayError> {
        let key = derived_key("confirm", id.as_str());
        match self.post_intent(id, "confirm", Form::new(), &key).await {
            Ok(pi) => pi.into_intent(),
            Err(Failure::Api { error, status, .. })
                if error.kind.as_deref() == Some("card_error")
                    || status == StatusCode::PAYMENT_REQUIRED =>
            {
                if let Some(pi) = error.payment_intent.clone() {
                    return pi.into_intent();
                }
                let now = self.get_intent(id).await?;
                if now.status == IntentStatus::Failed {
                    return Ok(now);
                }
                let f = error.failure();
                Err(GatewayError::Declined {
                    code: f.code,
                    message: f.message,
                })
            }
            Err(f) if f.unexpected_state() => {
                let now = self.get_intent(id).await?;
                if now.status == IntentStatus::RequiresConfirmation {
                    Err(conflict("confirm", now.status))
                } else {
                    Ok(now)
                }
            }
            Err(f) => Err(f.into_error(id.as_str())),
        }
    }

    /// `GET /v1/payment_intents/{id}?expand[]=latest_charge` (the charge says what was
    /// refunded and when an authorization ends). Repeated on transient failures.
    async fn get_intent(&self, id: &IntentId) -> Result<PaymentIntent, GatewayError> {
        let path = format!("/v1/payment_intents/{}", path_id(id.as_str())?);
        self.get::<StripePaymentIntent>(&path, &[("expand[]", "latest_charge")])
            .await
            .map_err(|f| f.into_error(id.as_str()))?
            .into_intent()
    }

    /// `POST /v1/payment_intents/{id}/cancel` under `ticketrush-cancel-<id>`; idempotent on
    /// a canceled intent.
    async fn cancel_intent(&self, id: &IntentId) -> Result<PaymentIntent, GatewayError> {
        self.cancel(id, "cancel").await
    }

    /// `POST /v1/refunds` with `payment_intent`, `amount` (omitted: everything not yet
    /// refunded) and `metadata[reason]`, under the request's key. A refund Stripe refuses
    /// because nothing (or less) is left to refund, or because the intent was not charged,
    /// is [`GatewayError::Conflict`] with the intent's status; a refund Stripe reports
    /// `failed` or `canceled` is [`GatewayError::Declined`] (`refund_failed`).
    async fn refund(&self, req: RefundRequest) -> Result<Refund, GatewayError> {
        path_id(req.intent.as_str())?;
        if let Some(a) = req.amount_minor {
            check_amount(a, "refund amount")?;
        }
        let mut form = Form::new();
        form.push("payment_intent", req.intent.as_str());
        if let Some(a) = req.amount_minor {
            form.push("amount", a.to_string());
        }
        let reason: String = req.reason.chars().take(500).collect();
        form.metadata("metadata", &BTreeMap::from([("reason".to_owned(), reason)]));
        let failure = match self
            .post::<StripeRefund>("/v1/refunds", &form, &req.idempotency_key)
            .await
        {
            Ok(r) => return r.into_refund(&req.intent),
            Err(f) => f,
        };
        if failure.code() == Some("resource_missing") {
            return Err(GatewayError::NotFound(req.intent.to_string()));
        }
        if !failure.invalid_request() {
            return Err(failure.into_error(req.intent.as_str()));
        }
        let now = self.get_intent(&req.intent).await?;
        let left = now.received_minor() - now.amount_refunded;
        let too_much = req.amount_minor.map_or(left <= 0, |a| a > left);
        if now.status != IntentStatus::Succeeded || too_much {
            return Err(conflict("refund", now.status));
        }
        Err(failure.into_error(req.intent.as_str()))
    }

    /// `POST /v1/payment_intents/{id}/capture` (`amount_to_capture` for less than
    /// authorized; Stripe releases the rest) under the request's key. A repeat with the same
    /// key gets Stripe's first answer; capturing an intent that is not `requires_capture`
    /// is [`GatewayError::Conflict`] with its current status (`succeeded` once captured).
    async fn capture(&self, req: CaptureRequest) -> Result<PaymentIntent, GatewayError> {
        let mut form = Form::new();
        if let Some(a) = req.amount_minor {
            check_amount(a, "capture amount")?;
            form.push("amount_to_capture", a.to_string());
        }
        match self
            .post_intent(&req.intent, "capture", form, &req.idempotency_key)
            .await
        {
            Ok(pi) => pi.into_intent(),
            Err(f) if f.unexpected_state() || f.code() == Some("charge_already_captured") => {
                let now = self.get_intent(&req.intent).await?;
                Err(conflict("capture", now.status))
            }
            Err(f) => Err(f.into_error(req.intent.as_str())),
        }
    }

    /// The same call as [`PaymentGateway::cancel_intent`] (Stripe releases an
    /// authorization by canceling its intent).
    async fn void(&self, id: &IntentId) -> Result<PaymentIntent, GatewayError> {
        self.cancel(id, "void").await
    }

    /// `POST /v1/checkout/sessions`: `mode=payment`, one line item (`price_data` with the
    /// currency, `unit_amount` and `product_data[name]` = the description; quantity 1),
    /// `payment_intent_data[capture_method]`, the metadata both on the session and, as
    /// `payment_intent_data[metadata]`, on every intent it creates; `success_url` is the
    /// return URL with `session_id={CHECKOUT_SESSION_ID}` added to its query, `cancel_url`
    /// the same with `&canceled=1`. `expires_at` is clamped into Stripe's window of 30
    /// minutes to 24 hours after creation: a hold ending sooner gets a session that closes
    /// 31 minutes after the hold ends (computed from the request alone, so a repeated
    /// creation sends the same body). The checkout expires the session itself when the hold
    /// ends. The session's intents are marked `metadata[ticketrush_hosted_checkout]` (a
    /// failed attempt on them is not final, see the crate docs), the session records its
    /// capture method in `metadata[ticketrush_capture_method]`; both keys are reserved and
    /// removed when read.
    async fn create_checkout_session(
        &self,
        req: NewCheckoutSession,
    ) -> Result<CheckoutSession, GatewayError> {
        check_amount(req.amount.amount_minor, "amount")?;
        check_metadata(&req.metadata, 1)?;
        for reserved in [CAPTURE_METHOD_METADATA_KEY, HOSTED_METADATA_KEY] {
            if req.metadata.contains_key(reserved) {
                return Err(GatewayError::Invalid(format!(
                    "metadata key {reserved} is reserved"
                )));
            }
        }
        let description = req.description.trim();
        if description.is_empty() {
            return Err(GatewayError::Invalid(
                "a checkout session needs a description (the product's name on Stripe's page)"
                    .into(),
            ));
        }
        let success = success_url(&req.return_url)?;
        let mut form = Form::new();
        form.push("mode", "payment")
            .push("line_items[0][quantity]", "1")
            .push(
                "line_items[0][price_data][currency]",
                req.amount.currency.as_str().to_ascii_lowercase(),
            )
            .push(
                "line_items[0][price_data][unit_amount]",
                req.amount.amount_minor.to_string(),
            )
            .push(
                "line_items[0][price_data][product_data][name]",
                description.chars().take(250).collect::<String>(),
            )
            .push(
                "payment_intent_data[capture_method]",
                req.capture_method.as_str(),
            );
        form.metadata("payment_intent_data[metadata]", &req.metadata);
        form.push(
            format!("payment_intent_data[metadata][{HOSTED_METADATA_KEY}]"),
            "true",
        );
        form.metadata("metadata", &req.metadata);
        if req.capture_method == CaptureMethod::Manual {
            form.push(
                format!("metadata[{CAPTURE_METHOD_METADATA_KEY}]"),
                CaptureMethod::Manual.as_str(),
            );
        }
        form.push("cancel_url", cancel_url(&success))
            .push("success_url", success)
            .push(
                "expires_at",
                session_expiry(req.expires_at, now_secs()).to_string(),
            );
        self.post::<StripeCheckoutSession>("/v1/checkout/sessions", &form, &req.idempotency_key)
            .await
            .map_err(|f| f.into_error("checkout session"))?
            .into_session()
    }

    /// `GET /v1/checkout/sessions/{id}`. Repeated on transient failures.
    async fn get_checkout_session(
        &self,
        id: &CheckoutSessionId,
    ) -> Result<CheckoutSession, GatewayError> {
        let path = format!("/v1/checkout/sessions/{}", path_id(id.as_str())?);
        self.get::<StripeCheckoutSession>(&path, &[])
            .await
            .map_err(|f| f.into_error(id.as_str()))?
            .into_session()
    }

    /// `POST /v1/checkout/sessions/{id}/expire` under `ticketrush-expire-<id>`. Idempotent
    /// on an expired session; a completed one is [`GatewayError::Conflict`] with the status
    /// of its intent (read it and apply the intent).
    async fn expire_checkout_session(
        &self,
        id: &CheckoutSessionId,
    ) -> Result<CheckoutSession, GatewayError> {
        let path = format!("/v1/checkout/sessions/{}/expire", path_id(id.as_str())?);
        let key = derived_key("expire", id.as_str());
        let failure = match self
            .post::<StripeCheckoutSession>(&path, &Form::new(), &key)
            .await
        {
            Ok(s) => return s.into_session(),
            Err(f) if f.invalid_request() => f,
            Err(f) => return Err(f.into_error(id.as_str())),
        };
        let now = self.get_checkout_session(id).await?;
        match now.status {
            CheckoutSessionStatus::Expired => Ok(now),
            CheckoutSessionStatus::Complete => {
                let status = match &now.intent {
                    Some(intent) => self.get_intent(intent).await?.status,
                    None => IntentStatus::Succeeded,
                };
                Err(conflict("expire checkout session", status))
            }
            CheckoutSessionStatus::Open => Err(failure.into_error(id.as_str())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_expiry_stays_in_stripes_window_and_depends_on_the_request() {
        let now = 1_800_000_000;
        let at = |s: i64| Timestamp::from_millis(s * 1000);
        // A hold ending in 10 minutes: 31 minutes after it, whenever the call is repeated.
        let soon = at(now + 600);
        assert_eq!(session_expiry(soon, now), now + 600 + 1860);
        assert_eq!(session_expiry(soon, now + 5), now + 600 + 1860);
        // Within the window: as asked.
        assert_eq!(session_expiry(at(now + 7200), now), now + 7200);
        // Beyond 24 hours: cut.
        assert_eq!(session_expiry(at(now + 100_000), now), now + 86_400 - 60);
        // Already past: the earliest Stripe takes.
        assert_eq!(session_expiry(at(now - 100), now), now + 1860);
    }

    #[test]
    fn success_and_cancel_urls() {
        let s = success_url("https://shop.example/return").ok();
        assert_eq!(
            s.as_deref(),
            Some("https://shop.example/return?session_id={CHECKOUT_SESSION_ID}")
        );
        let s = success_url("https://shop.example/r?hold=7#done").ok();
        assert_eq!(
            s.as_deref(),
            Some("https://shop.example/r?hold=7&session_id={CHECKOUT_SESSION_ID}#done")
        );
        assert_eq!(
            cancel_url("https://shop.example/r?session_id={CHECKOUT_SESSION_ID}#done"),
            "https://shop.example/r?session_id={CHECKOUT_SESSION_ID}&canceled=1#done"
        );
        for bad in [
            "/relative",
            "ftp://x.example/",
            "not a url",
            "mailto:a@b.example",
        ] {
            assert!(success_url(bad).is_err(), "{bad:?}");
        }
    }
}
