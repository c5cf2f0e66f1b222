//! Who is asking: the facts about a requester that rules may look at, and the one pure
//! function that decides which address a request came from behind proxies.

use std::net::{IpAddr, SocketAddr};

use super::matching::Cidr;

/// The requester's context, filled in by the wiring from the verified request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Requester {
    /// The provisioner the request came through (for the audit log).
    pub provisioner: Option<String>,
    /// The ACME account (or token subject) that asks.
    pub account_id: Option<String>,
    /// The label of the external account binding key the account was created with; it counts
    /// as one of the requester's groups for `server_group`.
    pub eab_key_label: Option<String>,
    /// Groups from the requester's identity: the OIDC `groups` claim, a token claim.
    pub groups: Vec<String>,
    /// The TCP peer's address, as the listener saw it.
    pub peer_address: Option<IpAddr>,
    /// The `X-Forwarded-For` header values, in the order received. Trusted only when the
    /// peer is a configured proxy; see [`client_address`].
    pub forwarded_for: Vec<String>,
}

impl Requester {
    /// Every group the requester belongs to: `groups`, then the EAB key label.
    pub fn all_groups(&self) -> impl Iterator<Item = &str> {
        self.groups
            .iter()
            .map(String::as_str)
            .chain(self.eab_key_label.as_deref())
    }
}

/// The address a request came from.
///
/// If the TCP peer is not one of `trusted_proxies`, `X-Forwarded-For` is ignored: anyone can
/// send the header. Otherwise the header's addresses are read right to left (each proxy
/// appends the address it received the request from), skipping those of trusted proxies; the
/// first untrusted address is the client. When every address is trusted, the left-most is.
/// An entry that is not an address (`unknown`, garbage) stops the walk: what lies left of it
/// cannot be trusted, so the nearest trusted hop is the answer.
///
/// `forwarded_for` holds the header's values in order received; several header lines are
/// one comma-separated list (RFC 9110 §5.3). Entries may carry a port (`192.0.2.1:4711`,
/// `[2001:db8::1]:443`), as some proxies write them.
pub fn client_address<S: AsRef<str>>(
    peer: IpAddr,
    forwarded_for: &[S],
    trusted_proxies: &[Cidr],
) -> IpAddr {
    let trusted = |ip: IpAddr| trusted_proxies.iter().any(|c| c.contains(ip));
    let mut nearest = peer.to_canonical();
    if !trusted(nearest) {
        return nearest;
    }
    let entries = forwarded_for
        .iter()
        .flat_map(|value| value.as_ref().split(','))
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .collect::<Vec<_>>();
    for entry in entries.into_iter().rev() {
        let Some(ip) = parse_entry(entry) else {
            return nearest;
        };
        nearest = ip;
        if !trusted(ip) {
            return ip;
        }
    }
    nearest
}

fn parse_entry(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_trusted_only_from_proxies() {
        let proxies: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()];
        let cases: [(&str, &str, &[&str], &str); 13] = [
            ("no proxy, no header", "203.0.113.9", &[], "203.0.113.9"),
            (
                "untrusted peer: the header is ignored",
                "203.0.113.9",
                &["198.51.100.1"],
                "203.0.113.9",
            ),
            ("trusted peer, no header", "10.0.0.1", &[], "10.0.0.1"),
            (
                "trusted peer: the client from the header",
                "10.0.0.1",
                &["198.51.100.1"],
                "198.51.100.1",
            ),
            (
                "a spoofed left entry is not the client",
                "10.0.0.1",
                &["192.0.2.66, 198.51.100.1"],
                "198.51.100.1",
            ),
            (
                "chained proxies are skipped",
                "10.0.0.1",
                &["198.51.100.1, 10.0.0.2, 10.0.0.3"],
                "198.51.100.1",
            ),
            (
                "several header lines are one list",
                "10.0.0.1",
                &["192.0.2.66", "198.51.100.1"],
                "198.51.100.1",
            ),
            (
                "every entry trusted: the left-most",
                "10.0.0.1",
                &["10.0.0.9, 10.0.0.2"],
                "10.0.0.9",
            ),
            (
                "garbage stops the walk at the nearest trusted hop",
                "10.0.0.1",
                &["198.51.100.1, unknown, 10.0.0.2"],
                "10.0.0.2",
            ),
            (
                "entries with ports",
                "10.0.0.1",
                &["198.51.100.1:4711, [2001:db8::1]:443"],
                "2001:db8::1",
            ),
            (
                "IPv6 loopback proxy",
                "::1",
                &["2001:db8::7"],
                "2001:db8::7",
            ),
            (
                "IPv4-mapped peer counts as IPv4",
                "::ffff:10.0.0.1",
                &["198.51.100.1"],
                "198.51.100.1",
            ),
            (
                "empty entries are skipped",
                "10.0.0.1",
                &["198.51.100.1, ,"],
                "198.51.100.1",
            ),
        ];
        for (name, peer, header, want) in cases {
            let got = client_address(peer.parse().unwrap(), header, &proxies);
            assert_eq!(got, want.parse::<IpAddr>().unwrap(), "{name}");
        }
    }

    #[test]
    fn groups_include_the_eab_key_label() {
        let requester = Requester {
            groups: vec!["ops".to_owned()],
            eab_key_label: Some("team-nova".to_owned()),
            ..Requester::default()
        };
        assert_eq!(
            requester.all_groups().collect::<Vec<_>>(),
            vec!["ops", "team-nova"]
        );
    }
}
