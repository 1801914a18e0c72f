//! Social login (OAuth 2.0 authorization code with PKCE, OpenID Connect); the flow and its
//! security choices are described in [`crate::services::oauth`].
//!
//! * `GET /api/auth/providers` → 200 `{providers: [{name, start_url}]}`
//! * `GET /api/auth/oauth/{provider}/start` → 302 to the provider, with the state cookie
//! * `GET /api/auth/oauth/{provider}/callback?code=…&state=…` (or `error=…`) → 303 to
//!   `/#oauth_login=<one-time code>`, the state cookie cleared
//! * `POST /api/auth/oauth/exchange` {code} → 200 [`TokenAnswer`], as a password login
//!
//! Every handler is described for `GET /openapi.json` by its `#[utoipa::path]` (tag `auth`).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::JsonBody;
use crate::http::middleware::cache::no_store;
use crate::http::middleware::client_ip::ClientIp;
use crate::http::routes::auth::TokenAnswer;
use crate::runtime::state::AppState;
use crate::services::oauth::{self, Callback, OAuthError, STATE_COOKIE};

/// The routes of this group.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/providers", get(providers))
        .route("/api/auth/oauth/{provider}/start", get(start))
        .route("/api/auth/oauth/{provider}/callback", get(callback))
        .route("/api/auth/oauth/exchange", post(exchange))
}

impl From<OAuthError> for ApiError {
    fn from(e: OAuthError) -> Self {
        let message = e.to_string();
        let answer = |status: StatusCode, code: &str| ApiError::new(status, code, message.clone());
        match e {
            OAuthError::UnknownProvider => ApiError::not_found("login provider"),
            OAuthError::StateInvalid => answer(StatusCode::BAD_REQUEST, "OAUTH_STATE_INVALID"),
            OAuthError::StateMismatch => answer(StatusCode::BAD_REQUEST, "OAUTH_STATE_MISMATCH"),
            OAuthError::CodeMissing => ApiError::validation(message),
            OAuthError::Denied(_) => answer(StatusCode::BAD_REQUEST, "OAUTH_DENIED"),
            OAuthError::Provider(m) => {
                tracing::warn!("social login provider failed: {m}");
                answer(StatusCode::BAD_GATEWAY, "OAUTH_PROVIDER_FAILED")
            }
            OAuthError::IdToken(m) => {
                tracing::warn!("ID token refused: {m}");
                answer(StatusCode::UNAUTHORIZED, "OAUTH_ID_TOKEN_INVALID")
            }
            OAuthError::EmailMissing => answer(StatusCode::FORBIDDEN, "OAUTH_EMAIL_MISSING"),
            OAuthError::EmailUnverified => answer(StatusCode::FORBIDDEN, "OAUTH_EMAIL_UNVERIFIED"),
            OAuthError::LinkRefused => answer(StatusCode::CONFLICT, "OAUTH_LINK_REFUSED"),
            OAuthError::Blocked => answer(StatusCode::FORBIDDEN, "USER_BLOCKED"),
            OAuthError::CodeInvalid => answer(StatusCode::UNAUTHORIZED, "OAUTH_CODE_INVALID"),
            OAuthError::Account(e) => e.into(),
            OAuthError::Login(e) => e.into(),
            OAuthError::Internal(m) => {
                tracing::error!("social login: {m}");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL",
                    "internal error",
                )
            }
        }
    }
}

/// A configured login provider.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProviderAnswer {
    /// Its name in URLs (`kakao`, `naver`, `oidc`, …).
    #[schema(examples("kakao"))]
    pub name: String,
    /// Where the browser starts a login (a relative URL of this server).
    #[schema(examples("/api/auth/oauth/kakao/start"))]
    pub start_url: String,
}

/// The configured login providers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProvidersAnswer {
    /// Every provider configured, possibly none.
    pub providers: Vec<ProviderAnswer>,
}

/// `POST /api/auth/oauth/exchange` body (unknown fields: 400).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExchangeRequest {
    /// The one-time login code from the `#oauth_login=` fragment.
    #[schema(max_length = 128)]
    pub code: String,
}

/// The social login providers configured on this server.
#[utoipa::path(
    get,
    path = "/api/auth/providers",
    tag = "auth",
    summary = "Social login providers",
    responses(
        (status = 200, description = "The configured providers", body = ProvidersAnswer),
    )
)]
async fn providers(State(state): State<AppState>) -> Json<ProvidersAnswer> {
    Json(ProvidersAnswer {
        providers: state
            .oauth
            .providers()
            .into_iter()
            .map(|p| ProviderAnswer {
                name: p.name,
                start_url: p.start_url,
            })
            .collect(),
    })
}

/// Starts a social login: sends the browser to the provider's authorization endpoint with a
/// fresh `state`, `nonce` (OpenID Connect) and PKCE `S256` challenge, and sets the
/// `tr_oauth_state` cookie binding the login to this browser (valid 10 minutes, single use).
#[utoipa::path(
    get,
    path = "/api/auth/oauth/{provider}/start",
    tag = "auth",
    summary = "Start a social login",
    params(("provider" = String, Path, pattern = "^[a-z0-9_-]{1,32}$", description = "The provider's name (`GET /api/auth/providers`)")),
    responses(
        (status = 302, description = "To the provider's authorization endpoint", headers(("Location" = String, description = "The authorization URL"), ("Set-Cookie" = String, description = "`tr_oauth_state=…; Path=/api/auth/oauth; HttpOnly; SameSite=Lax`"))),
        (status = 404, description = "No such provider: `NOT_FOUND`", body = ErrorBody),
        (status = 502, description = "The provider's discovery document could not be read: `OAUTH_PROVIDER_FAILED`", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn start(
    State(state): State<AppState>,
    Path(provider): Path<String>,
) -> Result<Response, ApiError> {
    let started = oauth::start(&state, &provider).await?;
    let mut resp = no_store(StatusCode::FOUND);
    let headers = resp.headers_mut();
    headers.insert(header::LOCATION, header_value(&started.location)?);
    headers.insert(header::SET_COOKIE, header_value(&started.cookie)?);
    Ok(resp)
}

fn header_value(s: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(s).map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "internal error",
        )
    })
}

/// The `tr_oauth_state` cookie of the request, if any.
fn state_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == STATE_COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// Finishes a social login where the provider sent the browser back: checks the state
/// (against this browser's cookie and the pending login, which it spends), exchanges the
/// code with the PKCE verifier, checks the ID token (signature by the provider's JWKS,
/// `iss`, `aud`, `exp`, `nonce`), then finds the account linked to the provider's subject,
/// links the account holding the same **verified** e-mail, or creates one. Sends the browser
/// to `/#oauth_login=<code>`: a one-time code (60 s) for `POST /api/auth/oauth/exchange`.
#[utoipa::path(
    get,
    path = "/api/auth/oauth/{provider}/callback",
    tag = "auth",
    summary = "Finish a social login (the provider's redirect)",
    params(
        ("provider" = String, Path, pattern = "^[a-z0-9_-]{1,32}$", description = "The provider's name"),
        ("code" = Option<String>, Query, description = "The authorization code"),
        ("state" = Option<String>, Query, description = "The state the login started with"),
        ("error" = Option<String>, Query, description = "The provider's error (`access_denied`, …)"),
        ("error_description" = Option<String>, Query, description = "The provider's explanation"),
    ),
    responses(
        (status = 303, description = "Logged in: to the demo page with a one-time login code in the fragment; the state cookie is cleared", headers(("Location" = String, description = "`/#oauth_login=<code>`"), ("Set-Cookie" = String, description = "Clears `tr_oauth_state`"))),
        (status = 400, description = "Missing, unknown, expired, already used or foreign state (`OAUTH_STATE_INVALID`), a state this browser did not start (`OAUTH_STATE_MISMATCH`), the provider refused (`OAUTH_DENIED`), no code or a malformed query (`VALIDATION`)", body = ErrorBody),
        (status = 401, description = "The ID token is refused (signature, algorithm, issuer, audience, expiry, nonce): `OAUTH_ID_TOKEN_INVALID`", body = ErrorBody),
        (status = 403, description = "The provider gave no e-mail (`OAUTH_EMAIL_MISSING`) or an unverified one (`OAUTH_EMAIL_UNVERIFIED`): nothing is created or linked; or the account is blocked (`USER_BLOCKED`)", body = ErrorBody),
        (status = 404, description = "No such provider: `NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "The e-mail belongs to an admin or gate account, never linked automatically (`OAUTH_LINK_REFUSED`), or a racing login linked it elsewhere (`IDENTITY_TAKEN`)", body = ErrorBody),
        (status = 502, description = "The provider's token, user info, JWKS or discovery endpoint failed: `OAUTH_PROVIDER_FAILED`", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn callback(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    query: Result<Query<Callback>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::validation(e.body_text()))?;
    let cookie = state_cookie(&headers);
    let code = oauth::callback(&state, &provider, query, cookie.as_deref()).await?;
    let mut resp = no_store(StatusCode::SEE_OTHER);
    let headers = resp.headers_mut();
    headers.insert(
        header::LOCATION,
        header_value(&format!("/#oauth_login={code}"))?,
    );
    headers.insert(
        header::SET_COOKIE,
        header_value(&state.oauth.state_cookie(None))?,
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    Ok(resp)
}

/// Trades the one-time login code of a social login for an access token and a refresh
/// token, as `POST /api/auth/login` answers. The code works once, for 60 seconds.
#[utoipa::path(
    post,
    path = "/api/auth/oauth/exchange",
    tag = "auth",
    summary = "Trade a social login's one-time code for tokens",
    request_body = ExchangeRequest,
    responses(
        (status = 200, description = "The tokens", body = TokenAnswer, headers(("Cache-Control" = String, description = "`no-store`"), ("Pragma" = String, description = "`no-cache`"))),
        (status = 400, description = "Malformed body: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "An unknown, expired or already used code: `OAUTH_CODE_INVALID`", body = ErrorBody),
        (status = 403, description = "The account is blocked: `USER_BLOCKED`", body = ErrorBody),
        (status = 429, description = "Too many logins from this client address: `RATE_LIMITED` (with `Retry-After`)", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn exchange(
    State(state): State<AppState>,
    client: ClientIp,
    headers: axum::http::HeaderMap,
    JsonBody(body): JsonBody<ExchangeRequest>,
) -> Result<Response, ApiError> {
    if body.code.len() > 128 {
        return Err(OAuthError::CodeInvalid.into());
    }
    let tokens = oauth::exchange(&state, client, &body.code).await?;
    // Like a password login: the refresh token also as the cookie, so the page keeps the
    // login across reloads.
    use crate::http::routes::auth::{token_answer_of, with_refresh_cookie};
    Ok(with_refresh_cookie(
        token_answer_of(&tokens),
        &tokens,
        &headers,
    ))
}
