//! CSR parsing and signature verification (`mayfly::issuer::csr`), as finalize does it.

use criterion::{Criterion, criterion_group, criterion_main};
use mayfly::issuer::csr::ParsedCsr;
use rcgen::{CertificateParams, DistinguishedName, KeyPair, PKCS_ECDSA_P256_SHA256};

fn csr_der(names: &[&str], key: &KeyPair) -> Vec<u8> {
    let mut params = CertificateParams::new(
        names
            .iter()
            .map(|name| (*name).to_owned())
            .collect::<Vec<_>>(),
    )
    .expect("valid names");
    params.distinguished_name = DistinguishedName::new();
    params
        .serialize_request(key)
        .expect("serialises")
        .der()
        .to_vec()
}

fn csr(c: &mut Criterion) {
    let mut group = c.benchmark_group("csr");
    let p256 = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("P-256 key");
    let rsa = rsa_2048();
    let cases = [
        ("P-256/1-name", csr_der(&["www.example.com"], &p256)),
        (
            "P-256/10-names",
            csr_der(
                &(0..10)
                    .map(|i| format!("host{i}.example.com"))
                    .collect::<Vec<_>>()
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>(),
                &p256,
            ),
        ),
        ("RSA-2048/1-name", csr_der(&["www.example.com"], &rsa)),
    ];
    for (name, der) in &cases {
        group.bench_function(format!("parse_and_verify/{name}"), |b| {
            b.iter(|| ParsedCsr::from_der(std::hint::black_box(der)).expect("valid CSR"));
        });
    }
    group.finish();
}

/// rcgen cannot generate RSA keys; aws-lc-rs (through Mayfly's signer) can.
fn rsa_2048() -> KeyPair {
    mayfly::jose::SigningKey::generate_rsa2048()
        .rcgen_key_pair()
        .expect("an RSA key rcgen accepts")
}

criterion_group!(benches, csr);
criterion_main!(benches);
