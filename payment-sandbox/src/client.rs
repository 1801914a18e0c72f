//! [`HttpGateway`]: the [`PaymentGateway`] trait over the sandbox's HTTP API, for apps that
//! run several processes against one sandbox (an in-process [`crate::Sandbox`] lives in one
//! process's memory; a shared provider must not).

use std::time::Duration;

use async_trait::async_trait;
use reqwest::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;
use ticket_core::gateway::{
    Capabilities, CaptureRequest, CheckoutSession, CheckoutSessionId, GatewayError, IntentId,
    NewCheckoutSession, NewIntent, PaymentGateway, PaymentIntent, Refund, RefundRequest,
};

use crate::auth::ApiKey;
use crate::delivery::{EndpointConfig, EndpointInfo};
use crate::http::{
    CAPABILITIES, CaptureBody, CreateCheckoutSessionBody, CreateIntentBody, MAX_PAGE, Page,
    RefundBody,
};

/// A client of a sandbox served by [`crate::http::serve`] (or the `payment-sandbox`
/// binary). Every request carries the sandbox's API key (`Authorization: Bearer sk_test_…`,
/// a header marked sensitive); redirects are never followed, so the key goes to the given
/// host only. Errors come back typed as the in-process sandbox gives them; a request that
/// times out is [`GatewayError::Timeout`], one that cannot reach the server
/// [`GatewayError::Unavailable`] (the outcome is unknown in both cases: repeat with the same
/// idempotency key, or read the intent). A refused key (`401`) is
/// [`GatewayError::Unavailable`] too: nothing changed at the sandbox, and the deployment's
/// key must be fixed.
#[derive(Debug, Clone)]
pub struct HttpGateway {
    base: String,
    client: reqwest::Client,
}

impl HttpGateway {
    /// A client of the sandbox at `base_url` (e.g. `http://127.0.0.1:8090`) whose API key is
    /// `api_key` (the sandbox's `--api-key`), each request limited to `timeout`.
    pub fn new(base_url: &str, api_key: ApiKey, timeout: Duration) -> Result<Self, GatewayError> {
        let url = reqwest::Url::parse(base_url)
            .map_err(|e| GatewayError::Invalid(format!("sandbox URL {base_url:?}: {e}")))?;
        if url.scheme() != "http" {
            return Err(GatewayError::Invalid(format!(
                "sandbox URL {base_url:?}: only http is supported"
            )));
        }
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            api_key
                .header_value()
                .map_err(|e| GatewayError::Invalid(e.to_string()))?,
        );
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .default_headers(headers)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| GatewayError::Unavailable(format!("HTTP client: {e}")))?;
        Ok(Self {
            base: base_url.trim_end_matches('/').to_owned(),
            client,
        })
    }

    async fn call<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<&impl Serialize>,
        idempotency_key: Option<&str>,
    ) -> Result<T, GatewayError> {
        let url = format!("{}{path}", self.base);
        let mut req = match body {
            Some(b) => {
                let bytes = serde_json::to_vec(b)
                    .map_err(|e| GatewayError::Invalid(format!("request body: {e}")))?;
                self.client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(bytes)
            }
            None => self.client.get(url),
        };
        if let Some(k) = idempotency_key {
            req = req.header("idempotency-key", k);
        }
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(transport)?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|e| GatewayError::Unavailable(format!("unreadable answer: {e}")));
        }
        Err(api_error(status, &bytes))
    }

    async fn post_empty<T: DeserializeOwned>(&self, path: &str) -> Result<T, GatewayError> {
        self.call(path, Some(&serde_json::json!({})), None).await
    }

    /// Registers a webhook endpoint (`POST /v1/webhook_endpoints`); returns its id and the
    /// key its receiver verifies with. A URL the sandbox refuses ([`crate::webhook_url`]) is
    /// [`GatewayError::Invalid`] with the sandbox's reason.
    pub async fn register_endpoint(
        &self,
        endpoint: &EndpointConfig,
    ) -> Result<EndpointInfo, GatewayError> {
        self.call("/v1/webhook_endpoints", Some(endpoint), None)
            .await
    }

    /// Every intent of the sandbox, oldest first (`GET /v1/payment_intents`, page by page).
    /// Not a snapshot: intents created while it pages are listed or not.
    pub async fn list_intents(&self) -> Result<Vec<PaymentIntent>, GatewayError> {
        self.list("/v1/payment_intents", |i: &PaymentIntent| {
            i.id.as_str().to_owned()
        })
        .await
    }

    /// Every refund of the sandbox, in the order they were made (`GET /v1/refunds`).
    pub async fn list_refunds(&self) -> Result<Vec<Refund>, GatewayError> {
        self.list("/v1/refunds", |r: &Refund| r.id.clone()).await
    }

    async fn list<T: DeserializeOwned>(
        &self,
        path: &str,
        id: impl Fn(&T) -> String,
    ) -> Result<Vec<T>, GatewayError> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let url = match &after {
                None => format!("{path}?limit={MAX_PAGE}"),
                Some(a) => format!("{path}?limit={MAX_PAGE}&starting_after={}", url_safe(a)?),
            };
            let page: Page<T> = self.call(&url, None::<&()>, None).await?;
            let more = page.has_more;
            after = page.data.last().map(&id);
            all.extend(page.data);
            if !more || after.is_none() {
                return Ok(all);
            }
        }
    }
}

fn transport(e: reqwest::Error) -> GatewayError {
    if e.is_timeout() {
        GatewayError::Timeout
    } else {
        GatewayError::Unavailable(e.to_string())
    }
}

/// The typed error the sandbox put in its answer, or one made from the status.
fn api_error(status: StatusCode, body: &[u8]) -> GatewayError {
    let parsed: Option<GatewayError> = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| serde_json::from_value(v["error"]["gateway_error"].clone()).ok());
    parsed.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body).into_owned();
        match status {
            StatusCode::GATEWAY_TIMEOUT => GatewayError::Timeout,
            StatusCode::UNAUTHORIZED => GatewayError::Unavailable(format!(
                "the payment sandbox refused the API key (401): {text}"
            )),
            s if s.is_client_error() => GatewayError::Invalid(format!("{s}: {text}")),
            s => GatewayError::Unavailable(format!("{s}: {text}")),
        }
    })
}

/// The id as a path segment; the sandbox's ids are `[A-Za-z0-9_-]`, anything else could
/// change the request's path and is refused.
fn path_id(id: &IntentId) -> Result<&str, GatewayError> {
    url_safe(id.as_str())
}

/// `s` when it is one of the sandbox's ids (`[A-Za-z0-9_-]`), safe in a path or a query.
fn url_safe(s: &str) -> Result<&str, GatewayError> {
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        Ok(s)
    } else {
        Err(GatewayError::Invalid(format!(
            "id {s:?} is not a sandbox id"
        )))
    }
}

#[async_trait]
impl PaymentGateway for HttpGateway {
    /// The sandbox's [`CAPABILITIES`]: a sandbox served by this crate's version offers
    /// them all (no request is made).
    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    async fn create_intent(&self, req: NewIntent) -> Result<PaymentIntent, GatewayError> {
        let body = CreateIntentBody {
            amount_minor: req.amount.amount_minor,
            currency: req.amount.currency.as_str().to_owned(),
            payment_method: req.payment_method,
            capture_method: req.capture_method,
            metadata: req.metadata,
        };
        self.call(
            "/v1/payment_intents",
            Some(&body),
            Some(&req.idempotency_key),
        )
        .await
    }

    async fn confirm_intent(&self, id: &IntentId) -> Result<PaymentIntent, GatewayError> {
        self.post_empty(&format!("/v1/payment_intents/{}/confirm", path_id(id)?))
            .await
    }

    async fn get_intent(&self, id: &IntentId) -> Result<PaymentIntent, GatewayError> {
        self.call(
            &format!("/v1/payment_intents/{}", path_id(id)?),
            None::<&()>,
            None,
        )
        .await
    }

    async fn cancel_intent(&self, id: &IntentId) -> Result<PaymentIntent, GatewayError> {
        self.post_empty(&format!("/v1/payment_intents/{}/cancel", path_id(id)?))
            .await
    }

    async fn capture(&self, req: CaptureRequest) -> Result<PaymentIntent, GatewayError> {
        let body = CaptureBody {
            amount_minor: req.amount_minor,
        };
        self.call(
            &format!("/v1/payment_intents/{}/capture", path_id(&req.intent)?),
            Some(&body),
            Some(&req.idempotency_key),
        )
        .await
    }

    async fn create_checkout_session(
        &self,
        req: NewCheckoutSession,
    ) -> Result<CheckoutSession, GatewayError> {
        let body = CreateCheckoutSessionBody {
            amount_minor: req.amount.amount_minor,
            currency: req.amount.currency.as_str().to_owned(),
            capture_method: req.capture_method,
            return_url: req.return_url,
            description: req.description,
            metadata: req.metadata,
            expires_at_ms: req.expires_at.as_millis(),
        };
        self.call(
            "/v1/checkout_sessions",
            Some(&body),
            Some(&req.idempotency_key),
        )
        .await
    }

    async fn get_checkout_session(
        &self,
        id: &CheckoutSessionId,
    ) -> Result<CheckoutSession, GatewayError> {
        self.call(
            &format!("/v1/checkout_sessions/{}", url_safe(id.as_str())?),
            None::<&()>,
            None,
        )
        .await
    }

    async fn expire_checkout_session(
        &self,
        id: &CheckoutSessionId,
    ) -> Result<CheckoutSession, GatewayError> {
        self.post_empty(&format!(
            "/v1/checkout_sessions/{}/expire",
            url_safe(id.as_str())?
        ))
        .await
    }

    async fn refund(&self, req: RefundRequest) -> Result<Refund, GatewayError> {
        let body = RefundBody {
            amount_minor: req.amount_minor,
            reason: req.reason,
        };
        self.call(
            &format!("/v1/payment_intents/{}/refunds", path_id(&req.intent)?),
            Some(&body),
            Some(&req.idempotency_key),
        )
        .await
    }
}
