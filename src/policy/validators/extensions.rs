//! `extensions` (Anchor): the CSR requests only the listed extensions, by name
//! (`keyUsage`) or OID. subjectAltName is always allowed: an ACME CSR carries its
//! identifiers there (RFC 8555 §7.4), so refusing it would refuse every order.

use serde::{Deserialize, Serialize};

use super::csr_facts::{ExtensionId, SUBJECT_ALT_NAME, extension_name};
use super::matching::list;
use super::{Finding, Input, Rule, Subject};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Extensions {
    pub allowed_extensions: Vec<ExtensionId>,
}

impl Rule for Extensions {
    fn check(&self, input: &Input<'_>) -> Vec<Finding> {
        let Some(csr) = input.csr else {
            return Vec::new();
        };
        csr.extensions
            .iter()
            .filter(|e| e.oid != SUBJECT_ALT_NAME)
            .filter(|e| !self.allowed_extensions.iter().any(|a| a.oid == e.oid))
            .map(|e| {
                Finding::new(
                    Subject::Extension {
                        oid: e.oid.clone(),
                        name: extension_name(&e.oid),
                    },
                    format!(
                        "it is not among the allowed extensions (subjectAltName, {})",
                        list(&self.allowed_extensions)
                    ),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::Requester;
    use super::super::test_support::*;
    use rcgen::{CustomExtension, KeyUsagePurpose};

    #[test]
    fn table() {
        let chain = chain(
            r#"
            [[validators]]
            name = "extensions"
            allowed_extensions = ["keyUsage", "1.3.6.1.4.1.99999.1"]
            "#,
        );
        let plain = params(None, &["dns:a.example.com"]);
        let mut with_key_usage = plain.clone();
        with_key_usage.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let mut with_listed_oid = plain.clone();
        with_listed_oid.custom_extensions = vec![CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 4, 1, 99999, 1],
            vec![0x05, 0x00],
        )];
        let mut with_eku = plain.clone();
        with_eku.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let mut with_unknown = plain.clone();
        with_unknown.custom_extensions = vec![CustomExtension::from_oid_content(
            &[1, 2, 3, 4],
            vec![0x05, 0x00],
        )];
        let cases = [
            ("subjectAltName only", plain, vec![]),
            ("a listed name", with_key_usage, vec![]),
            ("a listed OID", with_listed_oid, vec![]),
            (
                "an unlisted known extension",
                with_eku,
                vec![
                    "rule extensions refused extension extendedKeyUsage (2.5.29.37): it is not among the allowed extensions (subjectAltName, keyUsage, 1.3.6.1.4.1.99999.1)",
                ],
            ),
            (
                "an unlisted unknown extension",
                with_unknown,
                vec![
                    "rule extensions refused extension 1.2.3.4: it is not among the allowed extensions (subjectAltName, keyUsage, 1.3.6.1.4.1.99999.1)",
                ],
            ),
        ];
        for (name, params, want) in cases {
            let csr = csr(&params);
            assert_eq!(at_csr(&chain, &csr, &Requester::default()), want, "{name}");
        }
        assert!(at_identifiers(&chain, &["a.example.com"], &Requester::default()).is_empty());
    }
}
