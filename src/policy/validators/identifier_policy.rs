//! `identifier_policy`: names a certificate should never carry, whatever the zone rules say.
//!
//! - No single-label names (`intranet`): they are ambiguous across search domains and no
//!   public CA may issue for them (Baseline Requirements §4.2.2 on internal names).
//! - No names under a reserved top-level domain unless `allowed_reserved_tlds` lists it.
//!   The reserved TLDs are those of [`RESERVED_TLDS`]; `internal` is among them, so a
//!   deployment for an `.internal` zone lists it explicitly.
//! - Wildcards only if `allow_wildcards` (default true).
//! - At most `max_names` names, if set.
//! - IP addresses only inside `allowed_networks`, if set; never the unspecified, broadcast or
//!   a multicast address, which name no host.
//!
//! A rule refuses each name once, with the first reason in the order above.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::matching::{Cidr, list, network_refusal};
use super::max_names::too_many;
use super::{Finding, Input, Rule};
use crate::acme::Identifier;

/// Reserved top-level domains and where they are reserved.
pub const RESERVED_TLDS: [(&str, &str); 9] = [
    ("example", "RFC 2606"),
    ("invalid", "RFC 2606"),
    ("localhost", "RFC 6761"),
    ("test", "RFC 6761"),
    ("local", "RFC 6762"),
    ("onion", "RFC 7686"),
    ("alt", "RFC 9476"),
    // Infrastructure only (RFC 3172); home.arpa (RFC 8375) lies under it.
    ("arpa", "RFC 3172"),
    // Reserved by ICANN in 2024 for private use.
    ("internal", "ICANN"),
];

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentifierPolicy {
    #[serde(default)]
    pub allow_single_label: bool,
    /// Reserved TLDs (from [`RESERVED_TLDS`]) that names may end in.
    #[serde(default)]
    pub allowed_reserved_tlds: Vec<String>,
    #[serde(default = "yes")]
    pub allow_wildcards: bool,
    #[serde(default)]
    pub max_names: Option<usize>,
    /// Absent: any unicast address.
    #[serde(default)]
    pub allowed_networks: Option<Vec<Cidr>>,
}

fn yes() -> bool {
    true
}

impl Default for IdentifierPolicy {
    fn default() -> Self {
        IdentifierPolicy {
            allow_single_label: false,
            allowed_reserved_tlds: Vec::new(),
            allow_wildcards: true,
            max_names: None,
            allowed_networks: None,
        }
    }
}

impl IdentifierPolicy {
    fn dns_refusal(&self, name: &str) -> Option<String> {
        let base = name.strip_prefix("*.").unwrap_or(name);
        if !base.contains('.') && !self.allow_single_label {
            return Some("it has a single label; names must have at least two".to_owned());
        }
        let tld = base.rsplit('.').next().unwrap_or(base);
        if let Some((tld, source)) = RESERVED_TLDS.iter().find(|(t, _)| *t == tld)
            && !self.allowed_reserved_tlds.iter().any(|a| a == tld)
        {
            return Some(format!(
                "its top-level domain .{tld} is reserved ({source}) and not among allowed_reserved_tlds"
            ));
        }
        if name.starts_with("*.") && !self.allow_wildcards {
            return Some("it is a wildcard, and allow_wildcards is false".to_owned());
        }
        None
    }

    fn ip_refusal(&self, ip: IpAddr) -> Option<String> {
        if ip.is_unspecified() {
            return Some("it is the unspecified address".to_owned());
        }
        if ip.is_multicast() {
            return Some("it is a multicast address".to_owned());
        }
        if matches!(ip, IpAddr::V4(v4) if v4.is_broadcast()) {
            return Some("it is the broadcast address".to_owned());
        }
        network_refusal(ip, self.allowed_networks.as_deref()?)
    }
}

impl Rule for IdentifierPolicy {
    fn check(&self, input: &Input<'_>) -> Vec<Finding> {
        let mut findings: Vec<Finding> = input
            .all_names()
            .into_iter()
            .filter_map(|(subject, id)| {
                let reason = match id {
                    Identifier::Dns(name) => self.dns_refusal(&name)?,
                    Identifier::Ip(ip) => self.ip_refusal(ip)?,
                };
                Some(Finding::new(subject, reason))
            })
            .collect();
        if let Some(max) = self.max_names {
            findings.extend(too_many(input, max));
        }
        findings
    }

    fn check_options(&self) -> Result<(), String> {
        for tld in &self.allowed_reserved_tlds {
            if !RESERVED_TLDS.iter().any(|(t, _)| t == tld) {
                return Err(format!(
                    "allowed_reserved_tlds: {tld:?} is not a reserved TLD; they are {}",
                    list(&RESERVED_TLDS.map(|(t, _)| t))
                ));
            }
        }
        if self.max_names == Some(0) {
            return Err("max_names must be at least 1".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Requester;
    use super::super::test_support::*;

    #[test]
    fn defaults() {
        let chain = chain("[[validators]]\nname = \"identifier_policy\"\n");
        let cases: [(&str, &[&str], &[&str]); 12] = [
            ("an ordinary name", &["www.example.com"], &[]),
            ("a wildcard", &["*.example.com"], &[]),
            ("a unicast address", &["ip:192.0.2.1"], &[]),
            ("loopback is not refused here", &["ip:127.0.0.1"], &[]),
            (
                "single label",
                &["intranet"],
                &[
                    "rule identifier_policy refused dns:intranet: it has a single label; names must have at least two",
                ],
            ),
            (
                "localhost is single-label first",
                &["localhost"],
                &[
                    "rule identifier_policy refused dns:localhost: it has a single label; names must have at least two",
                ],
            ),
            (
                ".test",
                &["a.test"],
                &[
                    "rule identifier_policy refused dns:a.test: its top-level domain .test is reserved (RFC 6761) and not among allowed_reserved_tlds",
                ],
            ),
            (
                ".local under a wildcard",
                &["*.printer.local"],
                &[
                    "rule identifier_policy refused dns:*.printer.local: its top-level domain .local is reserved (RFC 6762) and not among allowed_reserved_tlds",
                ],
            ),
            (
                "home.arpa",
                &["nas.home.arpa"],
                &[
                    "rule identifier_policy refused dns:nas.home.arpa: its top-level domain .arpa is reserved (RFC 3172) and not among allowed_reserved_tlds",
                ],
            ),
            (
                "unspecified address",
                &["ip:0.0.0.0"],
                &["rule identifier_policy refused ip:0.0.0.0: it is the unspecified address"],
            ),
            (
                "multicast",
                &["ip:ff02::1"],
                &["rule identifier_policy refused ip:ff02::1: it is a multicast address"],
            ),
            (
                "broadcast",
                &["ip:255.255.255.255"],
                &["rule identifier_policy refused ip:255.255.255.255: it is the broadcast address"],
            ),
        ];
        for (name, names, want) in cases {
            assert_eq!(
                at_identifiers(&chain, names, &Requester::default()),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn configured() {
        let chain = chain(
            r#"
            [[validators]]
            name = "identifier_policy"
            allowed_reserved_tlds = ["internal"]
            allow_wildcards = false
            max_names = 2
            allowed_networks = ["10.0.0.0/8"]
            "#,
        );
        let cases: [(&str, &[&str], &[&str]); 5] = [
            ("an allowed reserved TLD", &["db.corp.internal"], &[]),
            ("an address inside", &["ip:10.0.0.5"], &[]),
            (
                "an address outside",
                &["ip:192.0.2.1"],
                &[
                    "rule identifier_policy refused ip:192.0.2.1: it lies in none of the allowed networks (10.0.0.0/8)",
                ],
            ),
            (
                "wildcards off",
                &["*.corp.internal"],
                &[
                    "rule identifier_policy refused dns:*.corp.internal: it is a wildcard, and allow_wildcards is false",
                ],
            ),
            (
                "too many, and each name still checked",
                &["a.corp.internal", "b.test", "c.corp.internal"],
                &[
                    "rule identifier_policy refused dns:b.test: its top-level domain .test is reserved (RFC 6761) and not among allowed_reserved_tlds",
                    "rule identifier_policy refused the request: it has 3 names; at most 2 are allowed",
                ],
            ),
        ];
        for (name, names, want) in cases {
            assert_eq!(
                at_identifiers(&chain, names, &Requester::default()),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn csr_common_name_is_checked() {
        let chain = chain("[[validators]]\nname = \"identifier_policy\"\n");
        let csr = csr(&params(Some("printer.local"), &["dns:www.example.com"]));
        assert_eq!(
            at_csr(&chain, &csr, &Requester::default()),
            [
                "rule identifier_policy refused common name \"printer.local\": its top-level domain .local is reserved (RFC 6762) and not among allowed_reserved_tlds"
            ]
        );
    }
}
