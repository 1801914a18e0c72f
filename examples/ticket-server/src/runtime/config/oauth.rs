//! Social login settings: the providers offered (a generic OpenID Connect provider, and the
//! Kakao and Naver presets), each enabled by its client id. Every preset endpoint can be
//! overridden (tests point them at a mock provider). See [`crate::services::oauth`].

use clap::Args;

/// Kakao's documented endpoints (Kakao Developers, "Kakao Login > REST API" and "OpenID
/// Connect"): the issuer `https://kauth.kakao.com`, `GET /oauth/authorize` and
/// `POST /oauth/token` on it, the JWKS at `/.well-known/jwks.json`, and the OIDC user
/// info at `https://kapi.kakao.com/v1/oidc/userinfo`.
pub mod kakao {
    /// The ID tokens' `iss`.
    pub const ISSUER: &str = "https://kauth.kakao.com";
    /// The authorization endpoint.
    pub const AUTHORIZE: &str = "https://kauth.kakao.com/oauth/authorize";
    /// The token endpoint.
    pub const TOKEN: &str = "https://kauth.kakao.com/oauth/token";
    /// The ID tokens' signing keys.
    pub const JWKS: &str = "https://kauth.kakao.com/.well-known/jwks.json";
    /// The OIDC user info endpoint (claims `sub`, `email`, `email_verified`, …).
    pub const USERINFO: &str = "https://kapi.kakao.com/v1/oidc/userinfo";
    /// The scopes asked: the ID token, and the account e-mail.
    pub const SCOPES: &str = "openid account_email";
}

/// Naver's documented endpoints (NAVER Developers, "네이버 로그인 API 명세" and "회원 프로필
/// 조회 API 명세"): OAuth 2.0 only, no ID token. The profile API answers
/// `{"resultcode":"00","message":"success","response":{"id":…,"email":…}}`, where `id` is
/// "an application-unique serial number to build your own member records on" (Naver does
/// not disclose the Naver ID itself).
pub mod naver {
    /// The authorization endpoint.
    pub const AUTHORIZE: &str = "https://nid.naver.com/oauth2.0/authorize";
    /// The token endpoint.
    pub const TOKEN: &str = "https://nid.naver.com/oauth2.0/token";
    /// The profile endpoint.
    pub const PROFILE: &str = "https://openapi.naver.com/v1/nid/me";
}

/// Social login settings (all optional: no client id, no provider).
#[derive(Debug, Clone, Args)]
pub struct OAuthConfig {
    /// This server's public base URL as browsers reach it (`https://tickets.example.com`):
    /// redirect URIs are `<url>/api/auth/oauth/<provider>/callback`, registered at each
    /// provider. Default: `http://<--listen>`. With `https://`, cookies are `Secure`.
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<String>,
    /// How long a call to a provider (token, user info, JWKS, discovery) may take,
    /// milliseconds.
    #[arg(long, env = "OAUTH_TIMEOUT_MS", default_value_t = 5_000,
          value_parser = clap::value_parser!(u64).range(100..=60_000))]
    pub oauth_timeout_ms: u64,

    /// A generic OpenID Connect provider: its issuer; the endpoints come from
    /// `<issuer>/.well-known/openid-configuration` (fetched on first use, cached).
    #[arg(long, env = "OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    /// The generic provider's client id (enables it, with `--oidc-issuer`).
    #[arg(long, env = "OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,
    /// The generic provider's client secret (none: a public client, PKCE only).
    #[arg(long, env = "OIDC_CLIENT_SECRET", hide_env_values = true)]
    pub oidc_client_secret: Option<String>,
    /// The generic provider's name in URLs and on the page (`a-z`, `0-9`, `_`, `-`).
    #[arg(long, env = "OIDC_NAME", default_value = "oidc")]
    pub oidc_name: String,
    /// The scopes asked of the generic provider (space-separated, `openid` included).
    #[arg(long, env = "OIDC_SCOPES", default_value = "openid email profile")]
    pub oidc_scopes: String,

    /// Kakao's REST API key (enables the Kakao preset).
    #[arg(long, env = "KAKAO_CLIENT_ID")]
    pub kakao_client_id: Option<String>,
    /// Kakao's client secret, if the app has one turned on.
    #[arg(long, env = "KAKAO_CLIENT_SECRET", hide_env_values = true)]
    pub kakao_client_secret: Option<String>,
    /// Kakao's ID-token issuer.
    #[arg(long, env = "KAKAO_ISSUER", default_value = kakao::ISSUER)]
    pub kakao_issuer: String,
    /// Kakao's authorization endpoint.
    #[arg(long, env = "KAKAO_AUTHORIZE_URL", default_value = kakao::AUTHORIZE)]
    pub kakao_authorize_url: String,
    /// Kakao's token endpoint.
    #[arg(long, env = "KAKAO_TOKEN_URL", default_value = kakao::TOKEN)]
    pub kakao_token_url: String,
    /// Kakao's JWKS.
    #[arg(long, env = "KAKAO_JWKS_URL", default_value = kakao::JWKS)]
    pub kakao_jwks_url: String,
    /// Kakao's OIDC user info endpoint.
    #[arg(long, env = "KAKAO_USERINFO_URL", default_value = kakao::USERINFO)]
    pub kakao_userinfo_url: String,

    /// Naver's client id (enables the Naver preset, with `--naver-client-secret`).
    #[arg(long, env = "NAVER_CLIENT_ID")]
    pub naver_client_id: Option<String>,
    /// Naver's client secret (Naver requires one).
    #[arg(long, env = "NAVER_CLIENT_SECRET", hide_env_values = true)]
    pub naver_client_secret: Option<String>,
    /// Naver's authorization endpoint.
    #[arg(long, env = "NAVER_AUTHORIZE_URL", default_value = naver::AUTHORIZE)]
    pub naver_authorize_url: String,
    /// Naver's token endpoint.
    #[arg(long, env = "NAVER_TOKEN_URL", default_value = naver::TOKEN)]
    pub naver_token_url: String,
    /// Naver's profile endpoint.
    #[arg(long, env = "NAVER_PROFILE_URL", default_value = naver::PROFILE)]
    pub naver_profile_url: String,
    /// Treat the e-mail of Naver's profile as verified. Naver documents no verification
    /// flag, and an unverified e-mail never creates or links an account (account
    /// takeover): without this flag a first Naver login is refused
    /// (`OAUTH_EMAIL_UNVERIFIED`); accounts already linked still log in.
    #[arg(long, env = "NAVER_TRUST_EMAIL")]
    pub naver_trust_email: bool,
}

/// `--public-url` must be an absolute `http(s)` base URL with a host, and nothing a browser
/// would read as more than a base: no credentials, query or fragment, no space or control
/// character. Redirect URIs and the hosted payment page's return URL are built on it.
fn check_public_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or("--public-url must start with http:// or https://")?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return Err("--public-url needs a host".into());
    }
    if url.len() > 1_024
        || url
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '?' | '#' | '@' | '\\'))
    {
        return Err(
            "--public-url is a base URL: no credentials, query, fragment, space or control \
             character (at most 1024 bytes)"
                .into(),
        );
    }
    Ok(())
}

impl OAuthConfig {
    /// Checks the settings; the message names the flag.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(url) = &self.public_url {
            check_public_url(url)?;
        }
        if self.oidc_issuer.is_some() != self.oidc_client_id.is_some() {
            return Err("--oidc-issuer and --oidc-client-id go together".into());
        }
        let name_ok = !self.oidc_name.is_empty()
            && self.oidc_name.len() <= 32
            && self
                .oidc_name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !name_ok || matches!(self.oidc_name.as_str(), "kakao" | "naver") {
            return Err(
                "--oidc-name must be 1 to 32 of a-z, 0-9, _ and -, and not kakao or naver".into(),
            );
        }
        if !self.oidc_scopes.split_whitespace().any(|s| s == "openid") {
            return Err("--oidc-scopes must include openid".into());
        }
        if self.naver_client_id.is_some() && self.naver_client_secret.is_none() {
            return Err("--naver-client-id needs --naver-client-secret".into());
        }
        let urls = [
            ("--oidc-issuer", self.oidc_issuer.as_deref()),
            ("--kakao-issuer", Some(self.kakao_issuer.as_str())),
            ("--kakao-authorize-url", Some(&self.kakao_authorize_url)),
            ("--kakao-token-url", Some(&self.kakao_token_url)),
            ("--kakao-jwks-url", Some(&self.kakao_jwks_url)),
            ("--kakao-userinfo-url", Some(&self.kakao_userinfo_url)),
            ("--naver-authorize-url", Some(&self.naver_authorize_url)),
            ("--naver-token-url", Some(&self.naver_token_url)),
            ("--naver-profile-url", Some(&self.naver_profile_url)),
        ];
        for (flag, url) in urls {
            if let Some(url) = url
                && reqwest::Url::parse(url)
                    .map(|u| !matches!(u.scheme(), "http" | "https"))
                    .unwrap_or(true)
            {
                return Err(format!("{flag} must be an http(s) URL"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::runtime::config::Config;

    fn check(args: &[&str]) -> Result<(), String> {
        let mut all = vec!["ticket-server"];
        all.extend_from_slice(args);
        Config::try_parse_from(all).expect("parse").validate()
    }

    #[test]
    fn providers_need_their_settings_together() {
        assert!(check(&[]).is_ok(), "no provider by default");
        let err = check(&["--oidc-issuer", "https://id.example.com"]).unwrap_err();
        assert!(err.contains("--oidc-client-id"), "{err}");
        let err = check(&["--naver-client-id", "n"]).unwrap_err();
        assert!(err.contains("--naver-client-secret"), "{err}");
        let err = check(&["--kakao-client-id", "k", "--kakao-token-url", "ftp://x"]).unwrap_err();
        assert!(err.contains("--kakao-token-url"), "{err}");
        let err = check(&["--oidc-name", "kakao"]).unwrap_err();
        assert!(err.contains("--oidc-name"), "{err}");
        let err = check(&["--oidc-scopes", "email"]).unwrap_err();
        assert!(err.contains("openid"), "{err}");
        assert!(check(&["--kakao-client-id", "k"]).is_ok());
    }
}
