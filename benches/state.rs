//! Order status derivation (`authority::state`, ARCHITECTURE decision 3): every order and
//! authorization answer derives its status from the stored facts and `now`.

use criterion::{Criterion, criterion_group, criterion_main};
use mayfly::acme::{ChallengeStatus, Identifier};
use mayfly::authority::state::{authorization_status, order_status};
use mayfly::storage::{Authorization, Challenge, Order};
use time::{Duration, OffsetDateTime};

fn authorization(index: usize, now: OffsetDateTime) -> Authorization {
    let id = format!("authz{index}");
    let challenge = |position: usize, kind: &str, status| Challenge {
        id: format!("{id}-{position}"),
        authorization_id: id.clone(),
        kind: kind.to_owned(),
        token: "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA".to_owned(),
        status,
        validated_at: None,
        error: None,
        token_identity: None,
    };
    Authorization {
        id: id.clone(),
        account_id: "account".to_owned(),
        identifier: Identifier::parse("dns", &format!("host{index}.example.com"))
            .expect("a DNS name"),
        expires: now + Duration::days(7),
        created_at: now,
        deactivated: false,
        challenges: vec![
            challenge(0, "http-01", ChallengeStatus::Valid),
            challenge(1, "dns-01", ChallengeStatus::Pending),
            challenge(2, "tls-alpn-01", ChallengeStatus::Pending),
        ],
    }
}

fn order(authorizations: &[Authorization], now: OffsetDateTime) -> Order {
    Order {
        id: "order".to_owned(),
        account_id: "account".to_owned(),
        identifiers: authorizations
            .iter()
            .map(|a| a.identifier.clone())
            .collect(),
        authorization_ids: authorizations.iter().map(|a| a.id.clone()).collect(),
        not_before: None,
        not_after: None,
        expires: now + Duration::days(7),
        created_at: now,
        processing_since: None,
        certificate_id: None,
        error: None,
        profile: None,
        replaces: None,
    }
}

fn derive(c: &mut Criterion) {
    let now = OffsetDateTime::now_utc();
    let mut group = c.benchmark_group("order_status");
    for names in [1, 10, 100] {
        let authorizations: Vec<Authorization> =
            (0..names).map(|index| authorization(index, now)).collect();
        let order = order(&authorizations, now);
        group.bench_function(format!("{names}-authorizations"), |b| {
            b.iter(|| {
                let statuses: Vec<_> = authorizations
                    .iter()
                    .map(|authz| authorization_status(authz, now))
                    .collect();
                order_status(std::hint::black_box(&order), &statuses, now)
            });
        });
    }
    group.finish();
}

criterion_group!(benches, derive);
criterion_main!(benches);
