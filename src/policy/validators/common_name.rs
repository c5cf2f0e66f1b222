//! `common_name` (Anchor): the CN matches an allowed domain pattern or lies in an allowed
//! network.
//!
//! At `newOrder` every identifier is checked, because RFC 8555 §7.4 lets any of them become
//! the CN: refusing it then saves the client its challenges. At finalize the CSR's CN is
//! checked; a CSR without a CN must have a subjectAltName (RFC 5280 §4.2.1.6).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::matching::{Cidr, DomainPattern, domain_refusal, network_refusal};
use super::{Finding, Input, Rule, Stage, Subject};
use crate::acme::Identifier;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommonName {
    /// `.example.com` (below), `*.example.com` (one label below) or `example.com` (exact).
    #[serde(default)]
    pub allowed_domains: Vec<DomainPattern>,
    /// CIDR networks an IP-address CN may lie in.
    #[serde(default)]
    pub allowed_networks: Vec<Cidr>,
}

impl CommonName {
    fn refusal(&self, id: &Identifier) -> Option<String> {
        match id {
            Identifier::Dns(name) => domain_refusal(name, &self.allowed_domains),
            Identifier::Ip(ip) => network_refusal(*ip, &self.allowed_networks),
        }
    }
}

impl Rule for CommonName {
    fn check(&self, input: &Input<'_>) -> Vec<Finding> {
        if input.stage == Stage::Identifiers {
            return input
                .names
                .iter()
                .filter_map(|id| {
                    let reason = self.refusal(id)?;
                    Some(Finding::new(Subject::Identifier(id.clone()), reason))
                })
                .collect();
        }
        let Some(cn) = input.common_name else {
            if input.names.is_empty() {
                return vec![Finding::new(
                    Subject::Request,
                    "it has neither a common name nor a subjectAltName (RFC 5280 §4.2.1.6)",
                )];
            }
            return Vec::new();
        };
        let subject = Subject::CommonName(cn.to_owned());
        let id = match cn.parse::<IpAddr>() {
            Ok(ip) => Identifier::Ip(ip.to_canonical()),
            Err(_) => match Identifier::parse("dns", cn) {
                Ok(id) => id,
                Err(_) => {
                    return vec![Finding::new(
                        subject,
                        "it is neither a DNS name nor an IP address",
                    )];
                }
            },
        };
        self.refusal(&id)
            .map(|reason| Finding::new(subject, reason))
            .into_iter()
            .collect()
    }

    fn check_options(&self) -> Result<(), String> {
        if self.allowed_domains.is_empty() && self.allowed_networks.is_empty() {
            return Err(
                "allowed_domains and allowed_networks are both empty, so every name would be refused"
                    .to_owned(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Requester;
    use super::super::test_support::*;

    const CHAIN: &str = r#"
        [[validators]]
        name = "common_name"
        allowed_domains = [".example.com", "*.corp.example.net", "exact.example.org"]
        allowed_networks = ["10.0.0.0/8"]
    "#;

    #[test]
    fn identifier_stage() {
        let chain = chain(CHAIN);
        let cases: [(&str, &[&str], &[&str]); 7] = [
            ("below a suffix", &["a.b.example.com"], &[]),
            ("one label below", &["host.corp.example.net"], &[]),
            ("exact", &["exact.example.org"], &[]),
            ("IP in a network", &["ip:10.1.2.3"], &[]),
            (
                "two labels below a one-label pattern",
                &["a.b.corp.example.net"],
                &[
                    "rule common_name refused dns:a.b.corp.example.net: it matches none of the allowed domains (.example.com, *.corp.example.net, exact.example.org)",
                ],
            ),
            (
                "a look-alike suffix",
                &["badexample.com"],
                &[
                    "rule common_name refused dns:badexample.com: it matches none of the allowed domains (.example.com, *.corp.example.net, exact.example.org)",
                ],
            ),
            (
                "every refused identifier is reported",
                &["a.example.com", "ip:192.0.2.1", "other.org"],
                &[
                    "rule common_name refused ip:192.0.2.1: it lies in none of the allowed networks (10.0.0.0/8)",
                    "rule common_name refused dns:other.org: it matches none of the allowed domains (.example.com, *.corp.example.net, exact.example.org)",
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
    fn csr_stage() {
        let chain = chain(CHAIN);
        let cases: [CsrCase; 6] = [
            (
                "allowed CN",
                Some("www.example.com"),
                &["dns:www.example.com"],
                &[],
            ),
            (
                "IP CN in a network",
                Some("10.0.0.1"),
                &["ip:10.0.0.1"],
                &[],
            ),
            ("no CN, SANs present", None, &["dns:www.example.com"], &[]),
            (
                "CN not allowed (SANs are not this rule's business)",
                Some("www.example.org"),
                &["dns:www.example.com"],
                &[
                    "rule common_name refused common name \"www.example.org\": it matches none of the allowed domains (.example.com, *.corp.example.net, exact.example.org)",
                ],
            ),
            (
                "IP CN outside the networks",
                Some("192.0.2.1"),
                &[],
                &[
                    "rule common_name refused common name \"192.0.2.1\": it lies in none of the allowed networks (10.0.0.0/8)",
                ],
            ),
            (
                "CN that is no name",
                Some("My Server"),
                &["dns:www.example.com"],
                &[
                    "rule common_name refused common name \"My Server\": it is neither a DNS name nor an IP address",
                ],
            ),
        ];
        for (name, cn, sans, want) in cases {
            let csr = csr(&params(cn, sans));
            assert_eq!(at_csr(&chain, &csr, &Requester::default()), want, "{name}");
        }
    }

    #[test]
    fn no_name_at_all() {
        let chain = chain(CHAIN);
        let csr = csr(&params(None, &[]));
        assert_eq!(
            at_csr(&chain, &csr, &Requester::default()),
            [
                "rule common_name refused the request: it has neither a common name nor a subjectAltName (RFC 5280 §4.2.1.6)"
            ]
        );
    }
}
