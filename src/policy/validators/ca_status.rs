//! `ca_status` (Anchor): the CSR's basicConstraints CA flag equals `ca_requested` (default
//! false; a CSR without basicConstraints asks for CA:false). When CA status is not allowed,
//! the CA-only keyUsage bits keyCertSign and cRLSign are refused too (RFC 5280 §4.2.1.3).

use serde::{Deserialize, Serialize};

use super::csr_facts::{BASIC_CONSTRAINTS, KEY_USAGE, KeyUsageBit};
use super::matching::list;
use super::{Finding, Input, Rule, Subject};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaStatus {
    #[serde(default)]
    pub ca_requested: bool,
}

impl Rule for CaStatus {
    fn check(&self, input: &Input<'_>) -> Vec<Finding> {
        let Some(csr) = input.csr else {
            return Vec::new();
        };
        let basic_constraints = Subject::Extension {
            oid: BASIC_CONSTRAINTS.to_owned(),
            name: Some("basicConstraints"),
        };
        let mut findings = Vec::new();
        let ca = csr.basic_constraints.is_some_and(|b| b.ca);
        match (ca, self.ca_requested) {
            (true, false) => findings.push(Finding::new(
                basic_constraints,
                "it asks for CA:TRUE, and ca_requested is false",
            )),
            (false, true) => findings.push(Finding::new(
                if csr.basic_constraints.is_some() {
                    basic_constraints
                } else {
                    Subject::Request
                },
                "it does not ask for CA:TRUE, and ca_requested is true",
            )),
            _ => {}
        }
        if !self.ca_requested {
            let ca_bits: Vec<KeyUsageBit> = csr
                .key_usage
                .iter()
                .flatten()
                .copied()
                .filter(|b| matches!(b, KeyUsageBit::KeyCertSign | KeyUsageBit::CrlSign))
                .collect();
            if !ca_bits.is_empty() {
                findings.push(Finding::new(
                    Subject::Extension {
                        oid: KEY_USAGE.to_owned(),
                        name: Some("keyUsage"),
                    },
                    format!(
                        "it asks for {}, which only a CA may have, and ca_requested is false",
                        list(&ca_bits)
                    ),
                ));
            }
        }
        findings
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{Chain, Requester};
    use rcgen::{BasicConstraints, IsCa, KeyUsagePurpose};

    #[test]
    fn table() {
        let not_ca = chain("[[validators]]\nname = \"ca_status\"\n");
        let ca = chain("[[validators]]\nname = \"ca_status\"\nca_requested = true\n");
        type Case<'a> = (
            &'a str,
            &'a Chain,
            IsCa,
            Vec<KeyUsagePurpose>,
            &'a [&'a str],
        );
        let cases: [Case; 7] = [
            ("no basicConstraints", &not_ca, IsCa::NoCa, vec![], &[]),
            (
                "explicit CA:FALSE",
                &not_ca,
                IsCa::ExplicitNoCa,
                vec![],
                &[],
            ),
            (
                "CA:TRUE refused",
                &not_ca,
                IsCa::Ca(BasicConstraints::Unconstrained),
                vec![],
                &[
                    "rule ca_status refused extension basicConstraints (2.5.29.19): it asks for CA:TRUE, and ca_requested is false",
                ],
            ),
            (
                "CA keyUsage bits without CA status",
                &not_ca,
                IsCa::NoCa,
                vec![
                    KeyUsagePurpose::DigitalSignature,
                    KeyUsagePurpose::KeyCertSign,
                ],
                &[
                    "rule ca_status refused extension keyUsage (2.5.29.15): it asks for keyCertSign, which only a CA may have, and ca_requested is false",
                ],
            ),
            (
                "CA:TRUE when required",
                &ca,
                IsCa::Ca(BasicConstraints::Constrained(0)),
                vec![KeyUsagePurpose::KeyCertSign],
                &[],
            ),
            (
                "CA required, none asked",
                &ca,
                IsCa::NoCa,
                vec![],
                &[
                    "rule ca_status refused the request: it does not ask for CA:TRUE, and ca_requested is true",
                ],
            ),
            (
                "CA required, CA:FALSE asked",
                &ca,
                IsCa::ExplicitNoCa,
                vec![],
                &[
                    "rule ca_status refused extension basicConstraints (2.5.29.19): it does not ask for CA:TRUE, and ca_requested is true",
                ],
            ),
        ];
        for (name, chain, is_ca, usages, want) in cases {
            let mut params = params(None, &["dns:a.example.com"]);
            params.is_ca = is_ca;
            params.key_usages = usages;
            let csr = csr(&params);
            assert_eq!(at_csr(chain, &csr, &Requester::default()), want, "{name}");
        }
    }
}
