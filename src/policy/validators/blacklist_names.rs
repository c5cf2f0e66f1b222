//! `blacklist_names` (Anchor): no requested name (CN or SAN) equals, or lies under, a listed
//! domain. A wildcard that would cover a listed domain is refused too: a certificate for
//! `*.example.com` is valid for `bad.example.com`.

use serde::{Deserialize, Serialize};

use super::matching::{DomainName, strictly_under};
use super::{Finding, Input, Rule};
use crate::acme::Identifier;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlacklistNames {
    /// Listed domains; each refuses itself and every name under it.
    pub domains: Vec<DomainName>,
}

impl BlacklistNames {
    fn refusal(&self, name: &str) -> Option<String> {
        self.domains.iter().find_map(|DomainName(domain)| {
            if name == domain {
                return Some(format!("it equals the listed domain {domain}"));
            }
            if strictly_under(name, domain) {
                return Some(format!("it lies under the listed domain {domain}"));
            }
            let base = name.strip_prefix("*.")?;
            let (_, parent) = domain.split_once('.')?;
            (parent == base)
                .then(|| format!("it is a wildcard that covers the listed domain {domain}"))
        })
    }
}

impl Rule for BlacklistNames {
    fn check(&self, input: &Input<'_>) -> Vec<Finding> {
        input
            .all_names()
            .into_iter()
            .filter_map(|(subject, id)| match id {
                Identifier::Dns(name) => Some(Finding::new(subject, self.refusal(&name)?)),
                Identifier::Ip(_) => None,
            })
            .collect()
    }

    fn check_options(&self) -> Result<(), String> {
        if self.domains.is_empty() {
            return Err("domains is empty; list at least one domain or remove the rule".to_owned());
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
            name = "blacklist_names"
            domains = ["bad.example.com", ".internal.example.com"]
            "#,
        );
        let cases: [(&str, &[&str], &[&str]); 8] = [
            ("unrelated", &["good.example.com"], &[]),
            (
                "a sibling with the same suffix",
                &["notbad.example.com"],
                &[],
            ),
            ("IP addresses are not names", &["ip:10.0.0.1"], &[]),
            (
                "equal",
                &["bad.example.com"],
                &[
                    "rule blacklist_names refused dns:bad.example.com: it equals the listed domain bad.example.com",
                ],
            ),
            (
                "under",
                &["x.y.internal.example.com"],
                &[
                    "rule blacklist_names refused dns:x.y.internal.example.com: it lies under the listed domain internal.example.com",
                ],
            ),
            (
                "a wildcard under",
                &["*.bad.example.com"],
                &[
                    "rule blacklist_names refused dns:*.bad.example.com: it lies under the listed domain bad.example.com",
                ],
            ),
            (
                "a wildcard that covers",
                &["*.example.com"],
                &[
                    "rule blacklist_names refused dns:*.example.com: it is a wildcard that covers the listed domain bad.example.com",
                ],
            ),
            (
                "several refused, in request order",
                &["internal.example.com", "ok.example.com", "bad.example.com"],
                &[
                    "rule blacklist_names refused dns:internal.example.com: it equals the listed domain internal.example.com",
                    "rule blacklist_names refused dns:bad.example.com: it equals the listed domain bad.example.com",
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
    fn csr_stage_checks_cn_and_sans_once() {
        let chain = chain(
            r#"
            [[validators]]
            name = "blacklist_names"
            domains = ["bad.example.com"]
            "#,
        );
        let cases: [CsrCase; 3] = [
            ("clean", Some("a.example.com"), &["dns:a.example.com"], &[]),
            (
                "CN only",
                Some("Bad.Example.com"),
                &["dns:a.example.com"],
                &[
                    "rule blacklist_names refused common name \"Bad.Example.com\": it equals the listed domain bad.example.com",
                ],
            ),
            (
                "CN equal to a SAN is reported once, as the SAN",
                Some("bad.example.com"),
                &["dns:bad.example.com"],
                &[
                    "rule blacklist_names refused dns:bad.example.com: it equals the listed domain bad.example.com",
                ],
            ),
        ];
        for (name, cn, sans, want) in cases {
            let csr = csr(&params(cn, sans));
            assert_eq!(at_csr(&chain, &csr, &Requester::default()), want, "{name}");
        }
    }
}
