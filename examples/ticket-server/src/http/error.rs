//! The API's error answer: `{"error": {"code": "SOLD_OUT", "message": "…"}}` with the fitting
//! HTTP status, and `Retry-After` where waiting helps (429, 503, a request still in flight).

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use ticket_core::gateway::GatewayError;
use ticket_core::{Error, Refusal};

use crate::services::auth::AuthError;
use crate::services::hashing::Overloaded;
use crate::services::login::LoginError;
use crate::services::sign_in::SignInError;
use crate::stores::accounts::AccountError;

/// An error as the API answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable, upper-case code (`SOLD_OUT`, `VALIDATION`, `UNAUTHORIZED`, …).
    pub code: String,
    /// For people.
    pub message: String,
    /// `Retry-After`, when waiting helps.
    pub retry_after: Option<Duration>,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same error, asking the client to wait `after` before retrying.
    pub fn retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// 400 `VALIDATION`: the request is malformed (JSON, types, values).
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "VALIDATION", message)
    }

    /// 401 `UNAUTHORIZED`: no valid credentials.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
    }

    /// 403 `FORBIDDEN`: authenticated, but not allowed.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", message)
    }

    /// 404 `NOT_FOUND`.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("{what} not found"),
        )
    }

    /// 429 `RATE_LIMITED` with `Retry-After`.
    pub fn rate_limited(after: Duration) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMITED",
            "too many requests",
        )
        .retry_after(after)
    }
}

/// The body of every error answer: `{"error": {"code": "SOLD_OUT", "message": "…"}}`. The
/// answer's status tells the class of error; `code` tells which one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(examples(json!({"error": {"code": "SOLD_OUT", "message": "sold out: 2 unit(s) of GA asked, 1 available"}})))]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The `error` of an [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, upper-case code to branch on (`VALIDATION`, `UNAUTHORIZED`, `TOKEN_EXPIRED`,
    /// `FORBIDDEN`, `NOT_FOUND`, `SOLD_OUT`, `RATE_LIMITED`, `UNAVAILABLE`, …).
    #[schema(examples("SOLD_OUT"))]
    pub code: String,
    /// For people; its wording may change.
    pub message: String,
}

/// The `code` of an [`ApiError`] answer, put in the response's extensions by
/// [`ApiError::into_response`] so middleware can read it without parsing the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorCode(pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = ErrorCode(self.code.clone());
        let body = Json(ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
        });
        let mut resp = (self.status, body).into_response();
        // The code, for middleware (metrics) that must not parse bodies.
        resp.extensions_mut().insert(code);
        if let Some(after) = self.retry_after {
            // Whole seconds, at least one.
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

/// The refusal's stable code, as the library serialises it (`SOLD_OUT`, `HOLD_EXPIRED`, …).
fn refusal_code(r: &Refusal) -> String {
    serde_json::to_value(r)
        .ok()
        .and_then(|v| v["code"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "REFUSED".to_owned())
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::Invalid(i) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "VALIDATION",
                i.to_string(),
            ),
            Error::Refused(r) => {
                let status = match &r {
                    // Another user's hold is answered as if it did not exist.
                    Refusal::NotOwner => return Self::not_found("hold"),
                    Refusal::UnknownItem { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                    Refusal::NotAdmitted
                    | Refusal::AdmissionExpired { .. }
                    | Refusal::NotInQueue => StatusCode::FORBIDDEN,
                    Refusal::QueueFull { .. } => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::CONFLICT,
                };
                let err = Self::new(status, &refusal_code(&r), r.to_string());
                if matches!(r, Refusal::QueueFull { .. }) {
                    err.retry_after(Duration::from_secs(30))
                } else {
                    err
                }
            }
            Error::NotFound { kind, .. } => Self::not_found(kind),
            Error::KeyReused => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "IDEMPOTENCY_KEY_REUSED",
                "this Idempotency-Key was used with another request",
            ),
            Error::InFlight => Self::new(
                StatusCode::CONFLICT,
                "IN_FLIGHT",
                "a request with this Idempotency-Key is still running",
            )
            .retry_after(Duration::from_secs(1)),
            Error::Payment(g) => match g {
                GatewayError::Invalid(m) => {
                    Self::new(StatusCode::UNPROCESSABLE_ENTITY, "PAYMENT_INVALID", m)
                }
                GatewayError::Timeout | GatewayError::Unavailable(_) => Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "PAYMENT_UNAVAILABLE",
                    g.to_string(),
                )
                .retry_after(Duration::from_secs(2)),
                // Our calls to the provider are over its rate: the caller may retry.
                GatewayError::RateLimited => Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "PAYMENT_RATE_LIMITED",
                    "the payment provider is busy, retry shortly",
                )
                .retry_after(Duration::from_secs(2)),
                // Refused outright (the provider reports most declines on the intent, which
                // the checkout answers 200 with `failure`); nothing was charged.
                GatewayError::Declined { .. } => Self::new(
                    StatusCode::PAYMENT_REQUIRED,
                    "PAYMENT_DECLINED",
                    g.to_string(),
                ),
                // This provider does not offer what was asked (a hosted page, a manual
                // capture): another method may work; nothing changed.
                GatewayError::Unsupported(_) => Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "PAYMENT_UNSUPPORTED",
                    g.to_string(),
                ),
                other => Self::new(StatusCode::CONFLICT, "PAYMENT_CONFLICT", other.to_string()),
            },
            Error::Unavailable(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "storage unavailable, retry",
            )
            .retry_after(Duration::from_secs(1)),
            other => {
                tracing::error!("internal error: {other}");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL",
                    "internal error",
                )
            }
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::WeakPassword(_) => {
                Self::new(StatusCode::BAD_REQUEST, "VALIDATION", e.to_string())
            }
            AuthError::InvalidCredentials | AuthError::TokenInvalid => {
                Self::unauthorized(e.to_string())
            }
            AuthError::TokenExpired => {
                Self::new(StatusCode::UNAUTHORIZED, "TOKEN_EXPIRED", e.to_string())
            }
            other => {
                tracing::error!("auth failure: {other}");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL",
                    "internal error",
                )
            }
        }
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::EmailTaken => {
                Self::new(StatusCode::CONFLICT, "EMAIL_TAKEN", e.to_string())
            }
            AccountError::NotFound => Self::not_found("user"),
            AccountError::TokenUnknown | AccountError::TokenRevoked => {
                Self::unauthorized(e.to_string())
            }
            AccountError::TokenExpired => {
                Self::new(StatusCode::UNAUTHORIZED, "TOKEN_EXPIRED", e.to_string())
            }
            AccountError::TokenReused => {
                Self::new(StatusCode::UNAUTHORIZED, "TOKEN_REUSED", e.to_string())
            }
            AccountError::Invalid(m) => Self::validation(m),
            AccountError::NotAnAdmin { .. } => {
                Self::new(StatusCode::CONFLICT, "NOT_AN_ADMIN", e.to_string())
            }
            AccountError::OwnAccount => {
                Self::new(StatusCode::CONFLICT, "OWN_ACCOUNT", e.to_string())
            }
            AccountError::LastAdmin => Self::new(StatusCode::CONFLICT, "LAST_ADMIN", e.to_string()),
            AccountError::AdminNotBlockable => {
                Self::new(StatusCode::CONFLICT, "ADMIN_NOT_BLOCKABLE", e.to_string())
            }
            AccountError::IdentityTaken => {
                Self::new(StatusCode::CONFLICT, "IDENTITY_TAKEN", e.to_string())
            }
            AccountError::Unavailable(m) => {
                tracing::warn!("account storage unavailable: {m}");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "UNAVAILABLE",
                    "storage unavailable, retry",
                )
                .retry_after(Duration::from_secs(1))
            }
            AccountError::Corrupt(m) => {
                tracing::error!("corrupt account data: {m}");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL",
                    "internal error",
                )
            }
        }
    }
}

impl From<Overloaded> for ApiError {
    /// 503 `OVERLOADED` (with `Retry-After`) when hashing is at capacity.
    fn from(e: Overloaded) -> Self {
        match e {
            Overloaded::Busy => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "OVERLOADED",
                "too many sign-ins at once, retry shortly",
            )
            .retry_after(Duration::from_secs(1)),
            Overloaded::Failed(e) => {
                tracing::error!("hashing task failed: {e}");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL",
                    "internal error",
                )
            }
        }
    }
}

impl From<SignInError> for ApiError {
    /// 429 `RATE_LIMITED` / `LOGIN_THROTTLED` with `Retry-After`; 503 `UNAVAILABLE` when the
    /// throttle store fails (sign-in fails closed).
    fn from(e: SignInError) -> Self {
        match e {
            SignInError::RateLimited { retry_after } => Self::rate_limited(retry_after),
            SignInError::LoginThrottled { retry_after } => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "LOGIN_THROTTLED",
                "too many failed logins for this account, retry later",
            )
            .retry_after(retry_after),
            SignInError::Unavailable(e) => {
                tracing::warn!("throttle store: {e}");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "UNAVAILABLE",
                    "storage unavailable, retry",
                )
                .retry_after(Duration::from_secs(1))
            }
        }
    }
}

impl From<LoginError> for ApiError {
    fn from(e: LoginError) -> Self {
        match e {
            LoginError::Limited(e) => e.into(),
            LoginError::Account(e) => e.into(),
            LoginError::Auth(e) => e.into(),
            LoginError::Overloaded(e) => e.into(),
        }
    }
}

impl From<crate::services::blocking::BlockError> for ApiError {
    fn from(e: crate::services::blocking::BlockError) -> Self {
        use crate::services::blocking::BlockError;
        match e {
            BlockError::Account(e) => e.into(),
            BlockError::Queues(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticket_core::Timestamp;

    #[test]
    fn library_errors_map_to_documented_answers() {
        let sold_out: ApiError = Error::Refused(Refusal::SoldOut {
            grade: ticket_core::model::inventory::Grade::new("GA").unwrap(),
            requested: 2,
            available: 1,
        })
        .into();
        assert_eq!(
            (sold_out.status, sold_out.code.as_str()),
            (StatusCode::CONFLICT, "SOLD_OUT")
        );
        let expired: ApiError = Error::Refused(Refusal::HoldExpired {
            expired_at: Timestamp::from_millis(0),
        })
        .into();
        assert_eq!(expired.code, "HOLD_EXPIRED");
        let not_owner: ApiError = Error::Refused(Refusal::NotOwner).into();
        assert_eq!(
            not_owner.status,
            StatusCode::NOT_FOUND,
            "another user's hold does not exist"
        );
        let not_admitted: ApiError = Error::Refused(Refusal::NotAdmitted).into();
        assert_eq!(not_admitted.status, StatusCode::FORBIDDEN);
        let in_flight: ApiError = Error::InFlight.into();
        assert_eq!(in_flight.retry_after, Some(Duration::from_secs(1)));
        let reused: ApiError = Error::KeyReused.into();
        assert_eq!(reused.status, StatusCode::UNPROCESSABLE_ENTITY);
        // The organiser's refusals: 409 with the library's stable codes.
        use ticket_core::model::sale::SaleState;
        let at = Timestamp::from_millis(0);
        for (refusal, code) in [
            (Refusal::SalesPaused, "SALES_PAUSED"),
            (
                Refusal::SessionCancelled { cancelled_at: at },
                "SESSION_CANCELLED",
            ),
            (
                Refusal::IllegalSaleTransition {
                    from: SaleState::Closed,
                    to: SaleState::Open,
                },
                "ILLEGAL_SALE_TRANSITION",
            ),
            (
                Refusal::CapacityInUse {
                    grade: ticket_core::model::inventory::Grade::new("GA").unwrap(),
                    requested: 2,
                    removable: 1,
                },
                "CAPACITY_IN_USE",
            ),
            (Refusal::SeatsExist { seats: vec![] }, "SEATS_EXIST"),
            (
                Refusal::CancellationClosed { deadline: at },
                "CANCELLATION_CLOSED",
            ),
        ] {
            let api: ApiError = Error::Refused(refusal).into();
            assert_eq!(
                (api.status, api.code.as_str()),
                (StatusCode::CONFLICT, code)
            );
        }
        // The provider's refusals and limits.
        for (g, status, code) in [
            (
                GatewayError::Declined {
                    code: "card_declined".into(),
                    message: "declined".into(),
                },
                StatusCode::PAYMENT_REQUIRED,
                "PAYMENT_DECLINED",
            ),
            (
                GatewayError::Unsupported("hosted checkout".into()),
                StatusCode::UNPROCESSABLE_ENTITY,
                "PAYMENT_UNSUPPORTED",
            ),
            (
                GatewayError::RateLimited,
                StatusCode::SERVICE_UNAVAILABLE,
                "PAYMENT_RATE_LIMITED",
            ),
            (
                GatewayError::Timeout,
                StatusCode::SERVICE_UNAVAILABLE,
                "PAYMENT_UNAVAILABLE",
            ),
            (
                GatewayError::Invalid("x".into()),
                StatusCode::UNPROCESSABLE_ENTITY,
                "PAYMENT_INVALID",
            ),
        ] {
            let transient = g.is_transient();
            let api: ApiError = Error::Payment(g).into();
            assert_eq!((api.status, api.code.as_str()), (status, code));
            assert_eq!(api.retry_after.is_some(), transient, "{code}");
        }
        let corrupt: ApiError = Error::Corrupt("x".into()).into();
        assert_eq!(
            (corrupt.status, corrupt.message.as_str()),
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        );
    }

    #[test]
    fn the_answer_has_the_documented_shape_and_retry_after() {
        let resp = ApiError::rate_limited(Duration::from_millis(1_500)).into_response();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers().get(header::RETRY_AFTER).unwrap(), "2");
        let auth: ApiError = AuthError::TokenExpired.into();
        assert_eq!(
            (auth.status, auth.code.as_str()),
            (StatusCode::UNAUTHORIZED, "TOKEN_EXPIRED")
        );
    }

    #[test]
    fn account_errors_map_to_documented_answers() {
        let cases = [
            (
                AccountError::EmailTaken,
                StatusCode::CONFLICT,
                "EMAIL_TAKEN",
            ),
            (
                AccountError::TokenReused,
                StatusCode::UNAUTHORIZED,
                "TOKEN_REUSED",
            ),
            (
                AccountError::TokenExpired,
                StatusCode::UNAUTHORIZED,
                "TOKEN_EXPIRED",
            ),
            (
                AccountError::TokenUnknown,
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
            ),
            (
                AccountError::TokenRevoked,
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
            ),
            (
                AccountError::Invalid("x".into()),
                StatusCode::BAD_REQUEST,
                "VALIDATION",
            ),
            (
                AccountError::Corrupt("x".into()),
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
            ),
        ];
        for (e, status, code) in cases {
            let api: ApiError = e.into();
            assert_eq!((api.status, api.code.as_str()), (status, code));
        }
        let down: ApiError = AccountError::Unavailable("x".into()).into();
        assert_eq!(
            (down.status, down.retry_after),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Some(Duration::from_secs(1))
            )
        );
    }
}
