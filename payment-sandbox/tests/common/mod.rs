//! A sandbox served on a free port with an API key, called with `reqwest`, and a handle on
//! the same sandbox to check what the API changed (shared by the security tests).
#![allow(dead_code)]

use payment_sandbox::auth::ApiKey;
use payment_sandbox::cards::numbers;
use payment_sandbox::{Sandbox, SandboxConfig};
use reqwest::Method;
use serde_json::{Value, json};

/// The API key of the served sandboxes.
pub const KEY: &str = "sk_test_security_tests_0123456789abcdef";

/// A served sandbox; the server stops when this is dropped.
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub sandbox: Sandbox,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub fn key() -> ApiKey {
    ApiKey::new(KEY).expect("a valid key")
}

pub async fn start(config: SandboxConfig) -> Api {
    let sandbox = Sandbox::new(config).expect("sandbox");
    let (addr, server) =
        payment_sandbox::http::serve(sandbox.clone(), key(), "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("the API binds");
    Api {
        http: reqwest::Client::new(),
        base: format!("http://{addr}"),
        sandbox,
        server,
    }
}

/// How a request presents (or fails to present) the key.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    /// `Authorization: Bearer <key>`.
    Bearer(&'a str),
    /// `Authorization: <the whole value>`.
    Raw(&'a str),
    /// No `Authorization` header.
    None,
}

impl Api {
    /// Sends a request and returns the status, the `WWW-Authenticate` header and the JSON
    /// answer (`Null` when the body is not JSON).
    pub async fn send_as(
        &self,
        auth: Auth<'_>,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Option<String>, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        req = match auth {
            Auth::Bearer(k) => req.bearer_auth(k),
            Auth::Raw(v) => req.header("authorization", v),
            Auth::None => req,
        };
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(serde_json::to_vec(body).expect("JSON"));
        }
        let resp = req.send().await.expect("the API answers");
        let status = resp.status().as_u16();
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = resp.bytes().await.expect("the body is read");
        (
            status,
            challenge,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// A request with the right key: the status and the JSON answer.
    pub async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        let (status, _, json) = self.send_as(Auth::Bearer(KEY), method, path, body).await;
        (status, json)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(Method::POST, path, Some(body)).await
    }

    /// Creates an intent of `amount_minor` KRW paid by `card`; returns the answer.
    pub async fn create(&self, amount_minor: i64, card: &str) -> (u16, Value) {
        self.post("/v1/payment_intents", &intent_body(amount_minor, card))
            .await
    }

    /// Creates an intent that must be accepted; returns its id.
    pub async fn created(&self, amount_minor: i64, card: &str) -> String {
        let (status, intent) = self.create(amount_minor, card).await;
        assert_eq!(status, 200, "{intent}");
        id_of(&intent)
    }

    /// Creates and confirms an intent with `card`; returns its id.
    pub async fn confirmed(&self, amount_minor: i64, card: &str) -> String {
        let id = self.created(amount_minor, card).await;
        let (status, intent) = self
            .post(&format!("/v1/payment_intents/{id}/confirm"), &json!({}))
            .await;
        assert_eq!(status, 200, "{intent}");
        id
    }

    /// A paid (succeeded) intent; returns its id.
    pub async fn paid(&self, amount_minor: i64) -> String {
        self.confirmed(amount_minor, numbers::SUCCEEDS).await
    }

    /// Registers a webhook endpoint at `url`; returns the answer.
    pub async fn register(&self, url: &str) -> (u16, Value) {
        self.post("/v1/webhook_endpoints", &json!({ "url": url }))
            .await
    }
}

pub fn intent_body(amount_minor: i64, card: &str) -> Value {
    json!({
        "amount_minor": amount_minor,
        "currency": "KRW",
        "payment_method": card,
    })
}

pub fn id_of(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_owned()
}

/// Asserts an error answer in the sandbox's shape: its status and `error.type`.
pub fn assert_error(status: u16, body: &Value, want_status: u16, kind: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["type"], kind, "error type of {body}");
    assert!(
        body["error"]["message"].is_string(),
        "an error carries a message: {body}"
    );
}
