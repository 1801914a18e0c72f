//! What the benchmark prepares through the server's own API: access tokens minted with the
//! server's secret, and an event whose one GA session every hold can take from (a huge
//! capacity, no queue admission, no per-user limit), so that nothing but the server's work
//! is measured.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use ticket_core::Timestamp;
use ticket_server::services::auth::TokenKeys;

use crate::BenchError;

/// Units of the benchmark's session: the most the library accepts for one grade, more than
/// half an hour of holds at 5 000/s (a sold-out session would answer 409, counted as errors).
pub const CAPACITY: u32 = 10_000_000;

/// The grade the holds take.
pub const GRADE: &str = "GA";

/// How long the minted access tokens live (longer than any run).
const TOKEN_TTL: Duration = Duration::from_secs(6 * 3_600);

/// Mints access tokens the server accepts (it runs with the same `--jwt-secret`).
pub struct Tokens {
    keys: TokenKeys,
}

impl Tokens {
    /// Keys from the server's secret.
    pub fn new(secret: &str) -> Result<Self, BenchError> {
        let keys = TokenKeys::from_secret(secret.as_bytes())
            .map_err(|e| BenchError::Setup(format!("token keys: {e}")))?;
        Ok(Self { keys })
    }

    /// A token for a new user (a fresh UUIDv7 account id) with `role` (`USER`, `ADMIN`).
    pub fn fresh(&self, role: &str) -> Result<String, BenchError> {
        let user = uuid::Uuid::now_v7().to_string();
        let now = Timestamp::from_millis(now_millis()?);
        self.keys
            .issue(&user, role, now, TOKEN_TTL)
            .map(|(token, _)| token)
            .map_err(|e| BenchError::Setup(format!("minting a token: {e}")))
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> Result<i64, BenchError> {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| BenchError::Setup(format!("the clock is before 1970: {e}")))?;
    i64::try_from(since.as_millis()).map_err(|_| BenchError::Setup("clock overflow".into()))
}

/// Sends `body` to `path` as the admin and returns the JSON answer, or the status and body
/// as an error.
pub async fn admin_call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    admin: &str,
    body: &Value,
) -> Result<Value, BenchError> {
    let what = format!("{method} {url}");
    let resp = client
        .request(method, &url)
        .bearer_auth(admin)
        .json(body)
        .send()
        .await
        .map_err(|e| BenchError::Setup(format!("{what}: {}", crate::chain(&e))))?;
    let status = resp.status();
    let text = resp
        .text()
        .await
        .map_err(|e| BenchError::Setup(format!("{what}: reading the answer: {e}")))?;
    if !status.is_success() {
        return Err(BenchError::Setup(format!(
            "{what} answered {status}: {text}"
        )));
    }
    serde_json::from_str(&text)
        .map_err(|e| BenchError::Setup(format!("{what}: the answer is not JSON ({e}): {text}")))
}

/// Creates the benchmark's event through `POST /api/admin/events` (one GA session of
/// [`CAPACITY`] units, on sale now) and sets its policy through
/// `PUT /api/admin/sessions/{id}/policy` (no queue admission, no per-user limit); the
/// session's id.
pub async fn create_session(
    client: &reqwest::Client,
    base: &str,
    tokens: &Tokens,
) -> Result<String, BenchError> {
    let admin = tokens.fresh("ADMIN")?;
    let now = now_millis()?;
    let day = 86_400_000;
    let event = json!({
        "name": format!("rush-http-bench {now}"),
        "sessions": [{
            "starts_at": now + 7 * day,
            "sales_open_at": now - 60_000,
            "sales_close_at": now + day,
            "grades": [{ "grade": GRADE, "capacity": CAPACITY, "price_minor": 50_000, "currency": "KRW" }],
        }],
    });
    let created = admin_call(
        client,
        reqwest::Method::POST,
        format!("{base}/api/admin/events"),
        &admin,
        &event,
    )
    .await?;
    let session = created["sessions"][0]["id"]
        .as_str()
        .ok_or_else(|| BenchError::Setup(format!("no session id in the new event: {created}")))?
        .to_owned();
    let policy = json!({
        "max_units_per_user": null,
        "queue": {
            "require_admission": false,
            "max_active": 500,
            "max_admissions_per_minute": 1_000,
            "max_waiting": null,
        },
    });
    let stored = admin_call(
        client,
        reqwest::Method::PUT,
        format!("{base}/api/admin/sessions/{session}/policy"),
        &admin,
        &policy,
    )
    .await?;
    if stored["queue"]["require_admission"] != false || !stored["max_units_per_user"].is_null() {
        return Err(BenchError::Setup(format!(
            "the server kept another policy than asked: {stored}"
        )));
    }
    Ok(session)
}
