//! Provisioners through the ACME API (issue 6): a second ACME directory with its own policy,
//! accounts that belong to their directory, EAB keys tied to a provisioner, and `tkauth-01`
//! answered with JWK one-time tokens.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use axum::http::{Method, StatusCode};
use mayfly::config::Config;
use mayfly::jose::{KeyRef, SigningKey, sign_jwt};
use serde_json::{Value, json};
use support::*;

/// The JWK provisioner `ops` signs tokens with this key; `teams` takes its tokens.
struct Setup {
    ca: TestCa,
    ops_key: SigningKey,
}

const TEAMS: &str = "/acme/teams";

async fn setup(extra: &str) -> Setup {
    setup_with(extra, |_| {}).await
}

async fn setup_with(extra: &str, change: impl FnOnce(&mut Config)) -> Setup {
    let ops_key = SigningKey::generate_p256();
    let public = ops_key.jwk();
    let toml = format!(
        r#"
[profiles.team]
description = "team certificates: the claims decide the lifetime"
order_lifetime = "1h"
authorization_lifetime = "1h"
identifier_types = ["dns"]
max_names = 10
key_usage = ["digitalSignature"]
extended_key_usage = ["server_auth"]

[provisioners.teams]
type = "acme"
token_authorizers = ["ops"]
profiles = ["team"]
claims = {{ min_cert_duration = "1h", default_cert_duration = "2h", max_cert_duration = "3h" }}

[provisioners.ops]
type = "jwk"
key = '{public}'

[provisioners.other]
type = "jwk"
key = '{other}'
{extra}
"#,
        public = serde_json::to_string(&public).unwrap(),
        other = serde_json::to_string(&SigningKey::generate_p256().jwk()).unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mayfly.toml");
    std::fs::write(&path, toml).unwrap();
    let mut config = Config::load(Some(&path), figment::Figment::new()).expect("the config loads");
    change(&mut config);
    Setup {
        ca: TestCa::with_config(config).await,
        ops_key,
    }
}

impl Setup {
    /// newAccount at the teams directory.
    async fn teams_account(&self) -> Account {
        let key = SigningKey::generate_p256();
        let reply = self
            .ca
            .post(
                &key,
                KeyRef::Jwk,
                &format!("{TEAMS}/new-account"),
                Some(&json!({})),
            )
            .await;
        reply.expect_json(StatusCode::CREATED);
        Account {
            key,
            url: reply.location(),
        }
    }

    /// A one-time token of `ops` for `sans`, bound to `account`'s key.
    fn token(&self, sans: &[&str], bound_to: Option<&SigningKey>) -> String {
        self.token_with(sans, bound_to, json!({}))
    }

    fn token_with(&self, sans: &[&str], bound_to: Option<&SigningKey>, extra: Value) -> String {
        let now = self.ca.now().unix_timestamp();
        let mut claims = json!({
            "iss": "ops",
            "sub": sans[0],
            "sans": sans,
            "aud": format!("{BASE}/v1/sign"),
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "jti": format!("jti-{}", rand_suffix()),
        });
        if let Some(key) = bound_to {
            claims["cnf"] = json!({ "jkt": key.jwk().thumbprint() });
        }
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        sign_jwt(
            &self.ops_key,
            Some(&self.ops_key.jwk().thumbprint()),
            &claims,
        )
    }

    async fn order(&self, account: &Account, names: &[&str]) -> (String, Value) {
        let identifiers: Vec<Value> = names
            .iter()
            .map(|n| json!({"type": "dns", "value": n}))
            .collect();
        let reply = self
            .ca
            .account_post(
                account,
                &format!("{TEAMS}/new-order"),
                Some(&json!({ "identifiers": identifiers })),
            )
            .await;
        let order = reply.expect_json(StatusCode::CREATED);
        (reply.location(), order)
    }

    /// The tkauth-01 challenge of the order's first authorization.
    async fn tkauth_challenge(&self, account: &Account, order: &Value) -> Value {
        let authz = self
            .ca
            .fetch(account, order["authorizations"][0].as_str().unwrap())
            .await;
        authz["challenges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "tkauth-01")
            .expect("a tkauth-01 challenge")
            .clone()
    }

    /// Answers the challenge with `token`; returns the challenge as answered.
    async fn answer(&self, account: &Account, challenge: &Value, token: &str) -> Value {
        self.ca
            .account_post(
                account,
                challenge["url"].as_str().unwrap(),
                Some(&json!({ "atc": token })),
            )
            .await
            .expect_json(StatusCode::OK)
    }
}

fn rand_suffix() -> String {
    mayfly::jose::base64url(&SigningKey::generate_p256().jwk().thumbprint().as_bytes()[..12])
}

#[tokio::test]
async fn each_acme_provisioner_has_its_own_directory() {
    let s = setup("").await;
    let teams =
        s.ca.request(Method::GET, &format!("{TEAMS}/directory"))
            .await
            .expect_json(StatusCode::OK);
    assert_eq!(teams["newOrder"], format!("{BASE}{TEAMS}/new-order"));
    assert_eq!(teams["newAccount"], format!("{BASE}{TEAMS}/new-account"));
    assert_eq!(teams["newNonce"], format!("{BASE}{TEAMS}/new-nonce"));

    // The default provisioner is at /directory and at /acme/acme/directory, with the same URLs.
    let root =
        s.ca.request(Method::GET, "/directory")
            .await
            .expect_json(StatusCode::OK);
    let named =
        s.ca.request(Method::GET, "/acme/acme/directory")
            .await
            .expect_json(StatusCode::OK);
    assert_eq!(root, named);
    assert_eq!(root["newOrder"], format!("{BASE}/acme/new-order"));

    // Token provisioners and unknown names have no directory.
    for path in ["/acme/ops/directory", "/acme/nope/directory"] {
        s.ca.request(Method::GET, path)
            .await
            .expect_problem(404, "malformed");
    }
}

#[tokio::test]
async fn an_account_belongs_to_the_directory_that_created_it() {
    let s = setup("").await;
    let account = s.teams_account().await;
    // Every answer links to its own directory (RFC 8555 §7.1).
    let reply = s.ca.post_as_get(&account, &account.url).await;
    assert_eq!(
        reply.header("link"),
        Some(format!("<{BASE}{TEAMS}/directory>;rel=\"index\"").as_str())
    );
    assert!(
        account.url.starts_with(&format!("{BASE}{TEAMS}/account/")),
        "{}",
        account.url
    );
    // Its kid at the default directory names no account there.
    s.ca.new_order_reply(&account, &[NAME])
        .await
        .expect_problem(400, "accountDoesNotExist");
    // Its key cannot make a second account at the default directory.
    s.ca.post(
        &account.key,
        KeyRef::Jwk,
        "/acme/new-account",
        Some(&json!({})),
    )
    .await
    .expect_problem(403, "unauthorized");
}

#[tokio::test]
async fn a_provisioner_offers_only_its_profiles() {
    let s = setup("").await;
    let account = s.teams_account().await;
    let reply =
        s.ca.account_post(
            &account,
            &format!("{TEAMS}/new-order"),
            Some(
                &json!({"identifiers": [{"type": "dns", "value": NAME}], "profile": "shortlived"}),
            ),
        )
        .await;
    reply.expect_problem(400, "invalidProfile");
    // Without a profile, the provisioner's first one.
    let (_, order) = s.order(&account, &[NAME]).await;
    assert_eq!(order["profile"], "team");
}

#[tokio::test]
async fn tkauth_01_is_offered_next_to_the_network_challenges() {
    let s = setup("").await;
    let account = s.teams_account().await;
    let (_, order) = s.order(&account, &[NAME]).await;
    let authz =
        s.ca.fetch(&account, order["authorizations"][0].as_str().unwrap())
            .await;
    let types: Vec<&str> = authz["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["http-01", "dns-01", "tls-alpn-01", "tkauth-01"]);
    let tkauth = s.tkauth_challenge(&account, &order).await;
    assert_eq!(tkauth["tkauth-type"], "atc");
    assert_eq!(tkauth["token-authorities"], json!(["ops"]));

    // The default directory's authorizations offer no tkauth-01.
    let plain = s.ca.new_account().await;
    let (_, order) = s.ca.new_order(&plain, &[NAME]).await;
    let authz =
        s.ca.fetch(&plain, order["authorizations"][0].as_str().unwrap())
            .await;
    assert!(
        authz["challenges"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["type"] != "tkauth-01")
    );
}

#[tokio::test]
async fn token_only_offers_tkauth_01_alone() {
    let s = setup(
        r#"
[provisioners.robots]
type = "acme"
token_authorizers = ["ops"]
token_only = true
profiles = ["team"]
claims = { min_cert_duration = "1h", default_cert_duration = "2h", max_cert_duration = "3h" }
"#,
    )
    .await;
    let key = SigningKey::generate_p256();
    let reply =
        s.ca.post(
            &key,
            KeyRef::Jwk,
            "/acme/robots/new-account",
            Some(&json!({})),
        )
        .await;
    reply.expect_json(StatusCode::CREATED);
    let account = Account {
        key,
        url: reply.location(),
    };
    let reply =
        s.ca.account_post(
            &account,
            "/acme/robots/new-order",
            Some(&json!({"identifiers": [{"type": "dns", "value": NAME}]})),
        )
        .await;
    let order = reply.expect_json(StatusCode::CREATED);
    let authz =
        s.ca.fetch(&account, order["authorizations"][0].as_str().unwrap())
            .await;
    let types: Vec<&str> = authz["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["tkauth-01"]);
}

#[tokio::test]
async fn a_bound_token_authorizes_the_order_and_the_claims_set_the_lifetime() {
    let s = setup("").await;
    let account = s.teams_account().await;
    let (order_url, order) = s.order(&account, &[NAME]).await;
    let challenge = s.tkauth_challenge(&account, &order).await;
    let token = s.token(&[NAME], Some(&account.key));
    let answered = s.answer(&account, &challenge, &token).await;
    assert_eq!(answered["status"], "valid", "{answered}");

    let order = s.ca.fetch(&account, &order_url).await;
    assert_eq!(order["status"], "ready", "{order}");
    let done =
        s.ca.finalize(&account, &order, &csr(&[NAME]))
            .await
            .expect_json(StatusCode::OK);
    let certificate =
        s.ca.post_as_get(&account, done["certificate"].as_str().unwrap())
            .await;
    assert_eq!(certificate.status, StatusCode::OK);
    let der = pem_certificates(&certificate.body)[0].clone();
    let (_, leaf) = x509_parser::parse_x509_certificate(&der).unwrap();
    let validity = leaf.validity();
    // teams' claims: default 2 h, plus the 1 min backdate of [acme.claims].
    assert_eq!(
        validity.not_after.timestamp() - validity.not_before.timestamp(),
        2 * 3600 + 60
    );
    let sans: Vec<String> = leaf
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(sans, [format!("DNSName({NAME})")]);
}

/// Each refused token makes the challenge invalid with an error that names the check.
#[tokio::test]
async fn a_refused_token_makes_the_challenge_invalid_and_names_the_check() {
    let s = setup("").await;
    let account = s.teams_account().await;
    let stranger = SigningKey::generate_p256();
    let expired_at = s.ca.now().unix_timestamp() - 600;
    let other_key = SigningKey::generate_p256();
    let from_other = sign_jwt(
        &other_key,
        Some(&other_key.jwk().thumbprint()),
        &json!({"iss": "other", "sub": NAME, "sans": [NAME], "aud": format!("{BASE}/v1/sign"),
                "nbf": s.ca.now().unix_timestamp(), "exp": s.ca.now().unix_timestamp() + 60,
                "jti": "x1", "cnf": {"jkt": account.key.jwk().thumbprint()}}),
    );
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "bound to another account",
            s.token(&[NAME], Some(&stranger)),
            "accountMismatch",
        ),
        ("not bound", s.token(&[NAME], None), "accountMismatch"),
        (
            "another name",
            s.token(&["b.example.com"], Some(&account.key)),
            "sanNotAllowed",
        ),
        (
            "expired",
            s.token_with(
                &[NAME],
                Some(&account.key),
                json!({"nbf": expired_at - 60, "iat": expired_at - 60, "exp": expired_at}),
            ),
            "tokenExpired",
        ),
        (
            "a provisioner that is not an authorizer",
            from_other,
            "unknownProvisioner",
        ),
        ("not a token", "not-a-token".to_owned(), "malformedToken"),
    ];
    for (name, token, check) in cases {
        let (_, order) = s.order(&account, &[NAME]).await;
        let challenge = s.tkauth_challenge(&account, &order).await;
        let answered = s.answer(&account, &challenge, &token).await;
        assert_eq!(answered["status"], "invalid", "{name}: {answered}");
        assert_eq!(answered["error"]["type"], urn("unauthorized"), "{name}");
        let detail = answered["error"]["detail"].as_str().unwrap();
        assert!(detail.contains(check), "{name}: {detail}");
    }
    // Each refusal is in the audit log, by the account, naming the TokenError kind (issue 7).
    let authority = &s.ca.state.0.authority;
    authority.flush_audit().await;
    let refused = mayfly::storage::AuditFilter {
        kind: Some("auth.refused".into()),
        ..Default::default()
    };
    let page = authority.audit_events(&refused, None, 100).await.unwrap();
    let reasons: Vec<String> = page
        .events
        .iter()
        .rev()
        .map(|r| r.event.detail["reason"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        reasons,
        [
            "accountMismatch",
            "accountMismatch",
            "sanNotAllowed",
            "tokenExpired",
            "unknownProvisioner",
            "malformedToken"
        ]
    );
    let account_id = account.url.rsplit('/').next().unwrap();
    assert!(
        page.events
            .iter()
            .all(|r| r.event.actor == format!("account:{account_id}")
                && r.event.object == format!("identifier:dns:{NAME}")),
        "{page:?}"
    );
}

#[tokio::test]
async fn a_token_is_accepted_once() {
    let s = setup("").await;
    let account = s.teams_account().await;
    // A token for two names answers the first authorization; the second one, a new
    // authorization of the same account, is refused: the token is spent.
    let token = s.token(&[NAME, "b.example.com"], Some(&account.key));
    let (_, first) = s.order(&account, &[NAME]).await;
    let challenge = s.tkauth_challenge(&account, &first).await;
    assert_eq!(
        s.answer(&account, &challenge, &token).await["status"],
        "valid"
    );

    let (_, second) = s.order(&account, &["b.example.com"]).await;
    let challenge = s.tkauth_challenge(&account, &second).await;
    let answered = s.answer(&account, &challenge, &token).await;
    assert_eq!(answered["status"], "invalid", "{answered}");
    let detail = answered["error"]["detail"].as_str().unwrap();
    assert!(detail.contains("tokenReplayed"), "{detail}");
}

#[tokio::test]
async fn a_tkauth_answer_without_a_token_is_malformed() {
    let s = setup("").await;
    let account = s.teams_account().await;
    let (_, order) = s.order(&account, &[NAME]).await;
    let challenge = s.tkauth_challenge(&account, &order).await;
    s.ca.account_post(
        &account,
        challenge["url"].as_str().unwrap(),
        Some(&json!({})),
    )
    .await
    .expect_problem(400, "malformed");
    // The challenge is still pending: the client may answer it properly.
    let again =
        s.ca.fetch(&account, challenge["url"].as_str().unwrap())
            .await;
    assert_eq!(again["status"], "pending");
}

#[tokio::test]
async fn the_tokens_groups_reach_the_validator_chain() {
    let s = setup(
        r#"
[[provisioners.teams.validators]]
name = "server_group"
group_prefixes = { nv = "nova-team" }
"#,
    )
    .await;
    let name = "nv-a.example.com";
    // One account each: a second order of the same account would reuse the authorization,
    // and with it the first token's identity.
    let issue = |groups: Value| {
        let s = &s;
        async move {
            let account = s.teams_account().await;
            let (order_url, order) = s.order(&account, &[name]).await;
            let challenge = s.tkauth_challenge(&account, &order).await;
            let token = s.token_with(&[name], Some(&account.key), json!({ "groups": groups }));
            assert_eq!(
                s.answer(&account, &challenge, &token).await["status"],
                "valid"
            );
            let order = s.ca.fetch(&account, &order_url).await;
            s.ca.finalize(&account, &order, &csr(&[name])).await
        }
    };
    // A member of nova-team may have nv- names.
    issue(json!(["nova-team"]))
        .await
        .expect_json(StatusCode::OK);
    // Without the group, the chain refuses at finalize, naming the rule.
    let problem = issue(json!(["swift-team"]))
        .await
        .expect_problem(403, "unauthorized");
    assert!(problem.to_string().contains("server_group"), "{problem}");
}

#[tokio::test]
async fn an_eab_key_tied_to_a_provisioner_binds_accounts_at_its_directory_only() {
    use mayfly::jose::eab::{MacAlgorithm, sign_eab};
    let s = setup("").await;
    let store = mayfly::storage::connect(&s.ca.database_url(), 1)
        .await
        .unwrap();
    let eab = mayfly::admin::eab::add_for(&*store, "team", true, Some("teams"), s.ca.now())
        .await
        .unwrap();
    let bind = |path: &str, key: &SigningKey| {
        let binding = sign_eab(
            MacAlgorithm::Hs256,
            &eab.id,
            &eab.hmac_key,
            &url(path),
            &key.jwk(),
        );
        json!({ "externalAccountBinding": binding })
    };
    let key = SigningKey::generate_p256();
    let reply =
        s.ca.post(
            &key,
            KeyRef::Jwk,
            "/acme/new-account",
            Some(&bind("/acme/new-account", &key)),
        )
        .await;
    let problem = reply.expect_problem(403, "unauthorized");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("{BASE}{TEAMS}/directory")),
        "{problem}"
    );
    let path = format!("{TEAMS}/new-account");
    let reply =
        s.ca.post(&key, KeyRef::Jwk, &path, Some(&bind(&path, &key)))
            .await;
    reply.expect_json(StatusCode::CREATED);
}

/// An OIDC ID token answers tkauth-01 too: an admin for any name, bound to the account by its
/// `nonce`; a user who is not an admin gets only their email, so not a DNS name.
#[tokio::test]
async fn an_oidc_admin_token_authorizes_and_a_users_does_not() {
    use mayfly::provisioner::ProvisionerConfig;
    use support::oidc_idp::{MockIdp, RS256_KID};
    let idp = MockIdp::start().await;
    let s = setup_with("", |config| {
        idp.add_to(config, "corp");
        if let Some(ProvisionerConfig::Oidc(corp)) = config.provisioners.get_mut("corp") {
            corp.admins = vec!["pki-admin@example.com".to_owned()];
        }
        if let Some(ProvisionerConfig::Acme(teams)) = config.provisioners.get_mut("teams") {
            teams.token_authorizers = vec!["ops".to_owned(), "corp".to_owned()];
        }
    })
    .await;
    let account = s.teams_account().await;
    let id_token = |email: &str| {
        let mut claims = idp.claims(email, s.ca.now());
        claims["nonce"] = json!(account.key.jwk().thumbprint());
        idp.sign(RS256_KID, &claims)
    };

    let (_, order) = s.order(&account, &[NAME]).await;
    let challenge = s.tkauth_challenge(&account, &order).await;
    assert_eq!(challenge["token-authorities"], json!(["ops", "corp"]));
    let answered = s
        .answer(&account, &challenge, &id_token("alice@example.com"))
        .await;
    assert_eq!(answered["status"], "invalid", "{answered}");
    let detail = answered["error"]["detail"].as_str().unwrap();
    assert!(detail.contains("sanNotAllowed"), "{detail}");
    assert!(detail.contains("alice@example.com"), "{detail}");

    let (order_url, order) = s.order(&account, &[NAME]).await;
    let challenge = s.tkauth_challenge(&account, &order).await;
    let answered = s
        .answer(&account, &challenge, &id_token("pki-admin@example.com"))
        .await;
    assert_eq!(answered["status"], "valid", "{answered}");
    let order = s.ca.fetch(&account, &order_url).await;
    assert_eq!(order["status"], "ready", "{order}");
}
