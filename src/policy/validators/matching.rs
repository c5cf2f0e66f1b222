//! Name and address matching shared by the rules: CIDR ranges, allowed-domain patterns and
//! listed (blocked) domains. Each type parses from its configuration string and refuses a bad
//! one at start-up.

use std::net::IpAddr;

use crate::acme::Identifier;

/// An IP network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`); a bare address is a
/// network of one. Host bits must be zero, so a typo such as `10.1.2.3/8` stops start-up
/// instead of silently meaning `10.0.0.0/8`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` lies in the network. IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`, as a
    /// dual-stack socket reports IPv4 peers) count as their IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_equal(u32::from(net).into(), u32::from(ip).into(), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_equal(u128::from(net), u128::from(ip), self.prefix, 128)
            }
            _ => false,
        }
    }
}

/// Whether the first `prefix` of `width` bits of `a` and `b` are equal.
fn prefix_equal(a: u128, b: u128, prefix: u8, width: u32) -> bool {
    let host_bits = width - u32::from(prefix);
    a.checked_shr(host_bits).unwrap_or(0) == b.checked_shr(host_bits).unwrap_or(0)
}

impl std::str::FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (address, prefix) = match s.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (s, None),
        };
        let network: IpAddr = address.parse().map_err(|_| {
            format!("{s:?} is not a CIDR network: {address:?} is not an IP address")
        })?;
        let width: u8 = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => width,
            Some(p) => match p.parse::<u8>() {
                Ok(p) if p <= width => p,
                _ => {
                    return Err(format!(
                        "{s:?} is not a CIDR network: the prefix length must be 0 to {width}"
                    ));
                }
            },
        };
        let cidr = Cidr { network, prefix };
        let canonical = cidr.masked();
        if canonical != network {
            return Err(format!(
                "{s:?} has host bits set; did you mean {canonical}/{prefix}?"
            ));
        }
        Ok(cidr)
    }
}

impl Cidr {
    /// The network address with the host bits cleared.
    fn masked(&self) -> IpAddr {
        match self.network {
            IpAddr::V4(ip) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::from((u32::from(ip) & mask).to_be_bytes())
            }
            IpAddr::V6(ip) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::from((u128::from(ip) & mask).to_be_bytes())
            }
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// An allowed-domain pattern, as in Anchor's `allowed_domains`:
/// - `.example.com`: any name below example.com, at any depth (not example.com itself);
/// - `*.example.com`: any name exactly one label below example.com (the wildcard name
///   `*.example.com` included);
/// - `example.com`: that name only.
///
/// Matching is by whole labels, so `.example.com` does not match `badexample.com` (Anchor's
/// plain `endswith` did).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DomainPattern {
    Exact(String),
    Below(String),
    OneLabelBelow(String),
}

impl DomainPattern {
    /// Whether the normalised DNS name `name` (possibly a wildcard) matches.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            DomainPattern::Exact(domain) => name == domain,
            DomainPattern::Below(domain) => strictly_under(name, domain),
            DomainPattern::OneLabelBelow(domain) => name
                .split_once('.')
                .is_some_and(|(_, parent)| parent == domain),
        }
    }
}

/// Whether `name` lies strictly under `domain` (`a.b.example.com` under `example.com`).
pub(crate) fn strictly_under(name: &str, domain: &str) -> bool {
    name.strip_suffix(domain)
        .is_some_and(|head| head.len() > 1 && head.ends_with('.'))
}

impl std::str::FromStr for DomainPattern {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (make, base): (fn(String) -> DomainPattern, &str) =
            if let Some(base) = s.strip_prefix("*.") {
                (DomainPattern::OneLabelBelow, base)
            } else if let Some(base) = s.strip_prefix('.') {
                (DomainPattern::Below, base)
            } else {
                (DomainPattern::Exact, s)
            };
        match Identifier::parse("dns", base) {
            Ok(Identifier::Dns(name)) if !name.starts_with("*.") => Ok(make(name)),
            Ok(_) => Err(format!(
                "{s:?} is not a domain pattern (use .example.com, *.example.com or example.com)"
            )),
            Err(e) => Err(format!("{s:?} is not a domain pattern: {e}")),
        }
    }
}

impl std::fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DomainPattern::Exact(d) => write!(f, "{d}"),
            DomainPattern::Below(d) => write!(f, ".{d}"),
            DomainPattern::OneLabelBelow(d) => write!(f, "*.{d}"),
        }
    }
}

/// A domain name in configuration (a listed domain of `blacklist_names`); a leading dot is
/// allowed and means the same.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainName(pub String);

impl std::str::FromStr for DomainName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bare = s.strip_prefix('.').unwrap_or(s);
        match Identifier::parse("dns", bare) {
            Ok(Identifier::Dns(name)) if !name.starts_with("*.") => Ok(DomainName(name)),
            Ok(_) => Err(format!("{s:?} is not a domain name (no wildcards here)")),
            Err(e) => Err(format!("{s:?} is not a domain name: {e}")),
        }
    }
}

impl std::fmt::Display for DomainName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Serde through `FromStr`/`Display`, so a bad value is refused with the parser's message.
macro_rules! serde_via_str {
    ($($t:ty),*) => {$(
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}
pub(crate) use serde_via_str;

serde_via_str!(Cidr, DomainPattern, DomainName);

/// Why `name` is not allowed by `patterns`, or `None` when one matches.
pub(crate) fn domain_refusal(name: &str, patterns: &[DomainPattern]) -> Option<String> {
    if patterns.iter().any(|p| p.matches(name)) {
        return None;
    }
    Some(format!(
        "it matches none of the allowed domains ({})",
        list(patterns)
    ))
}

/// Why `ip` is not allowed by `networks`, or `None` when it lies in one.
pub(crate) fn network_refusal(ip: IpAddr, networks: &[Cidr]) -> Option<String> {
    if networks.iter().any(|n| n.contains(ip)) {
        return None;
    }
    Some(format!(
        "it lies in none of the allowed networks ({})",
        list(networks)
    ))
}

/// `a, b, c`, or `none are configured`.
pub(crate) fn list<T: std::fmt::Display>(items: &[T]) -> String {
    if items.is_empty() {
        return "none are configured".to_owned();
    }
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parsing() {
        let cases: [(&str, &str, Result<&str, &str>); 9] = [
            ("IPv4 network", "10.0.0.0/8", Ok("10.0.0.0/8")),
            ("IPv6 network", "2001:db8::/32", Ok("2001:db8::/32")),
            ("bare IPv4 address", "192.0.2.1", Ok("192.0.2.1/32")),
            ("bare IPv6 address", "::1", Ok("::1/128")),
            ("everything", "0.0.0.0/0", Ok("0.0.0.0/0")),
            (
                "host bits set",
                "10.1.2.3/8",
                Err("\"10.1.2.3/8\" has host bits set; did you mean 10.0.0.0/8?"),
            ),
            (
                "prefix too long",
                "10.0.0.0/33",
                Err("\"10.0.0.0/33\" is not a CIDR network: the prefix length must be 0 to 32"),
            ),
            (
                "prefix not a number",
                "10.0.0.0/x",
                Err("\"10.0.0.0/x\" is not a CIDR network: the prefix length must be 0 to 32"),
            ),
            (
                "not an address",
                "example.com/8",
                Err(
                    "\"example.com/8\" is not a CIDR network: \"example.com\" is not an IP address",
                ),
            ),
        ];
        for (name, input, want) in cases {
            let got = input.parse::<Cidr>().map(|c| c.to_string());
            assert_eq!(
                got,
                want.map(str::to_owned).map_err(str::to_owned),
                "{name}"
            );
        }
    }

    #[test]
    fn cidr_contains() {
        let cases = [
            ("inside", "10.0.0.0/8", "10.255.0.1", true),
            ("outside", "10.0.0.0/8", "11.0.0.1", false),
            ("single address", "192.0.2.1", "192.0.2.1", true),
            (
                "neighbour of a single address",
                "192.0.2.1",
                "192.0.2.2",
                false,
            ),
            ("everything", "0.0.0.0/0", "203.0.113.9", true),
            ("IPv6 inside", "2001:db8::/32", "2001:db8:1::1", true),
            ("IPv6 outside", "2001:db8::/32", "2001:db9::1", false),
            ("other family", "10.0.0.0/8", "::1", false),
            ("IPv4-mapped IPv6", "10.0.0.0/8", "::ffff:10.0.0.1", true),
        ];
        for (name, cidr, ip, want) in cases {
            let cidr: Cidr = cidr.parse().unwrap();
            assert_eq!(cidr.contains(ip.parse().unwrap()), want, "{name}");
        }
    }

    #[test]
    fn domain_patterns() {
        let cases = [
            ("below: one label", ".example.com", "a.example.com", true),
            ("below: two labels", ".example.com", "a.b.example.com", true),
            ("below: wildcard", ".example.com", "*.example.com", true),
            (
                "below: not the domain",
                ".example.com",
                "example.com",
                false,
            ),
            (
                "below: whole labels",
                ".example.com",
                "badexample.com",
                false,
            ),
            ("one label: yes", "*.example.com", "a.example.com", true),
            (
                "one label: wildcard",
                "*.example.com",
                "*.example.com",
                true,
            ),
            (
                "one label: too deep",
                "*.example.com",
                "a.b.example.com",
                false,
            ),
            (
                "one label: not the domain",
                "*.example.com",
                "example.com",
                false,
            ),
            ("exact: yes", "example.com", "example.com", true),
            ("exact: not below", "example.com", "a.example.com", false),
            (
                "case-insensitive pattern",
                ".Example.COM",
                "a.example.com",
                true,
            ),
        ];
        for (name, pattern, input, want) in cases {
            let pattern: DomainPattern = pattern.parse().unwrap();
            assert_eq!(pattern.matches(input), want, "{name}");
        }
    }

    #[test]
    fn bad_domain_patterns() {
        let cases = [
            (
                "*.*.example.com",
                "\"*.*.example.com\" is not a domain pattern (use .example.com, *.example.com or example.com)",
            ),
            (
                "bad_name.com",
                "\"bad_name.com\" is not a domain pattern: \"bad_name.com\" is not a valid DNS name: it has a character other than a-z, 0-9, '-' and '.'",
            ),
            (
                ".",
                "\".\" is not a domain pattern: \"\" is not a valid DNS name: it is empty",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                input.parse::<DomainPattern>().err().as_deref(),
                Some(want),
                "{input}"
            );
        }
    }
}
