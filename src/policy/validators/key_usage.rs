//! `key_usage` (Anchor): the CSR's keyUsage asks only for allowed bits. A CSR without
//! keyUsage passes; the profile decides what the certificate gets.

use serde::{Deserialize, Serialize};

use super::csr_facts::{KEY_USAGE, KeyUsageBit};
use super::matching::list;
use super::{Finding, Input, Rule, Subject};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyUsage {
    /// RFC 5280 names (`digitalSignature`) or Anchor's (`Digital Signature`).
    pub allowed_usage: Vec<KeyUsageBit>,
}

impl Rule for KeyUsage {
    fn check(&self, input: &Input<'_>) -> Vec<Finding> {
        let Some(requested) = input.csr.and_then(|csr| csr.key_usage.as_ref()) else {
            return Vec::new();
        };
        let denied: Vec<KeyUsageBit> = requested
            .iter()
            .copied()
            .filter(|bit| !self.allowed_usage.contains(bit))
            .collect();
        if denied.is_empty() {
            return Vec::new();
        }
        vec![Finding::new(
            Subject::Extension {
                oid: KEY_USAGE.to_owned(),
                name: Some("keyUsage"),
            },
            format!(
                "it asks for {}, outside the allowed usages ({})",
                list(&denied),
                list(&self.allowed_usage)
            ),
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::super::Requester;
    use super::super::test_support::*;
    use rcgen::KeyUsagePurpose;

    #[test]
    fn table() {
        let chain = chain(
            r#"
            [[validators]]
            name = "key_usage"
            allowed_usage = ["Digital Signature", "keyEncipherment"]
            "#,
        );
        let cases: [(&str, Vec<KeyUsagePurpose>, &[&str]); 4] = [
            ("no keyUsage requested", vec![], &[]),
            (
                "allowed bits",
                vec![
                    KeyUsagePurpose::DigitalSignature,
                    KeyUsagePurpose::KeyEncipherment,
                ],
                &[],
            ),
            (
                "one forbidden bit",
                vec![
                    KeyUsagePurpose::DigitalSignature,
                    KeyUsagePurpose::ContentCommitment,
                ],
                &[
                    "rule key_usage refused extension keyUsage (2.5.29.15): it asks for nonRepudiation, outside the allowed usages (digitalSignature, keyEncipherment)",
                ],
            ),
            (
                "CA bits",
                vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign],
                &[
                    "rule key_usage refused extension keyUsage (2.5.29.15): it asks for keyCertSign, cRLSign, outside the allowed usages (digitalSignature, keyEncipherment)",
                ],
            ),
        ];
        for (name, usages, want) in cases {
            let mut params = params(None, &["dns:a.example.com"]);
            params.key_usages = usages;
            let csr = csr(&params);
            assert_eq!(at_csr(&chain, &csr, &Requester::default()), want, "{name}");
        }
    }
}
