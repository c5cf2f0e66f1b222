//! Provisioners against a live server (issue 6): a JWK provisioner made with
//! `mayfly provisioner jwk-create`, a token minted with `mayfly token`, and a raw JWS client
//! that answers `tkauth-01` with it at a second ACME directory (instant-acme cannot post a
//! custom challenge payload). The spent token is then refused at `/v1/sign`.

use std::path::Path;
use std::time::Duration;

use acme_tests::client::{AcmeClient, csr_b64};
use acme_tests::mayfly::{self, MayflyServer, ServeOptions, output_text};
use acme_tests::postgres;
use acme_tests::replicas::ReplicaPair;
use acme_tests::verify::verify_pem;
use serde_json::{Value, json};

/// Bound on each CLI call.
const CLI_TIMEOUT: Duration = Duration::from_secs(30);
const NAME: &str = "tkauth.example.com";

async fn cli(args: &[&str]) -> String {
    let mut command = mayfly::command();
    command.args(args);
    let output = mayfly::run(command, CLI_TIMEOUT)
        .await
        .expect("mayfly runs");
    assert!(
        output.status.success(),
        "mayfly {args:?} failed: {}",
        output_text(&output)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_from_mayfly_token_authorizes_an_acme_order_once() {
    acme_tests::install_crypto_provider();
    let dir = tempfile::tempdir().expect("temp dir");
    let password = dir.path().join("ops.password");
    std::fs::write(&password, "correct horse battery staple\n").expect("password file");
    let public = dir.path().join("ops.pub.json");
    let encrypted = dir.path().join("ops.jwe");
    cli(&[
        "provisioner",
        "jwk-create",
        "--name",
        "ops",
        "--public-out",
        path(&public),
        "--encrypted-out",
        path(&encrypted),
        "--password-file",
        path(&password),
    ])
    .await;
    let config = dir.path().join("mayfly.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[provisioners.teams]
type = "acme"
token_authorizers = ["ops"]
token_only = true

[provisioners.ops]
type = "jwk"
key_file = "{}"
encrypted_key_file = "{}"
"#,
            path(&public),
            path(&encrypted)
        ),
    )
    .expect("config");
    let server = MayflyServer::start(&ServeOptions {
        data_dir: Some(dir.path().join("data")),
        config: Some(config.clone()),
        ..ServeOptions::default()
    })
    .await
    .expect("mayfly starts");
    let base = format!("https://127.0.0.1:{}", server.port());
    let http = acme_tests::https::client_trusting(&server.root_ca()).expect("a client");

    let mut client = AcmeClient::new(http.clone(), vec![base.clone()]).with_provisioner("teams");
    client
        .new_account()
        .await
        .expect("newAccount at /acme/teams");
    let (order_path, order) = client.new_order(&[NAME]).await.expect("newOrder");
    let authz_url = order["authorizations"][0]
        .as_str()
        .expect("an authorization");
    let authz_path = client.path_from(authz_url, 0).expect("a path");
    let (authz, _) = client
        .get_json(&authz_path)
        .await
        .expect("the authorization");
    let challenges = authz["challenges"].as_array().expect("challenges");
    assert_eq!(
        challenges.len(),
        1,
        "token_only offers tkauth-01 alone: {authz}"
    );
    assert_eq!(challenges[0]["type"], "tkauth-01");
    assert_eq!(challenges[0]["tkauth-type"], "atc");

    let thumbprint = client.key().jwk().thumbprint();
    let token = cli(&[
        "token",
        "--config",
        path(&config),
        "--provisioner",
        "ops",
        "--san",
        NAME,
        "--ca-url",
        &base,
        "--account-thumbprint",
        &thumbprint,
        "--password-file",
        path(&password),
    ])
    .await;
    let token = token.trim();

    let challenge_path = client
        .path_from(challenges[0]["url"].as_str().expect("a url"), 0)
        .expect("a path");
    let answered = client
        .post(&challenge_path, Some(&json!({ "atc": token })))
        .await
        .expect("the answer")
        .json()
        .expect("JSON");
    assert_eq!(answered["status"], "valid", "{answered}");

    let (ready, _) = client
        .poll(&order_path, |status| status == "ready")
        .await
        .expect("ready");
    let finalize_path = client
        .path_from(ready["finalize"].as_str().expect("finalize"), 0)
        .expect("a path");
    let csr = csr_b64(&[NAME]).expect("a CSR");
    client
        .post(&finalize_path, Some(&json!({ "csr": csr })))
        .await
        .expect("finalize");
    let (valid, _) = client
        .poll(&order_path, |status| status == "valid")
        .await
        .expect("valid");
    let chain = client
        .download(valid["certificate"].as_str().expect("a certificate"), 0)
        .await
        .expect("the chain");
    let root = std::fs::read(server.root_ca()).expect("the root");
    verify_pem(chain.as_bytes(), &root, &[NAME]).expect("the chain verifies, with the SAN");

    // The token is spent: /v1/sign refuses it, on the token's single use.
    let response = http
        .post(format!("{base}/v1/sign"))
        .json(&json!({ "csr": csr_b64(&[NAME]).expect("a CSR"), "ott": token }))
        .send()
        .await
        .expect("/v1/sign answers");
    let status = response.status();
    let body: Value = response.json().await.expect("a JSON error");
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["type"], "tokenReplayed", "{body}");

    // A fresh token signs a CSR at /v1/sign; the certificate then renews itself over mutual
    // TLS at /v1/renew, for the same name and the provisioner's lifetime (the hours profile:
    // 1 day, plus the 1 minute backdate).
    let fresh = cli(&[
        "token",
        "--config",
        path(&config),
        "--provisioner",
        "ops",
        "--san",
        NAME,
        "--ca-url",
        &base,
        "--password-file",
        path(&password),
    ])
    .await;
    let key = rcgen::KeyPair::generate().expect("a key");
    let mut params = rcgen::CertificateParams::new(vec![NAME.to_owned()]).expect("params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr_pem = params
        .serialize_request(&key)
        .expect("a CSR")
        .pem()
        .expect("PEM");
    let response = http
        .post(format!("{base}/v1/sign"))
        .json(&json!({ "csr": csr_pem, "ott": fresh.trim() }))
        .send()
        .await
        .expect("/v1/sign answers");
    assert_eq!(response.status(), 201);
    let signed: Value = response.json().await.expect("JSON");
    let fullchain = signed["fullchain"].as_str().expect("a full chain");
    verify_pem(fullchain.as_bytes(), &root, &[NAME]).expect("the signed chain verifies");

    let identity = format!("{}{fullchain}", key.serialize_pem());
    let mtls = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&root).expect("the root as a certificate"),
        )
        .identity(reqwest::Identity::from_pem(identity.as_bytes()).expect("an identity"))
        .build()
        .expect("an mTLS client");
    let response = mtls
        .post(format!("{base}/v1/renew"))
        .json(&json!({}))
        .send()
        .await
        .expect("/v1/renew answers");
    assert_eq!(response.status(), 201);
    let renewed: Value = response.json().await.expect("JSON");
    assert_ne!(renewed["serial"], signed["serial"]);
    let renewed_chain = renewed["fullchain"].as_str().expect("a full chain");
    verify_pem(renewed_chain.as_bytes(), &root, &[NAME]).expect("the renewed chain verifies");
    let not_before = time::OffsetDateTime::parse(
        renewed["notBefore"].as_str().expect("notBefore"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("RFC 3339");
    let not_after = time::OffsetDateTime::parse(
        renewed["notAfter"].as_str().expect("notAfter"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("RFC 3339");
    assert_eq!(
        not_after - not_before,
        time::Duration::hours(24) + time::Duration::minutes(1)
    );
    server.stop().expect("stop");
}

/// The tkauth-01 challenge of the order's only authorization, as a path.
async fn tkauth_challenge_path(client: &mut AcmeClient, order: &Value) -> String {
    let authz_url = order["authorizations"][0]
        .as_str()
        .expect("an authorization");
    let replica = client.trace().last().map_or(0, |e| e.replica);
    let authz_path = client.path_from(authz_url, replica).expect("a path");
    let (authz, replica) = client
        .get_json(&authz_path)
        .await
        .expect("the authorization");
    let challenge = authz["challenges"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "tkauth-01"))
        .unwrap_or_else(|| panic!("no tkauth-01 in {authz}"));
    client
        .path_from(challenge["url"].as_str().expect("a url"), replica)
        .expect("a path")
}

/// A token is accepted once across replicas: spent on replica A, refused on replica B.
#[tokio::test(flavor = "multi_thread")]
async fn a_token_spent_on_one_replica_is_refused_on_the_other() {
    acme_tests::install_crypto_provider();
    let Ok(admin_url) = std::env::var(postgres::URL_ENV) else {
        eprintln!("skipped: {} is not set", postgres::URL_ENV);
        return;
    };
    let signing = ::mayfly::jose::SigningKey::generate_p256();
    let public = serde_json::to_string(&signing.jwk()).expect("JSON");
    let env: Vec<(String, String)> = [
        ("MAYFLY__PROVISIONERS__TEAMS__TYPE", "acme"),
        ("MAYFLY__PROVISIONERS__TEAMS__TOKEN_AUTHORIZERS", "[ops]"),
        ("MAYFLY__PROVISIONERS__OPS__TYPE", "jwk"),
        ("MAYFLY__PROVISIONERS__OPS__KEY", public.as_str()),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let pair = ReplicaPair::start_with(&admin_url, &env)
        .await
        .expect("two replicas");
    let mut client = AcmeClient::new(pair.http_client().expect("a client"), pair.bases())
        .with_provisioner("teams");
    client.new_account().await.expect("newAccount");
    let thumbprint = client.key().jwk().thumbprint();
    // Each replica has its own base URL here (behind a load balancer they would share one):
    // the token names both.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let audiences: Vec<String> = pair
        .bases()
        .iter()
        .map(|b| format!("{b}/v1/sign"))
        .collect();
    let token = ::mayfly::jose::sign_jwt(
        &signing,
        Some(&signing.jwk().thumbprint()),
        &json!({
            "iss": "ops", "sub": "a.replicas.example", "aud": audiences,
            "sans": ["a.replicas.example", "b.replicas.example"],
            "iat": now, "nbf": now, "exp": now + 120, "jti": "replicated-once",
            "cnf": { "jkt": thumbprint },
        }),
    );
    let token = token.as_str();

    let mut answers = Vec::new();
    for name in ["a.replicas.example", "b.replicas.example"] {
        let (_, order) = client.new_order(&[name]).await.expect("newOrder");
        let challenge = tkauth_challenge_path(&mut client, &order).await;
        let response = client
            .post(&challenge, Some(&json!({ "atc": token })))
            .await
            .expect("the answer");
        answers.push((response.replica, response.json().expect("JSON")));
    }
    let (first_replica, first) = &answers[0];
    let (second_replica, second) = &answers[1];
    assert_ne!(
        first_replica, second_replica,
        "the answers went to one replica"
    );
    assert_eq!(first["status"], "valid", "{first}");
    assert_eq!(second["status"], "invalid", "{second}");
    let detail = second["error"]["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("tokenReplayed"), "{second}");
}
