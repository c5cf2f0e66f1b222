//! Leaf signing (`Issuer::prepare` + `Issuer::issue`) with P-256, P-384 and RSA-3072
//! intermediates, for a P-256 subject key with one DNS name, as finalize does it.

use criterion::{Criterion, criterion_group, criterion_main};
use mayfly::acme::Identifier;
use mayfly::issuer::{CaOptions, IssuanceRequest, Issuer, KeyType, LeafProfile, init_ca};
use rcgen::{CertificateParams, DistinguishedName, KeyPair};
use time::{Duration, OffsetDateTime};

fn issuer(dir: &std::path::Path, key_type: KeyType) -> Issuer {
    let options = CaOptions {
        key_type,
        root_common_name: "Mayfly Bench Root".to_owned(),
        intermediate_common_name: "Mayfly Bench Intermediate".to_owned(),
        root_validity: Duration::days(3650),
        intermediate_validity: Duration::days(365),
    };
    init_ca(dir, &options, None).expect("creates the CA");
    Issuer::load(dir, None).expect("loads the CA")
}

fn leaf(c: &mut Criterion) {
    let mut group = c.benchmark_group("issue_leaf");
    let mut params = CertificateParams::new(vec!["www.example.com".to_owned()]).expect("name");
    params.distinguished_name = DistinguishedName::new();
    let csr_der = params
        .serialize_request(&KeyPair::generate().expect("P-256 key"))
        .expect("CSR")
        .der()
        .to_vec();
    let identifiers = vec![Identifier::parse("dns", "www.example.com").expect("a DNS name")];
    for (name, key_type) in [
        ("P-256", KeyType::P256),
        ("P-384", KeyType::P384),
        ("RSA-3072", KeyType::Rsa3072),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let issuer = issuer(dir.path(), key_type);
        group.bench_function(name, |b| {
            b.iter(|| {
                let now = OffsetDateTime::now_utc();
                let request = IssuanceRequest {
                    csr_der: csr_der.clone(),
                    identifiers: identifiers.clone(),
                    emails: Vec::new(),
                    not_before: now - Duration::hours(1),
                    not_after: now + Duration::hours(160),
                    crl_url: Some("http://127.0.0.1:14080/crl/intermediate.crl".to_owned()),
                    ca_issuers_url: Some("http://127.0.0.1:14080/ca/intermediate.crt".to_owned()),
                    leaf: LeafProfile::default(),
                };
                let token = issuer.prepare(request).expect("prepares");
                issuer.issue(token).expect("signs")
            });
        });
    }
    group.finish();
}

criterion_group!(benches, leaf);
criterion_main!(benches);
