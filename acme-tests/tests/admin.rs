//! `mayfly admin` (issue 7) against a live server over the admin API's mutual TLS: bootstrap,
//! status, certs (filters, --json, export with progress), cert, revoke (one, and bulk by name
//! pattern with progress), accounts, eab, ca, crl, ari, audit, and the one-line error when the admin
//! listener cannot be reached.

use std::process::Output;

use acme_tests::Environment;
use acme_tests::clients::instant::ChallengeServer;
use acme_tests::clients::instant_ari::Client;
use acme_tests::environment::Server;
use acme_tests::mayfly::{MayflyServer, output_text};
use serde_json::Value;
use x509_parser::prelude::{FromDer, X509Certificate};

fn mayfly(env: &Environment) -> &MayflyServer {
    match env.server() {
        Server::Mayfly(server) => server,
        Server::Pebble(_) => panic!("these tests run against Mayfly"),
    }
}

async fn admin(server: &MayflyServer, args: &[&str]) -> Output {
    let output = server.admin(args).await.expect("mayfly admin runs");
    assert!(
        output.status.success(),
        "mayfly admin {args:?}: {}",
        output_text(&output)
    );
    output
}

async fn admin_json(server: &MayflyServer, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    let output = admin(server, &args).await;
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {}", output_text(&output)))
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn serial(der: &[u8]) -> String {
    let (_, cert) = X509Certificate::from_der(der).expect("a certificate");
    mayfly::issuer::serial_hex(cert.raw_serial())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_command_against_a_live_server() {
    let env = Environment::mayfly().await.expect("mayfly starts");
    let server = mayfly(&env);
    let client = Client::new(env.target()).await.expect("an account");
    let http = ChallengeServer::start(env.target().http01_port)
        .await
        .expect("the http-01 server starts");
    let one = serial(
        &client
            .issue(&http, &["one.fleet.test"])
            .await
            .expect("issued"),
    );
    let two = serial(
        &client
            .issue(&http, &["two.fleet.test"])
            .await
            .expect("issued"),
    );
    let other = serial(
        &client
            .issue(&http, &["db.other.test"])
            .await
            .expect("issued"),
    );

    // bootstrap (run by `server.admin` on first use) wrote the credential with mode 0600.
    let status = admin_json(server, &["status"]).await;
    let credential = server.data_dir().join("admin");
    for file in ["admin.pem", "admin-key.pem"] {
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(credential.join(file))
                .expect("written")
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    assert_eq!(status["certificates"]["issued"], 3, "{status}");
    assert_eq!(status["certificates"]["active"], 3, "{status}");
    assert_eq!(status["accounts"], 1, "{status}");
    let table = stdout(&admin(server, &["status"]).await);
    assert!(
        table.starts_with("CA            SHA-256 FINGERPRINT"),
        "{table}"
    );
    assert!(
        table.contains(
            "\nISSUED  ACTIVE  EXPIRED  REVOKED  ACCOUNTS\n3       3       0        0        1\n"
        ),
        "{table}"
    );
    // A second bootstrap does not overwrite the credential.
    let again = server.admin(&["bootstrap"]).await.expect("runs");
    assert_eq!(again.status.code(), Some(2), "{}", output_text(&again));
    assert!(String::from_utf8_lossy(&again.stderr).contains("pass --force"));

    // certs: a table, JSON, filters.
    let table = stdout(&admin(server, &["certs"]).await);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("SERIAL"), "{table}");
    assert_eq!(lines.len(), 4, "{table}");
    assert!(
        table.contains(&one) && table.contains("one.fleet.test"),
        "{table}"
    );
    let fleet = admin_json(server, &["certs", "--name", "*.fleet.test"]).await;
    let mut serials: Vec<&str> = fleet
        .as_array()
        .expect("an array")
        .iter()
        .map(|c| c["serial"].as_str().expect("serial"))
        .collect();
    serials.sort_unstable();
    let mut expected = [one.as_str(), two.as_str()];
    expected.sort_unstable();
    assert_eq!(serials, expected);
    let account = fleet[0]["account"].as_str().expect("account").to_owned();
    let by_account = admin_json(
        server,
        &["certs", "--account", &account, "--all", "--limit", "1"],
    )
    .await;
    assert_eq!(by_account.as_array().map(Vec::len), Some(3), "{by_account}");
    let expiring = admin_json(server, &["certs", "--expiring-before", "now+1m"]).await;
    assert_eq!(expiring, Value::Array(Vec::new()));
    let bad = server
        .admin(&["certs", "--status", "dormant"])
        .await
        .expect("runs");
    assert_eq!(bad.status.code(), Some(2), "{}", output_text(&bad));
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .contains("status \"dormant\" is not one of active, expired, revoked"),
        "{}",
        output_text(&bad)
    );

    // cert: fields, PEM, unknown serial.
    let text = stdout(&admin(server, &["cert", &one]).await);
    assert!(
        text.contains(&format!("serial:            {one}\n")),
        "{text}"
    );
    assert!(
        text.contains("names:             one.fleet.test\n"),
        "{text}"
    );
    assert!(text.contains("status:            active\n"), "{text}");
    let pem = stdout(&admin(server, &["cert", &one, "--pem"]).await);
    assert_eq!(
        pem.matches("-----BEGIN CERTIFICATE-----").count(),
        2,
        "{pem}"
    );
    let unknown = server.admin(&["cert", "4a0b0c0d"]).await.expect("runs");
    assert_eq!(unknown.status.code(), Some(1), "{}", output_text(&unknown));
    assert!(
        String::from_utf8_lossy(&unknown.stderr)
            .contains("no certificate with serial 4a0b0c0d was issued by this CA (404"),
        "{}",
        output_text(&unknown)
    );

    // export: every certificate's chain, with progress on stderr.
    let out = tempfile::tempdir().expect("temp dir");
    let out_dir = out.path().join("export");
    let exported = admin(
        server,
        &["certs", "--out", out_dir.to_str().expect("utf-8")],
    )
    .await;
    let progress = String::from_utf8_lossy(&exported.stderr);
    assert!(
        progress.contains("exported 1/3") && progress.contains("exported 3/3"),
        "{progress}"
    );
    for serial in [&one, &two, &other] {
        let chain =
            std::fs::read_to_string(out_dir.join(format!("{serial}.pem"))).expect("exported");
        assert!(chain.starts_with("-----BEGIN CERTIFICATE-----"));
    }

    // revoke one, then again (409), then in bulk by name pattern.
    let revoked = stdout(&admin(server, &["revoke", &other, "--reason", "keyCompromise"]).await);
    assert_eq!(
        revoked,
        format!("revoked certificate {other} (keyCompromise)\n")
    );
    // The server logs the change under the audit target, naming the admin certificate.
    let log = server.process().log();
    let audit = log
        .lines()
        .find(|line| line.contains("certificate.revoke"))
        .unwrap_or_else(|| panic!("no audit line in the log:\n{log}"));
    assert!(
        audit.contains("audit") && audit.contains("CN=mayfly-admin"),
        "{audit}"
    );
    assert!(audit.contains(&other), "{audit}");
    // And the audit log has it, naming the admin, as `mayfly admin audit` shows.
    let events = admin_json(server, &["audit", "--kind", "certificate.revoked"]).await;
    let event = events
        .as_array()
        .expect("a list")
        .iter()
        .find(|e| e["object"] == format!("serial:{other}"))
        .unwrap_or_else(|| panic!("no certificate.revoked event for {other}: {events}"));
    assert!(
        event["actor"]
            .as_str()
            .is_some_and(|a| a.starts_with("admin:CN=mayfly-admin")),
        "{event}"
    );
    let table = stdout(&admin(server, &["audit", "--limit", "5"]).await);
    assert!(
        table.starts_with("AT") && table.contains("certificate.revoked"),
        "{table}"
    );
    let twice = server.admin(&["revoke", &other]).await.expect("runs");
    assert_eq!(twice.status.code(), Some(1), "{}", output_text(&twice));
    assert!(String::from_utf8_lossy(&twice.stderr).contains("is already revoked (409"));
    let unconfirmed = server
        .admin(&[
            "revoke",
            "--name-pattern",
            "*.fleet.test",
            "--reason",
            "superseded",
        ])
        .await
        .expect("runs");
    assert_eq!(
        unconfirmed.status.code(),
        Some(2),
        "{}",
        output_text(&unconfirmed)
    );
    assert!(
        stdout(&unconfirmed).contains(&one),
        "lists what it would revoke"
    );
    assert!(String::from_utf8_lossy(&unconfirmed.stderr).contains("run again with --yes"));
    let bulk = admin(
        server,
        &[
            "revoke",
            "--name-pattern",
            "*.fleet.test",
            "--reason",
            "superseded",
            "--yes",
        ],
    )
    .await;
    let progress = String::from_utf8_lossy(&bulk.stderr);
    assert!(
        progress.contains("revoked 1/2\nrevoked 2/2\n"),
        "{progress}"
    );
    assert_eq!(
        stdout(&bulk),
        "revoked 2 certificates matching \"*.fleet.test\"\n"
    );
    let revoked = admin_json(server, &["certs", "--status", "revoked"]).await;
    assert_eq!(revoked.as_array().map(Vec::len), Some(3), "{revoked}");
    for cert in revoked.as_array().expect("an array") {
        let expected = if cert["serial"] == other.as_str() {
            "keyCompromise"
        } else {
            "superseded"
        };
        assert_eq!(cert["revocation_reason"], expected, "{cert}");
    }

    // crl: signed now, listing the three.
    let crl = admin_json(server, &["crl"]).await;
    assert_eq!(crl["entries"], 3, "{crl}");
    assert!(stdout(&admin(server, &["crl"]).await).starts_with("signed CRL number "));

    // ca: the chain, equal to the data directory's root at its end.
    let chain_file = out.path().join("chain.pem");
    admin(
        server,
        &["ca", "--out", chain_file.to_str().expect("utf-8")],
    )
    .await;
    let chain = std::fs::read_to_string(&chain_file).expect("written");
    let root = std::fs::read_to_string(server.root_ca()).expect("root");
    assert!(chain.ends_with(&root), "{chain}");
    assert_eq!(admin_json(server, &["ca"]).await["root_pem"], root);

    // ari: renew-now, then reset.
    let fresh = serial(
        &client
            .issue(&http, &["ari.fleet.test"])
            .await
            .expect("issued"),
    );
    let moved = stdout(&admin(server, &["ari", "renew-now", &fresh]).await);
    assert!(
        moved.starts_with(&format!("certificate {fresh} (not after ")),
        "{moved}"
    );
    let reset = stdout(&admin(server, &["ari", "reset", &fresh]).await);
    assert_eq!(
        reset,
        format!("certificate {fresh}: renewal window computed from its lifetime again\n")
    );

    // eab: add, list, revoke.
    let key = admin_json(server, &["eab", "add", "--label", "ci"]).await;
    let kid = key["kid"].as_str().expect("kid").to_owned();
    let keys = admin_json(server, &["eab", "list"]).await;
    assert_eq!(keys[0]["kid"], kid.as_str());
    assert_eq!(
        stdout(&admin(server, &["eab", "revoke", &kid]).await),
        format!("revoked EAB key {kid}\n")
    );

    // accounts: list, deactivate, and deactivating again is a conflict.
    let accounts = admin_json(server, &["accounts", "list"]).await;
    assert_eq!(accounts[0]["id"], account.as_str());
    let table = stdout(&admin(server, &["accounts", "list"]).await);
    assert!(table.starts_with("ID"), "{table}");
    assert!(
        table.contains(&account) && table.contains("valid"),
        "{table}"
    );
    assert_eq!(
        stdout(&admin(server, &["accounts", "deactivate", &account]).await),
        format!("deactivated account {account}\n")
    );
    let again = server
        .admin(&["accounts", "deactivate", &account])
        .await
        .expect("runs");
    assert_eq!(again.status.code(), Some(1), "{}", output_text(&again));
    let listed = admin_json(server, &["accounts", "list"]).await;
    assert_eq!(listed[0]["status"], "deactivated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_admin_listener_is_one_line_naming_the_url() {
    let env = Environment::mayfly_with(&[("MAYFLY__ADMIN__ENABLED", "false")])
        .await
        .expect("mayfly starts");
    let server = mayfly(&env);
    let output = server.admin(&["status"]).await.expect("runs");
    assert_eq!(output.status.code(), Some(1), "{}", output_text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: cannot reach the admin API at {}",
            server.admin_url()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("admin listener enabled (admin.enabled, admin.listen)"),
        "{stderr}"
    );
}

/// bootstrap needs only the data directory, not a server; an encrypted CA key needs the
/// passphrase, as `serve` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_works_offline_and_needs_the_passphrase_of_an_encrypted_ca() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    acme_tests::mayfly::init(&data_dir, Some("correct horse"))
        .await
        .expect("mayfly init");
    let bootstrap = |passphrase: Option<&'static str>| {
        let mut command = acme_tests::mayfly::command();
        command
            .args(["admin", "bootstrap", "--name", "alice", "--data-dir"])
            .arg(&data_dir);
        if let Some(passphrase) = passphrase {
            command.env(acme_tests::mayfly::PASSPHRASE_ENV, passphrase);
        }
        acme_tests::mayfly::run(command, acme_tests::mayfly::COMMAND_TIMEOUT)
    };
    let refused = bootstrap(None).await.expect("runs");
    assert_eq!(refused.status.code(), Some(1), "{}", output_text(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("set MAYFLY_CA_PASSPHRASE"),
        "{}",
        output_text(&refused)
    );
    assert!(!data_dir.join("admin").join("admin.pem").exists());
    let made = bootstrap(Some("correct horse")).await.expect("runs");
    assert!(made.status.success(), "{}", output_text(&made));
    let chain = std::fs::read(data_dir.join("admin").join("admin.pem")).expect("written");
    let leaf = x509_parser::pem::Pem::iter_from_buffer(&chain)
        .next()
        .expect("a PEM block")
        .expect("PEM");
    assert!(mayfly::issuer::admin::has_admin_role(&leaf.contents));
    let (_, cert) = X509Certificate::from_der(&leaf.contents).expect("a certificate");
    assert_eq!(cert.subject().to_string(), "CN=alice");
}

/// The listing and revocation queries on PostgreSQL, through the CLI (skipped without
/// MAYFLY_TEST_POSTGRES_URL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certs_and_revoke_on_postgres() {
    let Ok(url) = std::env::var(acme_tests::postgres::URL_ENV) else {
        eprintln!("skipped: {} is not set", acme_tests::postgres::URL_ENV);
        return;
    };
    let env = Environment::mayfly_on_postgres(&url)
        .await
        .expect("mayfly starts");
    let server = mayfly(&env);
    let client = Client::new(env.target()).await.expect("an account");
    let http = ChallengeServer::start(env.target().http01_port)
        .await
        .expect("the http-01 server starts");
    let web = serial(&client.issue(&http, &["web.pg.test"]).await.expect("issued"));
    serial(&client.issue(&http, &["db.pg.test"]).await.expect("issued"));
    let found = admin_json(server, &["certs", "--name", "web.*"]).await;
    assert_eq!(found.as_array().map(Vec::len), Some(1), "{found}");
    assert_eq!(found[0]["serial"], web.as_str());
    admin(server, &["revoke", &web, "--reason", "1"]).await;
    let status = admin_json(server, &["status"]).await;
    assert_eq!(
        status["certificates"],
        serde_json::json!({"issued": 2, "active": 1, "expired": 0, "revoked": 1}),
        "{status}"
    );
    let revoked = admin_json(server, &["certs", "--status", "revoked"]).await;
    assert_eq!(revoked[0]["revocation_reason"], "keyCompromise");
}
