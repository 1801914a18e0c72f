//! Social login over real HTTP against a mock provider (wiremock: discovery, authorization
//! parameters, token endpoint, user info / profile, JWKS) whose ID tokens are signed with a
//! real ES256 key made here: the success paths (create, find again, link by verified e-mail,
//! the Kakao and Naver presets) and every refusal with its documented answer (state, nonce,
//! signature, audience, unverified e-mail, provider errors), nothing created when refused.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Answer, Kind, Server, call, server};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use ticket_server::stores::accounts::AccountError;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const CLIENT_ID: &str = "client-1";

/// An ES256 signing key (from fixed bytes: deterministic, and no RNG crate needed).
struct Key {
    encoding: EncodingKey,
    jwk: Value,
}

fn key(seed: &str, kid: &str) -> Key {
    let bytes: [u8; 32] = Sha256::digest(seed.as_bytes()).into();
    let secret = p256::SecretKey::from_bytes(&bytes.into()).expect("secret key");
    let der = secret.to_pkcs8_der().expect("pkcs8");
    let point = secret.public_key().to_encoded_point(false);
    let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    Key {
        encoding: EncodingKey::from_ec_der(der.as_bytes()),
        jwk: json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": b64(point.x().expect("x")), "y": b64(point.y().expect("y")),
        }),
    }
}

fn now_secs() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs(),
    )
    .expect("secs")
}

fn sign(key: &Key, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &key.encoding).expect("sign")
}

/// A mock provider at `mock`: discovery (issuer = its URI) and JWKS with `key` as `k1`.
async fn provider(key: &Key) -> MockServer {
    let mock = MockServer::start().await;
    let issuer = mock.uri();
    Mock::given(method("GET"))
        .and(path("/.well-known/openid-configuration"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks"),
            "userinfo_endpoint": format!("{issuer}/userinfo"),
        })))
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/jwks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"keys": [key.jwk]})))
        .mount(&mock)
        .await;
    mock
}

async fn oidc_server(kind: Kind, mock: &MockServer) -> Server {
    let issuer = mock.uri();
    server(
        kind,
        &[
            "--oidc-issuer",
            &issuer,
            "--oidc-client-id",
            CLIENT_ID,
            "--oidc-client-secret",
            "s3cret",
        ],
    )
    .await
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// What a started login handed the browser.
#[derive(Debug, Clone)]
struct Started {
    query: std::collections::HashMap<String, String>,
    authorize: String,
    cookie: String,
}

async fn start(server: &Server, provider: &str) -> Started {
    let resp = no_redirects()
        .get(format!("{}/api/auth/oauth/{provider}/start", server.url))
        .send()
        .await
        .expect("start");
    assert_eq!(resp.status().as_u16(), 302, "start: {resp:?}");
    let location = resp.headers()["location"].to_str().expect("location");
    let url = reqwest::Url::parse(location).expect("url");
    let set_cookie = resp.headers()["set-cookie"].to_str().expect("cookie");
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    assert!(set_cookie.contains("Path=/api/auth/oauth"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().expect("pair").to_owned();
    Started {
        query: url.query_pairs().into_owned().collect(),
        authorize: format!("{}://{}{}", url.scheme(), url.authority(), url.path()),
        cookie,
    }
}

/// The provider's token endpoint answers `body` to `code` — only when the PKCE verifier
/// matches the challenge `started` sent.
async fn token_answers(mock: &MockServer, started: &Started, code: &str, answer: ResponseTemplate) {
    let challenge = started.query["code_challenge"].clone();
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains(format!("code={code}&")))
        .and(body_string_contains(format!("client_id={CLIENT_ID}")))
        .and(move |req: &Request| {
            let body = String::from_utf8_lossy(&req.body).to_string();
            url_form(&body)
                .get("code_verifier")
                .is_some_and(|v| URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes())) == challenge)
        })
        .respond_with(answer)
        .up_to_n_times(1)
        .mount(mock)
        .await;
}

fn url_form(body: &str) -> std::collections::HashMap<String, String> {
    reqwest::Url::parse(&format!("http://x/?{body}"))
        .expect("form")
        .query_pairs()
        .into_owned()
        .collect()
}

fn id_token_answer(id_token: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "access_token": "at-1", "token_type": "Bearer", "expires_in": 3600,
        "id_token": id_token,
    }))
}

fn claims(mock: &MockServer, started: &Started, sub: &str, email: &str, verified: bool) -> Value {
    json!({
        "iss": mock.uri(), "aud": CLIENT_ID, "sub": sub,
        "iat": now_secs(), "exp": now_secs() + 300,
        "nonce": started.query["nonce"],
        "email": email, "email_verified": verified,
    })
}

/// The callback as the browser makes it: the provider's query and the state cookie.
async fn callback(
    server: &Server,
    provider: &str,
    query: &str,
    cookie: &str,
) -> (u16, String, Value) {
    let resp = no_redirects()
        .get(format!(
            "{}/api/auth/oauth/{provider}/callback?{query}",
            server.url
        ))
        .header("cookie", cookie)
        .send()
        .await
        .expect("callback");
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let json = resp.json().await.unwrap_or(Value::Null);
    (status, location, json)
}

fn assert_refused(answer: &(u16, String, Value), status: u16, code: &str) {
    assert_eq!(answer.0, status, "{answer:?}");
    assert_eq!(answer.2["error"]["code"], code, "{answer:?}");
}

/// Trades the one-time code of a 303 location for tokens; answers the `/api/me` of them.
async fn exchange(server: &Server, location: &str) -> Value {
    let code = location
        .strip_prefix("/#oauth_login=")
        .unwrap_or_else(|| panic!("location {location:?}"));
    let tokens = call(
        server,
        "POST",
        "/api/auth/oauth/exchange",
        None,
        &[],
        Some(&json!({ "code": code }).to_string()),
    )
    .await;
    assert_eq!(tokens.status, 200, "{tokens:?}");
    assert!(tokens.json["refresh_token"].is_string());
    let again = call(
        server,
        "POST",
        "/api/auth/oauth/exchange",
        None,
        &[],
        Some(&json!({ "code": code }).to_string()),
    )
    .await;
    assert_eq!(again.status, 401, "a login code works once: {again:?}");
    assert_eq!(again.json["error"]["code"], "OAUTH_CODE_INVALID");
    let access = tokens.json["access_token"].as_str().expect("access");
    let me = call(server, "GET", "/api/me", Some(access), &[], None).await;
    assert_eq!(me.status, 200, "{me:?}");
    me.json
}

/// A whole OIDC login of `sub` with `email` (verified), code `code`: the `/api/me` after.
async fn oidc_login(
    server: &Server,
    mock: &MockServer,
    key: &Key,
    sub: &str,
    email: &str,
    code: &str,
) -> Value {
    let started = start(server, "oidc").await;
    let token = sign(key, "k1", &claims(mock, &started, sub, email, true));
    token_answers(mock, &started, code, id_token_answer(&token)).await;
    let state = &started.query["state"];
    let answer = callback(
        server,
        "oidc",
        &format!("code={code}&state={state}"),
        &started.cookie,
    )
    .await;
    assert_eq!(answer.0, 303, "{answer:?}");
    exchange(server, &answer.1).await
}

async fn signup(server: &Server, email: &str) -> Answer {
    call(
        server,
        "POST",
        "/api/auth/signup",
        None,
        &[],
        Some(&json!({"email": email, "password": "correct-horse-1"}).to_string()),
    )
    .await
}

async fn password_login(server: &Server, email: &str, password: &str) -> Answer {
    call(
        server,
        "POST",
        "/api/auth/login",
        None,
        &[],
        Some(&json!({"email": email, "password": password}).to_string()),
    )
    .await
}

async fn success_creates_then_finds_the_account(kind: Kind) {
    let key = key("provider key", "k1");
    let mock = provider(&key).await;
    let server = oidc_server(kind, &mock).await;
    let providers = call(&server, "GET", "/api/auth/providers", None, &[], None).await;
    assert_eq!(
        providers.json,
        json!({"providers": [{"name": "oidc", "start_url": "/api/auth/oauth/oidc/start"}]})
    );
    let started = start(&server, "oidc").await;
    let q = &started.query;
    assert_eq!(started.authorize, format!("{}/authorize", mock.uri()));
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["scope"], "openid email profile");
    assert_eq!(
        q["redirect_uri"],
        format!(
            "http://{}/api/auth/oauth/oidc/callback",
            server.state.config.listen
        )
    );
    assert!(q["state"].len() >= 43 && q["nonce"].len() >= 43);
    let first = oidc_login(&server, &mock, &key, "sub-1", "Ann@Example.com", "c1").await;
    assert_eq!(first["email"], "ann@example.com");
    assert_eq!(first["role"], "USER");
    // the next login finds it by (provider, subject), even with another e-mail
    let second = oidc_login(&server, &mock, &key, "sub-1", "ann.new@example.com", "c2").await;
    assert_eq!(second["id"], first["id"]);
    // the account has no password
    let login = password_login(&server, "ann@example.com", "no-password-1").await;
    assert_eq!(login.status, 401, "{login:?}");
}

#[tokio::test]
async fn first_login_creates_the_account_and_the_next_finds_it_memory() {
    success_creates_then_finds_the_account(Kind::Memory).await;
}

#[tokio::test]
async fn first_login_creates_the_account_and_the_next_finds_it_redis() {
    success_creates_then_finds_the_account(Kind::Redis).await;
}

#[tokio::test]
async fn first_login_creates_the_account_and_the_next_finds_it_pg() {
    success_creates_then_finds_the_account(Kind::Pg).await;
}

#[tokio::test]
async fn a_verified_email_links_to_the_existing_password_account() {
    let key = key("provider key", "k1");
    let mock = provider(&key).await;
    let server = oidc_server(Kind::Memory, &mock).await;
    let created = signup(&server, "bob@example.com").await;
    assert_eq!(created.status, 201, "{created:?}");
    let me = oidc_login(&server, &mock, &key, "sub-bob", "bob@example.com", "c1").await;
    assert_eq!(me["id"], created.json["id"]);
    // the password still works
    let login = password_login(&server, "bob@example.com", "correct-horse-1").await;
    assert_eq!(login.status, 200, "{login:?}");
}

#[tokio::test]
async fn a_wrong_missing_or_foreign_state_is_refused() {
    let key = key("provider key", "k1");
    let mock = provider(&key).await;
    let server = oidc_server(Kind::Memory, &mock).await;
    let started = start(&server, "oidc").await;
    let state = &started.query["state"];
    // a state nobody issued, with a matching cookie
    let wrong = callback(
        &server,
        "oidc",
        "code=c1&state=forged",
        "tr_oauth_state=forged",
    )
    .await;
    assert_refused(&wrong, 400, "OAUTH_STATE_INVALID");
    // no state
    let missing = callback(&server, "oidc", "code=c1", &started.cookie).await;
    assert_refused(&missing, 400, "OAUTH_STATE_INVALID");
    // the real state in another browser (no or another cookie): login CSRF
    let foreign = callback(&server, "oidc", &format!("code=c1&state={state}"), "x=y").await;
    assert_refused(&foreign, 400, "OAUTH_STATE_MISMATCH");
    // an unknown provider
    let unknown = callback(
        &server,
        "github",
        &format!("code=c1&state={state}"),
        &started.cookie,
    )
    .await;
    assert_refused(&unknown, 404, "NOT_FOUND");
}

#[tokio::test]
async fn a_replayed_state_is_refused() {
    let key = key("provider key", "k1");
    let mock = provider(&key).await;
    let server = oidc_server(Kind::Memory, &mock).await;
    let started = start(&server, "oidc").await;
    let token = sign(
        &key,
        "k1",
        &claims(&mock, &started, "s", "c@example.com", true),
    );
    token_answers(&mock, &started, "c1", id_token_answer(&token)).await;
    token_answers(&mock, &started, "c2", id_token_answer(&token)).await;
    let state = &started.query["state"];
    let first = callback(
        &server,
        "oidc",
        &format!("code=c1&state={state}"),
        &started.cookie,
    )
    .await;
    assert_eq!(first.0, 303, "{first:?}");
    let replay = callback(
        &server,
        "oidc",
        &format!("code=c2&state={state}"),
        &started.cookie,
    )
    .await;
    assert_refused(&replay, 400, "OAUTH_STATE_INVALID");
}

/// Starts a login, has the token endpoint answer `answer` (built from the start), and
/// answers the callback; checks no account has the e-mail `absent` afterwards.
async fn refused_login(
    server: &Server,
    mock: &MockServer,
    absent: Option<&str>,
    answer: impl FnOnce(&Started) -> ResponseTemplate,
) -> (u16, String, Value) {
    let started = start(server, "oidc").await;
    token_answers(mock, &started, "c1", answer(&started)).await;
    let state = &started.query["state"];
    let result = callback(
        server,
        "oidc",
        &format!("code=c1&state={state}"),
        &started.cookie,
    )
    .await;
    if let Some(email) = absent {
        assert!(matches!(
            server.state.accounts.user_by_email(email).await,
            Err(AccountError::NotFound)
        ));
    }
    result
}

#[tokio::test]
async fn id_tokens_with_a_wrong_nonce_signature_or_audience_are_refused() {
    let key_1 = key("provider key", "k1");
    let mock = provider(&key_1).await;
    let server = oidc_server(Kind::Memory, &mock).await;
    let email = "eve@example.com";
    let nonce = refused_login(&server, &mock, Some(email), |started| {
        let mut c = claims(&mock, started, "s", email, true);
        c["nonce"] = json!("another-nonce");
        id_token_answer(&sign(&key_1, "k1", &c))
    })
    .await;
    assert_refused(&nonce, 401, "OAUTH_ID_TOKEN_INVALID");
    let forger = key("forger's key", "k1");
    let signature = refused_login(&server, &mock, Some(email), |started| {
        id_token_answer(&sign(
            &forger,
            "k1",
            &claims(&mock, started, "s", email, true),
        ))
    })
    .await;
    assert_refused(&signature, 401, "OAUTH_ID_TOKEN_INVALID");
    let audience = refused_login(&server, &mock, Some(email), |started| {
        let mut c = claims(&mock, started, "s", email, true);
        c["aud"] = json!("another-client");
        id_token_answer(&sign(&key_1, "k1", &c))
    })
    .await;
    assert_refused(&audience, 401, "OAUTH_ID_TOKEN_INVALID");
    let issuer = refused_login(&server, &mock, Some(email), |started| {
        let mut c = claims(&mock, started, "s", email, true);
        c["iss"] = json!("https://evil.example.com");
        id_token_answer(&sign(&key_1, "k1", &c))
    })
    .await;
    assert_refused(&issuer, 401, "OAUTH_ID_TOKEN_INVALID");
    let expired = refused_login(&server, &mock, Some(email), |started| {
        let mut c = claims(&mock, started, "s", email, true);
        c["exp"] = json!(now_secs() - 3600);
        id_token_answer(&sign(&key_1, "k1", &c))
    })
    .await;
    assert_refused(&expired, 401, "OAUTH_ID_TOKEN_INVALID");
    // HS256 "signed" with a guessable secret: the algorithm is refused
    let hmac = refused_login(&server, &mock, Some(email), |started| {
        let c = claims(&mock, started, "s", email, true);
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &c,
            &EncodingKey::from_secret(b"secret"),
        )
        .expect("hs256");
        id_token_answer(&token)
    })
    .await;
    assert_refused(&hmac, 401, "OAUTH_ID_TOKEN_INVALID");
}

#[tokio::test]
async fn an_unverified_email_creates_and_links_nothing() {
    let key = key("provider key", "k1");
    let mock = provider(&key).await;
    let server = oidc_server(Kind::Memory, &mock).await;
    let fresh = refused_login(&server, &mock, Some("new@example.com"), |started| {
        id_token_answer(&sign(
            &key,
            "k1",
            &claims(&mock, started, "s1", "new@example.com", false),
        ))
    })
    .await;
    assert_refused(&fresh, 403, "OAUTH_EMAIL_UNVERIFIED");
    // an attacker claiming an existing account's e-mail, unverified: no takeover
    let victim = signup(&server, "bob@example.com").await;
    assert_eq!(victim.status, 201);
    let takeover = refused_login(&server, &mock, None, |started| {
        id_token_answer(&sign(
            &key,
            "k1",
            &claims(&mock, started, "attacker", "bob@example.com", false),
        ))
    })
    .await;
    assert_refused(&takeover, 403, "OAUTH_EMAIL_UNVERIFIED");
    assert!(matches!(
        server
            .state
            .accounts
            .user_by_identity("oidc", "attacker")
            .await,
        Err(AccountError::NotFound)
    ));
}

#[tokio::test]
async fn provider_errors_create_nothing() {
    let key = key("provider key", "k1");
    let mock = provider(&key).await;
    let server = oidc_server(Kind::Memory, &mock).await;
    // the user said no at the provider
    let started = start(&server, "oidc").await;
    let state = &started.query["state"];
    let denied = callback(
        &server,
        "oidc",
        &format!("error=access_denied&error_description=no&state={state}"),
        &started.cookie,
    )
    .await;
    assert_refused(&denied, 400, "OAUTH_DENIED");
    // the state is spent by the error answer
    let again = callback(
        &server,
        "oidc",
        &format!("code=c1&state={state}"),
        &started.cookie,
    )
    .await;
    assert_refused(&again, 400, "OAUTH_STATE_INVALID");
    // the token endpoint fails
    let email = "zed@example.com";
    let failed = refused_login(&server, &mock, Some(email), |_| ResponseTemplate::new(500)).await;
    assert_refused(&failed, 502, "OAUTH_PROVIDER_FAILED");
    let error = refused_login(&server, &mock, Some(email), |_| {
        ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_grant"}))
    })
    .await;
    assert_refused(&error, 502, "OAUTH_PROVIDER_FAILED");
    // a token endpoint redirecting is not followed
    let redirect = refused_login(&server, &mock, Some(email), |_| {
        ResponseTemplate::new(307).insert_header("location", "http://127.0.0.1:1/steal")
    })
    .await;
    assert_refused(&redirect, 502, "OAUTH_PROVIDER_FAILED");
}

#[tokio::test]
async fn blocked_and_privileged_accounts_are_refused() {
    let key = key("provider key", "k1");
    let mock = provider(&key).await;
    let server = oidc_server(Kind::Memory, &mock).await;
    // the admin's e-mail, verified, is still not linked automatically
    let admin = refused_login(&server, &mock, None, |started| {
        id_token_answer(&sign(
            &key,
            "k1",
            &claims(&mock, started, "s-admin", "admin@example.com", true),
        ))
    })
    .await;
    assert_refused(&admin, 409, "OAUTH_LINK_REFUSED");
    // a blocked account cannot log in through social login
    let me = oidc_login(&server, &mock, &key, "s-carl", "carl@example.com", "c1").await;
    let accounts = &server.state.accounts;
    let admin = accounts
        .user_by_email("admin@example.com")
        .await
        .expect("admin");
    let id = me["id"].as_str().expect("id").parse().expect("user id");
    accounts
        .set_blocked(admin.id, id, true, server.state.clock.now())
        .await
        .expect("block");
    let blocked = refused_login(&server, &mock, None, |started| {
        id_token_answer(&sign(
            &key,
            "k1",
            &claims(&mock, started, "s-carl", "carl@example.com", true),
        ))
    })
    .await;
    assert_refused(&blocked, 403, "USER_BLOCKED");
}

#[tokio::test]
async fn the_kakao_preset_reads_the_email_from_user_info() {
    let key = key("kakao key", "k1");
    let mock = provider(&key).await;
    let uri = mock.uri();
    let server = server(
        Kind::Memory,
        &[
            "--kakao-client-id",
            CLIENT_ID,
            "--kakao-issuer",
            &uri,
            "--kakao-authorize-url",
            &format!("{uri}/oauth/authorize"),
            "--kakao-token-url",
            &format!("{uri}/token"),
            "--kakao-jwks-url",
            &format!("{uri}/jwks"),
            "--kakao-userinfo-url",
            &format!("{uri}/v1/oidc/userinfo"),
        ],
    )
    .await;
    let started = start(&server, "kakao").await;
    assert_eq!(started.authorize, format!("{uri}/oauth/authorize"));
    assert_eq!(started.query["scope"], "openid account_email");
    // an ID token without e-mail: the user info has it
    let mut c = claims(&mock, &started, "4000001", "x@example.com", true);
    c.as_object_mut().expect("claims").remove("email");
    token_answers(
        &mock,
        &started,
        "k1",
        id_token_answer(&sign(&key, "k1", &c)),
    )
    .await;
    Mock::given(method("GET"))
        .and(path("/v1/oidc/userinfo"))
        .and(wiremock::matchers::header("authorization", "Bearer at-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "sub": "4000001", "email": "kim@example.kr", "email_verified": true,
        })))
        .mount(&mock)
        .await;
    let state = &started.query["state"];
    let answer = callback(
        &server,
        "kakao",
        &format!("code=k1&state={state}"),
        &started.cookie,
    )
    .await;
    assert_eq!(answer.0, 303, "{answer:?}");
    let me = exchange(&server, &answer.1).await;
    assert_eq!(me["email"], "kim@example.kr");
}

#[tokio::test]
async fn the_naver_preset_logs_in_with_its_profile() {
    let mock = MockServer::start().await;
    let uri = mock.uri();
    let server = server(
        Kind::Memory,
        &[
            "--naver-client-id",
            CLIENT_ID,
            "--naver-client-secret",
            "naver-secret",
            "--naver-authorize-url",
            &format!("{uri}/oauth2.0/authorize"),
            "--naver-token-url",
            &format!("{uri}/token"),
            "--naver-profile-url",
            &format!("{uri}/v1/nid/me"),
            "--naver-trust-email",
        ],
    )
    .await;
    let started = start(&server, "naver").await;
    assert_eq!(started.authorize, format!("{uri}/oauth2.0/authorize"));
    assert!(!started.query.contains_key("nonce"), "OAuth 2.0 only");
    assert!(started.query.contains_key("state"));
    token_answers(
        &mock,
        &started,
        "n1",
        ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "at-1", "refresh_token": "rt", "token_type": "bearer", "expires_in": "3600",
        })),
    )
    .await;
    Mock::given(method("GET"))
        .and(path("/v1/nid/me"))
        .and(wiremock::matchers::header("authorization", "Bearer at-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "resultcode": "00", "message": "success",
            "response": {"id": "32742776", "email": "lee@naver.com", "nickname": "lee"},
        })))
        .mount(&mock)
        .await;
    let state = &started.query["state"];
    let answer = callback(
        &server,
        "naver",
        &format!("code=n1&state={state}"),
        &started.cookie,
    )
    .await;
    assert_eq!(answer.0, 303, "{answer:?}");
    let me = exchange(&server, &answer.1).await;
    assert_eq!(me["email"], "lee@naver.com");
    let found = server
        .state
        .accounts
        .user_by_identity("naver", "32742776")
        .await
        .expect("linked");
    assert_eq!(found.email, "lee@naver.com");
}

#[tokio::test]
async fn no_provider_is_configured_by_default() {
    let server = server(Kind::Memory, &[]).await;
    let providers = call(&server, "GET", "/api/auth/providers", None, &[], None).await;
    assert_eq!(providers.json, json!({"providers": []}));
    let start = call(
        &server,
        "GET",
        "/api/auth/oauth/kakao/start",
        None,
        &[],
        None,
    )
    .await;
    assert_eq!(start.status, 404, "{start:?}");
    let exchange = call(
        &server,
        "POST",
        "/api/auth/oauth/exchange",
        None,
        &[],
        Some(r#"{"code": "nope"}"#),
    )
    .await;
    assert_eq!(exchange.status, 401, "{exchange:?}");
    assert_eq!(exchange.json["error"]["code"], "OAUTH_CODE_INVALID");
}
