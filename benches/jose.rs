//! JWS verification (RFC 8555 §6.2) per algorithm: what every ACME POST costs before any
//! database work. `parse` is the flattened-JSON parsing and header checks alone;
//! `parse_and_verify` adds the signature check against the account's JWK.

use criterion::{Criterion, criterion_group, criterion_main};
use mayfly::jose::{KeyRef, ParsedJws, SigningKey, sign_jws};
use serde_json::json;

fn keys() -> [(&'static str, SigningKey); 4] {
    [
        ("ES256", SigningKey::generate_p256()),
        ("ES384", SigningKey::generate_p384()),
        ("EdDSA", SigningKey::generate_ed25519()),
        ("RS256", SigningKey::generate_rsa2048()),
    ]
}

/// A newOrder request as a client sends it: `kid`, nonce, url, one identifier.
fn new_order_jws(key: &SigningKey) -> Vec<u8> {
    let payload = json!({"identifiers": [{"type": "dns", "value": "www.example.com"}]});
    sign_jws(
        key,
        KeyRef::Kid("https://127.0.0.1:14000/acme/account/kq1R3Fh9e6ZxW2u0nVd1Yg"),
        Some("AAAAAGkX3k0Vq8m1nR2c4yT5u6i7o8p9QnJ0c3RhZ3ZhbHVlLXRhZy0xMjM0NTY3OA"),
        "https://127.0.0.1:14000/acme/new-order",
        Some(&payload),
    )
    .to_string()
    .into_bytes()
}

fn jws(c: &mut Criterion) {
    let mut group = c.benchmark_group("jws");
    for (alg, key) in keys() {
        let body = new_order_jws(&key);
        let jwk = key.jwk();
        group.bench_function(format!("parse/{alg}"), |b| {
            b.iter(|| ParsedJws::parse(std::hint::black_box(&body)).expect("parses"));
        });
        group.bench_function(format!("parse_and_verify/{alg}"), |b| {
            b.iter(|| {
                let parsed = ParsedJws::parse(std::hint::black_box(&body)).expect("parses");
                parsed.verify(&jwk).expect("verifies");
            });
        });
    }
    // What the load generator pays per request (signing with the account key, ES256).
    let key = SigningKey::generate_p256();
    group.bench_function("sign/ES256", |b| b.iter(|| new_order_jws(&key)));
    group.finish();
}

criterion_group!(benches, jws);
criterion_main!(benches);
