//! `GET /metrics`: the server's counters and latency histograms in the OpenMetrics text
//! format (which Prometheus scrapes natively), from one [`Metrics`] registry in
//! [`AppState`].
//!
//! | metric | type | labels | counts |
//! |---|---|---|---|
//! | `http_request_duration_seconds` | histogram | `method`, `route`, `status` | time until the answer's head is ready, per request (an SSE stream: until it starts) |
//! | `ticketrush_queue_joins_total` | counter | `outcome` (`joined`, `refused`, `error`), `reason` | `POST /api/sessions/{id}/queue` answers |
//! | `ticketrush_admissions_total` | counter | – | users admitted by admission rounds |
//! | `ticketrush_holds_total` | counter | `outcome` (`created`, `refused`, `error`), `reason` | `POST /api/holds` answers |
//! | `ticketrush_checkouts_total` | counter | `method` (`hosted`, `card`, `wallet`, `other`, `unknown`), `outcome`, `reason` | `POST /api/holds/{id}/checkout` answers |
//! | `ticketrush_payment_webhooks_total` | counter | `result` (`confirmed`, `rebooked`, `capture_pending`, `voided`, `refunded`, `failed`, `ignored`) | verified provider events applied (with manual capture a payment's authorization and its capture are two events) |
//! | `ticketrush_webhook_verification_failures_total` | counter | – | webhooks refused for a bad or stale signature |
//! | `ticketrush_rate_limited_total` | counter | `limit` (`user`, `ip`) | requests answered 429 by [`crate::http::middleware::rate_limit`] |
//!
//! Guarantees:
//!
//! * **Bounded cardinality.** `route` is the matched route template (`/api/holds/{id}`),
//!   never the raw path, and `unmatched` for paths no route matches; `method` is one of the
//!   standard methods or `other`; `reason` is the API's error code (`SOLD_OUT`,
//!   `LIMIT_EXCEEDED`, `NOT_ADMITTED`, `RATE_LIMITED`, …, read from the [`ErrorCode`] that
//!   [`ApiError`] puts in the answer's extensions), `HTTP_<status>` for an error answer
//!   without one (a timeout), and `none` for a success. No label carries an id.
//! * **Answers, not unique operations.** An idempotent repeat (the same join, the same
//!   `Idempotency-Key`) is counted again, as is a provider's redelivered webhook; the
//!   library's own state, not these counters, is the record of what was sold.
//! * **Per process.** Each server process counts what it served; Prometheus sums processes.
//!   A labelled metric shows its series from their first occurrence (none before); the
//!   unlabelled counters show from zero.
//!
//! The checkout's `outcome` is the hold's status after the call (`confirmed`, `paying`,
//! `payment_failed`, …) for a success, `refused` (4xx) or `error` (5xx, timeout) otherwise.
//!
//! `GET /metrics` needs no credentials, like most Prometheus endpoints: operators should
//! not expose it publicly (serve it on an internal network, or block `/metrics` at the
//! proxy), since it shows traffic and sales volumes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use ticket_core::service::PaymentResult;

use crate::http::error::{ApiError, ErrorCode};
use crate::runtime::state::AppState;

/// The content type of the answer: OpenMetrics text 1.0.0, what `prometheus-client` writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the latency buckets, seconds (1 ms to 10 s).
const LATENCY_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The route templates whose answers are counted beyond latency.
const QUEUE_ROUTE: &str = "/api/sessions/{id}/queue";
const HOLDS_ROUTE: &str = "/api/holds";
const CHECKOUT_ROUTE: &str = "/api/holds/{id}/checkout";
const WEBHOOK_ROUTE: &str = "/api/payments/webhook";

/// The code `POST /api/payments/webhook` answers a bad or stale signature with.
const BAD_SIGNATURE: &str = "BAD_SIGNATURE";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
    status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
    reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckoutLabels {
    method: String,
    outcome: String,
    reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    limit: String,
}

type LatencyFamily = Family<HttpLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Which limit refused a request (the `limit` label of `ticketrush_rate_limited_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitedBy {
    /// The caller's per-user bucket.
    User,
    /// The client address's per-IP bucket.
    Ip,
}

impl LimitedBy {
    fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Ip => "ip",
        }
    }
}

/// The server's metrics: one registry and a handle on each metric in it. Recording is
/// lock-free for existing label sets (atomics) and never fails.
pub struct Metrics {
    registry: Registry,
    latency: LatencyFamily,
    joins: Family<OutcomeLabels, Counter>,
    admissions: Counter,
    holds: Family<OutcomeLabels, Counter>,
    checkouts: Family<CheckoutLabels, Counter>,
    webhooks: Family<ResultLabels, Counter>,
    webhook_verification_failures: Counter,
    rate_limited: Family<LimitLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric of the module docs, all at zero.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let latency = LatencyFamily::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "http_request_duration",
            "Time until the answer's head is ready, by method, route template and status",
            Unit::Seconds,
            latency.clone(),
        );
        let joins = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "ticketrush_queue_joins",
            "Queue join answers, by outcome and reason",
            joins.clone(),
        );
        let admissions = Counter::default();
        registry.register(
            "ticketrush_admissions",
            "Users admitted by admission rounds",
            admissions.clone(),
        );
        let holds = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "ticketrush_holds",
            "Hold answers, by outcome and reason",
            holds.clone(),
        );
        let checkouts = Family::<CheckoutLabels, Counter>::default();
        registry.register(
            "ticketrush_checkouts",
            "Checkout answers, by payment method, outcome and reason",
            checkouts.clone(),
        );
        let webhooks = Family::<ResultLabels, Counter>::default();
        registry.register(
            "ticketrush_payment_webhooks",
            "Verified payment provider events applied, by result",
            webhooks.clone(),
        );
        let webhook_verification_failures = Counter::default();
        registry.register(
            "ticketrush_webhook_verification_failures",
            "Webhooks refused for a bad or stale signature",
            webhook_verification_failures.clone(),
        );
        let rate_limited = Family::<LimitLabels, Counter>::default();
        registry.register(
            "ticketrush_rate_limited",
            "Requests refused by a rate limit, by limit",
            rate_limited.clone(),
        );
        Self {
            registry,
            latency,
            joins,
            admissions,
            holds,
            checkouts,
            webhooks,
            webhook_verification_failures,
            rate_limited,
        }
    }

    /// Everything, in the OpenMetrics text format ([`CONTENT_TYPE`]), ending in `# EOF`.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    /// Records the users an admission round admitted.
    pub fn admitted(&self, users: usize) {
        self.admissions
            .inc_by(u64::try_from(users).unwrap_or(u64::MAX));
    }

    /// Records a verified provider event's result.
    pub fn webhook_result(&self, result: &PaymentResult) {
        let result = match result {
            PaymentResult::Confirmed { .. } => "confirmed",
            PaymentResult::Rebooked { .. } => "rebooked",
            PaymentResult::Refunded { .. } => "refunded",
            PaymentResult::Voided { .. } => "voided",
            PaymentResult::CapturePending { .. } => "capture_pending",
            PaymentResult::Failed { .. } => "failed",
            PaymentResult::Ignored { .. } => "ignored",
            // a result a newer ticket-core adds: counted, under its own label once listed
            _ => "other",
        };
        self.webhooks
            .get_or_create(&ResultLabels {
                result: result.to_owned(),
            })
            .inc();
    }

    /// Records a request refused by a rate limit.
    pub fn rate_limited(&self, by: LimitedBy) {
        self.rate_limited
            .get_or_create(&LimitLabels {
                limit: by.as_str().to_owned(),
            })
            .inc();
    }

    /// Records one answer: its latency, and its outcome on the counted routes.
    fn record(&self, seen: &Seen, resp: &Response, elapsed: Duration) {
        let status = resp.status();
        let route = seen.route.as_deref().unwrap_or("unmatched");
        self.latency
            .get_or_create(&HttpLabels {
                method: method_label(&seen.method).to_owned(),
                route: route.to_owned(),
                status: status.as_u16().to_string(),
            })
            .observe(elapsed.as_secs_f64());
        let code = resp.extensions().get::<ErrorCode>().map(|c| c.0.as_str());
        let (outcome, reason) = classify(status, code);
        let counted = |family: &Family<OutcomeLabels, Counter>, success: &str| {
            family
                .get_or_create(&OutcomeLabels {
                    outcome: outcome.unwrap_or(success).to_owned(),
                    reason: reason.clone(),
                })
                .inc();
        };
        match (&seen.method, route) {
            (&Method::POST, QUEUE_ROUTE) => counted(&self.joins, "joined"),
            (&Method::POST, HOLDS_ROUTE) => counted(&self.holds, "created"),
            (&Method::POST, CHECKOUT_ROUTE) => {
                let tags = resp.extensions().get::<CheckoutTags>();
                let method = tags.map_or("unknown", |t| t.method);
                let success = tags.and_then(|t| t.hold_status).unwrap_or("accepted");
                self.checkouts
                    .get_or_create(&CheckoutLabels {
                        method: method.to_owned(),
                        outcome: outcome.unwrap_or(success).to_owned(),
                        reason: reason.clone(),
                    })
                    .inc();
            }
            (&Method::POST, WEBHOOK_ROUTE) if code == Some(BAD_SIGNATURE) => {
                self.webhook_verification_failures.inc();
            }
            _ => {}
        }
    }
}

/// `(outcome, reason)` of an answer: `(None, "none")` for a success (the caller names the
/// success), `refused` for a 4xx, `error` for a 5xx or a timeout (408).
fn classify(status: StatusCode, code: Option<&str>) -> (Option<&'static str>, String) {
    if status.is_success() {
        return (None, "none".to_owned());
    }
    let reason = code.map_or_else(|| format!("HTTP_{}", status.as_u16()), str::to_owned);
    let outcome = if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        "error"
    } else {
        "refused"
    };
    (Some(outcome), reason)
}

/// The standard methods by name, anything else `other` (bounded label values).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// What the outer middleware needs of a request after the handler took it.
struct Seen {
    method: Method,
    route: Option<String>,
}

/// Middleware on every route (the outermost layer, so timeouts, 413s and 429s are seen):
/// times the request and counts its answer (see the module docs).
///
/// Its state is the metrics alone: a middleware's state is cloned for every request.
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let seen = Seen {
        method: req.method().clone(),
        route: req
            .extensions()
            .get::<MatchedPath>()
            .map(|m| m.as_str().to_owned()),
    };
    let resp = next.run(req).await;
    metrics.record(&seen, &resp, started.elapsed());
    resp
}

/// The checkout's labels, found by [`tag_checkout`] and passed out in the answer's
/// extensions.
#[derive(Debug, Clone, Copy)]
struct CheckoutTags {
    method: &'static str,
    hold_status: Option<&'static str>,
}

/// The answer's largest size [`tag_checkout`] reads back (a checkout answer is well under).
const ANSWER_READ_LIMIT: usize = 1024 * 1024;

/// Middleware just outside the handlers (inside the body limit and the timeout): on
/// `POST /api/holds/{id}/checkout` only, reads the payment `method` from the JSON body and
/// the hold's status from a successful answer, for [`track`] to count. The body is read
/// under the configured body limit (413 `PAYLOAD_TOO_LARGE` as the handler would answer)
/// and handed on unchanged; every other request passes untouched.
pub async fn tag_checkout(req: Request, next: Next) -> Response {
    let is_checkout = req.method() == Method::POST
        && req
            .extensions()
            .get::<MatchedPath>()
            .is_some_and(|m| m.as_str() == CHECKOUT_ROUTE);
    if !is_checkout {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let limits = Request::from_parts(parts.clone(), body);
    // `Bytes` honours the `DefaultBodyLimit` layer outside this one.
    let bytes = match Bytes::from_request(limits, &()).await {
        Ok(b) => b,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                "request body too large",
            )
            .into_response();
        }
        Err(rejection) => return ApiError::validation(rejection.body_text()).into_response(),
    };
    let method = payment_method(&bytes);
    let resp = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let mut tags = CheckoutTags {
        method,
        hold_status: None,
    };
    if !resp.status().is_success() {
        let mut resp = resp;
        resp.extensions_mut().insert(tags);
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(answer) = axum::body::to_bytes(body, ANSWER_READ_LIMIT).await else {
        tracing::error!("the checkout answer could not be read back");
        return ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "internal error",
        )
        .into_response();
    };
    tags.hold_status = hold_status(&answer);
    parts.extensions.insert(tags);
    Response::from_parts(parts, Body::from(answer))
}

/// The `method` of a checkout body, as a bounded label value.
fn payment_method(body: &[u8]) -> &'static str {
    #[derive(serde::Deserialize)]
    struct Tagged {
        method: Option<String>,
    }
    match serde_json::from_slice::<Tagged>(body)
        .ok()
        .and_then(|t| t.method)
    {
        Some(m) if m == "card" => "card",
        Some(m) if m == "wallet" => "wallet",
        Some(m) if m == "hosted" => "hosted",
        Some(_) => "other",
        None => "unknown",
    }
}

/// `hold.status` of a checkout answer, as a bounded label value.
fn hold_status(answer: &[u8]) -> Option<&'static str> {
    let v: serde_json::Value = serde_json::from_slice(answer).ok()?;
    const KNOWN: [&str; 8] = [
        "held",
        "paying",
        "confirmed",
        "payment_failed",
        "expired",
        "released",
        "cancelled",
        "refunded",
    ];
    let status = v.get("hold")?.get("status")?.as_str()?;
    Some(KNOWN.into_iter().find(|k| *k == status).unwrap_or("other"))
}

/// `GET /metrics`.
pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(scrape))
}

/// The metrics in the OpenMetrics text format.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "meta",
    summary = "Metrics (OpenMetrics text)",
    responses(
        (status = 200, description = "Every metric in the OpenMetrics text format, ending in `# EOF`", body = String, content_type = "application/openmetrics-text"),
    ),
)]
pub(crate) async fn scrape(State(state): State<AppState>) -> Response {
    match state.metrics.encode() {
        Ok(text) => {
            let mut resp = text.into_response();
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
            resp
        }
        Err(e) => {
            tracing::error!("metrics could not be encoded: {e}");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "internal error",
            )
            .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_values_are_exposed_and_the_text_ends_in_eof() {
        let m = Metrics::new();
        m.admitted(3);
        m.rate_limited(LimitedBy::Ip);
        m.webhook_result(&PaymentResult::Ignored {
            reason: "stale".into(),
        });
        // A labelled family shows once it has a series; plain counters show at zero.
        let text = m.encode().unwrap();
        for line in [
            "ticketrush_admissions_total 3",
            "ticketrush_webhook_verification_failures_total 0",
            "ticketrush_rate_limited_total{limit=\"ip\"} 1",
            "ticketrush_payment_webhooks_total{result=\"ignored\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn outcomes_and_labels_are_bounded() {
        assert_eq!(classify(StatusCode::CREATED, None), (None, "none".into()));
        assert_eq!(
            classify(StatusCode::CONFLICT, Some("SOLD_OUT")),
            (Some("refused"), "SOLD_OUT".into())
        );
        assert_eq!(
            classify(StatusCode::REQUEST_TIMEOUT, None),
            (Some("error"), "HTTP_408".into())
        );
        assert_eq!(
            payment_method(br#"{"method":"card","card_number":"1"}"#),
            "card"
        );
        assert_eq!(payment_method(br#"{"method":"hosted"}"#), "hosted");
        assert_eq!(payment_method(br#"{"method":"wallet"}"#), "wallet");
        assert_eq!(payment_method(br#"{"method":"x-9f8e7d"}"#), "other");
        assert_eq!(payment_method(b"not json"), "unknown");
        assert_eq!(
            hold_status(br#"{"hold":{"status":"confirmed"}}"#),
            Some("confirmed")
        );
        assert_eq!(hold_status(br#"{"hold":{"status":"zzz"}}"#), Some("other"));
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }
}
