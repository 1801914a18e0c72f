//! Per-user and per-IP rate limits on the queue and hold routes, answering 429
//! `RATE_LIMITED` with `Retry-After` (whole seconds, at least 1).
//!
//! Limited (by method and matched route template): `POST`, `GET`, `DELETE
//! /api/sessions/{id}/queue`, `GET /api/sessions/{id}/queue/events`, `GET /api/me/events`,
//! `POST /api/holds`,
//! `DELETE /api/holds/{id}`, `POST /api/holds/{id}/checkout` and `POST
//! /api/me/wallet/topups`. No other route is ever limited here.
//!
//! Each limit is a keyed GCRA (the `governor` crate): `N` per minute allows a burst of `N`
//! requests, then one more every `60/N` seconds. Keys:
//!
//! * **user**: the account of a valid bearer token (`--rate-limit-per-minute`, default
//!   120). The token is only checked here (a signature check, no storage read); a request
//!   without a valid token is not counted per user and is refused by the handler as before.
//! * **IP**: the client's address (`--rate-limit-per-ip-per-minute`, default ten times the
//!   per-user limit, since one address may be a whole office behind NAT); IPv6 addresses
//!   count per `/64`, as one host usually holds a whole `/64`. The address is the
//!   connection's (axum's `ConnectInfo`: serve with
//!   `into_make_service_with_connect_info::<SocketAddr>()`; without it the IP limit is
//!   skipped, never a panic), or, behind reverse proxies named by `--trusted-proxies`, the
//!   client they forwarded for ([`crate::http::middleware::client_ip`]).
//!
//! The user's bucket is checked first, so one user over their limit does not drain the
//! budget of others behind the same address. A limit of `0` turns it off.
//!
//! Guarantees and limits of the guarantees:
//!
//! * **Per process, by choice.** Buckets live in this process's memory: with several server
//!   processes a client gets up to the limit on each. They protect each process from floods;
//!   the correctness of sales (no oversell, the per-user ticket limit, fair admission) never
//!   depends on them — that is enforced atomically by the library in the shared store. They
//!   stay here rather than in the store ([`crate::stores::throttle`]) because they sit on the hot
//!   path of a rush (every queue poll, hold and checkout): a store round trip per request
//!   would cost more than the work it guards, and a flood would become a store flood. The
//!   sign-in limits are shared instead, because there the attacker's gain (password guesses,
//!   accounts) grows with the number of processes and each request already costs a hash.
//! * **Recorded.** Every refusal is written to the security audit
//!   ([`crate::stores::security_audit`], at most one record per user or address, route and window).
//! * **Bounded memory.** Buckets that have refilled completely (about a minute after their
//!   last request at most) are dropped every [`SWEEP_EVERY`], so the maps hold only the keys
//!   seen in roughly the last minute and a bit. User keys need a token this server signed, and IPv6 keys are
//!   per `/64`, so a client cannot make keys up cheaply.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, MonotonicClock};
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};
use parking_lot::Mutex;

use crate::http::error::ApiError;
use crate::http::extract::AuthUser;
use crate::http::middleware::client_ip::Cidr;
use crate::http::middleware::metrics::LimitedBy;
use crate::runtime::config::Config;
use crate::runtime::state::AppState;
use crate::stores::accounts::UserId;
use crate::stores::security_audit::{AbuseReason, AbuseRecord};

/// How often fully refilled buckets are dropped.
pub const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// The per-IP limit when none is given: this many times the per-user limit.
pub const DEFAULT_IP_FACTOR: u32 = 10;

type Keyed<K> = RateLimiter<K, HashMapStateStore<K>, MonotonicClock>;

/// The buckets of one process. Checking is a short lock on one map; never fails.
pub struct RateLimits {
    per_user: Option<Keyed<UserId>>,
    per_ip: Option<Keyed<IpAddr>>,
    clock: MonotonicClock,
    last_sweep: Mutex<Instant>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("user_keys", &self.per_user.as_ref().map(Keyed::len))
            .field("ip_keys", &self.per_ip.as_ref().map(Keyed::len))
            .finish()
    }
}

fn keyed<K: std::hash::Hash + Eq + Clone>(per_minute: u32) -> Option<Keyed<K>> {
    let n = NonZeroU32::new(per_minute)?;
    Some(RateLimiter::hashmap_with_clock(
        Quota::per_minute(n),
        MonotonicClock,
    ))
}

impl RateLimits {
    /// Limits of `per_user` and `per_ip` requests per minute (bursts of the same size);
    /// `0` turns a limit off.
    pub fn new(per_user: u32, per_ip: u32) -> Self {
        Self {
            per_user: keyed(per_user),
            per_ip: keyed(per_ip),
            clock: MonotonicClock,
            last_sweep: Mutex::new(Instant::now()),
        }
    }

    /// The limits of the configuration (the per-IP one defaults to
    /// [`DEFAULT_IP_FACTOR`] × the per-user one).
    pub fn from_config(config: &Config) -> Self {
        let per_ip = config.rate_limit_per_ip_per_minute.unwrap_or_else(|| {
            config
                .rate_limit_per_minute
                .saturating_mul(DEFAULT_IP_FACTOR)
        });
        Self::new(config.rate_limit_per_minute, per_ip)
    }

    /// Takes one request from `user`'s bucket, or says how long to wait.
    pub fn check_user(&self, user: &UserId) -> Result<(), Duration> {
        self.sweep_if_due();
        check(self.per_user.as_ref(), user, &self.clock)
    }

    /// Takes one request from the bucket of `ip`'s address (IPv6: its `/64`), or says how
    /// long to wait.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Duration> {
        self.sweep_if_due();
        check(self.per_ip.as_ref(), &ip_key(ip), &self.clock)
    }

    /// How many user and IP buckets are held now.
    pub fn tracked_keys(&self) -> (usize, usize) {
        (
            self.per_user.as_ref().map_or(0, Keyed::len),
            self.per_ip.as_ref().map_or(0, Keyed::len),
        )
    }

    /// Drops fully refilled buckets (see [`SWEEP_EVERY`]); one caller at a time does it.
    pub fn sweep_if_due(&self) {
        let Some(mut last) = self.last_sweep.try_lock() else {
            return;
        };
        if last.elapsed() < SWEEP_EVERY {
            return;
        }
        *last = Instant::now();
        self.sweep();
    }

    /// Drops fully refilled buckets now.
    pub fn sweep(&self) {
        if let Some(l) = &self.per_user {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.per_ip {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

fn check<K: std::hash::Hash + Eq + Clone>(
    limiter: Option<&Keyed<K>>,
    key: &K,
    clock: &MonotonicClock,
) -> Result<(), Duration> {
    match limiter {
        None => Ok(()),
        Some(l) => l
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(clock.now())),
    }
}

/// The key of an address: IPv4 as is (also when IPv4-mapped), IPv6 its `/64` network.
pub(crate) fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Whether `method` on route template `route` is limited (see the module docs).
pub fn is_limited(method: &Method, route: &str) -> bool {
    match route {
        "/api/sessions/{id}/queue" => {
            method == Method::POST || method == Method::GET || method == Method::DELETE
        }
        "/api/sessions/{id}/queue/events" => method == Method::GET,
        // a reconnecting stream replays from the store
        "/api/me/events" => method == Method::GET,
        "/api/holds" => method == Method::POST,
        "/api/holds/{id}" => method == Method::DELETE,
        "/api/holds/{id}/checkout" => method == Method::POST,
        // each top-up creates a payment at the provider
        "/api/me/wallet/topups" => method == Method::POST,
        _ => false,
    }
}

/// The client's address (see [`crate::http::middleware::client_ip`]), when the server was started with
/// connect info.
fn client_ip(req: &Request, trusted: &[Cidr]) -> Option<IpAddr> {
    crate::http::middleware::client_ip::of_request(req.extensions(), req.headers(), trusted)
}

/// Writes a refusal of `method route` to the security audit.
async fn record(
    state: &AppState,
    ip: Option<IpAddr>,
    route: String,
    user: Option<UserId>,
    by: LimitedBy,
) {
    state
        .security_audit
        .record(AbuseRecord {
            at: state.clock.now(),
            actor: user,
            reason: AbuseReason::RateLimited,
            client_ip: ip,
            route,
            detail: match by {
                LimitedBy::User => "queue and holds per user",
                LimitedBy::Ip => "queue and holds per IP",
            }
            .to_owned(),
        })
        .await;
}

/// Middleware (inside CORS, the timeout and the body limit, so a 429 carries CORS headers):
/// on the limited routes, takes a request from the caller's user bucket, then from the
/// client address's bucket, and answers 429 `RATE_LIMITED` with `Retry-After` when either
/// is empty; every other request passes untouched.
///
/// Its state is an `Arc` of the server's state: a middleware's state is cloned for every
/// request, and [`AppState`] itself is a large struct of the library's services (cloning it
/// touches ~100 reference counts).
pub async fn limit(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = match req.extensions().get::<MatchedPath>() {
        Some(m) if is_limited(req.method(), m.as_str()) => {
            format!("{} {}", req.method(), m.as_str())
        }
        _ => return next.run(req).await,
    };
    let ip = client_ip(&req, &state.config.throttle.trusted_proxies);
    let limits = &state.rate_limits;
    let mut user = None;
    let req = if limits.per_user.is_some() {
        let (mut parts, body) = req.into_parts();
        // An invalid or missing token is the handler's to refuse.
        user = AuthUser::from_request_parts(&mut parts, state.as_ref())
            .await
            .ok()
            .map(|u| u.id);
        let req = Request::from_parts(parts, body);
        if let Some(id) = user
            && let Err(wait) = limits.check_user(&id)
        {
            state.metrics.rate_limited(LimitedBy::User);
            record(&state, ip, route, user, LimitedBy::User).await;
            return ApiError::rate_limited(wait).into_response();
        }
        req
    } else {
        req
    };
    if let Some(addr) = ip
        && let Err(wait) = limits.check_ip(addr)
    {
        state.metrics.rate_limited(LimitedBy::Ip);
        record(&state, ip, route, user, LimitedBy::Ip).await;
        return ApiError::rate_limited(wait).into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> UserId {
        UserId::new_at(ticket_core::Timestamp::from_millis(1_700_000_000_000))
    }

    #[test]
    fn a_bucket_refuses_after_its_burst_and_says_how_long_to_wait() {
        let limits = RateLimits::new(2, 0);
        let (a, b) = (user(), user());
        assert!(limits.check_user(&a).is_ok());
        assert!(limits.check_user(&a).is_ok());
        let wait = limits.check_user(&a).unwrap_err();
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert!(
            limits.check_user(&b).is_ok(),
            "another user has a bucket of their own"
        );
        for _ in 0..100 {
            assert!(
                limits.check_ip("127.0.0.1".parse().unwrap()).is_ok(),
                "0 is off"
            );
        }
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ip_key(a), ip_key(b));
        assert_ne!(ip_key(a), ip_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(ip_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
        let limits = RateLimits::new(0, 1);
        assert!(limits.check_ip(a).is_ok());
        assert!(limits.check_ip(b).is_err(), "same /64, same bucket");
        assert!(limits.check_ip(c).is_ok());
    }

    #[test]
    fn only_the_queue_and_hold_routes_are_limited() {
        for (m, r) in [
            (Method::POST, "/api/sessions/{id}/queue"),
            (Method::GET, "/api/sessions/{id}/queue"),
            (Method::DELETE, "/api/sessions/{id}/queue"),
            (Method::GET, "/api/sessions/{id}/queue/events"),
            (Method::GET, "/api/me/events"),
            (Method::POST, "/api/holds"),
            (Method::DELETE, "/api/holds/{id}"),
            (Method::POST, "/api/holds/{id}/checkout"),
            (Method::POST, "/api/me/wallet/topups"),
        ] {
            assert!(is_limited(&m, r), "{m} {r}");
        }
        for (m, r) in [
            (Method::GET, "/api/holds/{id}"),
            (Method::POST, "/api/payments/webhook"),
            (Method::GET, "/metrics"),
            (Method::GET, "/api/me/notifications"),
            (Method::POST, "/api/auth/login"),
            (Method::OPTIONS, "/api/holds"),
        ] {
            assert!(!is_limited(&m, r), "{m} {r}");
        }
    }

    #[test]
    fn refilled_buckets_are_swept() {
        let limits = RateLimits::new(600, 600);
        for _ in 0..50 {
            limits.check_user(&user()).unwrap();
        }
        assert_eq!(limits.tracked_keys().0, 50);
        // 600 per minute refills one request in 100 ms; governor drops a bucket one
        // interval after it is full again.
        std::thread::sleep(Duration::from_millis(300));
        limits.sweep();
        assert_eq!(limits.tracked_keys(), (0, 0));
    }

    #[test]
    fn without_connect_info_there_is_no_address() {
        let req = Request::new(axum::body::Body::empty());
        assert_eq!(client_ip(&req, &[]), None);
    }
}
