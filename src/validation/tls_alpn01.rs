//! tls-alpn-01 (RFC 8737, and RFC 8738 §6 for IP addresses): a TLS handshake on the
//! configured port (443) with ALPN `acme-tls/1` and SNI set to the name, then checks on the
//! self-signed certificate the target presents: a critical id-pe-acmeIdentifier extension
//! holding SHA-256 of the key authorization, and exactly one SAN, the identifier.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use x509_parser::extensions::GeneralName;

use crate::acme::{Identifier, Problem, ProblemType};

use super::resolver::{DnsError, Resolver};

/// The ALPN protocol name of RFC 8737 §6.2.
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";
/// id-pe-acmeIdentifier (RFC 8737 §6.1).
const ACME_IDENTIFIER_OID: &str = "1.3.6.1.5.5.7.1.31";
/// DER header of an OCTET STRING of 32 bytes: the extension's value wraps the SHA-256 digest
/// in one (RFC 8737 §3, `Authorization ::= OCTET STRING (SIZE (32))`).
const DIGEST_OCTET_STRING_HEADER: [u8; 2] = [0x04, 0x20];

/// The TLS client configuration for tls-alpn-01, built once: ALPN `acme-tls/1` only, TLS 1.2
/// or 1.3 (RFC 8737 §4), and a verifier that accepts any certificate (it is self-signed by
/// design) while still checking the handshake signature against it.
pub fn client_config() -> Result<Arc<ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(AnyCertificate {
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![ACME_TLS_ALPN.to_vec()];
    // Every validation is a fresh handshake; resuming an earlier session would skip the
    // certificate.
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// The reverse-DNS name of an address (RFC 8738 §6, RFC 1035 §3.5, RFC 3596 §2.5), used as SNI
/// for IP identifiers: `4.3.2.1.in-addr.arpa`, or 32 nibbles then `ip6.arpa`.
pub fn reverse_dns_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(v6) => {
            let mut name = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                name.push_str(&format!("{:x}.{:x}.", byte & 0x0f, byte >> 4));
            }
            name.push_str("ip6.arpa");
            name
        }
    }
}

pub async fn validate(
    config: &Arc<ClientConfig>,
    resolver: &dyn Resolver,
    port: u16,
    identifier: &Identifier,
    key_authorization: &str,
) -> Result<(), Problem> {
    let (sni, addresses) = match identifier {
        Identifier::Dns(name) if name.starts_with("*.") => {
            return Err(Problem::malformed(
                "tls-alpn-01 cannot validate a wildcard (RFC 8737 §3)",
            ));
        }
        Identifier::Dns(name) => {
            let mut ips = resolver
                .lookup_ip(name)
                .await
                .map_err(|e: DnsError| Problem::new(ProblemType::Dns, e.to_string()))?;
            // IPv4 first, as for http-01: loopback test targets and most servers listen there.
            ips.sort_by_key(IpAddr::is_ipv6);
            (name.clone(), ips)
        }
        Identifier::Ip(ip) => (reverse_dns_name(*ip), vec![*ip]),
    };
    let server_name = ServerName::try_from(sni.clone())
        .map_err(|e| Problem::malformed(format!("{sni:?} cannot be sent as SNI: {e}")))?;
    let (tcp, address) = connect(&addresses, port).await?;
    let tls = TlsConnector::from(config.clone())
        .connect(server_name, tcp)
        .await
        .map_err(|e| {
            Problem::new(
                ProblemType::Tls,
                format!("tls-alpn-01: the TLS handshake with {address} (SNI {sni}) failed: {e}"),
            )
        })?;
    let (_, connection) = tls.get_ref();
    if connection.alpn_protocol() != Some(ACME_TLS_ALPN) {
        let got = connection
            .alpn_protocol()
            .map(|p| format!("{:?}", String::from_utf8_lossy(p)))
            .unwrap_or_else(|| "no protocol".to_owned());
        return Err(Problem::new(
            ProblemType::Tls,
            format!("tls-alpn-01: {address} negotiated {got}, not \"acme-tls/1\" (RFC 8737 §3)"),
        ));
    }
    let leaf = connection
        .peer_certificates()
        .and_then(|chain| chain.first())
        .ok_or_else(|| {
            Problem::new(
                ProblemType::Tls,
                format!("tls-alpn-01: {address} presented no certificate"),
            )
        })?;
    check_certificate(leaf.as_ref(), identifier, key_authorization)
        .map_err(|p| Problem::new(p.kind, format!("tls-alpn-01 at {address}: {}", p.detail)))
}

/// Connects to the first address that accepts; the error names the last failure.
async fn connect(addresses: &[IpAddr], port: u16) -> Result<(TcpStream, SocketAddr), Problem> {
    let mut last = None;
    for ip in addresses {
        let address = SocketAddr::new(*ip, port);
        match TcpStream::connect(address).await {
            Ok(stream) => return Ok((stream, address)),
            Err(e) => last = Some((address, e)),
        }
    }
    let (address, error) = match last {
        Some(last) => last,
        None => return Err(Problem::new(ProblemType::Dns, "no address to connect to")),
    };
    let what = match error.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        std::io::ErrorKind::ConnectionReset => "connection reset".to_owned(),
        std::io::ErrorKind::TimedOut => "timeout".to_owned(),
        _ => error.to_string(),
    };
    Err(Problem::new(
        ProblemType::Connection,
        format!("tls-alpn-01: connecting to {address}: {what}"),
    ))
}

/// RFC 8737 §3 on the presented certificate: exactly one SAN, equal to the identifier, and a
/// critical acmeIdentifier extension with SHA-256 of the key authorization.
#[expect(
    clippy::result_large_err,
    reason = "one problem per validation, returned as is to the caller that stores it"
)]
pub(crate) fn check_certificate(
    der: &[u8],
    identifier: &Identifier,
    key_authorization: &str,
) -> Result<(), Problem> {
    let incorrect = |detail: String| Problem::new(ProblemType::IncorrectResponse, detail);
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| incorrect(format!("the certificate does not parse: {e}")))?;
    let san = cert
        .subject_alternative_name()
        .map_err(|e| incorrect(format!("the subjectAltName does not parse: {e}")))?
        .ok_or_else(|| {
            incorrect(format!(
                "the certificate has no subjectAltName; expected {}",
                identifier.value()
            ))
        })?;
    let names: Vec<String> = san.value.general_names.iter().map(describe).collect();
    match san.value.general_names.as_slice() {
        [only] if matches_identifier(only, identifier) => {}
        [only] => {
            return Err(incorrect(format!(
                "the certificate's subjectAltName is {}; expected {}",
                describe(only),
                identifier.value()
            )));
        }
        _ => {
            return Err(incorrect(format!(
                "the certificate has {} subjectAltNames ({}); RFC 8737 §3 requires exactly one, {}",
                names.len(),
                names.join(", "),
                identifier.value()
            )));
        }
    }
    let extension = cert
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == ACME_IDENTIFIER_OID)
        .ok_or_else(|| {
            Problem::unauthorized(format!(
                "the certificate has no acmeIdentifier extension ({ACME_IDENTIFIER_OID})"
            ))
        })?;
    if !extension.critical {
        return Err(incorrect(
            "the acmeIdentifier extension is not marked critical (RFC 8737 §3)".to_owned(),
        ));
    }
    let digest =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key_authorization.as_bytes());
    let mut expected = DIGEST_OCTET_STRING_HEADER.to_vec();
    expected.extend_from_slice(digest.as_ref());
    if extension.value != expected.as_slice() {
        return Err(incorrect(format!(
            "the acmeIdentifier extension holds {}; expected an OCTET STRING of SHA-256 of the \
             key authorization, {}",
            hex(extension.value),
            hex(&expected)
        )));
    }
    Ok(())
}

fn matches_identifier(name: &GeneralName<'_>, identifier: &Identifier) -> bool {
    match (name, identifier) {
        (GeneralName::DNSName(dns), Identifier::Dns(want)) => dns.eq_ignore_ascii_case(want),
        (GeneralName::IPAddress(bytes), Identifier::Ip(IpAddr::V4(want))) => {
            *bytes == want.octets().as_slice()
        }
        (GeneralName::IPAddress(bytes), Identifier::Ip(IpAddr::V6(want))) => {
            *bytes == want.octets().as_slice()
        }
        _ => false,
    }
}

fn describe(name: &GeneralName<'_>) -> String {
    match name {
        GeneralName::DNSName(dns) => format!("DNS:{dns}"),
        GeneralName::IPAddress(bytes) => match <[u8; 4]>::try_from(*bytes) {
            Ok(v4) => format!("IP:{}", IpAddr::from(v4)),
            Err(_) => match <[u8; 16]>::try_from(*bytes) {
                Ok(v6) => format!("IP:{}", IpAddr::from(v6)),
                Err(_) => format!("IP:{}", hex(bytes)),
            },
        },
        other => other.to_string(),
    }
}

/// Lower-case hex, at most 80 bytes of input, for problem details.
fn hex(bytes: &[u8]) -> String {
    const MAX_BYTES: usize = 80;
    let mut text: String = bytes
        .iter()
        .take(MAX_BYTES)
        .map(|b| format!("{b:02x}"))
        .collect();
    if bytes.len() > MAX_BYTES {
        text.push('…');
    }
    text
}

/// Accepts every certificate: a tls-alpn-01 certificate is self-signed and proves control
/// through its extension, not through a chain. The handshake signature is still verified
/// against the certificate's key, so the target must hold that key.
#[derive(Debug)]
struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    // rustls's `verify_tls12_signature` / `verify_tls13_signature` parse the certificate with
    // webpki, which refuses the critical acmeIdentifier extension it does not know. So the key
    // is taken out of the certificate here and the signature checked against the raw key with
    // the provider's algorithms.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let (_, public_key) = public_key(cert)?;
        // RFC 5246 §7.4.1.4.1: the scheme must be one we advertised.
        let candidates = self
            .algorithms
            .mapping
            .iter()
            .find(|(scheme, _)| *scheme == dss.scheme)
            .map(|(_, algorithms)| *algorithms)
            .ok_or(rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme)?;
        if candidates.iter().any(|alg| {
            alg.verify_signature(&public_key, message, dss.signature())
                .is_ok()
        }) {
            Ok(HandshakeSignatureValid::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::BadSignature,
            ))
        }
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let (spki, _) = public_key(cert)?;
        rustls::crypto::verify_tls13_signature_with_raw_key(
            message,
            &SubjectPublicKeyInfoDer::from(spki.as_slice()),
            dss,
            &self.algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The certificate's SubjectPublicKeyInfo (DER) and the bare public key inside it.
fn public_key(cert: &CertificateDer<'_>) -> Result<(Vec<u8>, Vec<u8>), rustls::Error> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
    let spki = parsed.public_key();
    Ok((spki.raw.to_vec(), spki.subject_public_key.data.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::FakeResolver;
    use rcgen::{CertificateParams, CustomExtension, KeyPair, SanType};
    use rustls::ServerConfig;
    use rustls::pki_types::PrivateKeyDer;
    use tokio::net::TcpListener;

    const KEY_AUTHORIZATION: &str = "token.thumbprint";

    fn sha256(text: &str) -> Vec<u8> {
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes())
            .as_ref()
            .to_vec()
    }

    /// A tls-alpn-01 certificate and its key, shaped by the arguments.
    fn certificate(
        sans: Vec<SanType>,
        extension: Option<CustomExtension>,
    ) -> (CertificateDer<'static>, KeyPair) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.subject_alt_names = sans;
        params.custom_extensions = extension.into_iter().collect();
        let cert = params.self_signed(&key).unwrap();
        (cert.der().clone(), key)
    }

    fn dns_san(name: &str) -> SanType {
        SanType::DnsName(name.try_into().unwrap())
    }

    fn good_extension() -> Option<CustomExtension> {
        Some(CustomExtension::new_acme_identifier(&sha256(
            KEY_AUTHORIZATION,
        )))
    }

    #[test]
    fn reverse_dns_names() {
        let cases = [
            ("IPv4", "1.2.3.4", "4.3.2.1.in-addr.arpa"),
            ("IPv4 loopback", "127.0.0.1", "1.0.0.127.in-addr.arpa"),
            (
                "IPv6 (RFC 3596 §2.5 example)",
                "4321:0:1:2:3:4:567:89ab",
                "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa",
            ),
        ];
        for (case, ip, want) in cases {
            assert_eq!(reverse_dns_name(ip.parse().unwrap()), want, "{case}");
        }
        // rustls accepts them as SNI.
        for ip in ["1.2.3.4", "2001:db8::1"] {
            let name = reverse_dns_name(ip.parse().unwrap());
            assert!(ServerName::try_from(name.clone()).is_ok(), "{name}");
        }
    }

    /// Name, SANs, extension, identifier, expected problem.
    type Case<'a> = (
        &'static str,
        Vec<SanType>,
        Option<CustomExtension>,
        &'a Identifier,
        Option<ProblemType>,
    );

    #[test]
    fn certificate_checks() {
        let name = Identifier::parse("dns", "a.test").unwrap();
        let ip = Identifier::parse("ip", "192.0.2.1").unwrap();
        let ip6 = Identifier::parse("ip", "2001:db8::1").unwrap();
        let mut not_critical = CustomExtension::new_acme_identifier(&sha256(KEY_AUTHORIZATION));
        not_critical.set_criticality(false);
        let ip_san = |text: &str| SanType::IpAddress(text.parse().unwrap());
        let cases: Vec<Case<'_>> = vec![
            (
                "right DNS certificate",
                vec![dns_san("a.test")],
                good_extension(),
                &name,
                None,
            ),
            (
                "SAN compares case-insensitively",
                vec![dns_san("A.Test")],
                good_extension(),
                &name,
                None,
            ),
            (
                "right IPv4 certificate",
                vec![ip_san("192.0.2.1")],
                good_extension(),
                &ip,
                None,
            ),
            (
                "right IPv6 certificate",
                vec![ip_san("2001:db8::1")],
                good_extension(),
                &ip6,
                None,
            ),
            (
                "no acmeIdentifier extension",
                vec![dns_san("a.test")],
                None,
                &name,
                Some(ProblemType::Unauthorized),
            ),
            (
                "extension not critical",
                vec![dns_san("a.test")],
                Some(not_critical),
                &name,
                Some(ProblemType::IncorrectResponse),
            ),
            (
                "digest of another key authorization",
                vec![dns_san("a.test")],
                Some(CustomExtension::new_acme_identifier(&sha256("other"))),
                &name,
                Some(ProblemType::IncorrectResponse),
            ),
            (
                "two SANs",
                vec![dns_san("a.test"), dns_san("b.test")],
                good_extension(),
                &name,
                Some(ProblemType::IncorrectResponse),
            ),
            (
                "another name",
                vec![dns_san("b.test")],
                good_extension(),
                &name,
                Some(ProblemType::IncorrectResponse),
            ),
            (
                "a DNS SAN for an IP identifier",
                vec![dns_san("a.test")],
                good_extension(),
                &ip,
                Some(ProblemType::IncorrectResponse),
            ),
            (
                "another address",
                vec![ip_san("192.0.2.2")],
                good_extension(),
                &ip,
                Some(ProblemType::IncorrectResponse),
            ),
            (
                "no SAN",
                vec![],
                good_extension(),
                &name,
                Some(ProblemType::IncorrectResponse),
            ),
        ];
        for (case, sans, extension, identifier, want) in cases {
            let (der, _) = certificate(sans, extension);
            let got = check_certificate(&der, identifier, KEY_AUTHORIZATION).err();
            assert_eq!(got.as_ref().map(|p| p.kind), want, "{case}: {got:?}");
        }
    }

    #[test]
    fn problem_details_are_precise() {
        let name = Identifier::parse("dns", "a.test").unwrap();
        let (der, _) = certificate(vec![dns_san("a.test"), dns_san("b.test")], good_extension());
        let p = check_certificate(&der, &name, KEY_AUTHORIZATION).unwrap_err();
        assert!(
            p.detail
                .contains("2 subjectAltNames (DNS:a.test, DNS:b.test)"),
            "{p}"
        );
        let (der, _) = certificate(
            vec![dns_san("a.test")],
            Some(CustomExtension::new_acme_identifier(&sha256("other"))),
        );
        let p = check_certificate(&der, &name, KEY_AUTHORIZATION).unwrap_err();
        assert!(p.detail.contains(&hex(&sha256("other"))), "{p}");
        assert!(p.detail.contains(&hex(&sha256(KEY_AUTHORIZATION))), "{p}");
    }

    /// A TLS server on loopback presenting `cert`, offering `alpn`; returns its port.
    async fn serve(cert: CertificateDer<'static>, key: KeyPair, alpn: Vec<Vec<u8>>) -> u16 {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        // `with_single_cert` parses the certificate with webpki, which refuses the critical
        // acmeIdentifier extension; a resolver with a ready-made CertifiedKey does not.
        let signing_key = provider
            .key_provider
            .load_private_key(PrivateKeyDer::try_from(key.serialize_der()).unwrap())
            .unwrap();
        let certified = rustls::sign::CertifiedKey::new(vec![cert], signing_key);
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)));
        config.alpn_protocols = alpn;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(socket).await {
                        use tokio::io::AsyncReadExt;
                        let mut buf = [0u8; 16];
                        let _ = tls.read(&mut buf).await;
                    }
                });
            }
        });
        port
    }

    async fn run(port: u16, identifier: &str) -> Result<(), Problem> {
        let resolver = FakeResolver::new();
        resolver.insert("a.test", vec!["127.0.0.1".parse().unwrap()]);
        let identifier = if identifier.parse::<IpAddr>().is_ok() {
            Identifier::parse("ip", identifier).unwrap()
        } else {
            Identifier::parse("dns", identifier).unwrap()
        };
        validate(
            &client_config().unwrap(),
            &*resolver,
            port,
            &identifier,
            KEY_AUTHORIZATION,
        )
        .await
    }

    #[tokio::test]
    async fn handshakes() {
        let acme = vec![ACME_TLS_ALPN.to_vec()];
        let (cert, key) = certificate(vec![dns_san("a.test")], good_extension());
        let good = serve(cert, key, acme.clone()).await;
        let (cert, key) = certificate(vec![dns_san("a.test")], good_extension());
        let no_alpn = serve(cert, key, vec![b"h2".to_vec()]).await;
        let (cert, key) = certificate(
            vec![SanType::IpAddress("127.0.0.1".parse().unwrap())],
            good_extension(),
        );
        let ip = serve(cert, key, acme.clone()).await;
        let (cert, key) = certificate(vec![dns_san("a.test")], None);
        let no_extension = serve(cert, key, acme).await;
        let refused = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cases = [
            ("valid certificate and ALPN", good, "a.test", None),
            ("IP identifier", ip, "127.0.0.1", None),
            (
                "server refuses acme-tls/1",
                no_alpn,
                "a.test",
                Some(ProblemType::Tls),
            ),
            (
                "no acmeIdentifier",
                no_extension,
                "a.test",
                Some(ProblemType::Unauthorized),
            ),
            (
                "connection refused",
                refused,
                "a.test",
                Some(ProblemType::Connection),
            ),
            ("NXDOMAIN", good, "missing.test", Some(ProblemType::Dns)),
        ];
        for (case, port, identifier, want) in cases {
            let got = run(port, identifier).await.err();
            assert_eq!(got.as_ref().map(|p| p.kind), want, "{case}: {got:?}");
        }
    }
}
