//! Which webhook endpoint URLs the sandbox accepts (checked when an endpoint is registered,
//! before anything is stored), and which `return_url`s of checkout sessions
//! ([`validate_return_url`]).
//!
//! An endpoint URL must be an absolute `http://` URL with a host, at most
//! [`MAX_URL_LEN`] bytes, with no user name or password (credentials in a URL end up in
//! logs and in the delivery log) and no fragment (never sent over HTTP, so a sign of a
//! mistake), and with no whitespace or control characters (which URL parsers silently drop
//! or encode, so the URL stored would not be the one given). `https://` is refused too: the
//! sandbox has no TLS stack, and every attempt would fail.
//!
//! Loopback and private addresses are allowed on purpose: the sandbox is a test double
//! whose receivers run next to it. Only holders of the API key can register endpoints, and
//! the delivery client never follows redirects ([`crate::delivery`]).

use crate::error::SandboxError;

/// The longest accepted endpoint URL, in bytes.
pub const MAX_URL_LEN: usize = 2_048;

/// Checks `raw` as a webhook endpoint URL; the error says what is wrong.
pub fn validate(raw: &str) -> Result<reqwest::Url, SandboxError> {
    check(raw, false).map_err(SandboxError::InvalidEndpoint)
}

/// Checks `raw` as the `return_url` of a checkout session, where the buyer's browser is
/// sent back: the same rules as for webhook endpoints, except that `https://` is accepted
/// too (the browser follows it, not the sandbox). [`GatewayError::Invalid`] says what is
/// wrong.
///
/// [`GatewayError::Invalid`]: ticket_core::gateway::GatewayError::Invalid
pub fn validate_return_url(raw: &str) -> Result<reqwest::Url, ticket_core::gateway::GatewayError> {
    check(raw, true)
        .map_err(|why| ticket_core::gateway::GatewayError::Invalid(format!("return_url: {why}")))
}

fn check(raw: &str, https: bool) -> Result<reqwest::Url, String> {
    let bad = |why: &str| {
        let shown: String = raw.chars().take(100).collect();
        Err(format!("url {shown:?}: {why}"))
    };
    if raw.is_empty() {
        return bad("the URL is empty");
    }
    if raw.len() > MAX_URL_LEN {
        return bad(&format!("longer than {MAX_URL_LEN} bytes"));
    }
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("whitespace and control characters are not allowed");
    }
    let url = match reqwest::Url::parse(raw) {
        Ok(url) => url,
        Err(e) => return bad(&format!("not an absolute URL ({e})")),
    };
    if https {
        if url.scheme() != "http" && url.scheme() != "https" {
            return bad("only http:// and https:// URLs are accepted");
        }
    } else if url.scheme() != "http" {
        return bad("the sandbox delivers over plain http:// only (it has no TLS stack)");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return bad("the URL needs a host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return bad("credentials (user:password@) are not allowed in the URL");
    }
    if url.fragment().is_some() || raw.contains('#') {
        return bad("a fragment (#…) is not allowed");
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_urls_with_a_host_are_accepted() {
        for ok in [
            "http://127.0.0.1:8080/api/payments/webhook",
            "http://localhost/hook?x=1",
            "http://[::1]:9/h",
            "http://receiver.test",
        ] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn everything_else_is_refused_with_a_reason() {
        let long = format!("http://a.test/{}", "x".repeat(MAX_URL_LEN));
        for (bad, why) in [
            ("", "empty"),
            ("/relative/path", "absolute"),
            ("ftp://a.test/x", "http"),
            ("https://a.test/x", "http"),
            ("file:///etc/passwd", "http"),
            ("http://user:pw@a.test/x", "credentials"),
            ("http://user@a.test/x", "credentials"),
            ("http://a.test/x#frag", "fragment"),
            ("http://a.test/x#", "fragment"),
            (" http://a.test/x", "whitespace"),
            ("http://a.test/x\n", "whitespace"),
            ("http://a.test/\u{0}x", "control"),
            (long.as_str(), "longer"),
        ] {
            let err = validate(bad).expect_err(bad).to_string();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }

    #[test]
    fn return_urls_may_be_https_and_follow_the_same_rules() {
        for ok in [
            "https://shop.test/orders/1?step=paid",
            "http://127.0.0.1:8080/return",
        ] {
            assert!(validate_return_url(ok).is_ok(), "{ok}");
        }
        let long = format!("https://a.test/{}", "x".repeat(MAX_URL_LEN));
        for (bad, why) in [
            ("", "empty"),
            ("/orders/1", "absolute"),
            ("javascript:alert(1)", "http"),
            ("ftp://a.test/x", "http"),
            ("https://user:pw@a.test/x", "credentials"),
            ("https://a.test/x#frag", "fragment"),
            ("https://a.test/x y", "whitespace"),
            (long.as_str(), "longer"),
        ] {
            match validate_return_url(bad) {
                Err(ticket_core::gateway::GatewayError::Invalid(m)) => {
                    assert!(m.contains(why), "{bad:?}: {m}");
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
}
