//! OIDC provisioners against a mock identity provider (HTTPS on loopback): each test builds
//! `Provisioners::from_config` with `[provisioners.corp]` pointing at the provider, verifies
//! ID tokens with `verify_token`, and asserts the exact `TokenErrorKind`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use mayfly::acme::Identifier;
use mayfly::config::{Config, HumanDuration};
use mayfly::jose::{SigningKey, base64url, sign_jwt};
use mayfly::provisioner::oidc::OidcProvisionerConfig;
use mayfly::provisioner::oidc::provider::REFETCH_INTERVAL;
use mayfly::provisioner::{
    ProvisionerConfig, Provisioners, TokenError, TokenErrorKind, TokenIdentity, token_digest,
};
use serde_json::{Value, json};
use support::oidc_idp::{CLIENT_ID, ES256_KID, MockIdp, RS256_KID};
use time::{Duration, OffsetDateTime};

const ALICE: &str = "alice@example.com";

/// A provider, and the provisioners with `corp` configured for it (changed by `change`).
async fn setup(change: impl FnOnce(&mut OidcProvisionerConfig)) -> (MockIdp, Provisioners) {
    let idp = MockIdp::start().await;
    let provisioners = provisioners_for(&idp, change);
    (idp, provisioners)
}

fn provisioners_for(
    idp: &MockIdp,
    change: impl FnOnce(&mut OidcProvisionerConfig),
) -> Provisioners {
    let mut oidc = idp.provisioner_config();
    change(&mut oidc);
    let mut config = Config::default();
    config
        .provisioners
        .insert("corp".into(), ProvisionerConfig::Oidc(oidc));
    Provisioners::from_config(&config, &reqwest::Client::new()).expect("the configuration")
}

/// The current second (ID token times are whole seconds).
fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(OffsetDateTime::now_utc().unix_timestamp()).unwrap()
}

async fn verify(
    provisioners: &Provisioners,
    token: &str,
    now: OffsetDateTime,
) -> Result<TokenIdentity, TokenError> {
    provisioners.verify_token(token, None, &[], now).await
}

/// Asserts that `token` is refused with `kind`; returns the detail.
async fn refused(
    provisioners: &Provisioners,
    token: &str,
    now: OffsetDateTime,
    kind: TokenErrorKind,
) -> String {
    match verify(provisioners, token, now).await {
        Ok(identity) => panic!("accepted, expected {kind:?}: {identity:?}"),
        Err(e) => {
            assert_eq!(e.kind, kind, "{}", e.detail);
            e.detail
        }
    }
}

fn dns(name: &str) -> Identifier {
    Identifier::parse("dns", name).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Good tokens

#[tokio::test]
async fn an_rs256_id_token_verifies() {
    let (idp, provisioners) = setup(|_| {}).await;
    let now = now();
    let mut claims = idp.claims(ALICE, now);
    claims["jti"] = json!("id-1");
    let identity = verify(&provisioners, &idp.sign(RS256_KID, &claims), now)
        .await
        .expect("verifies");
    assert_eq!(
        identity,
        TokenIdentity {
            provisioner: "corp".into(),
            subject: format!("user:{ALICE}"),
            sans: vec![ALICE.into()],
            email: Some(ALICE.into()),
            groups: Vec::new(),
            admin: false,
            token_id: "id-1".into(),
            expires_at: now + Duration::hours(1),
            account_thumbprint: None,
        }
    );
}

#[tokio::test]
async fn an_es256_id_token_verifies_and_without_jti_its_digest_is_its_id() {
    let (idp, provisioners) = setup(|_| {}).await;
    let now = now();
    let token = idp.sign(ES256_KID, &idp.claims(ALICE, now));
    let identity = verify(&provisioners, &token, now).await.expect("verifies");
    assert_eq!(identity.email.as_deref(), Some(ALICE));
    assert_eq!(identity.token_id, token_digest(&token));
}

#[tokio::test]
async fn a_configuration_file_table_makes_a_working_provisioner() {
    let idp = MockIdp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mayfly.toml");
    let toml = format!(
        "[provisioners.corp]\n\
         type = \"oidc\"\n\
         client_id = \"{CLIENT_ID}\"\n\
         configuration_endpoint = \"{}\"\n\
         ca_file = \"{}\"\n\
         admins = [\"Ops@Example.com\"]\n\
         domains = [\"example.com\"]\n\
         groups_claim = \"groups\"\n\
         clock_skew = \"2m\"\n",
        idp.configuration_endpoint(),
        idp.ca_file().display()
    );
    std::fs::write(&file, toml).unwrap();
    let config = Config::load(Some(&file), figment::Figment::new()).expect("loads");
    let provisioners = Provisioners::from_config(&config, &reqwest::Client::new()).expect("builds");
    let now = now();
    let identity = verify(&provisioners, &idp.id_token("ops@example.com", now), now)
        .await
        .expect("verifies");
    assert!(identity.admin);
}

// ---------------------------------------------------------------------------------------------
// Times

#[tokio::test]
async fn an_expired_token_is_refused_beyond_the_clock_skew() {
    let (idp, provisioners) = setup(|c| c.clock_skew = HumanDuration::seconds(60)).await;
    let now = now();
    let mut claims = idp.claims(ALICE, now - Duration::hours(2));
    claims["exp"] = json!((now - Duration::seconds(30)).unix_timestamp());
    verify(&provisioners, &idp.sign(RS256_KID, &claims), now)
        .await
        .expect("expired 30 s ago: within the skew");
    claims["exp"] = json!((now - Duration::seconds(60)).unix_timestamp());
    let detail = refused(
        &provisioners,
        &idp.sign(RS256_KID, &claims),
        now,
        TokenErrorKind::Expired,
    )
    .await;
    assert!(detail.contains("expired at"), "{detail}");
    // The ends of the time range: no overflow.
    claims["exp"] = json!(253_402_300_799_i64); // 9999-12-31T23:59:59Z
    claims["nbf"] = json!(-377_705_116_800_i64); // -9999-01-01T00:00:00Z
    verify(&provisioners, &idp.sign(RS256_KID, &claims), now)
        .await
        .expect("far ahead and far back");
}

#[tokio::test]
async fn a_token_without_exp_is_malformed() {
    let (idp, provisioners) = setup(|_| {}).await;
    let now = now();
    let mut claims = idp.claims(ALICE, now);
    claims.as_object_mut().unwrap().remove("exp");
    refused(
        &provisioners,
        &idp.sign(RS256_KID, &claims),
        now,
        TokenErrorKind::Malformed,
    )
    .await;
}

#[tokio::test]
async fn nbf_or_iat_in_the_future_is_not_yet_valid() {
    let (idp, provisioners) = setup(|_| {}).await;
    let now = now();
    for claim in ["nbf", "iat"] {
        let mut claims = idp.claims(ALICE, now);
        claims[claim] = json!((now + Duration::seconds(61)).unix_timestamp());
        let detail = refused(
            &provisioners,
            &idp.sign(RS256_KID, &claims),
            now,
            TokenErrorKind::NotYetValid,
        )
        .await;
        assert!(detail.contains(claim), "{detail}");
        claims[claim] = json!((now + Duration::seconds(59)).unix_timestamp());
        verify(&provisioners, &idp.sign(RS256_KID, &claims), now)
            .await
            .unwrap_or_else(|e| panic!("{claim} within the skew: {e}"));
    }
}

// ---------------------------------------------------------------------------------------------
// Issuer, audience, signature

#[tokio::test]
async fn another_audience_is_refused() {
    let (idp, provisioners) = setup(|_| {}).await;
    let now = now();
    let mut claims = idp.claims(ALICE, now);
    claims["aud"] = json!("another-client");
    let token = idp.sign(RS256_KID, &claims);
    // The only OIDC provisioner gets the token, and says why it is refused.
    refused(&provisioners, &token, now, TokenErrorKind::BadAudience).await;
}

#[tokio::test]
async fn with_several_audiences_azp_must_be_the_client_id() {
    let (idp, provisioners) = setup(|_| {}).await;
    let now = now();
    let mut claims = idp.claims(ALICE, now);
    claims["aud"] = json!([CLIENT_ID, "another-client"]);
    claims["azp"] = json!("another-client");
    let detail = refused(
        &provisioners,
        &idp.sign(RS256_KID, &claims),
        now,
        TokenErrorKind::BadAudience,
    )
    .await;
    assert!(detail.contains("azp"), "{detail}");
    claims["azp"] = json!(CLIENT_ID);
    verify(&provisioners, &idp.sign(RS256_KID, &claims), now)
        .await
        .expect("azp is the client id");
    claims.as_object_mut().unwrap().remove("azp");
    verify(&provisioners, &idp.sign(RS256_KID, &claims), now)
        .await
        .expect("no azp");
}

#[tokio::test]
async fn another_issuer_is_refused() {
    let (idp, provisioners) = setup(|_| {}).await;
    let now = now();
    let mut claims = idp.claims(ALICE, now);
    claims["iss"] = json!("https://evil.example.com");
    refused(
        &provisioners,
        &idp.sign(RS256_KID, &claims),
        now,
        TokenErrorKind::BadIssuer,
    )
    .await;
    // Exactly: not even a trailing slash.
    claims["iss"] = json!(format!("{}/", idp.issuer()));
    refused(
        &provisioners,
        &idp.sign(RS256_KID, &claims),
        now,
        TokenErrorKind::BadIssuer,
    )
    .await;
}

#[tokio::test]
async fn a_tampered_token_has_a_bad_signature() {
    let (idp, provisioners) = setup(|_| {}).await;
    let now = now();
    let token = idp.id_token(ALICE, now);
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut claims = idp.claims(ALICE, now);
    claims["email"] = json!("mallory@example.com");
    parts[1] = base64url(claims.to_string().as_bytes());
    refused(
        &provisioners,
        &parts.join("."),
        now,
        TokenErrorKind::BadSignature,
    )
    .await;
    // Signed by another key under the provider's kid.
    let other = SigningKey::generate_rsa2048();
    let forged = sign_jwt(&other, Some(RS256_KID), &idp.claims(ALICE, now));
    refused(&provisioners, &forged, now, TokenErrorKind::BadSignature).await;
}

#[tokio::test]
async fn only_rs256_and_es256_are_accepted() {
    let (idp, provisioners) = setup(|_| {}).await;
    let now = now();
    let p384 = SigningKey::generate_p384();
    let token = sign_jwt(&p384, Some("ec-384"), &idp.claims(ALICE, now));
    let detail = refused(&provisioners, &token, now, TokenErrorKind::BadSignature).await;
    assert!(detail.contains("ES384"), "{detail}");
    // An ES256 signature under the RSA key's kid.
    let es = idp.key(ES256_KID);
    let token = sign_jwt(&es, Some(RS256_KID), &idp.claims(ALICE, now));
    refused(&provisioners, &token, now, TokenErrorKind::BadSignature).await;
    assert_eq!(idp.jwks_fetches(), 1);
}

// ---------------------------------------------------------------------------------------------
// Keys: unknown kid, refetch, rotation

#[tokio::test]
async fn an_unknown_kid_refetches_once_within_the_interval() {
    let (idp, provisioners) = setup(|_| {}).await;
    let now = now();
    verify(&provisioners, &idp.id_token(ALICE, now), now)
        .await
        .expect("verifies");
    assert_eq!(idp.jwks_fetches(), 1);

    // A key the provider has not published yet: one refetch, and still unknown.
    idp.add_key("rsa-2", SigningKey::generate_rsa2048(), false);
    let claims = idp.claims(ALICE, now);
    let token = idp.sign("rsa-2", &claims);
    refused(&provisioners, &token, now, TokenErrorKind::UnknownKey).await;
    assert_eq!(idp.jwks_fetches(), 2, "one refetch for an unknown kid");

    // Within the interval: no refetch, for this kid or another, even once it is published.
    let later = now + REFETCH_INTERVAL - Duration::seconds(1);
    idp.publish("rsa-2");
    let detail = refused(&provisioners, &token, later, TokenErrorKind::UnknownKey).await;
    assert!(detail.contains("refetched less than"), "{detail}");
    assert_eq!(
        idp.jwks_fetches(),
        2,
        "no second refetch within the interval"
    );

    // After the interval the refetch finds the published key.
    let after = now + REFETCH_INTERVAL;
    verify(&provisioners, &token, after)
        .await
        .expect("found by the refetch after the interval");
    assert_eq!(idp.jwks_fetches(), 3);
}

#[tokio::test]
async fn a_key_published_after_the_first_fetch_is_found_by_the_refetch() {
    let (idp, provisioners) = setup(|_| {}).await;
    let now = now();
    verify(&provisioners, &idp.id_token(ALICE, now), now)
        .await
        .expect("verifies");
    idp.rotate(RS256_KID, "rsa-2");
    let identity = verify(
        &provisioners,
        &idp.sign("rsa-2", &idp.claims(ALICE, now)),
        now,
    )
    .await
    .expect("the rotated key is found by the refetch");
    assert_eq!(identity.email.as_deref(), Some(ALICE));
    assert_eq!(idp.jwks_fetches(), 2);
    assert_eq!(
        idp.discovery_fetches(),
        1,
        "the configuration is not fetched again"
    );
    // The withdrawn key is gone with the refetched JWKS.
    let old = sign_jwt(
        &idp.key(RS256_KID),
        Some(RS256_KID),
        &idp.claims(ALICE, now),
    );
    refused(&provisioners, &old, now, TokenErrorKind::UnknownKey).await;
}

#[tokio::test]
async fn two_unknown_kids_within_the_interval_refetch_once() {
    let (idp, provisioners) = setup(|_| {}).await;
    let now = now();
    verify(&provisioners, &idp.id_token(ALICE, now), now)
        .await
        .expect("verifies");
    let es = idp.key(ES256_KID);
    for (i, kid) in ["made-up-1", "made-up-2"].into_iter().enumerate() {
        let token = sign_jwt(&es, Some(kid), &idp.claims(ALICE, now));
        let at = now + Duration::seconds(i as i64 * 10);
        refused(&provisioners, &token, at, TokenErrorKind::UnknownKey).await;
    }
    assert_eq!(idp.jwks_fetches(), 2, "the first fetch and one refetch");
}

// ---------------------------------------------------------------------------------------------
// Email, domains, admins, groups, account binding

#[tokio::test]
async fn an_unverified_email_is_refused() {
    let (idp, provisioners) = setup(|_| {}).await;
    let now = now();
    for (name, verified) in [
        ("false", Some(json!(false))),
        ("the string false", Some(json!("false"))),
        ("missing", None),
    ] {
        let mut claims = idp.claims(ALICE, now);
        match verified {
            Some(v) => claims["email_verified"] = v,
            None => {
                claims.as_object_mut().unwrap().remove("email_verified");
            }
        }
        let error = verify(&provisioners, &idp.sign(RS256_KID, &claims), now)
            .await
            .expect_err(name);
        assert_eq!(error.kind, TokenErrorKind::EmailNotVerified, "{name}");
    }
    let mut claims = idp.claims(ALICE, now);
    claims["email_verified"] = json!("true");
    verify(&provisioners, &idp.sign(RS256_KID, &claims), now)
        .await
        .expect("the string \"true\" counts as true");
}

#[tokio::test]
async fn a_token_without_email_is_malformed() {
    let (idp, provisioners) = setup(|_| {}).await;
    let now = now();
    let mut claims = idp.claims(ALICE, now);
    claims.as_object_mut().unwrap().remove("email");
    refused(
        &provisioners,
        &idp.sign(RS256_KID, &claims),
        now,
        TokenErrorKind::Malformed,
    )
    .await;
}

#[tokio::test]
async fn an_email_outside_the_domains_is_refused() {
    let (idp, provisioners) = setup(|c| c.domains = vec!["Example.com".into()]).await;
    let now = now();
    verify(&provisioners, &idp.id_token("Bob@EXAMPLE.COM", now), now)
        .await
        .expect("the domain matches without regard to case");
    for email in ["eve@example.org", "eve@sub.example.com"] {
        let detail = refused(
            &provisioners,
            &idp.id_token(email, now),
            now,
            TokenErrorKind::DomainNotAllowed,
        )
        .await;
        assert!(detail.contains("is not one of"), "{detail}");
    }
}

#[tokio::test]
async fn admins_may_have_any_name_others_only_their_email() {
    let (idp, provisioners) = setup(|c| c.admins = vec!["OPS@example.com".into()]).await;
    let now = now();
    let user = verify(&provisioners, &idp.id_token(ALICE, now), now)
        .await
        .expect("verifies");
    assert!(!user.admin);
    assert_eq!(user.sans, vec![ALICE]);
    assert!(!user.allows(&dns("www.example.com")));

    let admin = verify(&provisioners, &idp.id_token("ops@Example.com", now), now)
        .await
        .expect("verifies");
    assert!(admin.admin);
    assert_eq!(admin.sans, vec!["ops@Example.com"]);
    assert!(admin.allows(&dns("www.example.com")));
}

#[tokio::test]
async fn groups_come_from_the_groups_claim() {
    let (idp, provisioners) = setup(|c| c.groups_claim = Some("roles".into())).await;
    let now = now();
    /// (case, the `roles` claim, the groups or the error).
    type Case<'a> = (&'a str, Option<Value>, Result<Vec<&'a str>, TokenErrorKind>);
    let cases: [Case; 4] = [
        (
            "an array",
            Some(json!(["web", "db"])),
            Ok(vec!["web", "db"]),
        ),
        ("one string", Some(json!("web")), Ok(vec!["web"])),
        ("missing", None, Ok(vec![])),
        (
            "not strings",
            Some(json!([1, 2])),
            Err(TokenErrorKind::Malformed),
        ),
    ];
    for (name, roles, expected) in cases {
        let mut claims = idp.claims(ALICE, now);
        if let Some(roles) = roles {
            claims["roles"] = roles;
        }
        let got = verify(&provisioners, &idp.sign(ES256_KID, &claims), now)
            .await
            .map(|identity| identity.groups)
            .map_err(|e| e.kind);
        let expected = expected.map(|g| g.into_iter().map(String::from).collect::<Vec<_>>());
        assert_eq!(got, expected, "{name}");
    }
}

#[tokio::test]
async fn a_nonce_holding_a_thumbprint_binds_the_token_to_that_account_key() {
    let (idp, provisioners) = setup(|_| {}).await;
    let now = now();
    let account_key = SigningKey::generate_p256();
    let thumbprint = account_key.jwk().thumbprint();
    let mut claims = idp.claims(ALICE, now);
    claims["nonce"] = json!(thumbprint);
    let identity = verify(&provisioners, &idp.sign(RS256_KID, &claims), now)
        .await
        .expect("verifies");
    assert_eq!(identity.account_thumbprint, Some(thumbprint.clone()));

    let mut claims = idp.claims(ALICE, now);
    claims["cnf"] = json!({ "jkt": thumbprint });
    let identity = verify(&provisioners, &idp.sign(RS256_KID, &claims), now)
        .await
        .expect("verifies");
    assert_eq!(identity.account_thumbprint, Some(thumbprint));
}

// ---------------------------------------------------------------------------------------------
// The provider: availability, trust, caching

#[tokio::test]
async fn a_provider_that_is_down_makes_tokens_fail_not_the_start() {
    let idp = MockIdp::start().await;
    let now = now();
    let token = idp.id_token(ALICE, now);
    idp.stop();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let provisioners = provisioners_for(&idp, |_| {});
    let detail = refused(
        &provisioners,
        &token,
        now,
        TokenErrorKind::ProviderUnavailable,
    )
    .await;
    assert!(detail.contains(&idp.configuration_endpoint()), "{detail}");
}

#[tokio::test]
async fn without_ca_file_the_mock_certificate_is_not_trusted() {
    let (idp, provisioners) = setup(|c| c.ca_file = None).await;
    let now = now();
    let detail = refused(
        &provisioners,
        &idp.id_token(ALICE, now),
        now,
        TokenErrorKind::ProviderUnavailable,
    )
    .await;
    assert!(detail.contains("certificate"), "{detail}");
    assert_eq!(idp.discovery_fetches(), 0);
}

#[tokio::test]
async fn cache_control_max_age_is_honoured() {
    let (idp, provisioners) = setup(|_| {}).await;
    idp.set_cache_control(Some("public, max-age=600"));
    let now = now();
    let at = |seconds: i64| now + Duration::seconds(seconds);
    let token = idp.sign(ES256_KID, &idp.claims(ALICE, now));
    verify(&provisioners, &token, at(0))
        .await
        .expect("verifies");
    verify(&provisioners, &token, at(599))
        .await
        .expect("verifies");
    assert_eq!((idp.discovery_fetches(), idp.jwks_fetches()), (1, 1));
    verify(&provisioners, &token, at(600))
        .await
        .expect("verifies");
    assert_eq!(
        (idp.discovery_fetches(), idp.jwks_fetches()),
        (2, 2),
        "fetched again once max-age has passed"
    );
}

#[tokio::test]
async fn no_store_means_fetching_for_every_token() {
    let (idp, provisioners) = setup(|_| {}).await;
    idp.set_cache_control(Some("no-store"));
    let now = now();
    let token = idp.id_token(ALICE, now);
    verify(&provisioners, &token, now).await.expect("verifies");
    verify(&provisioners, &token, now).await.expect("verifies");
    assert_eq!((idp.discovery_fetches(), idp.jwks_fetches()), (2, 2));
    // An unknown kid in a JWKS fetched just now is not fetched again.
    let forged = sign_jwt(&idp.key(RS256_KID), Some("nope"), &idp.claims(ALICE, now));
    refused(&provisioners, &forged, now, TokenErrorKind::UnknownKey).await;
    assert_eq!(idp.jwks_fetches(), 3);
}

#[tokio::test]
async fn the_default_cache_time_applies_without_a_header() {
    let (idp, provisioners) = setup(|_| {}).await;
    let now = now();
    let token = idp.id_token(ALICE, now);
    let default = mayfly::provisioner::oidc::provider::DEFAULT_CACHE_TIME;
    verify(&provisioners, &token, now).await.expect("verifies");
    verify(&provisioners, &token, now + default - Duration::seconds(1))
        .await
        .expect("verifies");
    assert_eq!(idp.jwks_fetches(), 1);
    verify(&provisioners, &token, now + default)
        .await
        .expect("verifies");
    assert_eq!(idp.jwks_fetches(), 2);
}

#[tokio::test]
async fn concurrent_tokens_share_one_fetch() {
    let (idp, provisioners) = setup(|_| {}).await;
    let provisioners = std::sync::Arc::new(provisioners);
    let now = now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let token = idp.id_token(&format!("user{i}@example.com"), now);
        let provisioners = provisioners.clone();
        tasks.spawn(async move { verify(&provisioners, &token, now).await });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("the task").expect("verifies");
    }
    assert_eq!((idp.discovery_fetches(), idp.jwks_fetches()), (1, 1));
}
