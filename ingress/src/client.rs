//! Who is on the other end of the connection (§6.4): the client's address,
//! taken from `X-Forwarded-For` / `X-Real-IP` only when the TCP peer is one
//! of the configured trusted proxies (anyone can send those headers), and
//! its user agent. Scoped per request, so the job it submits carries them to
//! the worker that writes the audit row.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use gad_shared::envelope::ClientInfo;
use serde::Deserialize;

use crate::state::AppState;

/// Longest user agent kept; clients send arbitrarily long ones.
const MAX_USER_AGENT: usize = 512;

tokio::task_local! {
    static CLIENT: ClientInfo;
}

/// The current request's client, when called while serving one.
pub fn current() -> Option<ClientInfo> {
    CLIENT.try_with(Clone::clone).ok()
}

/// Middleware: resolves the client once and scopes it for the request.
pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let client = ClientInfo {
        ip: peer
            .map(|p| client_ip(p, req.headers(), &state.settings.ingress.trusted_proxies))
            .map(|ip| ip.to_string()),
        user_agent: req
            .headers()
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(MAX_USER_AGENT).collect()),
    };
    CLIENT.scope(client, next.run(req)).await
}

/// The peer, or what a trusted proxy says the client was: the right-most
/// `X-Forwarded-For` hop that is not itself a trusted proxy (hops to its
/// left were written by the client and prove nothing), else `X-Real-IP`.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[TrustedProxy]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|t| t.contains(*ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    if let Some(hop) = forwarded.iter().rev().find(|ip| !is_trusted(ip)) {
        return *hop;
    }
    headers
        .get("x-real-ip")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(peer)
}

/// An address or a CIDR block (`10.0.0.0/8`, `::1`), from `TRUSTED_PROXIES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct TrustedProxy {
    net: IpAddr,
    prefix: u8,
}

impl TrustedProxy {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u32::from(net).into(), 32, self.prefix) == masked(u32::from(ip).into(), 32, self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(net.into(), 128, self.prefix) == masked(ip.into(), 128, self.prefix)
            }
            _ => false,
        }
    }
}

fn masked(bits: u128, width: u8, prefix: u8) -> u128 {
    let keep = u32::from(prefix.min(width));
    let drop = u32::from(width) - keep;
    bits.checked_shr(drop).unwrap_or(0)
}

#[derive(Debug, thiserror::Error)]
#[error("not an address or CIDR block: {0}")]
pub struct InvalidProxy(String);

impl FromStr for TrustedProxy {
    type Err = InvalidProxy;
    fn from_str(s: &str) -> Result<Self, InvalidProxy> {
        let bad = || InvalidProxy(s.to_string());
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (s.trim(), None),
        };
        let net: IpAddr = addr.parse().map_err(|_| bad())?;
        let width = if net.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(width);
        if prefix > width {
            return Err(bad());
        }
        Ok(Self { net, prefix })
    }
}

impl TryFrom<String> for TrustedProxy {
    type Error = InvalidProxy;
    fn try_from(s: String) -> Result<Self, InvalidProxy> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn proxies(list: &[&str]) -> Vec<TrustedProxy> {
        list.iter().filter_map(|p| p.parse().ok()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 203.0.113.7, 10.0.0.2"),
        );
        h.insert("x-real-ip", HeaderValue::from_static("198.51.100.1"));
        let trusted = proxies(&["10.0.0.0/8"]);
        // An untrusted peer's headers are ignored.
        assert_eq!(client_ip(ip("192.0.2.9"), &h, &trusted), ip("192.0.2.9"));
        // Through the proxy: the right-most hop the proxies did not add.
        assert_eq!(client_ip(ip("10.1.2.3"), &h, &trusted), ip("203.0.113.7"));
        h.remove("x-forwarded-for");
        assert_eq!(client_ip(ip("10.1.2.3"), &h, &trusted), ip("198.51.100.1"));
        assert_eq!(client_ip(ip("10.1.2.3"), &HeaderMap::new(), &trusted), ip("10.1.2.3"));
    }

    #[test]
    fn cidr_blocks_match_their_range_only() {
        let net: TrustedProxy = "10.0.0.0/8".parse().unwrap_or(TrustedProxy {
            net: ip("255.255.255.255"),
            prefix: 32,
        });
        assert!(net.contains(ip("10.255.0.1")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(net.contains(ip("::ffff:10.0.0.1")));
        let one: Result<TrustedProxy, _> = "::1".parse();
        assert!(one.is_ok_and(|p| p.contains(ip("::1")) && !p.contains(ip("::2"))));
        assert!("10.0.0.0/33".parse::<TrustedProxy>().is_err());
        assert!("proxy.local".parse::<TrustedProxy>().is_err());
        let all: Result<TrustedProxy, _> = "0.0.0.0/0".parse();
        assert!(all.is_ok_and(|p| p.contains(ip("8.8.8.8"))));
    }
}
