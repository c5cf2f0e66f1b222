//! `alternative_names` (Anchor): every DNS name matches an allowed domain pattern.
//!
//! Anchor let IP addresses through unchecked (its own TODO says it meant to refuse them);
//! here an IP address is refused and the message points to `alternative_names_ip`.

use serde::{Deserialize, Serialize};

use super::matching::{DomainPattern, domain_refusal};
use super::{Finding, Input, Rule, Subject};
use crate::acme::Identifier;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlternativeNames {
    pub allowed_domains: Vec<DomainPattern>,
}

impl Rule for AlternativeNames {
    fn check(&self, input: &Input<'_>) -> Vec<Finding> {
        input
            .names
            .iter()
            .filter_map(|id| {
                let reason = match id {
                    Identifier::Dns(name) => domain_refusal(name, &self.allowed_domains)?,
                    Identifier::Ip(_) => {
                        "alternative_names allows DNS names only; use alternative_names_ip for IP addresses"
                            .to_owned()
                    }
                };
                Some(Finding::new(Subject::Identifier(id.clone()), reason))
            })
            .collect()
    }

    fn check_options(&self) -> Result<(), String> {
        if self.allowed_domains.is_empty() {
            return Err("allowed_domains is empty, so every name would be refused".to_owned());
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
            name = "alternative_names"
            allowed_domains = [".example.com"]
            "#,
        );
        let cases: [(&str, &[&str], &[&str]); 4] = [
            ("allowed", &["a.example.com", "*.example.com"], &[]),
            (
                "outside",
                &["a.example.org"],
                &[
                    "rule alternative_names refused dns:a.example.org: it matches none of the allowed domains (.example.com)",
                ],
            ),
            (
                "IP address",
                &["ip:10.0.0.1"],
                &[
                    "rule alternative_names refused ip:10.0.0.1: alternative_names allows DNS names only; use alternative_names_ip for IP addresses",
                ],
            ),
            (
                "the zone apex is not below itself",
                &["example.com"],
                &[
                    "rule alternative_names refused dns:example.com: it matches none of the allowed domains (.example.com)",
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
        // At finalize the SANs are checked, not the CN.
        let csr = csr(&params(Some("cn.example.org"), &["dns:a.example.com"]));
        assert!(at_csr(&chain, &csr, &Requester::default()).is_empty());
        let csr = super::super::test_support::csr(&params(None, &["dns:a.example.org"]));
        assert_eq!(
            at_csr(&chain, &csr, &Requester::default()),
            [
                "rule alternative_names refused dns:a.example.org: it matches none of the allowed domains (.example.com)"
            ]
        );
    }
}
