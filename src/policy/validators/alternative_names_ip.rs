//! `alternative_names_ip` (Anchor): every IP address lies in an allowed network and every
//! DNS name matches an allowed domain pattern.

use serde::{Deserialize, Serialize};

use super::matching::{Cidr, DomainPattern, domain_refusal, network_refusal};
use super::{Finding, Input, Rule, Subject};
use crate::acme::Identifier;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlternativeNamesIp {
    #[serde(default)]
    pub allowed_domains: Vec<DomainPattern>,
    #[serde(default)]
    pub allowed_networks: Vec<Cidr>,
}

impl Rule for AlternativeNamesIp {
    fn check(&self, input: &Input<'_>) -> Vec<Finding> {
        input
            .names
            .iter()
            .filter_map(|id| {
                let reason = match id {
                    Identifier::Dns(name) => domain_refusal(name, &self.allowed_domains)?,
                    Identifier::Ip(ip) => network_refusal(*ip, &self.allowed_networks)?,
                };
                Some(Finding::new(Subject::Identifier(id.clone()), reason))
            })
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

    #[test]
    fn table() {
        let chain = chain(
            r#"
            [[validators]]
            name = "alternative_names_ip"
            allowed_domains = [".example.com"]
            allowed_networks = ["10.0.0.0/8", "2001:db8::/32"]
            "#,
        );
        let cases: [(&str, &[&str], &[&str]); 5] = [
            ("DNS allowed", &["a.example.com"], &[]),
            ("IPv4 allowed", &["ip:10.9.8.7"], &[]),
            ("IPv6 allowed", &["ip:2001:db8::5"], &[]),
            (
                "IP outside",
                &["ip:192.0.2.1"],
                &[
                    "rule alternative_names_ip refused ip:192.0.2.1: it lies in none of the allowed networks (10.0.0.0/8, 2001:db8::/32)",
                ],
            ),
            (
                "DNS outside",
                &["a.example.org", "ip:10.0.0.1"],
                &[
                    "rule alternative_names_ip refused dns:a.example.org: it matches none of the allowed domains (.example.com)",
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
        let csr = csr(&params(None, &["ip:192.0.2.1"]));
        assert_eq!(
            at_csr(&chain, &csr, &Requester::default()),
            [
                "rule alternative_names_ip refused ip:192.0.2.1: it lies in none of the allowed networks (10.0.0.0/8, 2001:db8::/32)"
            ]
        );
    }

    #[test]
    fn networks_only_refuses_dns() {
        let chain = chain(
            r#"
            [[validators]]
            name = "alternative_names_ip"
            allowed_networks = ["10.0.0.0/8"]
            "#,
        );
        assert_eq!(
            at_identifiers(&chain, &["a.example.com"], &Requester::default()),
            [
                "rule alternative_names_ip refused dns:a.example.com: it matches none of the allowed domains (none are configured)"
            ]
        );
    }
}
