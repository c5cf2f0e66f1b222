//! The storage contract: one suite of checks, run against SQLite (a temporary file) and against
//! PostgreSQL (a fresh schema per test) when `MAYFLY_TEST_POSTGRES_URL` is set.
//!
//! Each check is an `async fn(Arc<dyn Store>)`; the `contract!` macro at the bottom turns it
//! into one `#[tokio::test]` per backend.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use mayfly::acme::{AccountStatus, ChallengeStatus, Identifier, Problem, ProblemType};
use mayfly::storage::postgres::PostgresStore;
use mayfly::storage::sqlite::SqliteStore;
use mayfly::storage::{
    Account, AuditEvent, AuditFilter, Authorization, Certificate, Challenge, EabKey, EabRefusal,
    Order, OrderCursor, Purged, RateLimitOutcome, RenewalQuery, RevokedCertificate, Store,
    StoreError,
};
use serde_json::json;
use time::OffsetDateTime;
use tokio::task::JoinSet;

const POSTGRES_URL_VAR: &str = "MAYFLY_TEST_POSTGRES_URL";
/// How many tasks race in the concurrency checks.
const RACERS: usize = 16;
const POOL_SIZE: u32 = 8;

// ---------------------------------------------------------------------------------------------
// Fixtures

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap()
}

const T0: i64 = 1_800_000_000;

fn account(n: u32) -> Account {
    Account {
        id: format!("acct-{n}"),
        key_thumbprint: format!("thumb-{n}"),
        jwk: json!({"kty": "EC", "crv": "P-256", "x": format!("x{n}"), "y": "y"}),
        contact: vec![
            format!("mailto:admin{n}@example.com"),
            "mailto:ops@example.com".into(),
        ],
        status: AccountStatus::Valid,
        created_at: at(T0),
        provisioner: mayfly::provisioner::DEFAULT_ACME.to_owned(),
    }
}

fn dns(name: &str) -> Identifier {
    Identifier::parse("dns", name).unwrap()
}

fn problem(detail: &str) -> Problem {
    let mut p = Problem::new(ProblemType::Compound, detail).with_identifier(dns("www.example.com"));
    p.subproblems
        .push(Problem::new(ProblemType::Dns, "NXDOMAIN").with_identifier(dns("example.com")));
    p
}

fn challenge(authz: &str, n: u32, kind: &str) -> Challenge {
    Challenge {
        id: format!("{authz}-chall-{n}"),
        authorization_id: authz.to_owned(),
        kind: kind.to_owned(),
        token: format!("token-{authz}-{n}-AAAAAAAAAAAAAAAAAAAAAA"),
        status: ChallengeStatus::Pending,
        validated_at: None,
        error: None,
        token_identity: None,
    }
}

fn authorization(id: &str, account_id: &str, identifier: Identifier) -> Authorization {
    // Deliberately not in alphabetical order, to check that insertion order is kept.
    let mut challenges = vec![
        challenge(id, 3, "tls-alpn-01"),
        challenge(id, 1, "http-01"),
        challenge(id, 2, "dns-01"),
    ];
    challenges[1].status = ChallengeStatus::Invalid;
    challenges[1].validated_at = Some(at(T0 + 5));
    challenges[1].error = Some(problem("connection refused"));
    Authorization {
        id: id.to_owned(),
        account_id: account_id.to_owned(),
        identifier,
        expires: at(T0 + 86_400),
        created_at: at(T0),
        deactivated: false,
        challenges,
    }
}

/// An order for `account_id` with two new authorizations, `<id>-authz-b` then `<id>-authz-a`.
fn order(id: &str, account_id: &str) -> (Order, Vec<Authorization>) {
    let b = authorization(&format!("{id}-authz-b"), account_id, dns("www.example.com"));
    let mut a = authorization(
        &format!("{id}-authz-a"),
        account_id,
        Identifier::parse("ip", "2001:db8::1").unwrap(),
    );
    a.deactivated = true;
    let order = Order {
        id: id.to_owned(),
        account_id: account_id.to_owned(),
        identifiers: vec![b.identifier.clone(), a.identifier.clone()],
        authorization_ids: vec![b.id.clone(), a.id.clone()],
        not_before: Some(at(T0)),
        not_after: None,
        expires: at(T0 + 7 * 86_400),
        created_at: at(T0),
        processing_since: None,
        certificate_id: None,
        error: None,
        profile: None,
        replaces: None,
    };
    (order, vec![b, a])
}

fn certificate(id: &str, order: &Order, serial: &str) -> Certificate {
    Certificate {
        id: id.to_owned(),
        order_id: order.id.clone(),
        account_id: order.account_id.clone(),
        serial: serial.to_owned(),
        chain_pem: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into(),
        not_before: at(T0),
        not_after: at(T0 + 86_400),
        created_at: at(T0 + 1),
    }
}

/// Stores an account and an order with its authorizations; returns the order.
async fn seed(store: &dyn Store, order_id: &str) -> (Order, Vec<Authorization>) {
    let acct = account(1);
    match store.insert_account(&acct).await {
        Ok(()) | Err(StoreError::Conflict(_)) => {}
        Err(e) => panic!("insert_account: {e}"),
    }
    let (order, authzs) = order(order_id, &acct.id);
    store.insert_order(&order, &authzs).await.unwrap();
    (order, authzs)
}

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    assert!(
        matches!(result, Err(StoreError::NotFound)),
        "expected NotFound, got {result:?}"
    );
}

fn assert_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>, key: &str) {
    match result {
        Err(StoreError::Conflict(k)) => assert_eq!(k, key),
        other => panic!("expected Conflict({key}), got {other:?}"),
    }
}

/// Runs `RACERS` copies of `race` at once; returns how many reported `true`.
async fn race<F, Fut>(store: &Arc<dyn Store>, attempt: F) -> usize
where
    F: Fn(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = Result<bool, StoreError>> + Send + 'static,
{
    let mut tasks = JoinSet::new();
    for _ in 0..RACERS {
        tasks.spawn(attempt(store.clone()));
    }
    let mut winners = 0;
    while let Some(joined) = tasks.join_next().await {
        if joined.unwrap().unwrap() {
            winners += 1;
        }
    }
    winners
}

// ---------------------------------------------------------------------------------------------
// The contract

async fn accounts(store: Arc<dyn Store>) {
    let acct = account(1);
    store.insert_account(&acct).await.unwrap();
    assert_eq!(store.account(&acct.id).await.unwrap(), acct);
    assert_eq!(
        store
            .account_by_thumbprint(&acct.key_thumbprint)
            .await
            .unwrap(),
        acct
    );
    assert_not_found(store.account("acct-missing").await);
    assert_not_found(store.account_by_thumbprint("thumb-missing").await);

    let same_key = Account {
        id: "acct-other".into(),
        ..acct.clone()
    };
    assert_conflict(
        store.insert_account(&same_key).await,
        "accounts.key_thumbprint",
    );
    let same_id = Account {
        key_thumbprint: "thumb-other".into(),
        ..acct.clone()
    };
    assert_conflict(store.insert_account(&same_id).await, "accounts.id");

    let deactivated = Account {
        status: AccountStatus::Deactivated,
        contact: vec![],
        ..account(2)
    };
    store.insert_account(&deactivated).await.unwrap();
    assert_eq!(store.account(&deactivated.id).await.unwrap(), deactivated);
}

// ---------------------------------------------------------------------------------------------
// Accounts (issue 3): update, deactivation, key change, orders list, External Account Binding

fn eab_key(id: &str, reusable: bool) -> EabKey {
    EabKey {
        id: id.to_owned(),
        hmac_key: (0..64).collect(),
        label: format!("label of {id}"),
        reusable,
        created_at: at(T0),
        revoked_at: None,
        use_count: 0,
        provisioner: None,
    }
}

async fn account_update_and_deactivation(store: Arc<dyn Store>) {
    let acct = account(1);
    store.insert_account(&acct).await.unwrap();
    let contact = vec!["mailto:new@example.com".to_owned()];
    store
        .update_account_contact(&acct.id, &contact)
        .await
        .unwrap();
    assert_eq!(store.account(&acct.id).await.unwrap().contact, contact);
    store.update_account_contact(&acct.id, &[]).await.unwrap();
    assert_eq!(
        store.account(&acct.id).await.unwrap().contact,
        Vec::<String>::new()
    );
    assert_not_found(store.update_account_contact("acct-missing", &contact).await);

    assert!(store.deactivate_account(&acct.id).await.unwrap());
    assert!(!store.deactivate_account(&acct.id).await.unwrap());
    assert_eq!(
        store.account(&acct.id).await.unwrap().status,
        AccountStatus::Deactivated
    );
    assert_not_found(store.deactivate_account("acct-missing").await);
}

/// Every write to an account is seen by the next read, also when that account was read just
/// before (SQLite keeps the accounts it read in memory), and also while reads race the write.
async fn account_reads_follow_writes(store: Arc<dyn Store>) {
    let acct = account(1);
    store.insert_account(&acct).await.unwrap();
    assert_eq!(store.account(&acct.id).await.unwrap(), acct);

    let new_jwk = json!({"kty": "EC", "crv": "P-256", "x": "read-after", "y": "y"});
    assert!(
        store
            .change_account_key(&acct.id, &acct.key_thumbprint, "thumb-after", &new_jwk)
            .await
            .unwrap()
    );
    let changed = store.account(&acct.id).await.unwrap();
    assert_eq!(changed.jwk, new_jwk);
    assert_eq!(changed.key_thumbprint, "thumb-after");

    let contact = vec!["mailto:after@example.com".to_owned()];
    store
        .update_account_contact(&acct.id, &contact)
        .await
        .unwrap();
    assert_eq!(store.account(&acct.id).await.unwrap().contact, contact);

    // Readers keep reading while the deactivation runs; once it has returned, no read may
    // answer with the account as it was before.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (store, stop, id) = (Arc::clone(&store), Arc::clone(&stop), acct.id.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    store.account(&id).await.unwrap();
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    tokio::task::yield_now().await;
    assert!(store.deactivate_account(&acct.id).await.unwrap());
    for _ in 0..50 {
        assert_eq!(
            store.account(&acct.id).await.unwrap().status,
            AccountStatus::Deactivated
        );
        tokio::task::yield_now().await;
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.await.unwrap();
    }
    assert_eq!(
        store.account(&acct.id).await.unwrap().status,
        AccountStatus::Deactivated
    );
}

async fn account_key_change(store: Arc<dyn Store>) {
    let (one, two) = (account(1), account(2));
    store.insert_account(&one).await.unwrap();
    store.insert_account(&two).await.unwrap();
    let new_jwk = json!({"kty": "EC", "crv": "P-256", "x": "new", "y": "y"});
    assert!(
        store
            .change_account_key(&one.id, &one.key_thumbprint, "thumb-new", &new_jwk)
            .await
            .unwrap()
    );
    let changed = store.account_by_thumbprint("thumb-new").await.unwrap();
    assert_eq!(changed.id, one.id);
    assert_eq!(changed.jwk, new_jwk);
    assert_not_found(store.account_by_thumbprint(&one.key_thumbprint).await);
    // The old thumbprint is stale now: nothing changes.
    assert!(
        !store
            .change_account_key(&one.id, &one.key_thumbprint, "thumb-newer", &new_jwk)
            .await
            .unwrap()
    );
    assert_conflict(
        store
            .change_account_key(&one.id, "thumb-new", &two.key_thumbprint, &new_jwk)
            .await,
        "accounts.key_thumbprint",
    );
    assert_eq!(store.account(&one.id).await.unwrap(), changed);
    assert_not_found(
        store
            .change_account_key("acct-missing", "thumb-new", "thumb-x", &new_jwk)
            .await,
    );
}

async fn account_key_change_race(store: Arc<dyn Store>) {
    let acct = account(1);
    store.insert_account(&acct).await.unwrap();
    let counter = Arc::new(AtomicU32::new(0));
    let winners = race(&store, |store| {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        async move {
            let jwk = json!({"kty": "EC", "x": format!("racer-{n}")});
            store
                .change_account_key("acct-1", "thumb-1", &format!("thumb-racer-{n}"), &jwk)
                .await
        }
    })
    .await;
    assert_eq!(winners, 1);
}

async fn orders_by_account(store: Arc<dyn Store>) {
    let acct = account(1);
    store.insert_account(&acct).await.unwrap();
    store.insert_account(&account(2)).await.unwrap();
    let now = at(T0 + 100);
    // (id, created_at offset, expires offset, processing, issued, failed, listed)
    let mut listed = Vec::new();
    let specs: [(&str, i64, i64, bool, bool, bool, bool); 8] = [
        ("o-old", 1, 1_000, false, false, false, true),
        ("o-tie-a", 5, 1_000, false, false, false, true),
        ("o-tie-b", 5, 1_000, false, false, false, true),
        ("o-new", 9, 1_000, false, false, false, true),
        ("o-failed", 7, 1_000, false, false, true, false),
        ("o-expired", 2, 50, false, false, false, false),
        ("o-expired-processing", 3, 50, true, false, false, true),
        ("o-expired-valid", 4, 50, false, true, false, true),
    ];
    for (id, created, expires, processing, issued, error, listed_too) in specs {
        let (mut order, authzs) = order(id, &acct.id);
        order.created_at = at(T0 + created);
        order.expires = at(T0 + expires);
        order.processing_since = processing.then(|| at(T0 + 10));
        store.insert_order(&order, &authzs).await.unwrap();
        if issued {
            store
                .complete_order(&certificate(&format!("{id}-cert"), &order, id))
                .await
                .unwrap();
        }
        if error {
            store
                .fail_order(id, &problem("issuance failed"))
                .await
                .unwrap();
        }
        if listed_too {
            listed.push((created, id));
        }
    }
    let (other, authzs) = order("o-other-account", "acct-2");
    store.insert_order(&other, &authzs).await.unwrap();
    // Newest first; ties by id, descending.
    listed.sort_by(|a, b| b.cmp(a));
    let expected: Vec<&str> = listed.iter().map(|(_, id)| *id).collect();
    assert_eq!(
        expected,
        [
            "o-new",
            "o-tie-b",
            "o-tie-a",
            "o-expired-valid",
            "o-expired-processing",
            "o-old"
        ]
    );

    let all = store
        .orders_by_account(&acct.id, None, now, 100)
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
        expected
    );
    assert_eq!(all[0], store.order("o-new").await.unwrap(), "full orders");

    // Pages of two, each starting after the last order of the previous one.
    let mut paged = Vec::new();
    let mut cursor: Option<OrderCursor> = None;
    loop {
        let page = store
            .orders_by_account(&acct.id, cursor.as_ref(), now, 2)
            .await
            .unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        cursor = Some(OrderCursor {
            created_at: last.created_at,
            id: last.id.clone(),
        });
        paged.extend(page.iter().map(|o| o.id.clone()));
    }
    assert_eq!(paged, expected);
    assert_eq!(
        store
            .orders_by_account("acct-missing", None, now, 10)
            .await
            .unwrap(),
        vec![]
    );
}

async fn eab_keys(store: Arc<dyn Store>) {
    let (one, two) = (eab_key("kid-1", false), eab_key("kid-2", true));
    store.insert_eab_key(&two).await.unwrap();
    store.insert_eab_key(&one).await.unwrap();
    assert_eq!(store.eab_key("kid-1").await.unwrap(), one);
    assert_eq!(
        store.eab_keys().await.unwrap(),
        vec![one.clone(), two.clone()]
    );
    assert_conflict(store.insert_eab_key(&one).await, "eab_keys.id");
    assert_not_found(store.eab_key("kid-missing").await);
    assert!(
        !format!("{one:?}").contains("[0, 1, 2"),
        "Debug shows the HMAC key"
    );

    assert!(store.revoke_eab_key("kid-1", at(T0 + 5)).await.unwrap());
    assert!(!store.revoke_eab_key("kid-1", at(T0 + 6)).await.unwrap());
    assert_eq!(
        store.eab_key("kid-1").await.unwrap().revoked_at,
        Some(at(T0 + 5))
    );
    assert_not_found(store.revoke_eab_key("kid-missing", at(T0)).await);
}

async fn eab_binding(store: Arc<dyn Store>) {
    store
        .insert_eab_key(&eab_key("single", false))
        .await
        .unwrap();
    store.insert_eab_key(&eab_key("multi", true)).await.unwrap();
    store
        .insert_eab_key(&eab_key("revoked", true))
        .await
        .unwrap();
    store.revoke_eab_key("revoked", at(T0)).await.unwrap();

    assert_eq!(
        store
            .insert_account_with_eab(&account(1), "single")
            .await
            .unwrap(),
        Ok(())
    );
    assert_eq!(store.account(&account(1).id).await.unwrap(), account(1));
    let bound = store.account_eab_key("acct-1").await.unwrap().unwrap();
    assert_eq!((bound.id.as_str(), bound.use_count), ("single", 1));
    assert_eq!(
        store
            .insert_account_with_eab(&account(2), "single")
            .await
            .unwrap(),
        Err(EabRefusal::Used)
    );
    assert_not_found(store.account("acct-2").await);

    for n in [2, 3] {
        assert_eq!(
            store
                .insert_account_with_eab(&account(n), "multi")
                .await
                .unwrap(),
            Ok(())
        );
    }
    assert_eq!(store.eab_key("multi").await.unwrap().use_count, 2);
    // The account insert fails (same key as account 1): the use is not counted either.
    let same_key = Account {
        id: "acct-dup".into(),
        ..account(1)
    };
    assert_conflict(
        store.insert_account_with_eab(&same_key, "multi").await,
        "accounts.key_thumbprint",
    );
    assert_eq!(store.eab_key("multi").await.unwrap().use_count, 2);

    assert_eq!(
        store
            .insert_account_with_eab(&account(4), "revoked")
            .await
            .unwrap(),
        Err(EabRefusal::Revoked)
    );
    assert_eq!(
        store
            .insert_account_with_eab(&account(4), "kid-missing")
            .await
            .unwrap(),
        Err(EabRefusal::Unknown)
    );
    assert_not_found(store.account("acct-4").await);

    store.insert_account(&account(5)).await.unwrap();
    assert_eq!(store.account_eab_key("acct-5").await.unwrap(), None);
    assert_not_found(store.account_eab_key("acct-missing").await);
}

async fn eab_binding_race(store: Arc<dyn Store>) {
    store
        .insert_eab_key(&eab_key("single", false))
        .await
        .unwrap();
    let counter = Arc::new(AtomicU32::new(10));
    let winners = race(&store, |store| {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        async move {
            let bound = store.insert_account_with_eab(&account(n), "single").await?;
            Ok(bound.is_ok())
        }
    })
    .await;
    assert_eq!(winners, 1);
    assert_eq!(store.eab_key("single").await.unwrap().use_count, 1);
}

// --- end of accounts (issue 3) ---

async fn order_round_trip(store: Arc<dyn Store>) {
    let (order, authzs) = seed(&*store, "order-1").await;
    assert_eq!(store.order(&order.id).await.unwrap(), order);
    for authz in &authzs {
        assert_eq!(store.authorization(&authz.id).await.unwrap(), *authz);
        for chall in &authz.challenges {
            assert_eq!(store.challenge(&chall.id).await.unwrap(), *chall);
        }
    }
    // In the order asked for, not in storage or id order.
    let (b, a) = (authzs[0].clone(), authzs[1].clone());
    let ids = vec![a.id.clone(), b.id.clone()];
    assert_eq!(
        store.authorizations(&ids).await.unwrap(),
        vec![a.clone(), b.clone()]
    );
    let ids = vec![b.id.clone(), a.id.clone()];
    assert_eq!(
        store.authorizations(&ids).await.unwrap(),
        vec![b.clone(), a.clone()]
    );
    assert_eq!(store.authorizations(&[]).await.unwrap(), vec![]);
    assert_not_found(
        store
            .authorizations(&[a.id.clone(), "authz-missing".into()])
            .await,
    );

    assert_not_found(store.order("order-missing").await);
    assert_not_found(store.authorization("authz-missing").await);
    assert_not_found(store.challenge("chall-missing").await);
}

async fn orders_reuse_authorizations(store: Arc<dyn Store>) {
    let (first, authzs) = seed(&*store, "order-1").await;
    // A second order for the same names, reusing the first order's authorizations.
    let second = Order {
        id: "order-2".into(),
        authorization_ids: vec![authzs[1].id.clone(), authzs[0].id.clone()],
        identifiers: vec![authzs[1].identifier.clone(), authzs[0].identifier.clone()],
        ..first.clone()
    };
    store.insert_order(&second, &[]).await.unwrap();
    assert_eq!(store.order(&second.id).await.unwrap(), second);
    assert_eq!(store.order(&first.id).await.unwrap(), first);
    // Read together: the same order, and its authorizations with their challenges in the
    // order's own position order.
    let (read, read_authzs) = store.order_with_authorizations(&second.id).await.unwrap();
    assert_eq!(read, second);
    assert_eq!(read_authzs, vec![authzs[1].clone(), authzs[0].clone()]);
    let (read, read_authzs) = store.order_with_authorizations(&first.id).await.unwrap();
    assert_eq!((read, read_authzs), (first.clone(), authzs.clone()));
    assert_not_found(store.order_with_authorizations("order-missing").await);
    // A challenge leads to its whole authorization.
    for authz in &authzs {
        for challenge in &authz.challenges {
            let of = store.authorization_of_challenge(&challenge.id).await;
            assert_eq!(&of.unwrap(), authz);
        }
    }
    assert_not_found(store.authorization_of_challenge("challenge-missing").await);

    assert_conflict(store.insert_order(&second, &[]).await, "orders.id");
    let dangling = Order {
        id: "order-3".into(),
        authorization_ids: vec!["authz-missing".into()],
        ..first.clone()
    };
    assert_not_found(store.insert_order(&dangling, &[]).await);
    let no_account = Order {
        id: "order-4".into(),
        account_id: "acct-missing".into(),
        ..first
    };
    assert_not_found(store.insert_order(&no_account, &[]).await);
}

async fn insert_order_is_one_transaction(store: Arc<dyn Store>) {
    let acct = account(1);
    store.insert_account(&acct).await.unwrap();
    let (order, mut authzs) = order("order-1", &acct.id);
    // The second authorization reuses a challenge id of the first: the last insert fails.
    let stolen = authzs[0].challenges[0].id.clone();
    authzs[1].challenges[2].id = stolen;
    assert_conflict(store.insert_order(&order, &authzs).await, "challenges.id");
    assert_not_found(store.order(&order.id).await);
    assert_not_found(store.authorization(&authzs[0].id).await);
    assert_not_found(store.challenge(&authzs[0].challenges[1].id).await);

    // A challenge nested under the wrong authorization is refused before anything is written.
    let (order, mut authzs) = self::order("order-2", &acct.id);
    authzs[0].challenges[0].authorization_id = authzs[1].id.clone();
    let refused = store.insert_order(&order, &authzs).await;
    assert!(matches!(refused, Err(StoreError::Other(_))), "{refused:?}");
    assert_not_found(store.order(&order.id).await);
}

async fn transition_challenge_once(store: Arc<dyn Store>) {
    let (_, authzs) = seed(&*store, "order-1").await;
    let chall = authzs[0].challenges[0].clone();
    let (pending, processing, valid) = (
        ChallengeStatus::Pending,
        ChallengeStatus::Processing,
        ChallengeStatus::Valid,
    );

    assert!(
        store
            .transition_challenge(&chall.id, pending, processing, None, None)
            .await
            .unwrap()
    );
    assert!(
        !store
            .transition_challenge(&chall.id, pending, processing, None, None)
            .await
            .unwrap()
    );
    assert_eq!(store.challenge(&chall.id).await.unwrap().status, processing);

    let when = Some(at(T0 + 60));
    assert!(
        store
            .transition_challenge(&chall.id, processing, valid, when, None)
            .await
            .unwrap()
    );
    let stored = store.challenge(&chall.id).await.unwrap();
    assert_eq!(
        stored,
        Challenge {
            status: valid,
            validated_at: when,
            ..chall.clone()
        }
    );

    // A failed validation keeps its problem document.
    let other = authzs[0].challenges[2].clone();
    let why = problem("timeout");
    let invalid = ChallengeStatus::Invalid;
    assert!(
        store
            .transition_challenge(&other.id, pending, invalid, None, Some(&why))
            .await
            .unwrap()
    );
    assert_eq!(store.challenge(&other.id).await.unwrap().error, Some(why));
    // The authorization reads back with the new states, in the same order.
    let authz = store.authorization(&authzs[0].id).await.unwrap();
    let statuses: Vec<_> = authz.challenges.iter().map(|c| c.status).collect();
    assert_eq!(statuses, [valid, ChallengeStatus::Invalid, invalid]);

    assert_not_found(
        store
            .transition_challenge("chall-missing", pending, valid, None, None)
            .await,
    );
}

async fn transition_challenge_race(store: Arc<dyn Store>) {
    let (_, authzs) = seed(&*store, "order-1").await;
    let id = authzs[1].challenges[0].id.clone();
    let winners = race(&store, |store| {
        let id = id.clone();
        async move {
            let (from, to) = (ChallengeStatus::Pending, ChallengeStatus::Processing);
            store.transition_challenge(&id, from, to, None, None).await
        }
    })
    .await;
    assert_eq!(winners, 1);
    assert_eq!(
        store.challenge(&id).await.unwrap().status,
        ChallengeStatus::Processing
    );
}

async fn begin_finalize_once(store: Arc<dyn Store>) {
    let (order, _) = seed(&*store, "order-1").await;
    assert!(store.begin_finalize(&order.id, at(T0 + 10)).await.unwrap());
    assert!(!store.begin_finalize(&order.id, at(T0 + 20)).await.unwrap());
    let stored = store.order(&order.id).await.unwrap();
    assert_eq!(stored.processing_since, Some(at(T0 + 10)));
    assert_not_found(store.begin_finalize("order-missing", at(T0)).await);

    let (racy, _) = seed(&*store, "order-2").await;
    let winners = race(&store, |store| {
        let id = racy.id.clone();
        async move { store.begin_finalize(&id, at(T0 + 30)).await }
    })
    .await;
    assert_eq!(winners, 1);
}

async fn complete_order(store: Arc<dyn Store>) {
    let (order, _) = seed(&*store, "order-1").await;
    assert!(store.begin_finalize(&order.id, at(T0 + 10)).await.unwrap());
    let cert = certificate("cert-1", &order, "0a1b2c");
    store.complete_order(&cert).await.unwrap();

    let stored = store.order(&order.id).await.unwrap();
    assert_eq!(stored.certificate_id.as_deref(), Some("cert-1"));
    assert_eq!(store.certificate(&cert.id).await.unwrap(), cert);
    assert!(!store.begin_finalize(&order.id, at(T0 + 20)).await.unwrap());
    assert_not_found(store.certificate("cert-missing").await);

    // An order gets one certificate; a second one is refused and not stored.
    let again = certificate("cert-2", &order, "0a1b2d");
    assert_conflict(store.complete_order(&again).await, "orders.certificate_id");
    assert_not_found(store.certificate(&again.id).await);
    assert_eq!(
        store.order(&order.id).await.unwrap().certificate_id,
        Some(cert.id.clone())
    );

    // Serials are unique across orders.
    let (other, _) = seed(&*store, "order-2").await;
    let same_serial = certificate("cert-3", &other, &cert.serial);
    assert_conflict(
        store.complete_order(&same_serial).await,
        "certificates.serial",
    );
    assert_eq!(store.order(&other.id).await.unwrap().certificate_id, None);

    let orphan = Certificate {
        order_id: "order-missing".into(),
        ..certificate("c4", &other, "ff")
    };
    assert_not_found(store.complete_order(&orphan).await);
}

// ---------------------------------------------------------------------------------------------
// Revocation and CRLs: certificate_by_serial, revoke_certificate, revoked_certificates,
// next_crl_number, has_valid_authorization.

/// An order with a stored certificate, for the revocation checks.
async fn issued(store: &dyn Store, order_id: &str, cert_id: &str, serial: &str) -> Certificate {
    let (order, _) = seed(store, order_id).await;
    let cert = certificate(cert_id, &order, serial);
    store.complete_order(&cert).await.unwrap();
    cert
}

async fn revocation(store: Arc<dyn Store>) {
    let cert = issued(&*store, "order-1", "cert-1", "4a0b").await;
    let other = issued(&*store, "order-2", "cert-2", "4a0c").await;
    assert_eq!(store.certificate_by_serial("4a0b").await.unwrap(), cert);
    assert_not_found(store.certificate_by_serial("4a0d").await);
    assert!(store.revoked_certificates(at(T0)).await.unwrap().is_empty());

    assert!(
        store
            .revoke_certificate(&cert.id, 1, at(T0 + 100))
            .await
            .unwrap()
    );
    // Once: a second revocation changes nothing, not even the reason.
    assert!(
        !store
            .revoke_certificate(&cert.id, 4, at(T0 + 200))
            .await
            .unwrap()
    );
    assert_not_found(store.revoke_certificate("cert-missing", 1, at(T0)).await);
    assert!(
        store
            .revoke_certificate(&other.id, 0, at(T0 + 300))
            .await
            .unwrap()
    );

    let listed = RevokedCertificate {
        serial: cert.serial.clone(),
        not_after: cert.not_after,
        revoked_at: at(T0 + 100),
        reason: 1,
    };
    let listed_other = RevokedCertificate {
        serial: other.serial.clone(),
        not_after: other.not_after,
        revoked_at: at(T0 + 300),
        reason: 0,
    };
    assert_eq!(
        store.revoked_certificates(at(T0 + 400)).await.unwrap(),
        vec![listed, listed_other]
    );
    // Listed while not expired: not at notAfter itself.
    assert!(
        store
            .revoked_certificates(cert.not_after)
            .await
            .unwrap()
            .is_empty()
    );
    // The certificate itself reads the same after revocation.
    assert_eq!(store.certificate(&cert.id).await.unwrap(), cert);
}

async fn revocation_race(store: Arc<dyn Store>) {
    let cert = issued(&*store, "order-1", "cert-1", "4a0b").await;
    let winners = race(&store, move |store| {
        let id = cert.id.clone();
        async move { store.revoke_certificate(&id, 1, at(T0 + 1)).await }
    })
    .await;
    assert_eq!(winners, 1);
    assert_eq!(store.revoked_certificates(at(T0)).await.unwrap().len(), 1);
}

async fn crl_numbers(store: Arc<dyn Store>) {
    assert_eq!(store.next_crl_number("issuer-a").await.unwrap(), 1);
    assert_eq!(store.next_crl_number("issuer-a").await.unwrap(), 2);
    assert_eq!(store.next_crl_number("issuer-b").await.unwrap(), 1);
    assert_eq!(store.next_crl_number("issuer-a").await.unwrap(), 3);

    // Racing replicas never get the same number.
    let mut tasks = JoinSet::new();
    for _ in 0..RACERS {
        let store = store.clone();
        tasks.spawn(async move { store.next_crl_number("issuer-a").await.unwrap() });
    }
    let mut numbers = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        numbers.push(joined.unwrap());
    }
    numbers.sort_unstable();
    let want: Vec<i64> = (4..4 + RACERS as i64).collect();
    assert_eq!(numbers, want);
}

async fn valid_authorizations(store: Arc<dyn Store>) {
    let (order, authzs) = seed(&*store, "order-1").await;
    let (www, ip) = (&authzs[0], &authzs[1]);
    let holds = |account: &str, identifier: &Identifier, secs: i64| {
        let store = store.clone();
        let (account, identifier) = (account.to_owned(), identifier.clone());
        async move {
            store
                .has_valid_authorization(&account, &identifier, at(secs))
                .await
                .unwrap()
        }
    };
    // Pending and invalid challenges only: not valid.
    assert!(!holds(&order.account_id, &www.identifier, T0).await);

    let pending = &www.challenges[0];
    assert!(
        store
            .transition_challenge(
                &pending.id,
                ChallengeStatus::Pending,
                ChallengeStatus::Valid,
                Some(at(T0 + 5)),
                None,
            )
            .await
            .unwrap()
    );
    assert!(holds(&order.account_id, &www.identifier, T0 + 10).await);
    // Not at or after expiry, not for another account, not for another name.
    assert!(
        !holds(
            &order.account_id,
            &www.identifier,
            www.expires.unix_timestamp()
        )
        .await
    );
    store.insert_account(&account(2)).await.unwrap();
    assert!(!holds("acct-2", &www.identifier, T0 + 10).await);
    assert!(!holds(&order.account_id, &dns("other.example.com"), T0 + 10).await);

    // A deactivated authorization with a valid challenge is not valid.
    assert!(
        store
            .transition_challenge(
                &ip.challenges[0].id,
                ChallengeStatus::Pending,
                ChallengeStatus::Valid,
                Some(at(T0 + 5)),
                None,
            )
            .await
            .unwrap()
    );
    assert!(!holds(&order.account_id, &ip.identifier, T0 + 10).await);
}

// ---------------------------------------------------------------------------------------------

async fn fail_order(store: Arc<dyn Store>) {
    let (order, _) = seed(&*store, "order-1").await;
    let why = Problem::new(ProblemType::ServerInternal, "signing failed");
    store.fail_order(&order.id, &why).await.unwrap();
    let stored = store.order(&order.id).await.unwrap();
    assert_eq!(
        stored,
        Order {
            error: Some(why.clone()),
            ..order.clone()
        }
    );
    assert!(!store.begin_finalize(&order.id, at(T0)).await.unwrap());
    assert_not_found(store.fail_order("order-missing", &why).await);
}

async fn nonces(store: Arc<dyn Store>) {
    assert!(store.redeem_nonce("nonce-1", at(T0 + 60)).await.unwrap());
    assert!(!store.redeem_nonce("nonce-1", at(T0 + 60)).await.unwrap());

    let winners = race(&store, |store| async move {
        store.redeem_nonce("nonce-raced", at(T0 + 60)).await
    })
    .await;
    assert_eq!(winners, 1);

    // Many nonces at once, each sent four times: PostgreSQL redeems concurrent requests in
    // one statement, and each nonce must still be fresh exactly once.
    let mut tasks = JoinSet::new();
    for copy in 0..4 {
        for n in 0..32 {
            let store = store.clone();
            tasks.spawn(async move {
                let fresh = store
                    .redeem_nonce(&format!("nonce-many-{n}"), at(T0 + 30))
                    .await
                    .unwrap();
                (n, copy, fresh)
            });
        }
    }
    let mut fresh_by_nonce = [0; 32];
    while let Some(joined) = tasks.join_next().await {
        let (n, _copy, fresh) = joined.unwrap();
        fresh_by_nonce[n] += usize::from(fresh);
    }
    assert_eq!(fresh_by_nonce, [1; 32]);
    assert_eq!(store.prune_nonces(at(T0 + 31)).await.unwrap(), 32);

    assert!(store.redeem_nonce("nonce-old", at(T0 - 1)).await.unwrap());
    assert!(store.redeem_nonce("nonce-edge", at(T0)).await.unwrap());
    // Expired strictly before `now`: only nonce-old goes.
    assert_eq!(store.prune_nonces(at(T0)).await.unwrap(), 1);
    assert!(
        store.redeem_nonce("nonce-old", at(T0 - 1)).await.unwrap(),
        "it was pruned"
    );
    assert!(
        !store.redeem_nonce("nonce-edge", at(T0)).await.unwrap(),
        "it was kept"
    );
    assert!(
        !store.redeem_nonce("nonce-1", at(T0)).await.unwrap(),
        "it was kept"
    );
    assert_eq!(store.prune_nonces(at(T0 + 61)).await.unwrap(), 4);
    assert_eq!(store.prune_nonces(at(T0 + 61)).await.unwrap(), 0);
}

async fn settings(store: Arc<dyn Store>) {
    assert_eq!(
        store.setting_or_insert("nonce_key", "first").await.unwrap(),
        "first"
    );
    assert_eq!(
        store
            .setting_or_insert("nonce_key", "second")
            .await
            .unwrap(),
        "first"
    );
    assert_eq!(store.setting_or_insert("other", "x").await.unwrap(), "x");

    // Replicas starting together agree on one value.
    let mut tasks = JoinSet::new();
    for n in 0..RACERS {
        let store = store.clone();
        tasks.spawn(async move { store.setting_or_insert("raced", &format!("v{n}")).await });
    }
    let mut seen = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        seen.push(joined.unwrap().unwrap());
    }
    seen.dedup();
    assert_eq!(seen.len(), 1, "{seen:?}");
}

// ---------------------------------------------------------------------------------------------
// Backends

/// A store on a fresh database, and what it takes to open it again and to clean up.
trait Backend: Sized {
    async fn new() -> Option<Self>;
    fn store(&self) -> Arc<dyn Store>;
    /// Opens a second store on the same database (migrations run again).
    async fn reopen(&self) -> Arc<dyn Store>;
    async fn finish(self);
    /// Runs one SQL statement on a connection of its own, outside the `Store` (to show what
    /// the database itself refuses); the rows it changed, or the database's message.
    async fn raw(&self, sql: &'static str) -> Result<u64, String>;
}

struct Sqlite {
    dir: tempfile::TempDir,
    store: Arc<dyn Store>,
}

impl Sqlite {
    fn url(dir: &tempfile::TempDir) -> String {
        format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("mayfly.db").display()
        )
    }
}

impl Backend for Sqlite {
    async fn new() -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::connect(&Self::url(&dir), POOL_SIZE)
            .await
            .unwrap();
        Some(Self {
            dir,
            store: Arc::new(store),
        })
    }
    fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }
    async fn reopen(&self) -> Arc<dyn Store> {
        mayfly::storage::connect(&Self::url(&self.dir), POOL_SIZE)
            .await
            .unwrap()
    }
    async fn finish(self) {}
    async fn raw(&self, sql: &'static str) -> Result<u64, String> {
        // A connection of its own, as another process would open one.
        let path = self.dir.path().join("mayfly.db");
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .unwrap();
        let result = conn.execute(sql, []).map(|n| n as u64);
        result.map_err(|e| e.to_string())
    }
}

struct Postgres {
    url: String,
    schema: String,
    store: Arc<dyn Store>,
}

impl Backend for Postgres {
    async fn new() -> Option<Self> {
        let Ok(url) = std::env::var(POSTGRES_URL_VAR) else {
            println!("skipped: {POSTGRES_URL_VAR} not set");
            return None;
        };
        let schema = unique_schema();
        let store = PostgresStore::connect_in_schema(&url, &schema, POOL_SIZE)
            .await
            .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR} is set but unusable: {e}"));
        Some(Self {
            url,
            schema,
            store: Arc::new(store),
        })
    }
    fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }
    /// Goes through `storage::connect`, with the schema chosen by the URL's `options`.
    async fn reopen(&self) -> Arc<dyn Store> {
        let separator = if self.url.contains('?') { '&' } else { '?' };
        let url = format!(
            "{}{separator}options=-c%20search_path%3D{}",
            self.url, self.schema
        );
        mayfly::storage::connect(&url, POOL_SIZE).await.unwrap()
    }
    async fn finish(self) {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
        let drop = format!("DROP SCHEMA \"{}\" CASCADE", self.schema);
        sqlx::query(sqlx::AssertSqlSafe(drop))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    async fn raw(&self, sql: &'static str) -> Result<u64, String> {
        use sqlx::ConnectOptions;
        use std::str::FromStr;
        let options = sqlx::postgres::PgConnectOptions::from_str(&self.url)
            .unwrap()
            .options([("search_path", self.schema.as_str())]);
        let mut conn = options.connect().await.unwrap();
        let result = sqlx::query(sql).execute(&mut conn).await;
        result.map(|r| r.rows_affected()).map_err(|e| e.to_string())
    }
}

/// Unique per process (nextest runs each test in its own) and per call.
fn unique_schema() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "mayfly_test_{}_{}_{n}",
        std::process::id(),
        nanos % 1_000_000_000_000
    )
}

/// Runs `check` on a fresh store of backend `B`, then cleans up, even if the check panicked.
async fn run<B, F, Fut>(check: F)
where
    B: Backend,
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(backend) = B::new().await else {
        return;
    };
    let outcome = tokio::spawn(check(backend.store())).await;
    backend.finish().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Data survives closing and reopening the store, and migrations run twice without harm.
async fn reopen<B: Backend>() {
    let Some(backend) = B::new().await else {
        return;
    };
    let (order, _) = seed(&*backend.store(), "order-1").await;
    let again = backend.reopen().await;
    assert_eq!(again.order(&order.id).await.unwrap(), order);
    backend.finish().await;
}

macro_rules! contract {
    ($($check:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    super::run::<super::Sqlite, _, _>(super::$check).await;
                }
            )+
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn reopen() {
                super::reopen::<super::Sqlite>().await;
            }
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    super::run::<super::Postgres, _, _>(super::$check).await;
                }
            )+
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn reopen() {
                super::reopen::<super::Postgres>().await;
            }
        }
    };
}

contract!(
    accounts,
    account_update_and_deactivation,
    account_reads_follow_writes,
    account_key_change,
    account_key_change_race,
    orders_by_account,
    eab_keys,
    eab_binding,
    eab_binding_race,
    order_round_trip,
    orders_reuse_authorizations,
    insert_order_is_one_transaction,
    transition_challenge_once,
    transition_challenge_race,
    begin_finalize_once,
    complete_order,
    revocation,
    revocation_race,
    crl_numbers,
    valid_authorizations,
    fail_order,
    nonces,
    settings,
);

// ---------------------------------------------------------------------------------------------
// Backend-specific

#[tokio::test]
async fn connect_rejects_unknown_schemes() {
    let Err(e) = mayfly::storage::connect("mysql://user:secret@db/mayfly", 1).await else {
        panic!("a mysql URL was accepted");
    };
    let text = e.to_string();
    assert!(matches!(e, StoreError::Other(_)));
    assert!(text.contains("database.url"), "{text}");
    assert!(!text.contains("secret"), "the password leaked: {text}");
}

/// `sqlite::memory:` (handy in other tests) keeps its tables and rows across calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_in_memory() {
    let store = mayfly::storage::connect("sqlite::memory:", POOL_SIZE)
        .await
        .unwrap();
    let (order, _) = seed(&*store, "order-1").await;
    let winners = race(&store, |store| async move {
        store.redeem_nonce("n", at(T0)).await
    })
    .await;
    assert_eq!(winners, 1);
    assert_eq!(store.order(&order.id).await.unwrap(), order);
}

/// Two replicas starting at the same moment on an empty schema both come up.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_replicas_migrate_concurrently() {
    let Ok(url) = std::env::var(POSTGRES_URL_VAR) else {
        println!("skipped: {POSTGRES_URL_VAR} not set");
        return;
    };
    let schema = unique_schema();
    let (a, b) = tokio::join!(
        PostgresStore::connect_in_schema(&url, &schema, 2),
        PostgresStore::connect_in_schema(&url, &schema, 2),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    a.insert_account(&account(1)).await.unwrap();
    assert_eq!(b.account(&account(1).id).await.unwrap(), account(1));
    let backend = Postgres {
        url,
        schema,
        store: Arc::new(a),
    };
    backend.finish().await;
}

/// A pooled connection that the server closed while it sat idle (a restart, an idle timeout)
/// is replaced before a request gets it. Connections are not pinged on every acquire, since
/// that cost a round trip per statement (issue 9); only one idle for a second or more is.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_replaces_a_connection_closed_while_idle() {
    use sqlx::Connection as _;
    let Ok(url) = std::env::var(POSTGRES_URL_VAR) else {
        println!("skipped: {POSTGRES_URL_VAR} not set");
        return;
    };
    let schema = unique_schema();
    let application = format!("mayfly_idle_{schema}");
    let separator = if url.contains('?') { '&' } else { '?' };
    let named = format!("{url}{separator}application_name={application}");
    let store = PostgresStore::connect_in_schema(&named, &schema, 1)
        .await
        .unwrap();
    store.insert_account(&account(1)).await.unwrap();

    let mut admin = sqlx::postgres::PgConnection::connect(&url).await.unwrap();
    let closed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = $1) AS terminated",
    )
    .bind(&application)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(closed, 1, "the store's one pooled connection");
    admin.close().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;

    assert_eq!(store.account(&account(1).id).await.unwrap(), account(1));
    let backend = Postgres {
        url,
        schema,
        store: Arc::new(store),
    };
    backend.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Challenges slice (issue 3): authorization reuse and newAuthz

/// An authorization of `account_id` for `name`, valid (one valid challenge) until `expires`.
fn valid_authorization(id: &str, account_id: &str, name: &str, expires: i64) -> Authorization {
    let mut authz = authorization(id, account_id, dns(name));
    authz.challenges[2].status = ChallengeStatus::Valid;
    authz.challenges[2].validated_at = Some(at(T0 + 1));
    authz.expires = at(expires);
    authz
}

async fn valid_authorization_lookup(store: Arc<dyn Store>) {
    for n in [1, 2] {
        store.insert_account(&account(n)).await.unwrap();
    }
    let day = 86_400;
    let early = valid_authorization("authz-early", "acct-1", "www.example.com", T0 + day);
    let late = valid_authorization("authz-late", "acct-1", "www.example.com", T0 + 2 * day);
    let mut deactivated =
        valid_authorization("authz-off", "acct-1", "www.example.com", T0 + 3 * day);
    deactivated.deactivated = true;
    // Pending and invalid challenges only: not valid.
    let mut pending = authorization("authz-pending", "acct-1", dns("pending.example.com"));
    pending.expires = at(T0 + 3 * day);
    let wildcard = valid_authorization("authz-wild", "acct-1", "*.example.com", T0 + day);
    let other_account = valid_authorization("authz-other", "acct-2", "other.example.com", T0 + day);
    for authz in [
        &early,
        &late,
        &deactivated,
        &pending,
        &wildcard,
        &other_account,
    ] {
        store.insert_authorization(authz).await.unwrap();
    }
    let lookup = |account: &'static str, name: &'static str, at_secs: i64| {
        let store = store.clone();
        async move {
            store
                .valid_authorization(account, &dns(name), at(at_secs))
                .await
                .unwrap()
                .map(|a| a.id)
        }
    };
    let cases: [(&str, &str, &str, i64, Option<&str>); 9] = [
        (
            "the one that expires last",
            "acct-1",
            "www.example.com",
            T0,
            Some("authz-late"),
        ),
        (
            "still the later one",
            "acct-1",
            "www.example.com",
            T0 + day,
            Some("authz-late"),
        ),
        (
            "expired at the instant",
            "acct-1",
            "www.example.com",
            T0 + 2 * day,
            None,
        ),
        (
            "deactivated is not reused",
            "acct-1",
            "www.example.com",
            T0 + 2 * day + 1,
            None,
        ),
        (
            "pending is not valid",
            "acct-1",
            "pending.example.com",
            T0,
            None,
        ),
        (
            "wildcard matches wildcard",
            "acct-1",
            "*.example.com",
            T0,
            Some("authz-wild"),
        ),
        (
            "base name is not the wildcard",
            "acct-1",
            "example.com",
            T0,
            None,
        ),
        ("another account's", "acct-1", "other.example.com", T0, None),
        (
            "unknown account",
            "acct-missing",
            "www.example.com",
            T0,
            None,
        ),
    ];
    for (case, account, name, at_secs, want) in cases {
        assert_eq!(
            lookup(account, name, at_secs).await.as_deref(),
            want,
            "{case}"
        );
    }
    // The whole authorization comes back, challenges in order.
    let found = store
        .valid_authorization("acct-1", &dns("www.example.com"), at(T0))
        .await
        .unwrap();
    assert_eq!(found, Some(late));
    let ip = Identifier::parse("ip", "192.0.2.1").unwrap();
    assert_eq!(
        store
            .valid_authorization("acct-1", &ip, at(T0))
            .await
            .unwrap(),
        None
    );
}

async fn insert_authorization(store: Arc<dyn Store>) {
    store.insert_account(&account(1)).await.unwrap();
    let authz = authorization("authz-1", "acct-1", dns("pre.example.com"));
    store.insert_authorization(&authz).await.unwrap();
    assert_eq!(store.authorization(&authz.id).await.unwrap(), authz);
    assert_conflict(
        store.insert_authorization(&authz).await,
        "authorizations.id",
    );
    // Usable by a later order.
    let order = Order {
        id: "order-pre".into(),
        account_id: "acct-1".into(),
        identifiers: vec![authz.identifier.clone()],
        authorization_ids: vec![authz.id.clone()],
        not_before: None,
        not_after: None,
        expires: at(T0 + 3600),
        created_at: at(T0),
        processing_since: None,
        certificate_id: None,
        error: None,
        profile: None,
        replaces: None,
    };
    store.insert_order(&order, &[]).await.unwrap();
    assert_eq!(store.order(&order.id).await.unwrap(), order);
    let orphan = authorization("authz-2", "acct-missing", dns("x.example.com"));
    assert_not_found(store.insert_authorization(&orphan).await);
    let mut misnested = authorization("authz-3", "acct-1", dns("y.example.com"));
    misnested.challenges[0].authorization_id = "authz-1".into();
    let refused = store.insert_authorization(&misnested).await;
    assert!(matches!(refused, Err(StoreError::Other(_))), "{refused:?}");
    assert_not_found(store.authorization("authz-3").await);
}

/// The checks above, on both backends (kept out of the `contract!` list so that this section
/// stands alone).
macro_rules! challenges_contract {
    ($($check:ident),+ $(,)?) => {
        mod challenges_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    super::run::<super::Sqlite, _, _>(super::$check).await;
                }
            )+
        }
        mod challenges_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    super::run::<super::Postgres, _, _>(super::$check).await;
                }
            )+
        }
    };
}

challenges_contract!(valid_authorization_lookup, insert_authorization);

// ---------------------------------------------------------------------------------------------
// Profiles (issue 4): the order's profile and its requested notBefore/notAfter

/// The profile and the requested validity come back as stored, from `order` and from the
/// orders list; an order without a profile (made before profiles existed) reads as `None`.
async fn order_profile_round_trip(store: Arc<dyn Store>) {
    let (order, authzs) = order("order-profile", "acct-1");
    store.insert_account(&account(1)).await.unwrap();
    let order = Order {
        profile: Some("tlsclient".into()),
        not_before: Some(at(T0 + 60)),
        not_after: Some(at(T0 + 60 + 3600)),
        ..order
    };
    store.insert_order(&order, &authzs).await.unwrap();
    assert_eq!(store.order(&order.id).await.unwrap(), order);
    let listed = store
        .orders_by_account("acct-1", None, at(T0), 10)
        .await
        .unwrap();
    assert_eq!(listed, vec![order.clone()]);

    let legacy = Order {
        id: "order-legacy".into(),
        profile: None,
        not_before: None,
        not_after: None,
        created_at: at(T0 - 1),
        ..order
    };
    store.insert_order(&legacy, &[]).await.unwrap();
    assert_eq!(store.order(&legacy.id).await.unwrap(), legacy);
}

/// The checks above, on both backends.
macro_rules! profiles_contract {
    ($($check:ident),+ $(,)?) => {
        mod profiles_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    super::run::<super::Sqlite, _, _>(super::$check).await;
                }
            )+
        }
        mod profiles_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    super::run::<super::Postgres, _, _>(super::$check).await;
                }
            )+
        }
    };
}

profiles_contract!(order_profile_round_trip);
// --- end of profiles (issue 4) ---

// ---------------------------------------------------------------------------------------------
// ACME Renewal Information (issue 4): renewal_state, insert_replacing_order, set_renewal_window

async fn renewal_state(store: Arc<dyn Store>) {
    let cert = issued(&*store, "order-1", "cert-1", "4a0b").await;
    let state = store.renewal_state("4a0b").await.unwrap();
    assert_eq!(state.certificate, cert);
    assert_eq!(state.revoked_at, None);
    assert_eq!(state.replaced_by_order, None);
    assert_eq!(state.window, None);
    assert_not_found(store.renewal_state("4a0c").await);

    store
        .set_renewal_window(&cert.id, Some((at(T0 + 10), at(T0 + 20))))
        .await
        .unwrap();
    store
        .revoke_certificate(&cert.id, 4, at(T0 + 5))
        .await
        .unwrap();
    let state = store.renewal_state("4a0b").await.unwrap();
    assert_eq!(state.window, Some((at(T0 + 10), at(T0 + 20))));
    assert_eq!(state.revoked_at, Some(at(T0 + 5)));
    store.set_renewal_window(&cert.id, None).await.unwrap();
    assert_eq!(store.renewal_state("4a0b").await.unwrap().window, None);
    assert_not_found(store.set_renewal_window("cert-missing", None).await);
}

async fn replacing_orders(store: Arc<dyn Store>) {
    let cert = issued(&*store, "order-1", "cert-1", "4a0b").await;
    let (mut first, authzs) = order("order-r1", "acct-1");
    first.replaces = Some("aki.Sgs".into());
    assert!(
        store
            .insert_replacing_order(&first, &authzs, &cert.id, at(T0))
            .await
            .unwrap()
    );
    assert_eq!(store.order(&first.id).await.unwrap(), first);
    assert_eq!(
        store.renewal_state("4a0b").await.unwrap().replaced_by_order,
        Some(first.id.clone())
    );

    // Taken: nothing of the second order is written, its authorizations included.
    let (mut second, authzs) = order("order-r2", "acct-1");
    second.replaces = first.replaces.clone();
    assert!(
        !store
            .insert_replacing_order(&second, &authzs, &cert.id, at(T0))
            .await
            .unwrap()
    );
    assert_not_found(store.order(&second.id).await);
    assert_not_found(store.authorization(&authzs[0].id).await);

    // The first order expires unfinished: the certificate is free again.
    let later = first.expires + time::Duration::seconds(1);
    assert!(
        store
            .insert_replacing_order(&second, &authzs, &cert.id, later)
            .await
            .unwrap()
    );
    assert_eq!(
        store.renewal_state("4a0b").await.unwrap().replaced_by_order,
        Some(second.id.clone())
    );
    // A failed order frees it too; a pending one does not.
    let (third, authzs) = order("order-r3", "acct-1");
    assert!(
        !store
            .insert_replacing_order(&third, &authzs, &cert.id, at(T0))
            .await
            .unwrap()
    );
    store
        .fail_order(&second.id, &problem("issuance failed"))
        .await
        .unwrap();
    assert!(
        store
            .insert_replacing_order(&third, &authzs, &cert.id, at(T0))
            .await
            .unwrap()
    );

    let (fourth, authzs) = order("order-r4", "acct-1");
    assert_not_found(
        store
            .insert_replacing_order(&fourth, &authzs, "cert-missing", at(T0))
            .await,
    );
    assert_not_found(store.order(&fourth.id).await);
}

async fn replacing_order_race(store: Arc<dyn Store>) {
    let cert = issued(&*store, "order-1", "cert-1", "4a0b").await;
    let next = Arc::new(AtomicU32::new(0));
    let winners = race(&store, move |store| {
        let n = next.fetch_add(1, Ordering::SeqCst);
        let cert_id = cert.id.clone();
        async move {
            let (order, authzs) = order(&format!("order-race-{n}"), "acct-1");
            store
                .insert_replacing_order(&order, &authzs, &cert_id, at(T0))
                .await
        }
    })
    .await;
    assert_eq!(winners, 1);
}

macro_rules! renewal_contract {
    ($($check:ident),+ $(,)?) => {
        mod renewal_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    super::run::<super::Sqlite, _, _>(super::$check).await;
                }
            )+
        }
        mod renewal_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    super::run::<super::Postgres, _, _>(super::$check).await;
                }
            )+
        }
    };
}

renewal_contract!(renewal_state, replacing_orders, replacing_order_race);
// --- end of ACME Renewal Information ---

// ---------------------------------------------------------------------------------------------
// Provisioners (issue 6): single-use tokens, the provisioner of accounts and EAB keys, and the
// token identity of a tkauth-01 challenge

/// A token is used once per provisioner; expired records are pruned as nonces are.
async fn used_tokens(store: Arc<dyn Store>) {
    assert!(store.use_token("ops", "jti-1", at(T0 + 60)).await.unwrap());
    assert!(!store.use_token("ops", "jti-1", at(T0 + 60)).await.unwrap());
    // The same id from another provisioner is another token.
    assert!(store.use_token("sso", "jti-1", at(T0 + 60)).await.unwrap());

    let winners = race(&store, |store| async move {
        store.use_token("ops", "jti-raced", at(T0 + 60)).await
    })
    .await;
    assert_eq!(winners, 1);

    assert!(store.use_token("ops", "jti-old", at(T0 - 1)).await.unwrap());
    assert!(store.use_token("ops", "jti-edge", at(T0)).await.unwrap());
    // Expired strictly before `now`: only jti-old goes.
    assert_eq!(store.prune_used_tokens(at(T0)).await.unwrap(), 1);
    assert!(
        store.use_token("ops", "jti-old", at(T0 - 1)).await.unwrap(),
        "it was pruned"
    );
    assert!(
        !store.use_token("ops", "jti-edge", at(T0)).await.unwrap(),
        "it was kept"
    );
    // Pruning tokens leaves nonces alone, and the other way round.
    assert!(store.redeem_nonce("nonce-1", at(T0 - 1)).await.unwrap());
    assert_eq!(store.prune_used_tokens(at(T0 + 61)).await.unwrap(), 5);
    assert_eq!(store.prune_used_tokens(at(T0 + 61)).await.unwrap(), 0);
    assert!(!store.redeem_nonce("nonce-1", at(T0 - 1)).await.unwrap());
}

/// A token used through one store is refused through a second pool on the same database: on
/// PostgreSQL, the two-replica case.
async fn used_token_across_pools<B: Backend>() {
    let Some(backend) = B::new().await else {
        return;
    };
    let (first, second) = (backend.store(), backend.reopen().await);
    assert!(first.use_token("ops", "jti-1", at(T0 + 60)).await.unwrap());
    assert!(!second.use_token("ops", "jti-1", at(T0 + 60)).await.unwrap());
    assert!(second.use_token("ops", "jti-2", at(T0 + 60)).await.unwrap());
    assert!(!first.use_token("ops", "jti-2", at(T0 + 60)).await.unwrap());

    // Both pools racing for one token: one wins.
    let mut tasks = JoinSet::new();
    for n in 0..RACERS {
        let store = if n.is_multiple_of(2) {
            first.clone()
        } else {
            second.clone()
        };
        tasks.spawn(async move { store.use_token("ops", "jti-raced", at(T0 + 60)).await });
    }
    let mut winners = 0;
    while let Some(joined) = tasks.join_next().await {
        winners += usize::from(joined.unwrap().unwrap());
    }
    assert_eq!(winners, 1);
    backend.finish().await;
}

/// The account's provisioner round-trips through every way an account is written and read.
async fn account_provisioner(store: Arc<dyn Store>) {
    let plain = Account {
        provisioner: "internal".into(),
        ..account(1)
    };
    store.insert_account(&plain).await.unwrap();
    assert_eq!(store.account("acct-1").await.unwrap(), plain);
    assert_eq!(store.account_by_thumbprint("thumb-1").await.unwrap(), plain);

    store.insert_eab_key(&eab_key("kid-1", true)).await.unwrap();
    let bound = Account {
        provisioner: "partners".into(),
        ..account(2)
    };
    assert_eq!(
        store
            .insert_account_with_eab(&bound, "kid-1")
            .await
            .unwrap(),
        Ok(())
    );
    assert_eq!(store.account("acct-2").await.unwrap(), bound);

    // Key change and deactivation keep it.
    store
        .change_account_key("acct-1", "thumb-1", "thumb-new", &json!({"kty": "OKP"}))
        .await
        .unwrap();
    assert!(store.deactivate_account("acct-1").await.unwrap());
    assert_eq!(
        store.account("acct-1").await.unwrap().provisioner,
        "internal"
    );
}

/// The EAB key's provisioner round-trips, `None` included.
async fn eab_key_provisioner(store: Arc<dyn Store>) {
    let bound = EabKey {
        provisioner: Some("partners".into()),
        ..eab_key("kid-1", false)
    };
    let free = eab_key("kid-2", false);
    store.insert_eab_key(&bound).await.unwrap();
    store.insert_eab_key(&free).await.unwrap();
    assert_eq!(store.eab_key("kid-1").await.unwrap(), bound);
    assert_eq!(store.eab_key("kid-2").await.unwrap().provisioner, None);
    assert_eq!(store.eab_keys().await.unwrap(), vec![bound.clone(), free]);
    store
        .insert_account_with_eab(&account(1), "kid-1")
        .await
        .unwrap()
        .unwrap();
    let key = store.account_eab_key("acct-1").await.unwrap().unwrap();
    assert_eq!(key.provisioner.as_deref(), Some("partners"));
}

fn token_identity() -> serde_json::Value {
    json!({
        "provisioner": "ops",
        "subject": "www.example.com",
        "sans": ["www.example.com"],
        "email": null,
        "groups": ["web"],
        "admin": false,
        "token_id": "jti-1",
        "expires_at": "2027-01-15T08:05:00Z",
        "account_thumbprint": "thumb-1",
    })
}

/// A challenge validated by a token keeps the token's identity; the guard on the old status
/// holds as for `transition_challenge`.
async fn challenge_token_identity(store: Arc<dyn Store>) {
    let (_, authzs) = seed(&*store, "order-1").await;
    let chall = authzs[0].challenges[0].clone();
    assert_eq!(chall.token_identity, None);
    let (pending, valid) = (ChallengeStatus::Pending, ChallengeStatus::Valid);
    let identity = token_identity();

    assert!(
        store
            .validate_challenge_with_token(&chall.id, pending, &identity, at(T0 + 60))
            .await
            .unwrap()
    );
    let expected = Challenge {
        status: valid,
        validated_at: Some(at(T0 + 60)),
        token_identity: Some(identity.clone()),
        ..chall.clone()
    };
    assert_eq!(store.challenge(&chall.id).await.unwrap(), expected);
    let authz = store.authorization(&authzs[0].id).await.unwrap();
    assert_eq!(authz.challenges[0], expected);
    assert!(
        store
            .has_valid_authorization("acct-1", &authzs[0].identifier, at(T0 + 61))
            .await
            .unwrap()
    );
    // A second validation, with another identity, changes nothing.
    let other = json!({"provisioner": "sso"});
    assert!(
        !store
            .validate_challenge_with_token(&chall.id, pending, &other, at(T0 + 70))
            .await
            .unwrap()
    );
    assert_eq!(store.challenge(&chall.id).await.unwrap(), expected);
    assert_not_found(
        store
            .validate_challenge_with_token("chall-missing", pending, &identity, at(T0))
            .await,
    );

    // It loses to a transition that got there first.
    let raced = authzs[0].challenges[2].clone();
    let processing = ChallengeStatus::Processing;
    assert!(
        store
            .transition_challenge(&raced.id, pending, processing, None, None)
            .await
            .unwrap()
    );
    assert!(
        !store
            .validate_challenge_with_token(&raced.id, pending, &identity, at(T0 + 60))
            .await
            .unwrap()
    );
    let stored = store.challenge(&raced.id).await.unwrap();
    assert_eq!((stored.status, stored.token_identity), (processing, None));

    // A challenge inserted with an identity keeps it.
    let mut inserted = authorization("authz-tk", "acct-1", dns("tk.example.com"));
    inserted.challenges[0].status = valid;
    inserted.challenges[0].token_identity = Some(identity.clone());
    store.insert_authorization(&inserted).await.unwrap();
    assert_eq!(store.authorization("authz-tk").await.unwrap(), inserted);
}

/// Racing validations by token and by another transition: exactly one moves the challenge,
/// and the stored identity matches the winner.
async fn challenge_token_identity_race(store: Arc<dyn Store>) {
    let (_, authzs) = seed(&*store, "order-1").await;
    let id = authzs[1].challenges[0].id.clone();
    let next = Arc::new(AtomicU32::new(0));
    let winners = race(&store, move |store| {
        let n = next.fetch_add(1, Ordering::Relaxed);
        let id = id.clone();
        async move {
            let pending = ChallengeStatus::Pending;
            if n.is_multiple_of(2) {
                store
                    .validate_challenge_with_token(&id, pending, &token_identity(), at(T0 + 1))
                    .await
            } else {
                let to = ChallengeStatus::Processing;
                store
                    .transition_challenge(&id, pending, to, None, None)
                    .await
            }
        }
    })
    .await;
    assert_eq!(winners, 1);
    let stored = store.challenge(&authzs[1].challenges[0].id).await.unwrap();
    match stored.status {
        ChallengeStatus::Valid => assert_eq!(stored.token_identity, Some(token_identity())),
        ChallengeStatus::Processing => assert_eq!(stored.token_identity, None),
        other => panic!("unexpected status {other:?}"),
    }
}

macro_rules! provisioners_contract {
    ($($check:ident),+ $(,)?) => {
        mod provisioners_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    super::run::<super::Sqlite, _, _>(super::$check).await;
                }
            )+
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn used_token_across_pools() {
                super::used_token_across_pools::<super::Sqlite>().await;
            }
        }
        mod provisioners_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    super::run::<super::Postgres, _, _>(super::$check).await;
                }
            )+
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn used_token_across_pools() {
                super::used_token_across_pools::<super::Postgres>().await;
            }
        }
    };
}

provisioners_contract!(
    used_tokens,
    account_provisioner,
    eab_key_provisioner,
    challenge_token_identity,
    challenge_token_identity_race,
);
// --- end of provisioners (issue 6) ---

// ---------------------------------------------------------------------------------------------
// Operations (issue 7): readiness

/// `ping` answers while the store is open and fails once it is closed (what `GET /ready`
/// reports as a database that is not ready).
async fn ping_and_close(store: Arc<dyn Store>) {
    store.ping().await.unwrap();
    store.ping().await.unwrap();
    store.close().await;
    assert!(store.ping().await.is_err(), "ping after close");
}

macro_rules! ops_contract {
    ($($check:ident),+ $(,)?) => {
        mod ops_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    super::run::<super::Sqlite, _, _>(super::$check).await;
                }
            )+
        }
        mod ops_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    super::run::<super::Postgres, _, _>(super::$check).await;
                }
            )+
        }
    };
}

ops_contract!(ping_and_close);

// ---------------------------------------------------------------------------------------------
// --- admin API (issue 7): certificate records with filters and cursor, counts, accounts page

/// Three certificates: cert-a (account 1, www.example.com, created T0+1, expires T0+86400),
/// cert-b (account 2, api.example.org, created T0+1), cert-c (account 1, expires T0+10,
/// created T0+2); then cert-b is revoked.
async fn admin_fixture(store: &dyn Store) {
    let a = issued(store, "order-a", "cert-a", "4a01").await;
    let second = account(2);
    store.insert_account(&second).await.unwrap();
    let (mut order_b, authzs_b) = order("order-b", &second.id);
    let b_authz = authorization("order-b-authz", &second.id, dns("api.example.org"));
    order_b.identifiers = vec![b_authz.identifier.clone()];
    order_b.authorization_ids = vec![b_authz.id.clone()];
    drop(authzs_b);
    store.insert_order(&order_b, &[b_authz]).await.unwrap();
    store
        .complete_order(&certificate("cert-b", &order_b, "4a02"))
        .await
        .unwrap();
    let (order_c, authzs_c) = order("order-c", &a.account_id);
    store.insert_order(&order_c, &authzs_c).await.unwrap();
    let mut c = certificate("cert-c", &order_c, "4a03");
    c.not_after = at(T0 + 10);
    c.created_at = at(T0 + 2);
    store.complete_order(&c).await.unwrap();
    assert!(
        store
            .revoke_certificate("cert-b", 4, at(T0 + 5))
            .await
            .unwrap()
    );
}

async fn admin_certificate_records(store: Arc<dyn Store>) {
    use mayfly::storage::{CertificateCursor, CertificateFilter, CertificateStatus};
    admin_fixture(&*store).await;
    let now = at(T0 + 100);
    let ids = |records: Vec<mayfly::storage::CertificateRecord>| -> Vec<String> {
        records.into_iter().map(|r| r.certificate.id).collect()
    };
    let list = |filter: CertificateFilter| {
        let store = store.clone();
        async move {
            store
                .certificate_records(&filter, None, now, 100)
                .await
                .unwrap()
        }
    };
    // Oldest first, then by id.
    assert_eq!(
        ids(list(CertificateFilter::default()).await),
        ["cert-a", "cert-b", "cert-c"]
    );
    let by_name = CertificateFilter {
        name: Some("WWW.example.com".into()),
        ..Default::default()
    };
    assert_eq!(ids(list(by_name).await), ["cert-a", "cert-c"]);
    let glob = CertificateFilter {
        name: Some("*.example.org".into()),
        ..Default::default()
    };
    assert_eq!(ids(list(glob).await), ["cert-b"]);
    // LIKE's own wildcards are literal characters in a name.
    let underscore = CertificateFilter {
        name: Some("www_example.com".into()),
        ..Default::default()
    };
    assert!(list(underscore).await.is_empty());
    let by_account = CertificateFilter {
        account_id: Some("acct-2".into()),
        ..Default::default()
    };
    assert_eq!(ids(list(by_account).await), ["cert-b"]);
    for (status, expected) in [
        (CertificateStatus::Active, vec!["cert-a"]),
        (CertificateStatus::Expired, vec!["cert-c"]),
        (CertificateStatus::Revoked, vec!["cert-b"]),
    ] {
        let filter = CertificateFilter {
            status: Some(status),
            ..Default::default()
        };
        assert_eq!(ids(list(filter).await), expected, "{status:?}");
    }
    let expiring = CertificateFilter {
        expiring_before: Some(at(T0 + 11)),
        ..Default::default()
    };
    assert_eq!(ids(list(expiring).await), ["cert-c"]);

    // Pages: two, then the rest after the cursor.
    let all = CertificateFilter::default();
    let first = store.certificate_records(&all, None, now, 2).await.unwrap();
    let last = first.last().unwrap().certificate.clone();
    let cursor = CertificateCursor {
        created_at: last.created_at,
        id: last.id,
    };
    let rest = store
        .certificate_records(&all, Some(&cursor), now, 2)
        .await
        .unwrap();
    assert_eq!(ids(first), ["cert-a", "cert-b"]);
    assert_eq!(ids(rest), ["cert-c"]);

    let record = store.certificate_record("4a02").await.unwrap();
    assert_eq!(record.identifiers, [dns("api.example.org")]);
    assert_eq!(record.revoked_at, Some(at(T0 + 5)));
    assert_eq!(record.revocation_reason, Some(4));
    assert_eq!(record.status(now), CertificateStatus::Revoked);
    assert_not_found(store.certificate_record("4a09").await);
}

async fn admin_counts_and_accounts(store: Arc<dyn Store>) {
    use mayfly::storage::{CertificateCounts, CertificateCursor};
    assert_eq!(
        store.certificate_counts(at(T0)).await.unwrap(),
        CertificateCounts::default()
    );
    admin_fixture(&*store).await;
    assert_eq!(
        store.certificate_counts(at(T0 + 100)).await.unwrap(),
        CertificateCounts {
            issued: 3,
            active: 1,
            expired: 1,
            revoked: 1,
            accounts: 2,
        }
    );
    let first = store.accounts_page(None, 1).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].id, "acct-1");
    let cursor = CertificateCursor {
        created_at: first[0].created_at,
        id: first[0].id.clone(),
    };
    let rest = store.accounts_page(Some(&cursor), 10).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].id, "acct-2");
}

macro_rules! admin_contract {
    ($($check:ident),+ $(,)?) => {
        mod admin_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    super::run::<super::Sqlite, _, _>(super::$check).await;
                }
            )+
        }
        mod admin_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    super::run::<super::Postgres, _, _>(super::$check).await;
                }
            )+
        }
    };
}

admin_contract!(admin_certificate_records, admin_counts_and_accounts);
// --- end of admin API (issue 7) ---

// ---------------------------------------------------------------------------------------------
// Periodic jobs (issue 7): leases, purges, overdue renewals

/// A lease goes to one holder until it runs out or is given up; racing holders get one win.
async fn job_leases(store: Arc<dyn Store>) {
    let lease = |holder: &'static str, now: i64, until: i64| {
        let store = store.clone();
        async move {
            store
                .acquire_lease("purge", holder, at(now), at(until))
                .await
                .unwrap()
        }
    };
    assert!(lease("a", T0, T0 + 60).await);
    assert!(!lease("b", T0 + 10, T0 + 70).await, "a holds it");
    assert!(lease("a", T0 + 20, T0 + 80).await, "the holder renews it");
    assert!(
        !lease("b", T0 + 79, T0 + 139).await,
        "renewed until T0 + 80"
    );
    assert!(lease("b", T0 + 80, T0 + 140).await, "ran out: b takes it");
    assert!(!lease("a", T0 + 81, T0 + 141).await, "b holds it now");
    // Leases are per job.
    assert!(
        store
            .acquire_lease("renewal-alerts", "a", at(T0 + 81), at(T0 + 141))
            .await
            .unwrap()
    );
    // Giving up is only the holder's to do.
    store.release_lease("purge", "a").await.unwrap();
    assert!(
        !lease("a", T0 + 82, T0 + 142).await,
        "a's release changed nothing"
    );
    store.release_lease("purge", "b").await.unwrap();
    assert!(lease("a", T0 + 82, T0 + 142).await, "b gave it up");

    let counter = Arc::new(AtomicU32::new(0));
    let winners = race(&store, |store| {
        let holder = format!("racer-{}", counter.fetch_add(1, Ordering::Relaxed));
        async move {
            store
                .acquire_lease("raced", &holder, at(T0), at(T0 + 60))
                .await
        }
    })
    .await;
    assert_eq!(winners, 1);
}

/// A certificate for `order` with its own id, serial and times.
fn certificate_at(
    id: &str,
    order: &Order,
    serial: &str,
    not_before: i64,
    hours: i64,
) -> Certificate {
    Certificate {
        not_before: at(not_before),
        not_after: at(not_before + hours * 3600),
        created_at: at(not_before),
        ..certificate(id, order, serial)
    }
}

/// Stores an order of account 1 for `names` and its certificate.
async fn issued_for(
    store: &dyn Store,
    n: u32,
    names: &[&str],
    not_before: i64,
    hours: i64,
) -> Certificate {
    match store.insert_account(&account(1)).await {
        Ok(()) | Err(StoreError::Conflict(_)) => {}
        Err(e) => panic!("insert_account: {e}"),
    }
    let id = format!("order-{n}");
    let mut authzs = Vec::new();
    for (i, name) in names.iter().enumerate() {
        authzs.push(authorization(
            &format!("{id}-authz-{i}"),
            "acct-1",
            dns(name),
        ));
    }
    let (mut order, _) = order(&id, "acct-1");
    order.identifiers = authzs.iter().map(|a| a.identifier.clone()).collect();
    order.authorization_ids = authzs.iter().map(|a| a.id.clone()).collect();
    order.profile = Some("hours".into());
    store.insert_order(&order, &authzs).await.unwrap();
    let cert = certificate_at(
        &format!("cert-{n}"),
        &order,
        &format!("5e{n:02x}"),
        not_before,
        hours,
    );
    store.complete_order(&cert).await.unwrap();
    cert
}

fn renewal_query(now: i64) -> RenewalQuery {
    mayfly::authority::jobs::renewal_query(
        &mayfly::policy::renewal::RenewalSettings::default(),
        at(now),
    )
}

/// The default window of a one-day certificate: centred at half its life, 1% either side.
const DAY_WINDOW: (i64, i64) = (43_200 - 864, 43_200 + 864);

async fn overdue_renewals(store: Arc<dyn Store>) {
    let cert = issued_for(&*store, 1, &["a.example.com"], T0, 24).await;
    let (start, end) = DAY_WINDOW;
    let counts = |now: i64| {
        let store = store.clone();
        async move {
            let lines = store.renewal_counts(&renewal_query(now)).await.unwrap();
            lines
                .iter()
                .map(|l| (l.profile.clone(), l.due, l.overdue))
                .collect::<Vec<_>>()
        }
    };
    let hours = Some("hours".to_owned());
    assert_eq!(counts(T0 + start - 1).await, vec![]);
    assert_eq!(counts(T0 + start).await, vec![(hours.clone(), 1, 0)]);
    assert!(
        store
            .overdue_renewals(&renewal_query(T0 + end - 1), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(counts(T0 + end).await, vec![(hours.clone(), 0, 1)]);

    let overdue = store
        .overdue_renewals(&renewal_query(T0 + end), 10)
        .await
        .unwrap();
    assert_eq!(overdue.len(), 1);
    assert_eq!(overdue[0].certificate_id, cert.id);
    assert_eq!(overdue[0].serial, cert.serial);
    assert_eq!(overdue[0].account_id, "acct-1");
    assert_eq!(overdue[0].identifiers, vec![dns("a.example.com")]);
    assert_eq!(overdue[0].profile, hours);
    assert_eq!(overdue[0].window_end, at(T0 + end));

    // Reported once.
    assert!(
        store
            .mark_renewal_alerted(&cert.id, at(T0 + end))
            .await
            .unwrap()
    );
    assert!(
        !store
            .mark_renewal_alerted(&cert.id, at(T0 + end + 1))
            .await
            .unwrap()
    );
    assert!(
        store
            .overdue_renewals(&renewal_query(T0 + end), 10)
            .await
            .unwrap()
            .is_empty()
    );
    // The gauge still counts it: it is still not renewed.
    assert_eq!(counts(T0 + end).await, vec![(hours.clone(), 0, 1)]);
    // Expired: neither.
    assert_eq!(counts(T0 + 86_400).await, vec![]);

    // Renewed without ARI: a newer certificate of the same account for the same names.
    let old = issued_for(&*store, 2, &["b.example.com", "c.example.com"], T0, 24).await;
    let other_names = issued_for(&*store, 3, &["b.example.com"], T0 + 100, 24).await;
    let lines = store
        .overdue_renewals(&renewal_query(T0 + end + 100), 10)
        .await
        .unwrap();
    let serials: Vec<&str> = lines.iter().map(|l| l.serial.as_str()).collect();
    assert_eq!(
        serials,
        vec![old.serial.as_str(), other_names.serial.as_str()],
        "soonest expiry first"
    );
    let renewal = issued_for(
        &*store,
        4,
        &["b.example.com", "c.example.com"],
        T0 + 200,
        24,
    )
    .await;
    let lines = store
        .overdue_renewals(&renewal_query(T0 + end + 100), 10)
        .await
        .unwrap();
    let serials: Vec<&str> = lines.iter().map(|l| l.serial.as_str()).collect();
    assert_eq!(
        serials,
        vec![other_names.serial.as_str()],
        "{} was renewed",
        old.serial
    );
    assert_eq!(
        store
            .overdue_renewals(&renewal_query(T0 + end + 100), 0)
            .await
            .unwrap(),
        vec![]
    );

    // Revoked: not a renewal problem.
    assert!(
        store
            .revoke_certificate(&other_names.id, 4, at(T0 + 300))
            .await
            .unwrap()
    );
    assert!(
        store
            .overdue_renewals(&renewal_query(T0 + end + 100), 10)
            .await
            .unwrap()
            .is_empty()
    );

    // An administrator's window counts instead of the computed one.
    store
        .set_renewal_window(&renewal.id, Some((at(T0 + 300), at(T0 + 400))))
        .await
        .unwrap();
    let lines = store
        .overdue_renewals(&renewal_query(T0 + 400), 10)
        .await
        .unwrap();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].serial, renewal.serial);
    assert_eq!(lines[0].window_end, at(T0 + 400));
    assert!(
        store
            .overdue_renewals(&renewal_query(T0 + 399), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A replacing order (RFC 9773 §5) that produced a certificate is a renewal, even for other
/// names; one that did not is not.
async fn overdue_renewals_with_replaces(store: Arc<dyn Store>) {
    let cert = issued_for(&*store, 1, &["a.example.com"], T0, 24).await;
    let (mut replacing, authzs) = order("order-r", "acct-1");
    replacing.replaces = Some("aki.serial".into());
    assert!(
        store
            .insert_replacing_order(&replacing, &authzs, &cert.id, at(T0 + 100))
            .await
            .unwrap()
    );
    let now = T0 + DAY_WINDOW.1;
    assert_eq!(
        store
            .overdue_renewals(&renewal_query(now), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let renewal = certificate_at("cert-r", &replacing, "5eff", T0 + 100, 24);
    store.complete_order(&renewal).await.unwrap();
    assert!(
        store
            .overdue_renewals(&renewal_query(now), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Orders without a certificate and authorizations no order uses go `retention` after they
/// expire; issued orders, and authorizations they use, stay, and are counted as retained
/// once, not on every run (issue 9: most of a large database).
async fn purge_expired(store: Arc<dyn Store>) {
    let (pending, pending_authzs) = seed(&*store, "order-pending").await;
    let issued = issued(&*store, "order-issued", "cert-1", "4a0b").await;
    let issued_order = store.order(&issued.order_id).await.unwrap();
    // A stand-alone authorization (newAuthz), and one an issued order uses.
    let lone = authorization("authz-lone", "acct-1", dns("lone.example.com"));
    store.insert_authorization(&lone).await.unwrap();
    // A pending order that reuses the issued order's authorizations: purging it must not take
    // them along.
    let (mut shared, _) = order("order-shared", "acct-1");
    shared.identifiers = issued_order.identifiers.clone();
    shared.authorization_ids = issued_order.authorization_ids.clone();
    store.insert_order(&shared, &[]).await.unwrap();

    // The authorizations expire after a day, the orders after a week (the fixtures).
    assert_eq!(
        store.purge_expired(at(T0 + 86_400), 100).await.unwrap(),
        Purged::default()
    );
    let purged = store.purge_expired(at(T0 + 86_401), 100).await.unwrap();
    assert_eq!(
        purged,
        Purged {
            orders: 0,
            retained: 4,
            authorizations: 1
        },
        "only the lone one is unused; the four that orders use are looked at once"
    );
    // Kept authorizations are not looked at again on the next run, nor on any later one
    // until an order that uses them is purged.
    assert_eq!(
        store.purge_expired(at(T0 + 86_402), 100).await.unwrap(),
        Purged::default()
    );
    assert_not_found(store.authorization(&lone.id).await);
    assert!(store.authorization(&pending_authzs[0].id).await.is_ok());

    let purged = store
        .purge_expired(at(T0 + 7 * 86_400 + 1), 100)
        .await
        .unwrap();
    assert_eq!(
        purged,
        Purged {
            orders: 2,
            retained: 2,
            authorizations: 2
        }
    );
    assert_not_found(store.order(&pending.id).await);
    assert_not_found(store.order(&shared.id).await);
    for authz in &pending_authzs {
        assert_not_found(store.authorization(&authz.id).await);
        assert_not_found(store.challenge(&authz.challenges[0].id).await);
    }
    assert_eq!(store.order(&issued_order.id).await.unwrap(), issued_order);
    for id in &issued_order.authorization_ids {
        store.authorization(id).await.unwrap();
    }
    assert_eq!(store.certificate(&issued.id).await.unwrap(), issued);
    assert_eq!(
        store
            .purge_expired(at(T0 + 7 * 86_400 + 1), 100)
            .await
            .unwrap(),
        Purged::default()
    );
}

/// Batches are bounded, and a purged replacing order releases the certificate it replaced.
async fn purge_batches_and_replacing_orders(store: Arc<dyn Store>) {
    let cert = issued(&*store, "order-issued", "cert-1", "4a0b").await;
    let (mut replacing, authzs) = order("order-r", "acct-1");
    replacing.replaces = Some("aki.Sgs".into());
    assert!(
        store
            .insert_replacing_order(&replacing, &authzs, &cert.id, at(T0))
            .await
            .unwrap()
    );
    for n in 0..3 {
        seed(&*store, &format!("order-{n}")).await;
    }
    let after = at(T0 + 7 * 86_400 + 1);
    assert_eq!(
        store.purge_expired(after, 2).await.unwrap(),
        Purged {
            orders: 2,
            retained: 2,
            authorizations: 2
        }
    );
    assert_eq!(
        store.purge_expired(after, 2).await.unwrap(),
        Purged {
            orders: 2,
            retained: 2,
            authorizations: 2
        }
    );
    assert_eq!(
        store.purge_expired(after, 2).await.unwrap(),
        Purged {
            orders: 0,
            retained: 0,
            authorizations: 2
        }
    );
    assert_eq!(
        store.purge_expired(after, 2).await.unwrap(),
        Purged {
            orders: 0,
            retained: 0,
            authorizations: 2
        }
    );
    assert_eq!(
        store.purge_expired(after, 2).await.unwrap(),
        Purged::default()
    );
    assert_not_found(store.order(&replacing.id).await);
    assert_eq!(
        store.renewal_state("4a0b").await.unwrap().replaced_by_order,
        None
    );
    // The certificate can be replaced again.
    let (mut again, authzs) = order("order-r2", "acct-1");
    again.replaces = replacing.replaces.clone();
    assert!(
        store
            .insert_replacing_order(&again, &authzs, &cert.id, after)
            .await
            .unwrap()
    );
}

/// Two pools on one database (two replicas on PostgreSQL) see one lease.
async fn lease_across_pools<B: Backend>() {
    let Some(backend) = B::new().await else {
        return;
    };
    let (first, second) = (backend.store(), backend.reopen().await);
    assert!(
        first
            .acquire_lease("purge", "replica-a", at(T0), at(T0 + 60))
            .await
            .unwrap()
    );
    assert!(
        !second
            .acquire_lease("purge", "replica-b", at(T0 + 1), at(T0 + 61))
            .await
            .unwrap()
    );
    assert!(
        second
            .acquire_lease("purge", "replica-b", at(T0 + 60), at(T0 + 120))
            .await
            .unwrap()
    );
    assert!(
        !first
            .acquire_lease("purge", "replica-a", at(T0 + 61), at(T0 + 121))
            .await
            .unwrap()
    );
    backend.finish().await;
}

macro_rules! jobs_contract {
    ($($check:ident),+ $(,)?) => {
        mod jobs_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    super::run::<super::Sqlite, _, _>(super::$check).await;
                }
            )+
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn lease_across_pools() {
                super::lease_across_pools::<super::Sqlite>().await;
            }
        }
        mod jobs_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    super::run::<super::Postgres, _, _>(super::$check).await;
                }
            )+
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn lease_across_pools() {
                super::lease_across_pools::<super::Postgres>().await;
            }
        }
    };
}

jobs_contract!(
    job_leases,
    overdue_renewals,
    overdue_renewals_with_replaces,
    purge_expired,
    purge_batches_and_replacing_orders,
);

// --- audit log and rate limits (issue 7) ---

const HOUR: time::Duration = time::Duration::hours(1);

/// The sliding hour: `limit` events fit; the next is refused until the oldest that matters is
/// an hour old; buckets are independent; unconditional events count; pruning forgets.
async fn rate_limit_counter(store: Arc<dyn Store>) {
    let allowed = RateLimitOutcome::Allowed;
    for offset in [0, 10, 20] {
        let taken = store.take_rate_limit("b1", 3, HOUR, at(T0 + offset)).await;
        assert_eq!(taken.unwrap(), allowed, "event at +{offset}");
    }
    let full = RateLimitOutcome::Exceeded {
        retry_at: at(T0 + 3600),
    };
    assert_eq!(
        store
            .take_rate_limit("b1", 3, HOUR, at(T0 + 30))
            .await
            .unwrap(),
        full
    );
    // A refused take counts nothing, and a check counts nothing either.
    assert_eq!(
        store
            .check_rate_limit("b1", 3, HOUR, at(T0 + 40))
            .await
            .unwrap(),
        full
    );
    assert_eq!(
        store
            .check_rate_limit("b1", 4, HOUR, at(T0 + 40))
            .await
            .unwrap(),
        allowed
    );
    // With a lower limit, the slot frees when enough events have left: the second oldest.
    assert_eq!(
        store
            .check_rate_limit("b1", 2, HOUR, at(T0 + 40))
            .await
            .unwrap(),
        RateLimitOutcome::Exceeded {
            retry_at: at(T0 + 10 + 3600)
        }
    );
    assert_eq!(
        store
            .take_rate_limit("b2", 3, HOUR, at(T0 + 40))
            .await
            .unwrap(),
        allowed,
        "another bucket"
    );
    // An hour after the first event it no longer counts: one slot again, then full until
    // the second leaves.
    assert_eq!(
        store
            .take_rate_limit("b1", 3, HOUR, at(T0 + 3600))
            .await
            .unwrap(),
        allowed
    );
    assert_eq!(
        store
            .take_rate_limit("b1", 3, HOUR, at(T0 + 3601))
            .await
            .unwrap(),
        RateLimitOutcome::Exceeded {
            retry_at: at(T0 + 10 + 3600)
        }
    );

    // Unconditional events (failed validations) count towards a check.
    for offset in 0..2 {
        store
            .add_rate_limit_event("b3", at(T0 + offset))
            .await
            .unwrap();
    }
    assert_eq!(
        store
            .check_rate_limit("b3", 2, HOUR, at(T0 + 5))
            .await
            .unwrap(),
        RateLimitOutcome::Exceeded {
            retry_at: at(T0 + 3600)
        }
    );

    // Pruning forgets events before the cut: b1's first three, b2's, b3's two.
    assert_eq!(store.prune_rate_limits(at(T0 + 3600)).await.unwrap(), 6);
    assert_eq!(store.prune_rate_limits(at(T0 + 3600)).await.unwrap(), 0);
    assert_eq!(
        store
            .check_rate_limit("b1", 1, HOUR, at(T0 + 3602))
            .await
            .unwrap(),
        RateLimitOutcome::Exceeded {
            retry_at: at(T0 + 3600 + 3600)
        },
        "the event at +3600 is kept"
    );
}

/// Racers on one pool for the last slots: exactly `limit` win.
async fn rate_limit_race(store: Arc<dyn Store>) {
    let winners = race(&store, |store| async move {
        let outcome = store.take_rate_limit("raced", 5, HOUR, at(T0)).await?;
        Ok(outcome == RateLimitOutcome::Allowed)
    })
    .await;
    assert_eq!(winners, 5);
}

/// Two stores on one database (two replicas): the limit is shared, and racing for the last
/// slots from both lets exactly `limit` through.
async fn rate_limit_across_pools<B: Backend>() {
    let Some(backend) = B::new().await else {
        return;
    };
    let (first, second) = (backend.store(), backend.reopen().await);
    let allowed = RateLimitOutcome::Allowed;
    assert_eq!(
        first
            .take_rate_limit("shared", 2, HOUR, at(T0))
            .await
            .unwrap(),
        allowed
    );
    assert_eq!(
        second
            .take_rate_limit("shared", 2, HOUR, at(T0 + 1))
            .await
            .unwrap(),
        allowed
    );
    assert_eq!(
        first
            .take_rate_limit("shared", 2, HOUR, at(T0 + 2))
            .await
            .unwrap(),
        RateLimitOutcome::Exceeded {
            retry_at: at(T0 + 3600)
        }
    );

    let mut tasks = JoinSet::new();
    for n in 0..RACERS {
        let store = if n.is_multiple_of(2) {
            first.clone()
        } else {
            second.clone()
        };
        tasks.spawn(async move { store.take_rate_limit("raced", 4, HOUR, at(T0)).await });
    }
    let mut winners = 0;
    while let Some(joined) = tasks.join_next().await {
        winners += usize::from(joined.unwrap().unwrap() == allowed);
    }
    assert_eq!(winners, 4);
    backend.finish().await;
}

fn audit_event(secs: i64, kind: &str, actor: &str, object: &str) -> AuditEvent {
    AuditEvent {
        at: at(secs),
        kind: kind.to_owned(),
        actor: actor.to_owned(),
        object: object.to_owned(),
        outcome: "success".to_owned(),
        detail: json!({"names": ["a.example.com"], "n": secs - T0}),
        request_id: Some(format!("req-{secs}")),
    }
}

/// Appended events come back newest first, filtered and paged.
async fn audit_log_read(store: Arc<dyn Store>) {
    let events = [
        audit_event(T0, "account.created", "ip:192.0.2.1", "account:a1"),
        audit_event(T0 + 1, "certificate.issued", "account:a1", "serial:01"),
        audit_event(T0 + 2, "certificate.issued", "account:a2", "serial:02"),
        AuditEvent {
            request_id: None,
            outcome: "failure".to_owned(),
            ..audit_event(T0 + 3, "auth.bad_signature", "ip:192.0.2.9", "")
        },
    ];
    store.append_audit(&events[..2]).await.unwrap();
    store.append_audit(&events[2..]).await.unwrap();
    store.append_audit(&[]).await.unwrap();

    let all = store
        .audit_events(&AuditFilter::default(), None, 10)
        .await
        .unwrap();
    let read: Vec<AuditEvent> = all.iter().map(|r| r.event.clone()).collect();
    let newest_first: Vec<AuditEvent> = events.iter().rev().cloned().collect();
    assert_eq!(read, newest_first);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "ids grow");

    // Pages of two: the cursor is the last id of the previous page.
    let page1 = store
        .audit_events(&AuditFilter::default(), None, 2)
        .await
        .unwrap();
    let page2 = store
        .audit_events(&AuditFilter::default(), Some(page1[1].id), 2)
        .await
        .unwrap();
    let page3 = store
        .audit_events(&AuditFilter::default(), Some(page2[1].id), 2)
        .await
        .unwrap();
    assert_eq!([page1, page2].concat(), all);
    assert!(page3.is_empty());

    let kinds = |filter: AuditFilter| {
        let store = store.clone();
        async move {
            store
                .audit_events(&filter, None, 10)
                .await
                .unwrap()
                .into_iter()
                .map(|r| (r.event.kind, r.event.object))
                .collect::<Vec<_>>()
        }
    };
    let issued = |serial: &str| ("certificate.issued".to_owned(), format!("serial:{serial}"));
    let cases = [
        (
            "kind",
            AuditFilter {
                kind: Some("certificate.issued".into()),
                ..AuditFilter::default()
            },
            vec![issued("02"), issued("01")],
        ),
        (
            "actor",
            AuditFilter {
                actor: Some("account:a1".into()),
                ..AuditFilter::default()
            },
            vec![issued("01")],
        ),
        (
            "object",
            AuditFilter {
                object: Some("serial:02".into()),
                ..AuditFilter::default()
            },
            vec![issued("02")],
        ),
        (
            "since (inclusive) and until (exclusive)",
            AuditFilter {
                since: Some(at(T0 + 1)),
                until: Some(at(T0 + 3)),
                ..AuditFilter::default()
            },
            vec![issued("02"), issued("01")],
        ),
        (
            "kind and actor",
            AuditFilter {
                kind: Some("account.created".into()),
                actor: Some("account:a1".into()),
                ..AuditFilter::default()
            },
            vec![],
        ),
    ];
    for (case, filter, want) in cases {
        assert_eq!(kinds(filter).await, want, "{case}");
    }
}

/// Issuance and revocation write their audit event in their own transaction: present when
/// they happened, absent when they did not.
async fn audit_with_issuance_and_revocation(store: Arc<dyn Store>) {
    let (order, _) = seed(&*store, "order-1").await;
    let cert = certificate("cert-1", &order, "4a0b");
    let issued = audit_event(
        T0 + 1,
        "certificate.issued",
        "account:acct-1",
        "serial:4a0b",
    );
    store.complete_order_audited(&cert, &issued).await.unwrap();
    let again = certificate("cert-2", &order, "4a0c");
    assert_conflict(
        store.complete_order_audited(&again, &issued).await,
        "orders.certificate_id",
    );

    let revoked = audit_event(
        T0 + 2,
        "certificate.revoked",
        "account:acct-1",
        "serial:4a0b",
    );
    assert!(
        store
            .revoke_certificate_audited(&cert.id, 1, at(T0 + 2), &revoked)
            .await
            .unwrap()
    );
    assert!(
        !store
            .revoke_certificate_audited(&cert.id, 4, at(T0 + 3), &revoked)
            .await
            .unwrap()
    );
    assert_not_found(
        store
            .revoke_certificate_audited("cert-missing", 1, at(T0 + 3), &revoked)
            .await,
    );
    let read: Vec<AuditEvent> = store
        .audit_events(&AuditFilter::default(), None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.event)
        .collect();
    assert_eq!(read, vec![revoked, issued]);
    assert_eq!(store.certificate("cert-1").await.unwrap(), cert);
}

/// The database itself refuses to change or remove an audit row.
async fn audit_log_is_append_only<B: Backend>() {
    let Some(backend) = B::new().await else {
        return;
    };
    let store = backend.store();
    let event = audit_event(T0, "account.created", "ip:192.0.2.1", "account:a1");
    store
        .append_audit(std::slice::from_ref(&event))
        .await
        .unwrap();
    let statements = [
        "UPDATE audit_log SET actor = 'someone else'",
        "DELETE FROM audit_log",
    ];
    for sql in statements {
        let refused = backend.raw(sql).await.unwrap_err();
        assert!(
            refused.contains("audit_log is append-only"),
            "{sql}: {refused}"
        );
    }
    let read = store
        .audit_events(&AuditFilter::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].event, event);
    backend.finish().await;
}

macro_rules! audit_limits_contract {
    ($($check:ident),+ $(,)?) => {
        mod audit_limits_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    super::run::<super::Sqlite, _, _>(super::$check).await;
                }
            )+
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn rate_limit_across_pools() {
                super::rate_limit_across_pools::<super::Sqlite>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn audit_log_is_append_only() {
                super::audit_log_is_append_only::<super::Sqlite>().await;
            }
        }
        mod audit_limits_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    super::run::<super::Postgres, _, _>(super::$check).await;
                }
            )+
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn rate_limit_across_pools() {
                super::rate_limit_across_pools::<super::Postgres>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn audit_log_is_append_only() {
                super::audit_log_is_append_only::<super::Postgres>().await;
            }
        }
    };
}

audit_limits_contract!(
    rate_limit_counter,
    rate_limit_race,
    audit_log_read,
    audit_with_issuance_and_revocation,
);
// --- end of audit log and rate limits ---
