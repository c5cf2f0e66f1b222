//! Provisioners against a live server (issue 6): a JWK provisioner made with
//! `mayfly provisioner jwk-create`, a token minted with `mayfly token`, and a raw JWS client
//! that answers `tkauth-01` with it at a second ACME directory (instant-acme cannot post a
//! custom challenge payload). The spent token is then refused at `/v1/sign`.

use std::path::Path;
use std::time::Duration;

use acme_tests::client::{AcmeClient, csr_b64};
use acme_tests::mayfly::{self, MayflyServer, ServeOptions, output_text};
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
    server.stop().expect("stop");
}
