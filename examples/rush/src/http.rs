//! The example server (`ticket-server`) as the seller, over HTTP: the buyer's routes with
//! access tokens minted from the server's `--jwt-secret`, and the admin routes to set the
//! run's session up.
//!
//! One [`reqwest::Client`] (a keep-alive pool of up to `workers` connections) carries every
//! request. Each user's access token is signed on the spot (HMAC-SHA256, microseconds), as
//! the server's own login would issue it; the server checks it like any other. User `n` of
//! a run is the UUID made of a random per-run half and `n`, so runs never share a user.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use ticket_core::model::policy::SalesPolicy;
use ticket_core::model::queue::{Outlook, TicketState};
use ticket_core::{Clock, HoldId, SessionId, SystemClock, Timestamp};
use ticket_server::services::auth::TokenKeys;

use crate::config::{Config, Remote};
use crate::error::RushError;
use crate::seller::{Held, Payment, Place, SellError};

/// How long one request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Lifetime of the tokens the simulator signs (longer than any run).
const TOKEN_TTL: Duration = Duration::from_secs(24 * 3_600);

/// A running `ticket-server` selling the run's session.
#[derive(Debug)]
pub struct HttpSeller {
    base: String,
    client: reqwest::Client,
    keys: TokenKeys,
    session: SessionId,
    /// The high half of the run's user ids: user `n` is the UUID `(run, n)` (the server's
    /// user ids are UUIDs), the admin `(run, u64::MAX)`.
    run: u64,
}

impl HttpSeller {
    /// Connects to the server at `remote.url`, creates the run's event (one session of
    /// `config.units` GA units, on sale since a minute ago) and sets its sales policy
    /// (admission required, the run's queue limits and per-user limit).
    pub async fn open(remote: &Remote, config: &Config, now: Timestamp) -> Result<Self, RushError> {
        let http = |context: &str| {
            let context = context.to_owned();
            move |e: SellError| RushError::Http {
                context,
                detail: e.to_string(),
            }
        };
        let keys = TokenKeys::from_secret(remote.jwt_secret.as_bytes())
            .map_err(|e| RushError::Config(format!("--jwt-secret: {e}")))?;
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(config.workers.max(1))
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| RushError::Config(format!("HTTP client: {e}")))?;
        let mut seller = Self {
            base: remote.url.trim_end_matches('/').to_owned(),
            client,
            keys,
            session: SessionId::new_at(now),
            run: uuid::Uuid::now_v7().as_u64_pair().1,
        };
        let day = 86_400_000;
        let ms = now.as_millis();
        let event = seller
            .admin(
                Method::POST,
                "/api/admin/events".into(),
                Some(json!({
                    "name": "Rush simulation",
                    "sessions": [{
                        "starts_at": ms + 31 * day,
                        "sales_open_at": ms - 60_000,
                        "sales_close_at": ms + 30 * day,
                        "grades": [{
                            "grade": "GA",
                            "capacity": config.units,
                            "price_minor": crate::driver::UNIT_PRICE,
                            "currency": "KRW",
                        }],
                    }],
                })),
            )
            .await
            .map_err(http(
                "creating the event (is --url a ticket-server with the same --jwt-secret?)",
            ))?;
        seller.session = event["sessions"][0]["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| RushError::Http {
                context: "creating the event".into(),
                detail: format!("no session id in {event}"),
            })?;
        let mut policy = SalesPolicy::default();
        policy.queue.require_admission = true;
        policy.queue.max_active = config.queue_max_active;
        policy.queue.max_admissions_per_minute = config.queue_rate_per_minute;
        policy.queue.max_waiting = None;
        policy.max_units_per_user = Some(config.max_per_user);
        let body = serde_json::to_value(&policy).map_err(|e| RushError::Http {
            context: "writing the policy".into(),
            detail: e.to_string(),
        })?;
        let path = format!("/api/admin/sessions/{}/policy", seller.session);
        seller
            .admin(Method::PUT, path, Some(body))
            .await
            .map_err(http("setting the sales policy"))?;
        Ok(seller)
    }

    /// The run's session.
    pub fn session(&self) -> SessionId {
        self.session
    }

    fn token(&self, user: &str, role: &str) -> Result<String, SellError> {
        self.keys
            .issue(user, role, SystemClock.now(), TOKEN_TTL)
            .map(|(token, _)| token)
            .map_err(|e| SellError::Transport(format!("signing a token: {e}")))
    }

    /// Sends one request as `user` (role `USER`, or the admin) and reads its JSON answer.
    async fn send(
        &self,
        method: Method,
        path: &str,
        token: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Result<Value, SellError> {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| SellError::Transport(crate::error::chain(&e)))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| SellError::Transport(crate::error::chain(&e)))?;
        let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(json);
        }
        let text = |v: &Value| v.as_str().map(str::to_owned);
        Err(SellError::Api {
            status: status.as_u16(),
            code: text(&json["error"]["code"]).unwrap_or_else(|| "NO_CODE".into()),
            message: text(&json["error"]["message"])
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned()),
        })
    }

    async fn admin(
        &self,
        method: Method,
        path: String,
        body: Option<Value>,
    ) -> Result<Value, SellError> {
        let admin = uuid::Uuid::from_u64_pair(self.run, u64::MAX).to_string();
        let token = self.token(&admin, "ADMIN")?;
        self.send(method, &path, &token, None, body).await
    }

    async fn as_user(
        &self,
        user: u32,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Result<Value, SellError> {
        let id = uuid::Uuid::from_u64_pair(self.run, u64::from(user)).to_string();
        let token = self.token(&id, "USER")?;
        self.send(method, path, &token, key, body).await
    }

    fn queue_path(&self) -> String {
        format!("/api/sessions/{}/queue", self.session)
    }

    /// `POST /api/sessions/{id}/queue`.
    pub async fn join(&self, user: u32) -> Result<Place, SellError> {
        place(
            &self
                .as_user(user, Method::POST, &self.queue_path(), None, None)
                .await?,
        )
    }

    /// `GET /api/sessions/{id}/queue` (the server runs an admission round first).
    pub async fn view(&self, user: u32) -> Result<Place, SellError> {
        place(
            &self
                .as_user(user, Method::GET, &self.queue_path(), None, None)
                .await?,
        )
    }

    /// `DELETE /api/sessions/{id}/queue`.
    pub async fn leave(&self, user: u32) -> Result<(), SellError> {
        self.as_user(user, Method::DELETE, &self.queue_path(), None, None)
            .await
            .map(drop)
    }

    /// `POST /api/holds` with `Idempotency-Key: key`.
    pub async fn hold(&self, user: u32, quantity: u32, key: &str) -> Result<Held, SellError> {
        let body =
            json!({"session_id": self.session.to_string(), "grade": "GA", "quantity": quantity});
        let held = self
            .as_user(user, Method::POST, "/api/holds", Some(key), Some(body))
            .await?;
        let id = held["id"].as_str().and_then(|s| s.parse().ok());
        let units = held["units"].as_u64().and_then(|u| u32::try_from(u).ok());
        match (id, units) {
            (Some(id), Some(units)) => Ok(Held { id, units }),
            _ => Err(SellError::Transport(format!("unreadable hold: {held}"))),
        }
    }

    /// `POST /api/holds/{id}/checkout` by card, keyed per hold.
    pub async fn pay(&self, user: u32, hold: HoldId, card: &str) -> Result<Payment, SellError> {
        let body = json!({"method": "card", "card_number": card});
        let key = format!("pay-{hold}");
        let answer = self
            .as_user(
                user,
                Method::POST,
                &format!("/api/holds/{hold}/checkout"),
                Some(&key),
                Some(body),
            )
            .await?;
        Ok(match answer["hold"]["status"].as_str() {
            Some("confirmed") => Payment::Confirmed,
            Some("payment_failed") => Payment::Failed,
            _ => Payment::Other(answer.to_string()),
        })
    }

    /// `POST /api/reservations/{id}/cancel`: cancel, full refund, refund recorded.
    pub async fn cancel(&self, user: u32, hold: HoldId) -> Result<(), SellError> {
        let answer = self
            .as_user(
                user,
                Method::POST,
                &format!("/api/reservations/{hold}/cancel"),
                Some(&format!("cancel-{hold}")),
                None,
            )
            .await?;
        match answer["status"].as_str() {
            Some("refunded") => Ok(()),
            _ => Err(SellError::Transport(format!(
                "cancel answered {answer} instead of a refunded reservation"
            ))),
        }
    }
}

/// A queue answer (`QueueAnswer` of the server) as a [`Place`].
fn place(v: &Value) -> Result<Place, SellError> {
    let unreadable = || SellError::Transport(format!("unreadable queue answer: {v}"));
    let state = match v["status"].as_str() {
        Some("waiting") => TicketState::Waiting,
        Some("active") => TicketState::Active,
        Some("used") => TicketState::Used,
        Some("expired") => TicketState::Expired,
        Some("left") => TicketState::Left,
        _ => return Err(unreadable()),
    };
    let outlook = match v["outlook"].as_str() {
        Some("likely") => Outlook::Likely,
        Some("possible") => Outlook::Possible,
        Some("unlikely") => Outlook::Unlikely,
        Some("sold_out") => Outlook::SoldOut,
        _ => return Err(unreadable()),
    };
    Ok(Place {
        state,
        outlook,
        ticket: v["ticket_id"].as_str().ok_or_else(unreadable)?.to_owned(),
        number: v["number"].as_u64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_answers_are_read_as_the_server_spells_them() {
        let answer = json!({"ticket_id": "t1", "status": "active", "number": 7,
            "position": null, "waiting": 0, "outlook": "sold_out"});
        let p = place(&answer).expect("readable");
        assert_eq!(
            (p.state, p.outlook, p.ticket.as_str(), p.number),
            (TicketState::Active, Outlook::SoldOut, "t1", Some(7))
        );
        for bad in [
            json!({"ticket_id": "t1", "status": "ACTIVE", "outlook": "likely"}),
            json!({"ticket_id": "t1", "status": "waiting", "outlook": "maybe"}),
            json!({"status": "waiting", "outlook": "likely"}),
        ] {
            assert!(place(&bad).is_err(), "{bad}");
        }
    }
}
