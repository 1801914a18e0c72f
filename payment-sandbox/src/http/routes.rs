//! The routes of [`super`], their error answers and the server (feature `server`).

use std::net::SocketAddr;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use ticket_core::Timestamp;
use ticket_core::gateway::{
    CaptureRequest, CheckoutSessionId, GatewayError, IntentId, NewCheckoutSession, NewIntent,
    PaymentGateway, RefundRequest,
};
use ticket_core::model::money::Money;

use crate::auth::{ApiKey, require_api_key};
use crate::delivery::EndpointConfig;
use crate::error::SandboxError;
use crate::gateway::Sandbox;
use crate::intent;

use super::{
    CaptureBody, CreateCheckoutSessionBody, CreateIntentBody, ListQuery, MAX_PAGE, Page,
    RefundBody, hosted_page_router,
};

impl<T> Page<T> {
    /// The page of `all` (in list order) that `query` asks for, where `id` names an item.
    /// An unknown `starting_after` or a `limit` outside 1..=[`MAX_PAGE`] is `400`.
    fn of(all: Vec<T>, query: &ListQuery, id: impl Fn(&T) -> &str) -> Result<Self, ApiError> {
        let limit = query.limit.unwrap_or(100);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("limit must be 1 to {MAX_PAGE}"),
            ));
        }
        let start = match &query.starting_after {
            None => 0,
            Some(after) => {
                all.iter().position(|t| id(t) == after).ok_or_else(|| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        format!("starting_after: no item {after:?}"),
                    )
                })? + 1
            }
        };
        let has_more = all.len() > start + limit;
        let data = all.into_iter().skip(start).take(limit).collect();
        Ok(Self { data, has_more })
    }
}

/// The sandbox's routes, to serve or to nest in another router. Every request, to any path
/// but the buyer's payment page ([`hosted_page_router`], merged in: `/pay/…`), must carry
/// `api_key` (`Authorization: Bearer sk_test_…`); see [`crate::auth`]. Make one
/// with [`ApiKey::new`] (an operator's key) or [`ApiKey::generate`] (then show it to whoever
/// calls the API, e.g. [`crate::client::HttpGateway`]).
pub fn router(sandbox: Sandbox, api_key: ApiKey) -> Router {
    let page = hosted_page_router(sandbox.clone());
    Router::new()
        .route("/v1/payment_intents", post(create_intent).get(list_intents))
        .route("/v1/refunds", get(list_refunds))
        .route("/v1/payment_intents/{id}", get(get_intent))
        .route("/v1/payment_intents/{id}/confirm", post(confirm_intent))
        .route("/v1/payment_intents/{id}/cancel", post(cancel_intent))
        .route("/v1/payment_intents/{id}/capture", post(capture))
        .route("/v1/payment_intents/{id}/refunds", post(refund))
        .route("/v1/webhook_endpoints", post(register_endpoint))
        .route("/v1/webhook_endpoints/{id}", get(get_endpoint))
        .route(
            "/v1/webhook_endpoints/{id}/rotate_secret",
            post(rotate_secret),
        )
        .route("/v1/webhook_endpoints/{id}/deliveries", get(deliveries))
        .route("/v1/deliveries/stats", get(stats))
        .route("/v1/checkout_sessions", post(create_checkout_session))
        .route("/v1/checkout_sessions/{id}", get(get_checkout_session))
        .route(
            "/v1/checkout_sessions/{id}/expire",
            post(expire_checkout_session),
        )
        .with_state(sandbox)
        // An explicit fallback, so that the key's guard below covers unknown paths and the
        // merge keeps it (a default fallback would be replaced by the page router's).
        .fallback(|| async { StatusCode::NOT_FOUND })
        // Outermost, so it also covers unknown paths and runs before any body is read.
        .layer(axum::middleware::from_fn_with_state(
            api_key,
            require_api_key,
        ))
        // The buyer's page, outside the key's guard (merged after the layer).
        .merge(page)
}

/// Binds `addr` and serves the sandbox, guarded by `api_key` (see [`router`]), until the task
/// is dropped; returns the bound address (ask for port 0 to get a free one) and the server
/// task.
pub async fn serve(
    sandbox: Sandbox,
    api_key: ApiKey,
    addr: SocketAddr,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    serve_until(sandbox, api_key, addr, std::future::pending()).await
}

/// Like [`serve`], and once `shutdown` completes the server stops gracefully: it accepts no
/// more connections, lets the requests in progress finish, closes idle connections, and then
/// the task ends with `Ok(())`.
pub async fn serve_until(
    sandbox: Sandbox,
    api_key: ApiKey,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    serve_on(sandbox, api_key, listener, shutdown)
}

/// Like [`serve_until`], on a listener bound beforehand (e.g. to learn the address first and
/// set [`crate::SandboxConfig::public_url`] from it).
pub fn serve_on(
    sandbox: Sandbox,
    api_key: ApiKey,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let bound = listener.local_addr()?;
    let app = router(sandbox, api_key);
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    });
    Ok((bound, task))
}

/// An error answer: `{"error": {"type", "message", "gateway_error"?}}`. `gateway_error` is
/// the [`GatewayError`] itself, so [`crate::client::HttpGateway`] gives callers the same typed
/// error as the in-process sandbox.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    gateway: Option<GatewayError>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, kind: &'static str, message: String) -> Self {
        Self {
            status,
            kind,
            message,
            gateway: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({ "type": self.kind, "message": self.message });
        if let Some(g) = &self.gateway
            && let Ok(v) = serde_json::to_value(g)
        {
            error["gateway_error"] = v;
        }
        (self.status, Json(json!({ "error": error }))).into_response()
    }
}

impl From<GatewayError> for ApiError {
    fn from(e: GatewayError) -> Self {
        let (status, kind) = match &e {
            GatewayError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            GatewayError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            GatewayError::Conflict { .. } => (StatusCode::CONFLICT, "invalid_state"),
            GatewayError::KeyReused => (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused"),
            GatewayError::Timeout => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
            GatewayError::Unsupported(_) => (StatusCode::BAD_REQUEST, "unsupported"),
            GatewayError::Declined { .. } => (StatusCode::PAYMENT_REQUIRED, "card_declined"),
            GatewayError::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            _ => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        };
        Self {
            status,
            kind,
            message: e.to_string(),
            gateway: Some(e),
        }
    }
}

impl From<SandboxError> for ApiError {
    fn from(e: SandboxError) -> Self {
        match e {
            SandboxError::UnknownEndpoint(_) => {
                Self::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            SandboxError::TooManyEndpoints(_) => {
                Self::new(StatusCode::CONFLICT, "limit_reached", e.to_string())
            }
            _ => Self::new(StatusCode::BAD_REQUEST, "invalid_request", e.to_string()),
        }
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => v.to_str().map(|s| Some(s.to_owned())).map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Idempotency-Key must be printable ASCII".into(),
            )
        }),
    }
}

fn intent_id(raw: &str) -> Result<IntentId, ApiError> {
    Ok(IntentId::new(raw)?)
}

async fn create_intent(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    Json(body): Json<CreateIntentBody>,
) -> Result<impl IntoResponse, ApiError> {
    let currency = intent::currency(&body.currency)?;
    let amount = Money {
        amount_minor: body.amount_minor,
        currency,
    };
    // Without a key every request is new, as with the providers.
    let key = idempotency_key(&headers)?
        .unwrap_or_else(|| format!("auto-{}", uuid::Uuid::now_v7().simple()));
    let created = sandbox
        .create_intent(NewIntent {
            amount,
            payment_method: body.payment_method,
            capture_method: body.capture_method,
            metadata: body.metadata,
            idempotency_key: key,
        })
        .await?;
    Ok((StatusCode::OK, Json(created)))
}

fn session_id(raw: &str) -> Result<CheckoutSessionId, ApiError> {
    Ok(CheckoutSessionId::new(raw)?)
}

async fn create_checkout_session(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    Json(body): Json<CreateCheckoutSessionBody>,
) -> Result<impl IntoResponse, ApiError> {
    let currency = intent::currency(&body.currency)?;
    let key = idempotency_key(&headers)?
        .unwrap_or_else(|| format!("auto-{}", uuid::Uuid::now_v7().simple()));
    let session = sandbox
        .create_checkout_session(NewCheckoutSession {
            amount: Money {
                amount_minor: body.amount_minor,
                currency,
            },
            capture_method: body.capture_method,
            return_url: body.return_url,
            description: body.description,
            metadata: body.metadata,
            expires_at: Timestamp::from_millis(body.expires_at_ms),
            idempotency_key: key,
        })
        .await?;
    Ok(Json(session))
}

async fn get_checkout_session(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(sandbox.get_checkout_session(&session_id(&id)?).await?))
}

async fn expire_checkout_session(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        sandbox.expire_checkout_session(&session_id(&id)?).await?,
    ))
}

async fn list_intents(
    State(sandbox): State<Sandbox>,
    Query(query): Query<ListQuery>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(Page::of(sandbox.intents(), &query, |i| {
        i.id.as_str()
    })?))
}

async fn list_refunds(
    State(sandbox): State<Sandbox>,
    Query(query): Query<ListQuery>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(Page::of(sandbox.refunds(), &query, |r| {
        r.id.as_str()
    })?))
}

async fn get_intent(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(sandbox.get_intent(&intent_id(&id)?).await?))
}

async fn confirm_intent(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(sandbox.confirm_intent(&intent_id(&id)?).await?))
}

async fn cancel_intent(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(sandbox.cancel_intent(&intent_id(&id)?).await?))
}

async fn capture(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<CaptureBody>,
) -> Result<impl IntoResponse, ApiError> {
    // Without a key every request is new; a second capture is then a conflict.
    let key = idempotency_key(&headers)?
        .unwrap_or_else(|| format!("auto-{}", uuid::Uuid::now_v7().simple()));
    let captured = sandbox
        .capture(CaptureRequest {
            intent: intent_id(&id)?,
            amount_minor: body.amount_minor,
            idempotency_key: key,
        })
        .await?;
    Ok(Json(captured))
}

async fn refund(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<RefundBody>,
) -> Result<impl IntoResponse, ApiError> {
    let key = idempotency_key(&headers)?
        .unwrap_or_else(|| format!("auto-{}", uuid::Uuid::now_v7().simple()));
    let refund = sandbox
        .refund(RefundRequest {
            intent: intent_id(&id)?,
            amount_minor: body.amount_minor,
            reason: body.reason,
            idempotency_key: key,
        })
        .await?;
    Ok(Json(refund))
}

async fn register_endpoint(
    State(sandbox): State<Sandbox>,
    Json(body): Json<EndpointConfig>,
) -> Result<impl IntoResponse, ApiError> {
    Ok((StatusCode::CREATED, Json(sandbox.register_endpoint(body)?)))
}

async fn get_endpoint(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(sandbox.endpoint(&id)?))
}

async fn rotate_secret(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(sandbox.rotate_secret(&id)?))
}

async fn deliveries(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    sandbox.endpoint(&id)?;
    Ok(Json(sandbox.deliveries(Some(&id))))
}

async fn stats(State(sandbox): State<Sandbox>) -> impl IntoResponse {
    Json(sandbox.delivery_stats())
}
