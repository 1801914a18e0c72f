//! Shared by the integration tests: fixtures, wiremock matchers, a gateway on a mock server,
//! and the stateful fake Stripe.
#![allow(dead_code)]

pub mod answers;
pub mod fake;
pub mod fixtures;
pub mod shop;

use std::collections::BTreeMap;
use std::time::Duration;

use payment_stripe::{API_VERSION, StripeConfig, StripeGateway};
use wiremock::matchers::{header, header_exists};
use wiremock::{Match, MockBuilder, MockServer, Request};

/// A gateway against `server`, with `timeout` per request and quick GET retries.
pub fn gateway_on(server: &MockServer, timeout: Duration) -> StripeGateway {
    let mut config = StripeConfig::new(fixtures::SECRET_KEY)
        .with_api_base(server.uri())
        .with_timeout(timeout);
    config.max_retry_wait = Duration::from_millis(50);
    StripeGateway::new(config).expect("gateway")
}

/// The form pairs of a request body, in order.
pub fn form_of(request: &Request) -> Vec<(String, String)> {
    form_urlencoded::parse(&request.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Matches a form body made of exactly these pairs (in any order; repeated keys count).
pub struct FormIs(pub Vec<(String, String)>);

impl FormIs {
    pub fn new(pairs: &[(&str, &str)]) -> Self {
        Self(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }
}

impl Match for FormIs {
    fn matches(&self, request: &Request) -> bool {
        let mut got = form_of(request);
        let mut want = self.0.clone();
        got.sort();
        want.sort();
        got == want
    }
}

/// The headers every request to Stripe carries: the key, the pinned version.
pub fn authenticated(builder: MockBuilder) -> MockBuilder {
    builder
        .and(header(
            "authorization",
            format!("Bearer {}", fixtures::SECRET_KEY).as_str(),
        ))
        .and(header("stripe-version", API_VERSION))
}

/// `authenticated`, plus a form body and exactly this `Idempotency-Key`.
pub fn posted(builder: MockBuilder, idempotency_key: &str) -> MockBuilder {
    authenticated(builder)
        .and(header("idempotency-key", idempotency_key))
        .and(header("content-type", "application/x-www-form-urlencoded"))
}

/// Any POST must carry an Idempotency-Key: a mock that catches those without one.
pub fn has_idempotency_key(builder: MockBuilder) -> MockBuilder {
    builder.and(header_exists("idempotency-key"))
}

/// A map from pairs.
pub fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}
