//! `source_cidrs` (Anchor): the request comes from one of `cidrs`. Behind a proxy, the
//! client's address is read from `X-Forwarded-For` only when the TCP peer is one of
//! `trusted_proxies` (see [`client_address`]). An unknown source is refused. It speaks at
//! every stage: the finalize request may come from elsewhere than the order.

use serde::{Deserialize, Serialize};

use super::matching::{Cidr, network_refusal};
use super::requester::client_address;
use super::{Finding, Input, Rule, Stage, Subject};
use crate::acme::ProblemType;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceCidrs {
    pub cidrs: Vec<Cidr>,
    /// Proxies whose `X-Forwarded-For` is believed; empty: the header is ignored.
    #[serde(default)]
    pub trusted_proxies: Vec<Cidr>,
}

impl Rule for SourceCidrs {
    fn check(&self, input: &Input<'_>) -> Vec<Finding> {
        let requester = input.requester;
        let Some(peer) = requester.peer_address else {
            return vec![Finding::new(
                Subject::Source(None),
                "the request's source address is not known",
            )];
        };
        let source = client_address(peer, &requester.forwarded_for, &self.trusted_proxies);
        network_refusal(source, &self.cidrs)
            .map(|reason| Finding::new(Subject::Source(Some(source)), reason))
            .into_iter()
            .collect()
    }

    /// The requester may not ask from there: `unauthorized` (RFC 8555 §6.7).
    fn problem_type(&self, _stage: Stage) -> ProblemType {
        ProblemType::Unauthorized
    }

    fn check_options(&self) -> Result<(), String> {
        if self.cidrs.is_empty() {
            return Err("cidrs is empty, so every request would be refused".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Requester;
    use super::super::test_support::*;

    fn from(peer: Option<&str>, forwarded_for: &[&str]) -> Requester {
        Requester {
            peer_address: peer.map(|p| p.parse().unwrap()),
            forwarded_for: forwarded_for.iter().map(|s| (*s).to_owned()).collect(),
            ..Requester::default()
        }
    }

    #[test]
    fn table() {
        let chain = chain(
            r#"
            [[validators]]
            name = "source_cidrs"
            cidrs = ["192.0.2.0/24"]
            trusted_proxies = ["10.0.0.1"]
            "#,
        );
        let cases: [(&str, Requester, &[&str]); 6] = [
            ("direct, inside", from(Some("192.0.2.7"), &[]), &[]),
            (
                "direct, outside",
                from(Some("198.51.100.1"), &[]),
                &[
                    "rule source_cidrs refused source address 198.51.100.1: it lies in none of the allowed networks (192.0.2.0/24)",
                ],
            ),
            (
                "an untrusted peer cannot claim an inside address",
                from(Some("198.51.100.1"), &["192.0.2.7"]),
                &[
                    "rule source_cidrs refused source address 198.51.100.1: it lies in none of the allowed networks (192.0.2.0/24)",
                ],
            ),
            (
                "through the trusted proxy, inside",
                from(Some("10.0.0.1"), &["192.0.2.7"]),
                &[],
            ),
            (
                "through the trusted proxy, outside",
                from(Some("10.0.0.1"), &["192.0.2.7, 198.51.100.1"]),
                &[
                    "rule source_cidrs refused source address 198.51.100.1: it lies in none of the allowed networks (192.0.2.0/24)",
                ],
            ),
            (
                "unknown source",
                from(None, &[]),
                &[
                    "rule source_cidrs refused an unknown source address: the request's source address is not known",
                ],
            ),
        ];
        for (name, requester, want) in cases {
            assert_eq!(
                at_identifiers(&chain, &["a.example.com"], &requester),
                want,
                "{name}"
            );
        }
        let csr = csr(&params(None, &["dns:a.example.com"]));
        assert_eq!(
            at_csr(&chain, &csr, &from(Some("198.51.100.1"), &[])),
            [
                "rule source_cidrs refused source address 198.51.100.1: it lies in none of the allowed networks (192.0.2.0/24)"
            ]
        );
    }
}
