//! The account lifecycle with real clients (RFC 8555 §7.3): certbot updates and deactivates
//! its account, lego registers with External Account Binding, and instant-acme binds an
//! account, reads its orders list and rolls its key over.

use std::path::Path;
use std::process::Output;

use acme_tests::Environment;
use acme_tests::environment::Server;
use acme_tests::mayfly::{EabCredentials, eab_add};
use acme_tests::verify::verify_chain;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use instant_acme::{Account, ExternalAccountKey, Identifier, NewAccount, NewOrder};
use mayfly::jose::{KeyRef, SigningKey, sign_jws};
use serde_json::Value;

/// Bound on one run of an external client (certbot is slow to start).
const CLIENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);
const EAB_REQUIRED: (&str, &str) = ("MAYFLY__ACME__EXTERNAL_ACCOUNT_REQUIRED", "true");

fn mayfly(env: &Environment) -> &acme_tests::mayfly::MayflyServer {
    match env.server() {
        Server::Mayfly(server) => server,
        Server::Pebble(_) => panic!("these tests run against Mayfly"),
    }
}

/// Runs a client to completion on loopback (no proxies), bounded by [`CLIENT_TIMEOUT`].
async fn run(mut command: tokio::process::Command) -> Output {
    for variable in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
        command
            .env_remove(variable)
            .env_remove(variable.to_lowercase());
    }
    command
        .env("NO_PROXY", "127.0.0.1,localhost")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    tokio::time::timeout(CLIENT_TIMEOUT, command.output())
        .await
        .expect("the client finished in time")
        .expect("the client ran")
}

fn describe(output: &Output) -> String {
    format!(
        "exit {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

// ---------------------------------------------------------------------------------------------
// certbot: update_account, unregister

/// `certbot <subcommand>` against `env`, keeping its state under `work`.
fn certbot(env: &Environment, work: &Path, subcommand: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new("certbot");
    command
        .arg(subcommand)
        .arg("--non-interactive")
        .args(["--server", &env.target().directory_url])
        .arg("--config-dir")
        .arg(work.join("config"))
        .arg("--work-dir")
        .arg(work.join("work"))
        .arg("--logs-dir")
        .arg(work.join("logs"))
        .env("REQUESTS_CA_BUNDLE", &env.target().tls_root);
    command
}

fn certbot_log(work: &Path) -> String {
    std::fs::read_to_string(work.join("logs").join("letsencrypt.log")).unwrap_or_default()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the copy");
    for entry in std::fs::read_dir(from).expect("read the directory") {
        let entry = entry.expect("a directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a file");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn certbot_update_account_and_unregister() {
    let env = Environment::mayfly().await.expect("mayfly starts");
    let work = tempfile::tempdir().expect("temp dir");
    let work = work.path();

    let mut register = certbot(&env, work, "register");
    register.args([
        "--agree-tos",
        "--no-eff-email",
        "--email",
        "first@example.com",
    ]);
    let output = run(register).await;
    assert!(output.status.success(), "register: {}", describe(&output));

    let mut update = certbot(&env, work, "update_account");
    update.args(["--no-eff-email", "--email", "second@example.com"]);
    let output = run(update).await;
    assert!(
        output.status.success(),
        "update_account: {}",
        describe(&output)
    );
    assert!(
        certbot_log(work).contains("second@example.com"),
        "the update is not in certbot's log"
    );

    // certbot forgets the account once it is deactivated: keep a copy to try it again.
    let accounts = work.join("config").join("accounts");
    let saved = work.join("saved-accounts");
    copy_dir(&accounts, &saved);
    let output = run(certbot(&env, work, "unregister")).await;
    assert!(output.status.success(), "unregister: {}", describe(&output));

    std::fs::remove_dir_all(&accounts).ok();
    copy_dir(&saved, &accounts);
    let mut again = certbot(&env, work, "update_account");
    again.args(["--no-eff-email", "--email", "third@example.com"]);
    let output = run(again).await;
    assert!(
        !output.status.success(),
        "a deactivated account was updated: {}",
        describe(&output)
    );
    let text = format!("{}{}", describe(&output), certbot_log(work));
    assert!(
        text.contains("urn:ietf:params:acme:error:unauthorized") && text.contains("deactivated"),
        "certbot did not report the deactivated account: {}",
        describe(&output)
    );
}

// ---------------------------------------------------------------------------------------------
// lego: --eab

fn lego(env: &Environment, work: &Path, name: &str) -> tokio::process::Command {
    let target = env.target();
    let mut command = tokio::process::Command::new("lego");
    command
        .args(["--server", &target.directory_url])
        .args(["--accept-tos", "--email", "test@example.com"])
        .args(["--domains", name])
        .arg("--http")
        .args(["--http.port", &format!("127.0.0.1:{}", target.http01_port)])
        .arg("--path")
        .arg(work)
        .env("LEGO_CA_CERTIFICATES", &target.tls_root);
    command
}

#[tokio::test(flavor = "multi_thread")]
async fn lego_registers_with_eab_and_issues() {
    let env = Environment::mayfly_with(&[EAB_REQUIRED])
        .await
        .expect("mayfly starts");
    let name = "eab.lego.mayfly.test";

    let without = tempfile::tempdir().expect("temp dir");
    let mut command = lego(&env, without.path(), name);
    command.arg("run");
    let output = run(command).await;
    assert!(!output.status.success(), "no EAB: {}", describe(&output));
    // lego reads meta.externalAccountRequired and stops before it asks.
    assert!(
        describe(&output).contains("requires External Account Binding"),
        "no EAB: {}",
        describe(&output)
    );

    let EabCredentials { kid, hmac_key } = eab_add(mayfly(&env), false).await.expect("an EAB key");
    let work = tempfile::tempdir().expect("temp dir");
    let mut command = lego(&env, work.path(), name);
    command
        .args(["--eab", "--kid", &kid, "--hmac", &hmac_key])
        .arg("run");
    let output = run(command).await;
    assert!(output.status.success(), "lego --eab: {}", describe(&output));
    let chain = work.path().join("certificates").join(format!("{name}.crt"));
    verify_chain(&chain, &env.target().issuer_root, &[name]).expect("the chain verifies");
}

// ---------------------------------------------------------------------------------------------
// instant-acme: EAB, the orders list, key rollover

/// A POST-as-GET signed by hand (instant-acme has no orders-list API). Returns the status,
/// the `Link` headers and the JSON body.
async fn post_as_get(
    env: &Environment,
    key: &SigningKey,
    account: &str,
    url: &str,
) -> (u16, Vec<String>, Value) {
    let client = acme_tests::https::client_trusting(&env.target().tls_root).expect("a client");
    let directory: Value = client
        .get(&env.target().directory_url)
        .send()
        .await
        .expect("the directory")
        .json()
        .await
        .expect("directory JSON");
    let new_nonce = directory["newNonce"].as_str().expect("newNonce");
    let nonce = client
        .head(new_nonce)
        .send()
        .await
        .expect("a nonce")
        .headers()["replay-nonce"]
        .to_str()
        .expect("an ASCII nonce")
        .to_owned();
    let jws = sign_jws(key, KeyRef::Kid(account), Some(&nonce), url, None);
    let response = client
        .post(url)
        .header("content-type", "application/jose+json")
        .body(jws.to_string())
        .send()
        .await
        .expect("a response");
    let status = response.status().as_u16();
    let links = response
        .headers()
        .get_all("link")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, links, body)
}

fn signing_key(credentials: &instant_acme::AccountCredentials) -> SigningKey {
    SigningKey::from_pkcs8(credentials.private_key().secret_pkcs8_der()).expect("a P-256 key")
}

#[tokio::test(flavor = "multi_thread")]
async fn instant_acme_eab_orders_list_and_key_rollover() {
    acme_tests::install_crypto_provider();
    let env = Environment::mayfly_with(&[EAB_REQUIRED])
        .await
        .expect("mayfly starts");
    let target = env.target();
    let new_account = NewAccount {
        contact: &[],
        terms_of_service_agreed: true,
        only_return_existing: false,
    };

    let refused = Account::builder_with_root(&target.tls_root)
        .expect("a builder")
        .create(&new_account, target.directory_url.clone(), None)
        .await;
    let error = format!("{:?}", refused.err().expect("refused without EAB"));
    assert!(error.contains("externalAccountRequired"), "{error}");

    let eab = eab_add(mayfly(&env), false).await.expect("an EAB key");
    let hmac_key = URL_SAFE_NO_PAD.decode(&eab.hmac_key).expect("base64url");
    let (mut account, credentials) = Account::builder_with_root(&target.tls_root)
        .expect("a builder")
        .create(
            &new_account,
            target.directory_url.clone(),
            Some(&ExternalAccountKey::new(eab.kid.clone(), &hmac_key)),
        )
        .await
        .expect("an account bound with EAB");
    let account_url = account.id().to_owned();
    let old_key = signing_key(&credentials);

    // The orders list: newest first.
    let mut orders = Vec::new();
    for name in ["one.orders.mayfly.test", "two.orders.mayfly.test"] {
        let identifiers = [Identifier::Dns(name.to_owned())];
        let order = account
            .new_order(&NewOrder::new(&identifiers))
            .await
            .expect("an order");
        orders.push(order.url().to_owned());
        // Orders made in the same second are listed by id; one second apart, by time.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    let list_url = format!("{account_url}/orders");
    let (status, links, body) = post_as_get(&env, &old_key, &account_url, &list_url).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["orders"], serde_json::json!([orders[1], orders[0]]));
    assert!(
        !links.iter().any(|l| l.contains("rel=\"next\"")),
        "{links:?}"
    );

    // Key rollover: the old key stops working, the new one works.
    let new_credentials = account.update_key().await.expect("the key rolls over");
    let new_key = signing_key(&new_credentials);
    let (status, _, body) = post_as_get(&env, &old_key, &account_url, &account_url).await;
    assert_eq!(status, 400, "the old key still works: {body}");
    let (status, _, body) = post_as_get(&env, &new_key, &account_url, &list_url).await;
    assert_eq!(status, 200, "{body}");
    let identifiers = [Identifier::Dns("three.orders.mayfly.test".to_owned())];
    account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .expect("an order with the new key");
}

// ---------------------------------------------------------------------------------------------
// mayfly admin eab: add, list, revoke, exit codes (over the admin API of a live server)

#[tokio::test(flavor = "multi_thread")]
async fn admin_eab_add_list_revoke() {
    let env = Environment::mayfly().await.expect("mayfly starts");
    let server = mayfly(&env);
    let admin = |args: &'static [&'static str]| async move {
        server.admin(args).await.expect("mayfly admin runs")
    };
    let first = eab_add(server, true).await.expect("a reusable key");
    let second = eab_add(server, false).await.expect("a single-use key");
    assert_eq!(
        URL_SAFE_NO_PAD.decode(&first.hmac_key).map(|k| k.len()),
        Ok(64)
    );

    let output = admin(&["eab", "add", "--label", "team a"]).await;
    assert!(output.status.success(), "{}", describe(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.starts_with("kid:") && text.contains("\nhmac_key: "),
        "{text}"
    );

    let output = server
        .admin(&["eab", "revoke", &second.kid])
        .await
        .expect("mayfly admin runs");
    assert!(output.status.success(), "{}", describe(&output));
    let output = admin(&["eab", "list", "--json"]).await;
    assert!(output.status.success(), "{}", describe(&output));
    let list: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let list = list.as_array().expect("an array");
    assert_eq!(list.len(), 3, "{list:?}");
    let find = |kid: &str| list.iter().find(|k| k["kid"] == kid).expect("listed");
    assert_eq!(find(&first.kid)["reusable"], true);
    assert_eq!(find(&first.kid)["revoked_at"], Value::Null);
    assert!(find(&second.kid)["revoked_at"].is_string());
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains(&first.hmac_key),
        "list shows an HMAC key"
    );

    let output = admin(&["eab", "list"]).await;
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(table.starts_with("KID"), "{table}");
    assert!(table.contains("team a"), "{table}");

    // Exit codes: 1 for an unknown kid, 2 for usage and configuration errors.
    let output = admin(&["eab", "revoke", "no-such-kid"]).await;
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("no EAB key with kid \"no-such-kid\""),
        "{}",
        describe(&output)
    );
    let output = admin(&["eab", "frobnicate"]).await;
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    // Without an admin certificate the CLI says how to make one.
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let mut command = acme_tests::mayfly::command();
    command
        .args([
            "admin",
            "eab",
            "list",
            "--url",
            &server.admin_url(),
            "--data-dir",
        ])
        .arg(elsewhere.path());
    let output = acme_tests::mayfly::run(command, acme_tests::mayfly::COMMAND_TIMEOUT)
        .await
        .expect("mayfly admin runs");
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("run `mayfly admin bootstrap`"),
        "{}",
        describe(&output)
    );
}
