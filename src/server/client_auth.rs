//! The HTTPS listener's client certificates: asked of every client, required of none (ACME
//! clients present none), and verified against Mayfly's own root, so that `POST /v1/renew` can
//! rely on the chain axum-server hands to handlers (`TlsInfo::peer_certificates`).
//!
//! Two departures from rustls's `WebPkiClientVerifier`, both because the certificates are
//! Mayfly's own leaves:
//! - a leaf for TLS servers only (extendedKeyUsage serverAuth, the ACME profiles' default) is
//!   accepted as well as a clientAuth one: renewing a server's certificate with itself is the
//!   point;
//! - an expired leaf is verified as of its notAfter, so that the authority can apply the
//!   provisioner's `allow_renewal_after_expiry` (it refuses expired certificates otherwise).
//!
//! The handshake still proves that the client holds the leaf's private key, and the authority
//! still checks that the leaf is one it stored and did not revoke.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rustls::client::verify_server_cert_signed_by_trust_anchor;
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error, RootCertStore,
    SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use x509_parser::prelude::{FromDer, X509Certificate};

#[derive(Debug)]
pub struct ClientCertificates {
    /// rustls's verifier for clientAuth leaves, with anonymous clients allowed.
    client: Arc<dyn ClientCertVerifier>,
    roots: Arc<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertificates {
    /// Trusts the certificates of `root_pem` (Mayfly's root).
    pub fn new(root_pem: &str) -> anyhow::Result<Arc<ClientCertificates>> {
        let provider = rustls::crypto::CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(root_pem.as_bytes()) {
            roots
                .add(cert.context("reading the root certificate")?)
                .context("the root certificate is not a trust anchor")?;
        }
        let roots = Arc::new(roots);
        let client = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .allow_unauthenticated()
            .build()
            .context("building the client certificate verifier")?;
        Ok(Arc::new(ClientCertificates {
            client,
            roots,
            algorithms: provider.signature_verification_algorithms,
        }))
    }
}

impl ClientCertVerifier for ClientCertificates {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.client.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let at = match not_after(end_entity) {
            Some(not_after) if not_after.as_secs() < now.as_secs() => not_after,
            _ => now,
        };
        match self
            .client
            .verify_client_cert(end_entity, intermediates, at)
        {
            Err(Error::InvalidCertificate(
                CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. },
            )) => {
                let cert = ParsedCertificate::try_from(end_entity)?;
                verify_server_cert_signed_by_trust_anchor(
                    &cert,
                    &self.roots,
                    intermediates,
                    at,
                    self.algorithms.all,
                )?;
                Ok(ClientCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The leaf's notAfter; `None` if it does not parse (the verifier then refuses it).
fn not_after(der: &CertificateDer<'_>) -> Option<UnixTime> {
    let (_, cert) = X509Certificate::from_der(der.as_ref()).ok()?;
    let secs = u64::try_from(cert.validity().not_after.timestamp()).ok()?;
    Some(UnixTime::since_unix_epoch(Duration::from_secs(secs)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    use time::OffsetDateTime;

    /// A root (PEM) and its issuer, for leaves.
    fn root() -> (String, Issuer<'static, KeyPair>) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), Issuer::new(params, key))
    }

    /// A leaf for `name` with `purposes`, valid from a day ago until `not_after`.
    fn leaf(
        issuer: &Issuer<'_, KeyPair>,
        purposes: Vec<ExtendedKeyUsagePurpose>,
        not_after: OffsetDateTime,
    ) -> CertificateDer<'static> {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["leaf.test".to_owned()]).unwrap();
        params.extended_key_usages = purposes;
        params.not_before = OffsetDateTime::now_utc() - time::Duration::days(1);
        params.not_after = not_after;
        params.signed_by(&key, issuer).unwrap().der().clone()
    }

    fn verify(root_pem: &str, leaf: &CertificateDer<'_>) -> Result<ClientCertVerified, Error> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let verifier = ClientCertificates::new(root_pem).unwrap();
        verifier.verify_client_cert(leaf, &[], UnixTime::now())
    }

    #[test]
    fn mayfly_leaves_are_accepted_and_others_refused() {
        use ExtendedKeyUsagePurpose::{ClientAuth, CodeSigning, ServerAuth};
        let (root_pem, issuer) = root();
        let (_, stranger) = root();
        let later = OffsetDateTime::now_utc() + time::Duration::hours(1);
        let earlier = OffsetDateTime::now_utc() - time::Duration::hours(1);
        let cases = [
            ("clientAuth", leaf(&issuer, vec![ClientAuth], later), true),
            (
                "serverAuth only",
                leaf(&issuer, vec![ServerAuth], later),
                true,
            ),
            ("no extendedKeyUsage", leaf(&issuer, vec![], later), true),
            (
                "expired: checked as of its notAfter",
                leaf(&issuer, vec![ServerAuth], earlier),
                true,
            ),
            (
                "codeSigning only",
                leaf(&issuer, vec![CodeSigning], later),
                false,
            ),
            (
                "another CA's",
                leaf(&stranger, vec![ClientAuth], later),
                false,
            ),
        ];
        for (name, der, ok) in cases {
            let result = verify(&root_pem, &der);
            assert_eq!(result.is_ok(), ok, "{name}: {result:?}");
        }
        let verifier = ClientCertificates::new(&root_pem).unwrap();
        assert!(verifier.offer_client_auth());
        assert!(!verifier.client_auth_mandatory());
    }
}
