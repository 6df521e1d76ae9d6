//! The end user's address behind reverse proxies. Each proxy appends the address it received
//! the request from to the *right* of `X-Forwarded-For`; whatever is left of the entries the
//! trusted proxies wrote was written by the client and proves nothing. So the address is the
//! right-most entry that is not a trusted proxy (`ASHGATE_TRUSTED_PROXIES`, networks), or the
//! entry that many hops from the right (`ASHGATE_TRUSTED_PROXY_HOPS`, a count), and the TCP
//! peer when neither is configured or the request did not come through the proxies.

use std::net::IpAddr;

use ashgate_runtime::env::{ConfigError, Env};
use http::HeaderMap;

/// An IP network (`10.0.0.0/8`, `2001:db8::/32`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// Parses `a.b.c.d[/n]` or an IPv6 address with an optional `/n`.
    pub fn parse(text: &str) -> Option<Self> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr.parse::<IpAddr>().ok()?, Some(prefix.parse::<u8>().ok()?)),
            None => (text.parse::<IpAddr>().ok()?, None),
        };
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(bits);
        (prefix <= bits).then_some(Self { addr, prefix })
    }

    /// Whether `ip` is in this network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        match (self.addr.to_canonical(), ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.prefix),
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.prefix),
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let (whole, rest) = (usize::from(prefix / 8), prefix % 8);
    if a.get(..whole) != b.get(..whole) {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    matches!((a.get(whole), b.get(whole)), (Some(x), Some(y)) if x & mask == y & mask)
}

/// Which proxies in front of the gateway are trusted to report the client's address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TrustedProxies {
    /// None: the client address is the TCP peer (the default).
    #[default]
    None,
    /// Proxies at these addresses: the right-most `X-Forwarded-For` entry outside them, and
    /// only when the peer itself is one of them.
    Networks(Vec<Network>),
    /// This many proxies, whose addresses are unknown: the entry this many from the right.
    Hops(usize),
}

impl TrustedProxies {
    /// `ASHGATE_TRUSTED_PROXIES` or `ASHGATE_TRUSTED_PROXY_HOPS` (not both); the old
    /// `ASHGATE_GATEWAY_TRUST_FORWARDED_FOR` is refused, since it trusted the client's entry.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        if env.string("ASHGATE_GATEWAY_TRUST_FORWARDED_FOR").is_some() {
            return Err(ConfigError::new(
                "ASHGATE_GATEWAY_TRUST_FORWARDED_FOR",
                "is no longer supported (it trusted the left-most X-Forwarded-For entry, which the client writes): set ASHGATE_TRUSTED_PROXIES or ASHGATE_TRUSTED_PROXY_HOPS",
            ));
        }
        let networks = env.string("ASHGATE_TRUSTED_PROXIES");
        let hops = env.u64_in("ASHGATE_TRUSTED_PROXY_HOPS", 0, 0, 16)?;
        match (networks, hops) {
            (Some(_), 1..) => Err(ConfigError::new(
                "ASHGATE_TRUSTED_PROXY_HOPS",
                "set either ASHGATE_TRUSTED_PROXIES or ASHGATE_TRUSTED_PROXY_HOPS, not both",
            )),
            (Some(list), 0) => list
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| {
                    Network::parse(item).ok_or_else(|| {
                        ConfigError::new(
                            "ASHGATE_TRUSTED_PROXIES",
                            format!("{item:?} is not an IP address or network (e.g. 10.0.0.0/8)"),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Self::Networks),
            (None, 0) => Ok(Self::None),
            (None, hops) => Ok(Self::Hops(usize::try_from(hops).unwrap_or(usize::MAX))),
        }
    }

    /// Whether headers written by the proxy at `peer` (`X-Forwarded-*`) are believed.
    pub fn trusts_peer(&self, peer: Option<IpAddr>) -> bool {
        match self {
            Self::None => false,
            Self::Hops(_) => true,
            Self::Networks(networks) => peer.is_some_and(|p| networks.iter().any(|n| n.contains(p))),
        }
    }

    /// The client's address for a request from `peer` with these headers.
    pub fn client_addr(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        if !self.trusts_peer(peer) {
            return peer;
        }
        // Every X-Forwarded-For header, in order, as one list; an unparsable entry stops the walk.
        let entries: Vec<Option<IpAddr>> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|entry| entry.trim().parse::<IpAddr>().ok())
            .collect();
        match self {
            Self::None => peer,
            Self::Hops(hops) => match entries.len().checked_sub(*hops) {
                Some(i) => entries.get(i).copied().flatten().or(peer),
                // Fewer entries than proxies: the request did not come through them all.
                None => peer,
            },
            Self::Networks(networks) => {
                let mut client = peer;
                for entry in entries.iter().rev() {
                    let Some(ip) = *entry else { break };
                    client = Some(ip);
                    if !networks.iter().any(|n| n.contains(ip)) {
                        break;
                    }
                }
                client
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn xff(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static(value));
        headers
    }

    fn ip(text: &str) -> Option<IpAddr> {
        text.parse().ok()
    }

    #[test]
    fn networks() {
        let net = Network::parse("10.1.0.0/16").unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(Network::parse("10.0.0.0/12").unwrap().contains("10.15.255.255".parse().unwrap()));
        assert!(!Network::parse("10.0.0.0/12").unwrap().contains("10.16.0.0".parse().unwrap()));
        assert!(Network::parse("::1").unwrap().contains("::1".parse().unwrap()));
        assert!(Network::parse("127.0.0.0/8").unwrap().contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(Network::parse("0.0.0.0/0").unwrap().contains("192.0.2.1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "::/129", "proxy", "10.0.0.0/x", ""] {
            assert_eq!(Network::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn right_most_untrusted_entry() {
        let proxies = TrustedProxies::Networks(vec![Network::parse("10.0.0.0/8").unwrap()]);
        let peer = ip("10.0.0.2");
        assert_eq!(proxies.client_addr(peer, &xff("1.1.1.1, 198.51.100.7, 10.0.0.9")), ip("198.51.100.7"));
        assert_eq!(proxies.client_addr(peer, &xff("garbage, 198.51.100.7")), ip("198.51.100.7"));
        assert_eq!(proxies.client_addr(peer, &xff("198.51.100.7, garbage")), peer);
        assert_eq!(proxies.client_addr(peer, &HeaderMap::new()), peer);
        // A peer that is not a trusted proxy writes nothing we believe.
        assert_eq!(proxies.client_addr(ip("192.0.2.5"), &xff("198.51.100.7")), ip("192.0.2.5"));
        assert_eq!(TrustedProxies::None.client_addr(peer, &xff("198.51.100.7")), peer);
    }

    #[test]
    fn hops_from_the_right() {
        let peer = ip("10.0.0.2");
        let one = TrustedProxies::Hops(1);
        assert_eq!(one.client_addr(peer, &xff("6.6.6.6, 198.51.100.7")), ip("198.51.100.7"));
        let two = TrustedProxies::Hops(2);
        assert_eq!(two.client_addr(peer, &xff("6.6.6.6, 198.51.100.7, 10.0.0.9")), ip("198.51.100.7"));
        assert_eq!(two.client_addr(peer, &xff("198.51.100.7")), peer, "fewer entries than proxies");
    }
}
