//! Where Premise itself fetches links (media links named with a provider, [`super::links`]):
//! never an internal address. Every address a name resolves to is checked when the connection
//! is made (a resolver of its own for the fetching client), so a name that resolves to a public
//! address when checked and a private one when used (DNS rebinding) gains nothing; a link
//! naming an address directly is checked before the request. Loopback, private (RFC 1918),
//! carrier-grade NAT, link-local, unique-local, unspecified, broadcast and multicast addresses
//! are refused unless `cloud.link_fetch_allow` names the host or a network holding the address.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// What a refused resolution says (to tell it from a server that is down).
pub const REFUSED: &str = "resolves to internal addresses only";

/// The hosts and networks an operator allows links to reach although they are internal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchAllow {
    hosts: Vec<String>,
    networks: Vec<(IpAddr, u8)>,
}

/// An entry of `cloud.link_fetch_allow` that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllowError {
    #[error("'{entry}': the prefix must be 0 to {max}")]
    Prefix { entry: String, max: u8 },
    #[error("'{0}' is neither a host name nor a network")]
    Neither(String),
}

impl FetchAllow {
    /// From `cloud.link_fetch_allow`: host names and networks (`10.1.0.0/16`, an address alone),
    /// comma separated. `Err` names the entry that is neither.
    pub fn parse(list: &str) -> Result<Self, AllowError> {
        let mut allow = Self::default();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (address, bits) = match entry.split_once('/') {
                Some((address, bits)) => (address, Some(bits)),
                None => (entry, None),
            };
            match address.parse::<IpAddr>() {
                Ok(ip) => {
                    let max = if ip.is_ipv4() { 32 } else { 128 };
                    let bits = match bits {
                        Some(bits) => {
                            bits.parse::<u8>().ok().filter(|b| *b <= max).ok_or_else(|| {
                                AllowError::Prefix { entry: entry.to_owned(), max }
                            })?
                        }
                        None => max,
                    };
                    allow.networks.push((ip, bits));
                }
                Err(_) if bits.is_none() && is_host_name(entry) => {
                    allow.hosts.push(entry.to_ascii_lowercase());
                }
                Err(_) => return Err(AllowError::Neither(entry.to_owned())),
            }
        }
        Ok(allow)
    }

    /// Whether `host` may be reached at `ip`.
    pub fn permits(&self, host: &str, ip: IpAddr) -> bool {
        !is_internal(ip)
            || self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host.trim_end_matches('.')))
            || self.networks.iter().any(|(net, bits)| within(ip, *net, *bits))
    }
}

fn is_host_name(text: &str) -> bool {
    !text.is_empty()
        && text.split('.').all(|label| {
            !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Whether `ip` is an address of this machine or of a private network.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

fn within(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// The fetching client's resolver: the system's, less the addresses [`FetchAllow`] refuses.
#[derive(Debug, Clone)]
pub struct GuardedResolver(pub Arc<FetchAllow>);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let permitted: Vec<SocketAddr> =
                found.iter().copied().filter(|a| allow.permits(&host, a.ip())).collect();
            if permitted.is_empty() {
                let error: Box<dyn std::error::Error + Send + Sync> = format!(
                    "{host} {REFUSED} ({found:?}); links are not fetched from them unless \
                     cloud.link_fetch_allow names the host or network"
                )
                .into();
                return Err(error);
            }
            Ok(Box::new(permitted.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_refused_unless_allowed() {
        let none = FetchAllow::default();
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            assert!(!none.permits("h", internal.parse().unwrap()), "{internal}");
        }
        for public in ["93.184.216.34", "2606:2800:220:1::1", "172.32.0.1", "100.128.0.1"] {
            assert!(none.permits("h", public.parse().unwrap()), "{public}");
        }
        let allow = FetchAllow::parse("cdn.internal, 10.1.0.0/16, 127.0.0.1").unwrap();
        assert!(allow.permits("CDN.internal", "10.9.9.9".parse().unwrap()), "by name");
        assert!(allow.permits("x", "10.1.200.3".parse().unwrap()), "by network");
        assert!(!allow.permits("x", "10.2.0.1".parse().unwrap()));
        assert!(allow.permits("x", "127.0.0.1".parse().unwrap()));
        assert!(!allow.permits("x", "127.0.0.2".parse().unwrap()));
        assert!(FetchAllow::parse("10.0.0.0/33").is_err());
        assert!(FetchAllow::parse("not a host").is_err());
    }
}
