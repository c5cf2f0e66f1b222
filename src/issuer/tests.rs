//! Tests of the issuer as a whole: CA creation and loading, keys at rest, the leaf profile and
//! the server certificate.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use rcgen::{CertificateParams, DistinguishedName, DnType, SanType};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::OID_X509_EXT_BASIC_CONSTRAINTS;

use super::*;

const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Issuer>();
};

fn options(key_type: KeyType) -> CaOptions {
    CaOptions {
        key_type,
        root_common_name: "Mayfly Test Root".to_owned(),
        intermediate_common_name: "Mayfly Test Intermediate".to_owned(),
        root_validity: Duration::days(3650),
        intermediate_validity: Duration::days(365),
    }
}

fn new_ca(key_type: KeyType, passphrase: Option<&str>) -> (tempfile::TempDir, Issuer) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert_eq!(
        init_ca(&data, &options(key_type), passphrase).unwrap(),
        InitOutcome::Created
    );
    let issuer = Issuer::load(&data, passphrase).unwrap();
    (dir, issuer)
}

fn data_dir(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("data")
}

fn pem_ders(pem: &str) -> Vec<Vec<u8>> {
    Pem::iter_from_buffer(pem.as_bytes())
        .map(|p| p.unwrap().contents)
        .collect()
}

fn parse(der: &[u8]) -> X509Certificate<'_> {
    X509Certificate::from_der(der).unwrap().1
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn subject_key_id(cert: &X509Certificate<'_>) -> Vec<u8> {
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(ski) => Some(ski.0.to_vec()),
            _ => None,
        })
        .expect("SKI")
}

fn authority_key_id(cert: &X509Certificate<'_>) -> Vec<u8> {
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                aki.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => None,
        })
        .expect("AKI")
}

fn csr(key: &KeyPair, common_name: Option<&str>) -> Vec<u8> {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    if let Some(cn) = common_name {
        params.distinguished_name.push(DnType::CommonName, cn);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Should Not Be Copied");
    }
    params.subject_alt_names = vec![SanType::DnsName("ignored.example".try_into().unwrap())];
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.serialize_request(key).unwrap().der().to_vec()
}

fn id(kind: &str, value: &str) -> Identifier {
    Identifier::parse(kind, value).unwrap()
}

fn request(csr_der: Vec<u8>, identifiers: Vec<Identifier>) -> IssuanceRequest {
    // Whole seconds plus a fraction, to check that the fraction is dropped consistently.
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let not_before =
        OffsetDateTime::from_unix_timestamp(now).unwrap() + Duration::milliseconds(750);
    IssuanceRequest {
        csr_der,
        identifiers,
        emails: Vec::new(),
        not_before,
        not_after: not_before + Duration::hours(24),
        crl_url: None,
        ca_issuers_url: None,
        leaf: LeafProfile::default(),
    }
}

fn issue(issuer: &Issuer, request: IssuanceRequest) -> IssuedCertificate {
    issuer.issue(issuer.prepare(request).unwrap()).unwrap()
}

/// Checks the root and intermediate profile and the signatures between them.
fn check_hierarchy(issuer: &Issuer) {
    let root_der = single_certificate(Path::new("root"), issuer.root_pem()).unwrap();
    let root = parse(&root_der);
    let intermediate = parse(issuer.intermediate_der());
    root.verify_signature(None).unwrap();
    intermediate
        .verify_signature(Some(root.public_key()))
        .unwrap();
    for (name, cert, path_len, key_usage) in [
        ("root", &root, 1, "Key Cert Sign, CRL Sign"),
        (
            "intermediate",
            &intermediate,
            0,
            "Digital Signature, Key Cert Sign, CRL Sign",
        ),
    ] {
        let bc = cert.basic_constraints().unwrap().unwrap();
        assert!(bc.critical, "{name}");
        assert!(bc.value.ca, "{name}");
        assert_eq!(bc.value.path_len_constraint, Some(path_len), "{name}");
        assert_eq!(
            cert.key_usage().unwrap().unwrap().value.to_string(),
            key_usage,
            "{name}"
        );
        assert_eq!(cert.raw_serial().len(), 16, "{name}");
        assert!(!subject_key_id(cert).is_empty(), "{name}");
    }
    assert_eq!(authority_key_id(&intermediate), subject_key_id(&root));
    assert_eq!(
        root.subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "Mayfly Test Root"
    );
    assert_eq!(intermediate.issuer(), root.subject());
    let backdate = OffsetDateTime::now_utc() - root.validity().not_before.to_datetime();
    assert!(backdate >= Duration::seconds(59) && backdate < Duration::minutes(5));
}

#[test]
fn init_writes_files_with_modes_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested/data");
    let opts = options(KeyType::P256);
    assert_eq!(init_ca(&data, &opts, None).unwrap(), InitOutcome::Created);
    let paths = CaPaths::new(&data);
    let files = [
        (&paths.root_cert, 0o644),
        (&paths.intermediate_cert, 0o644),
        (&paths.root_key, 0o600),
        (&paths.intermediate_key, 0o600),
    ];
    let before: Vec<_> = files
        .iter()
        .map(|(path, want)| {
            assert_eq!(mode(path), *want, "{}", path.display());
            (
                fs::read(path).unwrap(),
                fs::metadata(path).unwrap().modified().unwrap(),
            )
        })
        .collect();
    assert!(
        fs::read_to_string(&paths.root_key)
            .unwrap()
            .contains("BEGIN PRIVATE KEY")
    );

    assert_eq!(
        init_ca(&data, &opts, Some("other")).unwrap(),
        InitOutcome::Existing
    );
    let after: Vec<_> = files
        .iter()
        .map(|(path, _)| {
            (
                fs::read(path).unwrap(),
                fs::metadata(path).unwrap().modified().unwrap(),
            )
        })
        .collect();
    assert_eq!(before, after);
    // Nothing but the four files (no temporary leftovers).
    assert_eq!(fs::read_dir(&data).unwrap().count(), 4);
}

#[test]
fn init_refuses_to_replace_a_root_without_its_key() {
    let (dir, _) = new_ca(KeyType::P256, None);
    let paths = CaPaths::new(&data_dir(&dir));
    fs::remove_file(&paths.root_key).unwrap();
    let err = init_ca(&data_dir(&dir), &options(KeyType::P256), None).unwrap_err();
    assert!(matches!(err, IssuerError::File { path, .. } if path == paths.root_key));
}

#[test]
fn load_round_trip_per_key_type() {
    for key_type in [KeyType::P256, KeyType::P384, KeyType::Rsa3072] {
        let (dir, issuer) = new_ca(key_type, None);
        let paths = CaPaths::new(&data_dir(&dir));
        assert_eq!(
            issuer.root_pem(),
            fs::read_to_string(&paths.root_cert).unwrap()
        );
        assert_eq!(
            issuer.intermediate_pem(),
            fs::read_to_string(&paths.intermediate_cert).unwrap()
        );
        assert_eq!(issuer.root_fingerprint().len(), 64);
        check_hierarchy(&issuer);
        // The loaded issuer signs leaves that chain to the root.
        let key = KeyPair::generate().unwrap();
        let issued = issue(
            &issuer,
            request(csr(&key, None), vec![id("dns", "a.example")]),
        );
        let intermediate = parse(issuer.intermediate_der());
        parse(&issued.leaf_der)
            .verify_signature(Some(intermediate.public_key()))
            .unwrap_or_else(|e| panic!("{key_type:?}: {e}"));
    }
}

#[test]
fn encrypted_keys() {
    let (dir, issuer) = new_ca(KeyType::P256, Some("s3cret"));
    check_hierarchy(&issuer);
    let data = data_dir(&dir);
    let paths = CaPaths::new(&data);
    for path in [&paths.root_key, &paths.intermediate_key] {
        let text = fs::read_to_string(path).unwrap();
        assert!(text.starts_with("-----BEGIN MAYFLY ENCRYPTED PRIVATE KEY-----"));
        assert!(text.contains("\"memory_kib\": 19456"));
        assert_eq!(mode(path), 0o600);
    }
    type Check = fn(&IssuerError) -> bool;
    let cases: Vec<(&str, Option<&str>, Check)> = vec![
        ("wrong passphrase", Some("wrong"), |e| {
            matches!(e, IssuerError::WrongPassphrase(_))
        }),
        ("no passphrase", None, |e| {
            matches!(e, IssuerError::PassphraseRequired(_))
        }),
        ("empty passphrase", Some(""), |e| {
            matches!(e, IssuerError::PassphraseRequired(_))
        }),
    ];
    for (name, passphrase, expected) in cases {
        let err = Issuer::load(&data, passphrase).err();
        assert!(err.as_ref().is_some_and(expected), "{name}: {err:?}");
        if let Some(IssuerError::WrongPassphrase(path) | IssuerError::PassphraseRequired(path)) =
            &err
        {
            assert_eq!(path, &paths.intermediate_key, "{name}");
        }
    }
}

#[test]
fn plain_keys_load_with_a_passphrase_given() {
    let (dir, _) = new_ca(KeyType::P256, None);
    Issuer::load(&data_dir(&dir), Some("unused")).unwrap();
}

#[test]
fn corrupt_or_mismatched_files_are_errors() {
    let other_key = KeyPair::generate().unwrap().serialize_pem();
    type FileOf = fn(&CaPaths) -> &PathBuf;
    let cases: Vec<(&str, FileOf, Vec<u8>)> = vec![
        ("garbage key", |p| &p.intermediate_key, b"garbage".to_vec()),
        (
            "binary key",
            |p| &p.intermediate_key,
            vec![0xff, 0x00, 0x80],
        ),
        (
            "key of another CA",
            |p| &p.intermediate_key,
            other_key.into_bytes(),
        ),
        (
            "garbage intermediate",
            |p| &p.intermediate_cert,
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_vec(),
        ),
        ("empty root", |p| &p.root_cert, Vec::new()),
    ];
    for (name, file, contents) in cases {
        let (dir, _) = new_ca(KeyType::P256, None);
        let paths = CaPaths::new(&data_dir(&dir));
        fs::write(file(&paths), contents).unwrap();
        let err = Issuer::load(&data_dir(&dir), None).err();
        assert!(
            matches!(&err, Some(IssuerError::File { path, .. }) if path == file(&paths)),
            "{name}: {err:?}"
        );
    }
    // An intermediate from another CA does not chain to this root.
    let (dir_a, _) = new_ca(KeyType::P256, None);
    let (dir_b, _) = new_ca(KeyType::P256, None);
    let (a, b) = (
        CaPaths::new(&data_dir(&dir_a)),
        CaPaths::new(&data_dir(&dir_b)),
    );
    fs::copy(&b.intermediate_cert, &a.intermediate_cert).unwrap();
    fs::copy(&b.intermediate_key, &a.intermediate_key).unwrap();
    let err = Issuer::load(&data_dir(&dir_a), None).err();
    assert!(matches!(err, Some(IssuerError::File { .. })), "{err:?}");
}

#[test]
fn issued_leaf_profile() {
    let (_dir, issuer) = new_ca(KeyType::P256, None);
    let key = KeyPair::generate().unwrap();
    let identifiers = vec![
        id("dns", "www.example.com"),
        id("ip", "192.0.2.1"),
        id("dns", "*.example.com"),
        id("ip", "2001:db8::1"),
    ];
    let req = request(csr(&key, Some("evil.example")), identifiers.clone());
    let (want_nb, want_na) = (req.not_before, req.not_after);
    let issued = issue(&issuer, req);

    let chain = pem_ders(&issued.chain_pem);
    assert_eq!(
        chain,
        vec![issued.leaf_der.clone(), issuer.intermediate_der().to_vec()]
    );
    let leaf = parse(&issued.leaf_der);
    let intermediate = parse(issuer.intermediate_der());
    leaf.verify_signature(Some(intermediate.public_key()))
        .unwrap();

    // Times: as requested, to the second.
    assert_eq!(issued.not_before.unix_timestamp(), want_nb.unix_timestamp());
    assert_eq!(issued.not_after.unix_timestamp(), want_na.unix_timestamp());
    assert_eq!(leaf.validity().not_before.to_datetime(), issued.not_before);
    assert_eq!(leaf.validity().not_after.to_datetime(), issued.not_after);

    assert_eq!(certificate_identifiers(&leaf), identifiers);
    let names = &leaf
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names;
    assert_eq!(names.len(), identifiers.len());
    assert!(matches!(names[0], GeneralName::DNSName("www.example.com")));

    // Subject: only the CN from the first DNS identifier.
    assert_eq!(leaf.subject().to_string(), "CN=www.example.com");
    assert_eq!(leaf.issuer(), intermediate.subject());
    assert_eq!(
        leaf.public_key().raw,
        rcgen::PublicKeyData::subject_public_key_info(&key)
    );

    let bc = leaf.basic_constraints().unwrap().unwrap();
    assert!(bc.critical && !bc.value.ca);
    let eku = leaf.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && !eku.client_auth && eku.other.is_empty());
    assert_eq!(
        leaf.key_usage().unwrap().unwrap().value.to_string(),
        "Digital Signature"
    );
    assert_eq!(authority_key_id(&leaf), subject_key_id(&intermediate));
    assert!(!subject_key_id(&leaf).is_empty());
    let extension_count = leaf
        .extensions()
        .iter()
        .filter(|e| e.oid == OID_X509_EXT_BASIC_CONSTRAINTS)
        .count();
    assert_eq!(extension_count, 1);

    // The serial: the convention, and what x509-parser prints for the certificate.
    assert_eq!(issued.serial, serial_hex(leaf.raw_serial()));
    assert_eq!(issued.serial, leaf.serial.to_str_radix(16));
    assert_eq!(issued.serial.len(), 32);
    let again = issue(
        &issuer,
        request(csr(&key, None), vec![id("dns", "www.example.com")]),
    );
    assert_ne!(again.serial, issued.serial);
}

#[test]
fn common_name_rules() {
    let (_dir, issuer) = new_ca(KeyType::P256, None);
    let key = KeyPair::generate().unwrap();
    let long = format!("{}.example.com", "a".repeat(60));
    let cases = [
        (
            "first DNS name",
            vec![id("ip", "192.0.2.1"), id("dns", "b.example")],
            "CN=b.example",
        ),
        ("IP only", vec![id("ip", "192.0.2.1")], ""),
        (
            "first DNS name too long",
            vec![id("dns", &long), id("dns", "short.example")],
            "",
        ),
    ];
    for (name, identifiers, want) in cases {
        let issued = issue(
            &issuer,
            request(csr(&key, Some("cn.example")), identifiers.clone()),
        );
        let leaf = parse(&issued.leaf_der);
        assert_eq!(leaf.subject().to_string(), want, "{name}");
        assert_eq!(certificate_identifiers(&leaf), identifiers, "{name}");
        if want.is_empty() {
            // RFC 5280 §4.2.1.6: with an empty subject the SAN must be critical.
            let san = leaf.subject_alternative_name().unwrap().unwrap();
            assert!(san.critical, "{name}");
        }
    }
}

#[test]
fn rsa_subject_keys_get_key_encipherment() {
    let (_dir, issuer) = new_ca(KeyType::P256, None);
    let key = KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).unwrap();
    let issued = issue(
        &issuer,
        request(csr(&key, None), vec![id("dns", "rsa.example")]),
    );
    let leaf = parse(&issued.leaf_der);
    assert_eq!(
        leaf.key_usage().unwrap().unwrap().value.to_string(),
        "Digital Signature, Key Encipherment"
    );
}

/// The profile's key usages and CN choice reach the leaf.
#[test]
fn leaf_profile_sets_key_usage_extended_key_usage_and_common_name() {
    use crate::policy::validators::{KeyUsageBit as K, Purpose as E};
    let (_dir, issuer) = new_ca(KeyType::P256, None);
    let key = KeyPair::generate().unwrap();
    let cases = [
        (
            "server",
            vec![K::DigitalSignature],
            vec![E::ServerAuth],
            true,
            (true, false),
            "Digital Signature",
            "CN=p.example",
        ),
        (
            "client",
            vec![K::DigitalSignature],
            vec![E::ClientAuth],
            true,
            (false, true),
            "Digital Signature",
            "CN=p.example",
        ),
        (
            "both, no CN",
            vec![K::DigitalSignature, K::KeyAgreement],
            vec![E::ServerAuth, E::ClientAuth],
            false,
            (true, true),
            "Digital Signature, Key Agreement",
            "",
        ),
    ];
    for (name, key_usage, extended_key_usage, include_common_name, (server, client), ku, subject) in
        cases
    {
        let leaf_profile = LeafProfile {
            key_usage,
            extended_key_usage,
            common_name: if include_common_name {
                LeafCommonName::FirstDnsName
            } else {
                LeafCommonName::None
            },
        };
        let issued = issue(
            &issuer,
            IssuanceRequest {
                leaf: leaf_profile,
                ..request(csr(&key, None), vec![id("dns", "p.example")])
            },
        );
        let leaf = parse(&issued.leaf_der);
        let eku = leaf.extended_key_usage().unwrap().unwrap().value;
        assert_eq!(
            (eku.server_auth, eku.client_auth),
            (server, client),
            "{name}"
        );
        assert!(eku.other.is_empty(), "{name}");
        assert_eq!(
            leaf.key_usage().unwrap().unwrap().value.to_string(),
            ku,
            "{name}"
        );
        assert_eq!(leaf.subject().to_string(), subject, "{name}");
    }
}

#[test]
fn rsa_key_encipherment_is_not_repeated_when_the_profile_lists_it() {
    use crate::policy::validators::KeyUsageBit as K;
    let (_dir, issuer) = new_ca(KeyType::P256, None);
    let key = KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).unwrap();
    let leaf_profile = LeafProfile {
        key_usage: vec![K::DigitalSignature, K::KeyEncipherment],
        ..LeafProfile::default()
    };
    let issued = issue(
        &issuer,
        IssuanceRequest {
            leaf: leaf_profile,
            ..request(csr(&key, None), vec![id("dns", "rsa.example")])
        },
    );
    let leaf = parse(&issued.leaf_der);
    assert_eq!(
        leaf.key_usage().unwrap().unwrap().value.to_string(),
        "Digital Signature, Key Encipherment"
    );
}

#[test]
fn prepare_refuses_bad_requests() {
    let (_dir, issuer) = new_ca(KeyType::P256, None);
    let key = KeyPair::generate().unwrap();
    let good = || request(csr(&key, None), vec![id("dns", "a.example")]);
    let cases: Vec<(&str, IssuanceRequest)> = vec![
        (
            "no identifiers",
            IssuanceRequest {
                identifiers: vec![],
                ..good()
            },
        ),
        ("empty window", {
            let r = good();
            IssuanceRequest {
                not_after: r.not_before,
                ..r
            }
        }),
        ("window shorter than a second", {
            let r = good();
            IssuanceRequest {
                not_after: r.not_before + Duration::milliseconds(100),
                ..r
            }
        }),
        ("reversed window", {
            let r = good();
            IssuanceRequest {
                not_after: r.not_before - Duration::hours(1),
                ..r
            }
        }),
        ("outlives the intermediate", {
            let r = good();
            IssuanceRequest {
                not_after: issuer.intermediate_not_after() + Duration::seconds(1),
                ..r
            }
        }),
        (
            "CSR garbage",
            IssuanceRequest {
                csr_der: b"nope".to_vec(),
                ..good()
            },
        ),
    ];
    for (name, req) in cases {
        let err = issuer.prepare(req).err();
        assert!(
            matches!(err, Some(IssuerError::Request(_))),
            "{name}: {err:?}"
        );
    }
}

#[test]
fn server_certificate_is_reused_and_reissued() {
    let (dir, issuer) = new_ca(KeyType::P256, None);
    let data = data_dir(&dir);
    let paths = CaPaths::new(&data);
    let now = OffsetDateTime::now_utc();
    let hostnames = vec!["acme.example.org".to_owned(), "10.1.2.3".to_owned()];

    let (chain, key_pem) = issuer
        .ensure_server_certificate(&data, &hostnames, now)
        .unwrap();
    assert_eq!(fs::read_to_string(&paths.server_cert).unwrap(), chain);
    assert_eq!(fs::read_to_string(&paths.server_key).unwrap(), key_pem);
    assert_eq!(mode(&paths.server_key), 0o600);
    assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    let ders = pem_ders(&chain);
    assert_eq!(ders.len(), 2);
    assert_eq!(ders[1], issuer.intermediate_der());
    let leaf = parse(&ders[0]);
    leaf.verify_signature(Some(parse(issuer.intermediate_der()).public_key()))
        .unwrap();
    assert_eq!(
        certificate_identifiers(&leaf),
        vec![
            id("dns", "localhost"),
            id("ip", "127.0.0.1"),
            id("ip", "::1"),
            id("dns", "acme.example.org"),
            id("ip", "10.1.2.3"),
        ]
    );
    assert_eq!(leaf.subject().to_string(), "CN=Mayfly server");
    assert!(
        leaf.extended_key_usage()
            .unwrap()
            .unwrap()
            .value
            .server_auth
    );
    assert!(!leaf.basic_constraints().unwrap().unwrap().value.ca);
    let validity = leaf.validity();
    assert_eq!(
        validity.not_after.to_datetime() - validity.not_before.to_datetime(),
        Duration::days(30) + Duration::minutes(1)
    );

    let cases: Vec<(&str, Vec<String>, OffsetDateTime, bool)> = vec![
        (
            "same names",
            hostnames.clone(),
            now + Duration::hours(1),
            true,
        ),
        (
            "a subset of the names",
            vec!["acme.example.org".to_owned()],
            now,
            true,
        ),
        (
            "loopback names only",
            vec!["localhost".to_owned(), "::1".to_owned()],
            now,
            true,
        ),
        (
            "expiring within a day",
            hostnames.clone(),
            now + Duration::days(29) + Duration::hours(1),
            false,
        ),
        (
            "a new hostname",
            vec!["new.example.org".to_owned()],
            now,
            false,
        ),
    ];
    for (name, names, at, reused) in cases {
        let (chain_again, key_again) = issuer.ensure_server_certificate(&data, &names, at).unwrap();
        assert_eq!(
            chain_again == chain && key_again == key_pem,
            reused,
            "{name}"
        );
        if !reused {
            // Put the first certificate back for the next case.
            fs::write(&paths.server_cert, &chain).unwrap();
            fs::write(&paths.server_key, &key_pem).unwrap();
        }
    }

    // A server key that does not match the certificate is replaced.
    fs::write(
        &paths.server_key,
        KeyPair::generate().unwrap().serialize_pem(),
    )
    .unwrap();
    let (replaced, _) = issuer
        .ensure_server_certificate(&data, &hostnames, now)
        .unwrap();
    assert_ne!(replaced, chain);

    // A hostname that is neither a DNS name nor an IP address is refused.
    let err = issuer
        .ensure_server_certificate(&data, &["bad_name".to_owned()], now)
        .err();
    assert!(matches!(err, Some(IssuerError::Request(_))), "{err:?}");
}

/// Email addresses follow the identifiers in the SAN, and a leaf reads back (for renewal) as
/// it was issued: names, common name, key usages, key and validity.
#[test]
fn leaves_with_email_addresses_read_back_as_issued() {
    let (_dir, issuer) = new_ca(KeyType::P256, None);
    let key = KeyPair::generate().unwrap();
    let leaf = LeafProfile {
        key_usage: vec![
            crate::policy::validators::KeyUsageBit::DigitalSignature,
            crate::policy::validators::KeyUsageBit::KeyAgreement,
        ],
        extended_key_usage: vec![Purpose::ClientAuth, Purpose::EmailProtection],
        common_name: LeafCommonName::Given("mail.example".into()),
    };
    let first = IssuanceRequest {
        emails: vec!["alice@mail.example".into()],
        leaf: leaf.clone(),
        ..request(csr(&key, None), vec![id("dns", "mail.example")])
    };
    let issued = issue(&issuer, first);
    let back = reissue::IssuedLeaf::from_der(&issued.leaf_der).unwrap();
    assert_eq!(back.serial, issued.serial);
    assert_eq!(back.identifiers, vec![id("dns", "mail.example")]);
    assert_eq!(back.emails, vec!["alice@mail.example".to_owned()]);
    assert_eq!(back.leaf, leaf);
    assert_eq!(
        back.spki_der,
        rcgen::PublicKeyData::subject_public_key_info(&key)
    );
    assert_eq!(
        (back.not_before, back.not_after),
        (issued.not_before, issued.not_after)
    );

    // Signing again for the same key, without a CSR.
    let again = IssuanceRequest {
        csr_der: Vec::new(),
        emails: back.emails.clone(),
        leaf: back.leaf.clone(),
        ..request(Vec::new(), back.identifiers.clone())
    };
    let token = issuer.prepare_for_key(again, &back.spki_der).unwrap();
    let renewed = issuer.issue(token).unwrap();
    let renewed_back = reissue::IssuedLeaf::from_der(&renewed.leaf_der).unwrap();
    assert_eq!(renewed_back.leaf, leaf);
    assert_eq!(renewed_back.spki_der, back.spki_der);

    // Only email addresses: a certificate all the same.
    let emails_only = IssuanceRequest {
        emails: vec!["bob@mail.example".into()],
        leaf: LeafProfile {
            common_name: LeafCommonName::None,
            ..LeafProfile::default()
        },
        ..request(csr(&key, None), Vec::new())
    };
    let only = reissue::IssuedLeaf::from_der(&issue(&issuer, emails_only).leaf_der).unwrap();
    assert_eq!((only.identifiers.len(), only.emails.len()), (0, 1));
}
