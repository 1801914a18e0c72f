//! The client's address, as every per-IP limit counts it (`--trusted-proxies`).
//!
//! Without trusted proxies the client is the connection's peer address and
//! `X-Forwarded-For` is ignored: anyone can write that header, so believing it would let a
//! client pick the bucket it is counted in.
//!
//! With `--trusted-proxies CIDR,…`, `X-Forwarded-For` counts only when the connection comes
//! from one of those networks, and then only as far as trusted proxies wrote it: the list is
//! walked from the right (each proxy appends the address it received the request from),
//! skipping addresses of trusted proxies; the first address that is not a trusted proxy is
//! the client. Entries to its left were written by the client itself and are never read, so
//! a spoofed leftmost entry changes nothing. A malformed entry (or a header that is not
//! text) stops the walk: the client is then the nearest trusted proxy seen, never something
//! the client could choose. Several `X-Forwarded-For` headers are read as one list, in order.
//! IPv4-mapped IPv6 addresses count as the IPv4 address.

use std::convert::Infallible;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap};

use crate::runtime::state::AppState;

/// The most `X-Forwarded-For` entries walked; past them the nearest trusted proxy seen is
/// taken as the client (a chain of 64 trusted proxies is not a real deployment).
pub const MAX_FORWARDED_HOPS: usize = 64;

/// An IP network, `10.0.0.0/8` or `2001:db8::/32`; a bare address is a network of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a `--trusted-proxies` entry is not a network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not an IP network (CIDR like 10.0.0.0/8 or 2001:db8::/32): {why}")]
pub struct CidrError {
    input: String,
    why: &'static str,
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, CidrError> {
        let err = |why| CidrError {
            input: s.to_owned(),
            why,
        };
        let text = s.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let network: IpAddr = addr.parse().map_err(|_| err("not an IP address"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().map_err(|_| err("bad prefix length"))?
            }
            Some(_) => return Err(err("bad prefix length")),
        };
        if prefix > max {
            return Err(err("prefix length too long for the address family"));
        }
        let cidr = Self { network, prefix };
        if cidr.masked(network) != network {
            return Err(err("host bits are set after the prefix"));
        }
        Ok(cidr)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl Cidr {
    /// `ip` with the bits past this network's prefix cleared.
    fn masked(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(v4) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4((u32::from(v4) & mask).into())
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
        }
    }

    /// Whether `ip` (IPv4-mapped IPv6 read as IPv4) is in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.network.is_ipv4() && self.masked(ip) == self.network
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`192.0.2.1:4711`,
/// `[2001:db8::1]:80`) or in brackets; anything else (`unknown`, garbage) is `None`.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sock) = entry.parse::<SocketAddr>() {
        return Some(sock.ip().to_canonical());
    }
    entry
        .strip_prefix('[')
        .and_then(|e| e.strip_suffix(']'))
        .and_then(|e| e.parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
}

/// The client of a request that came from `peer` with `headers`, trusting `X-Forwarded-For`
/// only as written by `trusted` proxies (see the module docs).
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    let mut client = peer.to_canonical();
    if !is_trusted(client) {
        return client;
    }
    let values: Vec<_> = headers.get_all("x-forwarded-for").iter().collect();
    let mut hops = 0;
    for value in values.into_iter().rev() {
        let Ok(text) = value.to_str() else {
            return client;
        };
        for entry in text.rsplit(',') {
            hops += 1;
            if hops > MAX_FORWARDED_HOPS {
                return client;
            }
            let Some(ip) = parse_entry(entry) else {
                return client;
            };
            client = ip;
            if !is_trusted(ip) {
                return ip;
            }
        }
    }
    // Every hop was a trusted proxy: the leftmost one sent the request itself.
    client
}

/// The client of a request from its extensions (the connection's address, present when the
/// server is served with `into_make_service_with_connect_info::<SocketAddr>()`) and headers;
/// `None` without connect info.
pub fn of_request(
    extensions: &Extensions,
    headers: &HeaderMap,
    trusted: &[Cidr],
) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| resolve(addr.ip(), headers, trusted))
}

/// The client's address as [`resolve`] reads it with the server's `--trusted-proxies`;
/// `None` when the server runs without connect info (never a rejection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        Ok(Self(of_request(
            &parts.extensions,
            &parts.headers,
            &state.config.throttle.trusted_proxies,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|c| c.parse().unwrap()).collect()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_parse_and_bad_ones_are_refused() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains(ip("10.255.1.2")));
        assert!(!c.contains(ip("11.0.0.1")));
        assert!(c.contains(ip("::ffff:10.1.2.3")), "mapped IPv4 is IPv4");
        let one: Cidr = "192.0.2.7".parse().unwrap();
        assert_eq!(one.to_string(), "192.0.2.7/32");
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("10.0.0.1")), "families never mix");
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        for bad in [
            "",
            "10.0.0.0/",
            "10.0.0.0/33",
            "10.0.0.1/8",
            "10.0.0.0/8/8",
            "10.0.0/8",
            "2001:db8::/129",
            "fe80::1%eth0",
            "10.0.0.0/+8",
            "10.0.0.0/0008",
            "host.example",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let h = xff(&["203.0.113.9"]);
        assert_eq!(resolve(ip("127.0.0.1"), &h, &[]), ip("127.0.0.1"));
        // A peer outside the trusted networks is the client, whatever it writes.
        let trusted = cidrs(&["10.0.0.0/8"]);
        assert_eq!(
            resolve(ip("198.51.100.1"), &h, &trusted),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn the_first_untrusted_address_from_the_right_is_the_client() {
        let trusted = cidrs(&["10.0.0.0/8", "2001:db8:a::/48"]);
        let peer = ip("10.0.0.1");
        // One proxy: it appended the client's address.
        assert_eq!(
            resolve(peer, &xff(&["203.0.113.9"]), &trusted),
            ip("203.0.113.9")
        );
        // A spoofed leftmost entry written by the client is never read.
        let spoofed = xff(&["1.2.3.4, 5.6.7.8, 203.0.113.9"]);
        assert_eq!(resolve(peer, &spoofed, &trusted), ip("203.0.113.9"));
        // Two trusted proxies in a row, then the client.
        let chain = xff(&["9.9.9.9, 203.0.113.9 , 10.1.1.1,2001:db8:a::5"]);
        assert_eq!(resolve(peer, &chain, &trusted), ip("203.0.113.9"));
        // Several headers read as one list, in order.
        let split = xff(&["9.9.9.9, 203.0.113.9", "10.2.2.2"]);
        assert_eq!(resolve(peer, &split, &trusted), ip("203.0.113.9"));
        // Every hop trusted: the leftmost proxy is the client.
        let inner = xff(&["10.3.3.3, 10.2.2.2"]);
        assert_eq!(resolve(peer, &inner, &trusted), ip("10.3.3.3"));
        // No header: the peer.
        assert_eq!(resolve(peer, &HeaderMap::new(), &trusted), peer);
    }

    #[test]
    fn ipv6_ports_and_brackets_are_understood() {
        let trusted = cidrs(&["2001:db8:a::/48"]);
        let peer = ip("2001:db8:a::1");
        for entry in [
            "2001:db8:beef::7",
            "[2001:db8:beef::7]",
            "[2001:db8:beef::7]:443",
        ] {
            assert_eq!(
                resolve(peer, &xff(&[entry]), &trusted),
                ip("2001:db8:beef::7"),
                "{entry}"
            );
        }
        let v4_trusted = cidrs(&["127.0.0.0/8"]);
        assert_eq!(
            resolve(
                ip("::ffff:127.0.0.1"),
                &xff(&["192.0.2.1:8080"]),
                &v4_trusted
            ),
            ip("192.0.2.1"),
            "a mapped peer and a port"
        );
    }

    #[test]
    fn a_malformed_entry_stops_at_the_nearest_trusted_proxy() {
        let trusted = cidrs(&["10.0.0.0/8"]);
        let peer = ip("10.0.0.1");
        for bad in ["unknown", "", "999.1.1.1", "203.0.113.9 junk", "_hidden"] {
            assert_eq!(resolve(peer, &xff(&[bad]), &trusted), peer, "{bad:?}");
        }
        // Behind one more trusted proxy: that proxy is the answer.
        let after = xff(&["garbage, 10.9.9.9"]);
        assert_eq!(resolve(peer, &after, &trusted), ip("10.9.9.9"));
        // A header that is not text.
        let mut opaque = HeaderMap::new();
        opaque.append(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"\xff1.2.3.4").unwrap(),
        );
        assert_eq!(resolve(peer, &opaque, &trusted), peer);
        // An endless chain of trusted hops stops after MAX_FORWARDED_HOPS.
        let long = vec!["10.1.1.1"; MAX_FORWARDED_HOPS + 5].join(",");
        assert_eq!(
            resolve(peer, &xff(&[&format!("1.2.3.4,{long}")]), &trusted),
            ip("10.1.1.1")
        );
    }

    #[test]
    fn without_connect_info_there_is_no_client() {
        assert_eq!(of_request(&Extensions::new(), &HeaderMap::new(), &[]), None);
    }
}
