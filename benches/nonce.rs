//! Replay nonces (RFC 8555 §6.5): issuing and checking (`NonceService`, no I/O), and redeeming
//! one in SQLite through `Store::redeem_nonce` — one durable commit per request, the cost every
//! POST pays (WAL, synchronous=FULL, a file on the same disk as Mayfly's data directory).

use criterion::{Criterion, criterion_group, criterion_main};
use mayfly::api::nonce::NonceService;
use time::{Duration, OffsetDateTime};

fn nonce(c: &mut Criterion) {
    let service = NonceService::new(b"a 32-byte secret for benchmarks", Duration::hours(1));
    let now = OffsetDateTime::now_utc();
    let mut group = c.benchmark_group("nonce");
    group.bench_function("issue", |b| b.iter(|| service.issue(now)));
    let nonce = service.issue(now);
    group.bench_function("check", |b| {
        b.iter(|| {
            service
                .check(std::hint::black_box(&nonce), now)
                .expect("valid")
        });
    });

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let store = runtime
        .block_on(mayfly::storage::connect(&url, 4))
        .expect("opens SQLite");
    group.bench_function("issue_check_redeem/sqlite", |b| {
        b.iter(|| {
            let nonce = service.issue(now);
            let expires = service.check(&nonce, now).expect("valid");
            let fresh = runtime
                .block_on(store.redeem_nonce(&nonce, expires))
                .expect("redeems");
            assert!(fresh);
        });
    });
    group.finish();
}

criterion_group!(benches, nonce);
criterion_main!(benches);
