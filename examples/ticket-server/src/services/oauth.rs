//! Social login: OAuth 2.0 authorization code with PKCE (RFC 7636, `S256`), and OpenID
//! Connect for the providers that speak it.
//!
//! # Providers
//!
//! * a generic OpenID Connect provider (`--oidc-issuer`, `--oidc-client-id`): endpoints from
//!   `<issuer>/.well-known/openid-configuration`, fetched on first use and cached (a failed
//!   fetch is retried by the next login);
//! * **Kakao** (OpenID Connect; [`crate::runtime::config::oauth::kakao`]): scopes
//!   `openid account_email`, e-mail from the ID token's (or the user info's) `email` and
//!   `email_verified` claims;
//! * **Naver** (OAuth 2.0 only; [`crate::runtime::config::oauth::naver`]): no ID token, so no
//!   nonce; the subject is the profile's `id`, the e-mail its `email`, trusted as verified
//!   only with `--naver-trust-email`.
//!
//! # The flow
//!
//! 1. `GET /api/auth/oauth/{provider}/start`: a random `state` (256 bits), `nonce` (OIDC)
//!    and PKCE verifier. The *pending login* (provider, verifier, nonce) is stored in the
//!    account backend as a one-time record keyed by the SHA-256 of the state, for
//!    [`PENDING_TTL_SECS`] ([`crate::stores::accounts::IdentityStore::put_once`]): every
//!    server process sharing the backend can finish the login, and it can be taken once
//!    only (a replayed state is refused). The state is also set in an `HttpOnly;
//!    SameSite=Lax` cookie (`Path=/api/auth/oauth`) that binds the login to the browser
//!    that started it: a callback URL planted in another browser (login CSRF) is refused.
//!    Answer: 302 to the provider's authorization endpoint.
//! 2. `GET /api/auth/oauth/{provider}/callback`: the state must match the cookie and a
//!    stored pending login of this provider, which is taken (spent, whatever happens next);
//!    an `error` from the provider ends there. The code is exchanged at the token endpoint
//!    with the verifier (no redirects followed, `--oauth-timeout-ms`); the ID token is
//!    checked: an asymmetric signature (RS/PS/ES) by a key of the provider's JWKS, `iss`,
//!    `aud` (and `azp` when several audiences), `exp`, and the `nonce`.
//! 3. The account: the one linked to `(provider, subject)` if any (found by the link, never
//!    by e-mail). Otherwise the provider's e-mail must be present and **verified**: an
//!    unverified e-mail neither creates nor links anything (`OAUTH_EMAIL_UNVERIFIED`), since
//!    linking it would hand an existing account to whoever typed its address at the
//!    provider. A verified e-mail links to the `USER` account holding it (admin and gate
//!    accounts are never linked automatically: `OAUTH_LINK_REFUSED`), or a new `USER`
//!    account without a password is created. A blocked account is refused (`USER_BLOCKED`).
//! 4. The browser is sent back (303) to `/#oauth_login=<code>`: a one-time login code
//!    (256 bits, [`LOGIN_CODE_TTL_SECS`], stored hashed as a one-time record) that the page
//!    trades with `POST /api/auth/oauth/exchange` for the same tokens a password login
//!    gives. Tokens never appear in a URL; the code is in the fragment, which browsers send
//!    to no server and put in no `Referer`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::http::middleware::client_ip::ClientIp;
use crate::runtime::config::oauth::{OAuthConfig, kakao};
use crate::runtime::state::AppState;
use crate::services::login::{self, LoginError, Tokens};
use crate::services::sign_in::{self, SignInRoute};
use crate::stores::accounts::{AccountError, Role, TokenHash, User, UserId, normalize_email};

/// How long a started login may take at the provider, seconds.
pub const PENDING_TTL_SECS: u64 = 600;
/// How long the page has to trade a one-time login code, seconds.
pub const LOGIN_CODE_TTL_SECS: u64 = 60;
/// The cookie binding a started login to its browser.
pub const STATE_COOKIE: &str = "tr_oauth_state";
/// The largest answer read from a provider, bytes.
const MAX_ANSWER_BYTES: usize = 256 * 1024;
/// How long fetched signing keys are trusted before they are fetched again.
const JWKS_TTL: Duration = Duration::from_secs(600);
/// An unknown key id refetches the keys at most this often (key rotation, not a flood).
const JWKS_REFETCH_MIN: Duration = Duration::from_secs(30);
/// Clock skew allowed on the ID token's `exp`, seconds.
const LEEWAY_SECS: u64 = 60;

/// Why a social login failed; nothing was created or issued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OAuthError {
    /// No provider of that name is configured.
    #[error("no such login provider")]
    UnknownProvider,
    /// The `state` is missing, unknown, expired, already used or of another provider.
    #[error("unknown, expired or already used login state")]
    StateInvalid,
    /// The `state` is not the one this browser's cookie holds (another browser started it).
    #[error("the login state does not belong to this browser")]
    StateMismatch,
    /// The callback has neither `code` nor `error`.
    #[error("the callback carries no authorization code")]
    CodeMissing,
    /// The provider answered the callback with an error (the user denied access, …).
    #[error("the provider refused the login: {0}")]
    Denied(String),
    /// The provider failed: its token, user info, JWKS or discovery endpoint answered an
    /// error, garbage, or not in time.
    #[error("the provider failed: {0}")]
    Provider(String),
    /// The ID token is refused (signature, algorithm, `iss`, `aud`, `exp`, `nonce`, …).
    #[error("invalid ID token: {0}")]
    IdToken(String),
    /// The provider gave no e-mail.
    #[error("the provider gave no e-mail address")]
    EmailMissing,
    /// The provider's e-mail is not verified: it neither creates nor links an account.
    #[error("the provider's e-mail address is not verified")]
    EmailUnverified,
    /// The e-mail belongs to an admin or gate account, which is never linked automatically.
    #[error("this e-mail belongs to a privileged account, which is not linked automatically")]
    LinkRefused,
    /// The account is blocked.
    #[error("the account is blocked")]
    Blocked,
    /// The one-time login code is unknown, expired or already used.
    #[error("unknown, expired or already used login code")]
    CodeInvalid,
    /// The account store refused or failed.
    #[error(transparent)]
    Account(#[from] AccountError),
    /// Issuing the tokens failed (limits, store).
    #[error(transparent)]
    Login(#[from] LoginError),
    /// Randomness or encoding failed (a server fault).
    #[error("internal: {0}")]
    Internal(String),
}

/// How a provider says who the user is.
#[derive(Debug)]
enum Protocol {
    /// OpenID Connect: an ID token, user info as a fallback for the e-mail.
    Oidc,
    /// Naver's profile API; `trust_email` marks its e-mail verified.
    NaverProfile { trust_email: bool },
}

/// A provider's endpoints.
#[derive(Debug, Clone)]
struct Endpoints {
    issuer: String,
    authorize: String,
    token: String,
    jwks: Option<String>,
    /// User info (OIDC) or profile (Naver).
    userinfo: Option<String>,
}

/// One configured provider.
struct Provider {
    name: String,
    client_id: String,
    client_secret: Option<String>,
    scopes: String,
    protocol: Protocol,
    /// Known at start (presets), or discovered on first use (generic OIDC).
    endpoints: OnceCell<Endpoints>,
    /// The issuer to discover from, when `endpoints` starts empty.
    discover_from: Option<String>,
    /// The signing keys and when they were fetched.
    jwks: Mutex<Option<(Arc<JwkSet>, Instant)>>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.name)
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

/// A configured provider as the page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderInfo {
    /// Its name in URLs (`kakao`, `naver`, `oidc`, …).
    pub name: String,
    /// Where the browser starts a login.
    pub start_url: String,
}

/// The configured providers and the HTTP client that reaches them. Cheap to share.
pub struct OAuth {
    providers: Vec<Provider>,
    http: reqwest::Client,
    public_url: String,
    secure_cookies: bool,
}

impl std::fmt::Debug for OAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth")
            .field("providers", &self.providers)
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// The pending login stored under the state.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    provider: String,
    verifier: String,
    nonce: Option<String>,
}

/// Where the start answer sends the browser, and the cookie it sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    /// The provider's authorization URL with every parameter.
    pub location: String,
    /// The `Set-Cookie` value binding the login to the browser.
    pub cookie: String,
}

/// What the provider's callback carries (every field optional: a bad callback is answered
/// with the fitting error, never with a parse failure).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Callback {
    /// The authorization code.
    pub code: Option<String>,
    /// The state sent to the provider.
    pub state: Option<String>,
    /// The provider's error code (`access_denied`, …).
    pub error: Option<String>,
    /// The provider's explanation.
    pub error_description: Option<String>,
}

/// Who the provider says the user is.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    subject: String,
    email: Option<String>,
    email_verified: bool,
}

fn random_token() -> Result<String, OAuthError> {
    let mut bytes = [0u8; 32];
    rand_core::TryRngCore::try_fill_bytes(&mut rand_core::OsRng, &mut bytes)
        .map_err(|e| OAuthError::Internal(format!("randomness: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The PKCE `S256` challenge of `verifier`: `BASE64URL(SHA256(verifier))`.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn state_key(state: &str) -> TokenHash {
    TokenHash::of(&format!("oauth-state:{state}"))
}

fn login_code_key(code: &str) -> TokenHash {
    TokenHash::of(&format!("oauth-login:{code}"))
}

/// Equal strings, compared in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl OAuth {
    /// The providers `config` enables; `listen` is the default public address.
    pub fn from_config(config: &OAuthConfig, listen: std::net::SocketAddr) -> Result<Self, String> {
        config.validate()?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_millis(config.oauth_timeout_ms))
            .connect_timeout(Duration::from_millis(config.oauth_timeout_ms))
            .user_agent("ticketrush-example-server")
            .build()
            .map_err(|e| format!("social login HTTP client: {e}"))?;
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{listen}"))
            .trim_end_matches('/')
            .to_owned();
        let mut providers = Vec::new();
        let known = |e: Endpoints| OnceCell::new_with(Some(e));
        if let (Some(issuer), Some(client_id)) = (&config.oidc_issuer, &config.oidc_client_id) {
            providers.push(Provider {
                name: config.oidc_name.clone(),
                client_id: client_id.clone(),
                client_secret: config.oidc_client_secret.clone(),
                scopes: config.oidc_scopes.clone(),
                protocol: Protocol::Oidc,
                endpoints: OnceCell::new(),
                discover_from: Some(issuer.trim_end_matches('/').to_owned()),
                jwks: Mutex::new(None),
            });
        }
        if let Some(client_id) = &config.kakao_client_id {
            providers.push(Provider {
                name: "kakao".into(),
                client_id: client_id.clone(),
                client_secret: config.kakao_client_secret.clone(),
                scopes: kakao::SCOPES.into(),
                protocol: Protocol::Oidc,
                endpoints: known(Endpoints {
                    issuer: config.kakao_issuer.clone(),
                    authorize: config.kakao_authorize_url.clone(),
                    token: config.kakao_token_url.clone(),
                    jwks: Some(config.kakao_jwks_url.clone()),
                    userinfo: Some(config.kakao_userinfo_url.clone()),
                }),
                discover_from: None,
                jwks: Mutex::new(None),
            });
        }
        if let Some(client_id) = &config.naver_client_id {
            providers.push(Provider {
                name: "naver".into(),
                client_id: client_id.clone(),
                client_secret: config.naver_client_secret.clone(),
                scopes: String::new(),
                protocol: Protocol::NaverProfile {
                    trust_email: config.naver_trust_email,
                },
                endpoints: known(Endpoints {
                    issuer: String::new(),
                    authorize: config.naver_authorize_url.clone(),
                    token: config.naver_token_url.clone(),
                    jwks: None,
                    userinfo: Some(config.naver_profile_url.clone()),
                }),
                discover_from: None,
                jwks: Mutex::new(None),
            });
        }
        Ok(Self {
            secure_cookies: public_url.starts_with("https://"),
            providers,
            http,
            public_url,
        })
    }

    /// The configured providers, in a stable order (generic OIDC, Kakao, Naver).
    pub fn providers(&self) -> Vec<ProviderInfo> {
        self.providers
            .iter()
            .map(|p| ProviderInfo {
                name: p.name.clone(),
                start_url: format!("/api/auth/oauth/{}/start", p.name),
            })
            .collect()
    }

    fn provider(&self, name: &str) -> Result<&Provider, OAuthError> {
        self.providers
            .iter()
            .find(|p| p.name == name)
            .ok_or(OAuthError::UnknownProvider)
    }

    /// The redirect URI registered at the providers for `provider`.
    pub fn redirect_uri(&self, provider: &str) -> String {
        format!("{}/api/auth/oauth/{provider}/callback", self.public_url)
    }

    /// A `Set-Cookie` value for the state cookie (`None` clears it).
    pub fn state_cookie(&self, state: Option<&str>) -> String {
        let secure = if self.secure_cookies { "; Secure" } else { "" };
        match state {
            Some(state) => format!(
                "{STATE_COOKIE}={state}; Path=/api/auth/oauth; HttpOnly; SameSite=Lax; \
                 Max-Age={PENDING_TTL_SECS}{secure}"
            ),
            None => format!(
                "{STATE_COOKIE}=; Path=/api/auth/oauth; HttpOnly; SameSite=Lax; Max-Age=0{secure}"
            ),
        }
    }

    /// The provider's endpoints, discovered on first use for a generic provider.
    async fn endpoints(&self, provider: &Provider) -> Result<Endpoints, OAuthError> {
        provider
            .endpoints
            .get_or_try_init(|| async {
                let issuer = provider.discover_from.clone().ok_or_else(|| {
                    OAuthError::Internal(format!("{} has no endpoints", provider.name))
                })?;
                self.discover(&issuer).await
            })
            .await
            .cloned()
    }

    /// Reads `<issuer>/.well-known/openid-configuration`; its `issuer` must be `issuer`.
    async fn discover(&self, issuer: &str) -> Result<Endpoints, OAuthError> {
        #[derive(Deserialize)]
        struct Discovery {
            issuer: String,
            authorization_endpoint: String,
            token_endpoint: String,
            jwks_uri: String,
            userinfo_endpoint: Option<String>,
        }
        let url = format!("{issuer}/.well-known/openid-configuration");
        let answer = self.http.get(&url).send().await;
        let doc: Discovery = read_json(answer, "discovery").await?;
        if doc.issuer.trim_end_matches('/') != issuer {
            return Err(OAuthError::Provider(format!(
                "discovery names issuer {:?}, not {issuer:?}",
                doc.issuer
            )));
        }
        Ok(Endpoints {
            issuer: doc.issuer,
            authorize: doc.authorization_endpoint,
            token: doc.token_endpoint,
            jwks: Some(doc.jwks_uri),
            userinfo: doc.userinfo_endpoint,
        })
    }

    /// The provider's signing keys: cached for [`JWKS_TTL`]; `refresh` (an unknown key id)
    /// refetches them unless they were fetched in the last [`JWKS_REFETCH_MIN`].
    async fn keys(
        &self,
        provider: &Provider,
        url: &str,
        refresh: bool,
    ) -> Result<Arc<JwkSet>, OAuthError> {
        if let Some((keys, at)) = provider.jwks.lock().clone() {
            let age = at.elapsed();
            if age < JWKS_TTL && (!refresh || age < JWKS_REFETCH_MIN) {
                return Ok(keys);
            }
        }
        let answer = self.http.get(url).send().await;
        let keys: Arc<JwkSet> = Arc::new(read_json(answer, "jwks").await?);
        *provider.jwks.lock() = Some((keys.clone(), Instant::now()));
        Ok(keys)
    }
}

/// The JSON body of a successful answer, at most [`MAX_ANSWER_BYTES`]; any failure is
/// [`OAuthError::Provider`] naming `what`.
async fn read_json<T: serde::de::DeserializeOwned>(
    answer: reqwest::Result<reqwest::Response>,
    what: &str,
) -> Result<T, OAuthError> {
    let fail = |why: String| OAuthError::Provider(format!("{what}: {why}"));
    let resp = answer.map_err(|e| fail(e.without_url().to_string()))?;
    let status = resp.status();
    let body = read_body(resp).await.map_err(fail)?;
    if !status.is_success() {
        return Err(fail(format!("HTTP {}", status.as_u16())));
    }
    serde_json::from_slice(&body).map_err(|e| fail(format!("unreadable answer: {e}")))
}

async fn read_body(mut resp: reqwest::Response) -> Result<Vec<u8>, String> {
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
    {
        return Err("answer too large".into());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| e.without_url().to_string())?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_ANSWER_BYTES {
            return Err("answer too large".into());
        }
    }
    Ok(body)
}

/// Starts a login at `provider`: the authorization URL to send the browser to and the
/// cookie binding the login to it. The pending login is stored for [`PENDING_TTL_SECS`].
pub async fn start(state: &AppState, provider: &str) -> Result<Started, OAuthError> {
    let oauth = &state.oauth;
    let p = oauth.provider(provider)?;
    let endpoints = oauth.endpoints(p).await?;
    let state_token = random_token()?;
    let verifier = random_token()?;
    let nonce = match p.protocol {
        Protocol::Oidc => Some(random_token()?),
        Protocol::NaverProfile { .. } => None,
    };
    let mut url = reqwest::Url::parse(&endpoints.authorize)
        .map_err(|e| OAuthError::Internal(format!("authorization endpoint: {e}")))?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &p.client_id)
            .append_pair("redirect_uri", &oauth.redirect_uri(&p.name))
            .append_pair("state", &state_token)
            .append_pair("code_challenge", &pkce_challenge(&verifier))
            .append_pair("code_challenge_method", "S256");
        if !p.scopes.is_empty() {
            q.append_pair("scope", &p.scopes);
        }
        if let Some(nonce) = &nonce {
            q.append_pair("nonce", nonce);
        }
    }
    let pending = Pending {
        provider: p.name.clone(),
        verifier,
        nonce,
    };
    let value = serde_json::to_string(&pending).map_err(|e| OAuthError::Internal(e.to_string()))?;
    let now = state.clock.now();
    state
        .accounts
        .put_once(
            &state_key(&state_token),
            &value,
            now.plus(Duration::from_secs(PENDING_TTL_SECS)),
            now,
        )
        .await?;
    Ok(Started {
        location: url.into(),
        cookie: oauth.state_cookie(Some(&state_token)),
    })
}

/// Finishes a login at `provider` from its callback (`cookie_state`: the state cookie the
/// browser sent): checks the state, exchanges the code, checks who the user is, finds,
/// links or creates the account, and answers a one-time login code for
/// `POST /api/auth/oauth/exchange`.
pub async fn callback(
    state: &AppState,
    provider: &str,
    query: Callback,
    cookie_state: Option<&str>,
) -> Result<String, OAuthError> {
    let oauth = &state.oauth;
    let p = oauth.provider(provider)?;
    let Some(state_token) = query.state.as_deref().filter(|s| !s.is_empty()) else {
        return Err(OAuthError::StateInvalid);
    };
    if !cookie_state.is_some_and(|c| same(c, state_token)) {
        return Err(OAuthError::StateMismatch);
    }
    let now = state.clock.now();
    // Taken first: the state is spent whatever happens next.
    let Some(raw) = state
        .accounts
        .take_once(&state_key(state_token), now)
        .await?
    else {
        return Err(OAuthError::StateInvalid);
    };
    let pending: Pending = serde_json::from_str(&raw)
        .map_err(|e| OAuthError::Internal(format!("pending login: {e}")))?;
    if pending.provider != p.name {
        return Err(OAuthError::StateInvalid);
    }
    if let Some(error) = query.error {
        let error: String = error
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(64)
            .collect();
        tracing::info!(provider = %p.name, %error, "the provider refused a login");
        return Err(OAuthError::Denied(error));
    }
    let Some(code) = query.code.filter(|c| !c.is_empty()) else {
        return Err(OAuthError::CodeMissing);
    };
    let endpoints = oauth.endpoints(p).await?;
    let tokens = exchange_code(oauth, p, &endpoints, &code, &pending, state_token).await?;
    let identity = match p.protocol {
        Protocol::Oidc => oidc_identity(oauth, p, &endpoints, &tokens, &pending).await?,
        Protocol::NaverProfile { trust_email } => {
            naver_identity(oauth, &endpoints, &tokens, trust_email).await?
        }
    };
    let user = account_for(state, &p.name, &identity).await?;
    let code = random_token()?;
    let now = state.clock.now();
    state
        .accounts
        .put_once(
            &login_code_key(&code),
            &user.id.to_string(),
            now.plus(Duration::from_secs(LOGIN_CODE_TTL_SECS)),
            now,
        )
        .await?;
    tracing::info!(user = %user.id, provider = %p.name, "social login");
    Ok(code)
}

/// Trades a one-time login code for tokens (after the per-IP login limit).
pub async fn exchange(
    state: &AppState,
    client: ClientIp,
    code: &str,
) -> Result<Tokens, OAuthError> {
    sign_in::limit_ip(state, SignInRoute::Login, client)
        .await
        .map_err(LoginError::from)?;
    let now = state.clock.now();
    let Some(user) = state.accounts.take_once(&login_code_key(code), now).await? else {
        return Err(OAuthError::CodeInvalid);
    };
    let user: UserId = user
        .parse()
        .map_err(|_| OAuthError::Internal("login code names no user".into()))?;
    let user = match state.accounts.user(user).await {
        Ok(user) => user,
        Err(AccountError::NotFound) => return Err(OAuthError::CodeInvalid),
        Err(e) => return Err(e.into()),
    };
    if user.blocked {
        return Err(OAuthError::Blocked);
    }
    Ok(login::start_session(state, &user).await?)
}

/// The token endpoint's answer.
#[derive(Debug, Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    id_token: Option<String>,
    error: Option<String>,
}

/// `POST` to the token endpoint (`client_secret_post`, as Kakao and Naver document it).
async fn exchange_code(
    oauth: &OAuth,
    p: &Provider,
    endpoints: &Endpoints,
    code: &str,
    pending: &Pending,
    state_token: &str,
) -> Result<TokenAnswer, OAuthError> {
    let redirect_uri = oauth.redirect_uri(&p.name);
    let mut form: Vec<(&str, &str)> = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", &redirect_uri),
        ("client_id", &p.client_id),
        ("code_verifier", &pending.verifier),
    ];
    if let Some(secret) = &p.client_secret {
        form.push(("client_secret", secret));
    }
    if matches!(p.protocol, Protocol::NaverProfile { .. }) {
        // Naver's token request names the state too
        form.push(("state", state_token));
    }
    let answer = oauth
        .http
        .post(&endpoints.token)
        .header(reqwest::header::ACCEPT, "application/json")
        .form(&form)
        .send()
        .await;
    let tokens: TokenAnswer = read_json(answer, "token endpoint").await?;
    // Naver answers errors with 200 and an `error` field.
    if let Some(error) = tokens.error {
        return Err(OAuthError::Provider(format!("token endpoint: {error}")));
    }
    if tokens.access_token.is_none() {
        return Err(OAuthError::Provider(
            "token endpoint: no access token".into(),
        ));
    }
    Ok(tokens)
}

/// An ID token's claims this server reads (`iss`, `aud` and `exp` are checked by the
/// validation).
#[derive(Debug, Deserialize)]
struct IdClaims {
    sub: String,
    nonce: Option<String>,
    azp: Option<String>,
    #[serde(default)]
    aud: Audience,
    email: Option<String>,
    email_verified: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
enum Audience {
    Many(Vec<String>),
    One(serde::de::IgnoredAny),
    #[default]
    None,
}

/// `true`, or the text `"true"` (some providers send strings).
fn truthy(v: Option<&serde_json::Value>) -> bool {
    match v {
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::String(s)) => s == "true",
        _ => false,
    }
}

/// The algorithms an ID token may be signed with: asymmetric only (an `HS256` token
/// "signed" with a public key, or `none`, is refused).
const ID_TOKEN_ALGORITHMS: [Algorithm; 8] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// The key of `keys` that may check a token signed with `alg` under `kid`.
fn pick_key<'k>(keys: &'k JwkSet, kid: Option<&str>, alg: Algorithm) -> Option<&'k Jwk> {
    let usable = |k: &&Jwk| {
        !matches!(k.common.public_key_use, Some(PublicKeyUse::Encryption))
            && !matches!(
                k.algorithm,
                jsonwebtoken::jwk::AlgorithmParameters::OctetKey(_)
            )
            && k.common
                .key_algorithm
                .is_none_or(|a| key_algorithm_matches(a, alg))
    };
    let mut candidates = keys.keys.iter().filter(usable);
    match kid {
        Some(kid) => candidates.find(|k| k.common.key_id.as_deref() == Some(kid)),
        None => {
            let first = candidates.next();
            // without a key id, only an unambiguous key set will do
            if candidates.next().is_some() {
                None
            } else {
                first
            }
        }
    }
}

fn key_algorithm_matches(key: KeyAlgorithm, alg: Algorithm) -> bool {
    format!("{key:?}") == format!("{alg:?}")
}

/// Checks the ID token and reads who the user is; the e-mail from the user info when the
/// ID token has none.
async fn oidc_identity(
    oauth: &OAuth,
    p: &Provider,
    endpoints: &Endpoints,
    tokens: &TokenAnswer,
    pending: &Pending,
) -> Result<Identity, OAuthError> {
    let bad = |why: &str| OAuthError::IdToken(why.to_owned());
    let id_token = tokens
        .id_token
        .as_deref()
        .ok_or_else(|| OAuthError::Provider("token endpoint: no ID token".into()))?;
    let header = jsonwebtoken::decode_header(id_token).map_err(|_| bad("malformed"))?;
    if !ID_TOKEN_ALGORITHMS.contains(&header.alg) {
        return Err(bad("algorithm not accepted"));
    }
    let jwks_url = endpoints
        .jwks
        .as_deref()
        .ok_or_else(|| OAuthError::Internal("no JWKS".into()))?;
    let mut keys = oauth.keys(p, jwks_url, false).await?;
    if pick_key(&keys, header.kid.as_deref(), header.alg).is_none() {
        keys = oauth.keys(p, jwks_url, true).await?;
    }
    let jwk =
        pick_key(&keys, header.kid.as_deref(), header.alg).ok_or_else(|| bad("unknown key"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|_| bad("unusable key"))?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[endpoints.issuer.as_str()]);
    validation.set_audience(&[p.client_id.as_str()]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = LEEWAY_SECS;
    let data = jsonwebtoken::decode::<IdClaims>(id_token, &key, &validation).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::InvalidSignature => bad("bad signature"),
            ErrorKind::ExpiredSignature => bad("expired"),
            ErrorKind::InvalidIssuer => bad("wrong issuer"),
            ErrorKind::InvalidAudience => bad("wrong audience"),
            _ => bad("refused"),
        }
    })?;
    let claims = data.claims;
    if let Audience::Many(auds) = &claims.aud
        && auds.len() > 1
        && claims.azp.as_deref() != Some(p.client_id.as_str())
    {
        return Err(bad("several audiences and another authorized party"));
    }
    match (&pending.nonce, &claims.nonce) {
        (Some(expected), Some(got)) if same(expected, got) => {}
        _ => return Err(bad("nonce mismatch")),
    }
    let mut identity = Identity {
        subject: claims.sub,
        email: claims.email,
        email_verified: truthy(claims.email_verified.as_ref()),
    };
    if identity.email.is_none()
        && let (Some(url), Some(access)) = (&endpoints.userinfo, &tokens.access_token)
    {
        #[derive(Deserialize)]
        struct UserInfo {
            sub: String,
            email: Option<String>,
            email_verified: Option<serde_json::Value>,
        }
        let answer = oauth.http.get(url).bearer_auth(access).send().await;
        let info: UserInfo = read_json(answer, "user info").await?;
        // OIDC Core 5.3.2: the user info's `sub` must be the ID token's
        if info.sub != identity.subject {
            return Err(OAuthError::Provider(
                "user info is about another subject".into(),
            ));
        }
        identity.email = info.email;
        identity.email_verified = truthy(info.email_verified.as_ref());
    }
    Ok(identity)
}

/// Reads Naver's profile: `{"resultcode":"00","message":"success","response":{"id":…,
/// "email":…}}`.
async fn naver_identity(
    oauth: &OAuth,
    endpoints: &Endpoints,
    tokens: &TokenAnswer,
    trust_email: bool,
) -> Result<Identity, OAuthError> {
    #[derive(Deserialize)]
    struct Profile {
        resultcode: String,
        message: Option<String>,
        response: Option<ProfileBody>,
    }
    #[derive(Deserialize)]
    struct ProfileBody {
        id: String,
        email: Option<String>,
    }
    let url = endpoints
        .userinfo
        .as_deref()
        .ok_or_else(|| OAuthError::Internal("no profile endpoint".into()))?;
    let access = tokens.access_token.as_deref().unwrap_or_default();
    let answer = oauth.http.get(url).bearer_auth(access).send().await;
    let profile: Profile = read_json(answer, "profile").await?;
    let body = match (profile.resultcode.as_str(), profile.response) {
        ("00", Some(body)) => body,
        (code, _) => {
            return Err(OAuthError::Provider(format!(
                "profile: resultcode {code:?} ({})",
                profile.message.unwrap_or_default()
            )));
        }
    };
    Ok(Identity {
        subject: body.id,
        email: body.email,
        email_verified: trust_email,
    })
}

/// The account for `identity` at `provider`: linked, linked now by verified e-mail, or
/// created (see the module's documentation). Retries once when a racing login of the same
/// person linked or created it first.
async fn account_for(
    state: &AppState,
    provider: &str,
    identity: &Identity,
) -> Result<User, OAuthError> {
    let accounts = &state.accounts;
    for attempt in 0..2 {
        match accounts.user_by_identity(provider, &identity.subject).await {
            Ok(user) => return usable(user),
            Err(AccountError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
        let email = identity.email.as_deref().ok_or(OAuthError::EmailMissing)?;
        if !identity.email_verified {
            return Err(OAuthError::EmailUnverified);
        }
        let email = normalize_email(email).map_err(|_| OAuthError::EmailMissing)?;
        let now = state.clock.now();
        let outcome = match accounts.user_by_email(&email).await {
            Ok(existing) => {
                if existing.role != Role::User {
                    return Err(OAuthError::LinkRefused);
                }
                let existing = usable(existing)?;
                accounts
                    .link_identity(existing.id, provider, &identity.subject, now)
                    .await
                    .map(|()| existing)
            }
            Err(AccountError::NotFound) => {
                accounts
                    .create_identity_user(&email, provider, &identity.subject, now)
                    .await
            }
            Err(e) => return Err(e.into()),
        };
        match outcome {
            Ok(user) => {
                tracing::info!(user = %user.id, %provider, "social identity linked");
                return Ok(user);
            }
            // someone else won a race: look again (once)
            Err(AccountError::EmailTaken | AccountError::IdentityTaken) if attempt == 0 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(AccountError::IdentityTaken.into())
}

fn usable(user: User) -> Result<User, OAuthError> {
    if user.blocked {
        Err(OAuthError::Blocked)
    } else {
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pkce_challenge_is_rfc7636s() {
        // RFC 7636, appendix B
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn strings_compare_whole() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
    }

    #[test]
    fn email_verified_reads_booleans_and_their_text() {
        assert!(truthy(Some(&serde_json::json!(true))));
        assert!(truthy(Some(&serde_json::json!("true"))));
        assert!(!truthy(Some(&serde_json::json!(false))));
        assert!(!truthy(Some(&serde_json::json!("yes"))));
        assert!(!truthy(None));
    }
}
