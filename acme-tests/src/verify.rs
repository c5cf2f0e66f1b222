//! The checks every interop test applies to an issued chain.
//!
//! The leaf must be signed by the intermediate that follows it, each intermediate by the next
//! certificate and the last by the root file; the leaf's DNS names must be exactly the ones
//! requested; and every certificate must be valid now.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;

/// Verify the PEM chain at `chain_path` against the root at `root_path`, for exactly `names`.
pub fn verify_chain(chain_path: &Path, root_path: &Path, names: &[&str]) -> Result<()> {
    let chain_pem =
        fs::read(chain_path).with_context(|| format!("reading {}", chain_path.display()))?;
    let root_pem =
        fs::read(root_path).with_context(|| format!("reading {}", root_path.display()))?;
    verify_pem(&chain_pem, &root_pem, names)
}

/// [`verify_chain`] on PEM bytes.
pub fn verify_pem(chain_pem: &[u8], root_pem: &[u8], names: &[&str]) -> Result<()> {
    let mut chain_ders = certificates(chain_pem).context("parsing the chain")?;
    let root_der = certificates(root_pem)
        .context("parsing the root")?
        .into_iter()
        .next()
        .context("the root file holds no certificate")?;
    // A chain may end with the root itself; it adds nothing to check.
    if chain_ders.len() > 1 && chain_ders.last() == Some(&root_der) {
        chain_ders.pop();
    }
    ensure!(
        chain_ders.len() >= 2,
        "the chain holds {} certificate(s); expected the leaf and at least one intermediate",
        chain_ders.len()
    );
    let chain = chain_ders
        .iter()
        .map(|der| parse(der))
        .collect::<Result<Vec<_>>>()?;
    let root = parse(&root_der)?;

    for (index, certificate) in chain.iter().enumerate() {
        let issuer = chain.get(index + 1).unwrap_or(&root);
        certificate
            .verify_signature(Some(issuer.public_key()))
            .with_context(|| {
                format!(
                    "certificate {index} ({}) is not signed by {}",
                    certificate.subject(),
                    issuer.subject()
                )
            })?;
        ensure!(
            certificate.issuer() == issuer.subject(),
            "certificate {index} names issuer {} but is followed by {}",
            certificate.issuer(),
            issuer.subject()
        );
        ensure!(
            certificate.validity().is_valid(),
            "certificate {index} ({}) is not valid now: {:?}",
            certificate.subject(),
            certificate.validity()
        );
        if index > 0 {
            ensure!(certificate.is_ca(), "intermediate {index} is not a CA");
        }
    }

    let leaf = &chain[0];
    ensure!(!leaf.is_ca(), "the leaf is a CA certificate");
    let issued = dns_names(leaf)?;
    let requested: BTreeSet<String> = names.iter().map(|name| name.to_lowercase()).collect();
    ensure!(
        issued == requested,
        "the leaf's DNS names {issued:?} differ from the requested {requested:?}"
    );
    Ok(())
}

fn certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut ders = Vec::new();
    for block in Pem::iter_from_buffer(pem) {
        let block = block?;
        if block.label == "CERTIFICATE" {
            ders.push(block.contents);
        }
    }
    Ok(ders)
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>> {
    let (rest, certificate) = x509_parser::parse_x509_certificate(der)?;
    if !rest.is_empty() {
        bail!("{} trailing bytes after a certificate", rest.len());
    }
    Ok(certificate)
}

fn dns_names(leaf: &X509Certificate<'_>) -> Result<BTreeSet<String>> {
    let san = leaf
        .subject_alternative_name()?
        .context("the leaf has no subjectAltName")?;
    Ok(san
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some(dns.to_lowercase()),
            _ => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, KeyUsagePurpose,
    };
    use time::{Duration, OffsetDateTime};

    use super::verify_pem;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn ca(name: &str) -> Result<CertificateParams, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        Ok(params)
    }

    /// A root, an intermediate, and a leaf for `names` valid from `not_before`.
    struct Pki {
        root: String,
        other_root: String,
        intermediate: String,
        leaf: String,
    }

    fn pki(names: &[&str], not_after: OffsetDateTime) -> Result<Pki, rcgen::Error> {
        let root = CertifiedIssuer::self_signed(ca("root")?, KeyPair::generate()?)?;
        let other_root = CertifiedIssuer::self_signed(ca("root")?, KeyPair::generate()?)?;
        let intermediate =
            CertifiedIssuer::signed_by(ca("intermediate")?, KeyPair::generate()?, &root)?;
        let mut leaf_params = CertificateParams::new(
            names
                .iter()
                .map(|name| (*name).to_owned())
                .collect::<Vec<_>>(),
        )?;
        leaf_params.not_before = OffsetDateTime::now_utc() - Duration::days(2);
        leaf_params.not_after = not_after;
        let leaf = leaf_params.signed_by(&KeyPair::generate()?, &intermediate)?;
        Ok(Pki {
            root: root.pem(),
            other_root: other_root.pem(),
            intermediate: intermediate.pem(),
            leaf: leaf.pem(),
        })
    }

    #[test]
    fn verify_pem_cases() -> TestResult {
        let tomorrow = OffsetDateTime::now_utc() + Duration::days(1);
        let good = pki(&["a.test"], tomorrow)?;
        let two_names = pki(&["a.test", "b.test"], tomorrow)?;
        let expired = pki(&["a.test"], OffsetDateTime::now_utc() - Duration::days(1))?;
        let full = |pki: &Pki| format!("{}{}", pki.leaf, pki.intermediate);
        let cases: [(&str, String, &str, &[&str], bool); 8] = [
            ("valid chain", full(&good), &good.root, &["a.test"], true),
            (
                "names compare case-insensitively",
                full(&good),
                &good.root,
                &["A.test"],
                true,
            ),
            (
                "chain ending with the root",
                format!("{}{}", full(&good), good.root),
                &good.root,
                &["a.test"],
                true,
            ),
            (
                "leaf only",
                good.leaf.clone(),
                &good.root,
                &["a.test"],
                false,
            ),
            (
                "wrong root",
                full(&good),
                &good.other_root,
                &["a.test"],
                false,
            ),
            (
                "extra name in the leaf",
                full(&two_names),
                &two_names.root,
                &["a.test"],
                false,
            ),
            (
                "missing name in the leaf",
                full(&good),
                &good.root,
                &["a.test", "b.test"],
                false,
            ),
            (
                "expired leaf",
                full(&expired),
                &expired.root,
                &["a.test"],
                false,
            ),
        ];
        for (case, chain, root, names, ok) in cases {
            let result = verify_pem(chain.as_bytes(), root.as_bytes(), names);
            assert_eq!(result.is_ok(), ok, "{case}: {result:?}");
        }
        Ok(())
    }
}
