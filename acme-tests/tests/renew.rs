//! `mayfly renew`, the renewal agent, against a real Mayfly (and Pebble): first issuance,
//! doing nothing when nothing is due, the 2/3 fallback without ARI, failures that leave the
//! installed files alone, the post_renew hook's environment, the daemon renewing
//! short-lived certificates again and again, and tkauth-01 with a token command.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use acme_tests::mayfly::{self, COMMAND_TIMEOUT, MayflyServer, ServeOptions, output_text};
use acme_tests::ports::free_tcp_port;
use acme_tests::verify::verify_chain;
use acme_tests::{AcmeTarget, Environment, Subprocess};
use tempfile::TempDir;
use x509_parser::pem::Pem;

/// The name every test asks for; pebble-challtestsrv resolves it to 127.0.0.1.
const NAME: &str = "renew.mayfly.test";
/// Bound on the daemon test: three issuances of a two-minute certificate, each renewed at
/// two thirds of its lifetime (about a minute after issuance, with Mayfly's one-minute
/// backdate), with room to spare under nextest's four-minute limit.
const DAEMON_TIMEOUT: Duration = Duration::from_secs(200);
/// How often the daemon test looks for newly written certificates.
const POLL: Duration = Duration::from_millis(500);

/// A scratch directory with the agent's config, account, state and output files.
struct Agent {
    dir: TempDir,
    target: AcmeTarget,
}

/// What may vary between the tests' config files.
struct Setup<'a> {
    challenge: String,
    post_renew: Option<&'a str>,
    daemon_retry: &'a str,
    /// The account file's name in the scratch directory.
    account: &'a str,
}

impl Agent {
    fn new(environment: &Environment) -> Self {
        Self::for_target(environment.target().clone())
    }

    fn for_target(target: AcmeTarget) -> Self {
        Agent {
            dir: tempfile::Builder::new()
                .prefix("mayfly-renew-")
                .tempdir()
                .expect("temp dir"),
            target,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// http-01 on the port the server validates.
    fn standalone(&self) -> String {
        standalone_on(self.target.http01_port)
    }

    fn write_config(&self, setup: &Setup<'_>) {
        let hooks = match setup.post_renew {
            Some(script) => format!("\n[certificate.hooks]\npost_renew = {script:?}\n"),
            None => String::new(),
        };
        let text = format!(
            r#"
[server]
directory = "{directory}"
ca_bundle = "{tls_root}"

[account]
file = "{dir}/{account}"
state_file = "{dir}/renew-state.json"

[daemon]
retry_initial = "{retry}"
retry_max = "{retry}"

[[certificate]]
id = "web"
names = ["{NAME}"]
cert = "{dir}/out/cert.pem"
chain = "{dir}/out/chain.pem"
fullchain = "{dir}/out/fullchain.pem"
key = "{dir}/out/key.pem"
challenge = {challenge}
{hooks}"#,
            directory = self.target.directory_url,
            tls_root = self.target.tls_root.display(),
            dir = self.dir.path().display(),
            retry = setup.daemon_retry,
            challenge = setup.challenge,
            account = setup.account,
        );
        fs::write(self.path("renew.toml"), text).expect("writing renew.toml");
    }

    /// `mayfly renew --config renew.toml ARGS`.
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = mayfly::command();
        command
            .arg("renew")
            .arg("--config")
            .arg(self.path("renew.toml"))
            .args(args);
        command
    }

    async fn run(&self, args: &[&str]) -> Output {
        mayfly::run(self.command(args), COMMAND_TIMEOUT)
            .await
            .expect("running mayfly renew")
    }

    /// Every output file's bytes.
    fn outputs(&self) -> BTreeMap<&'static str, Vec<u8>> {
        ["cert.pem", "chain.pem", "fullchain.pem", "key.pem"]
            .into_iter()
            .map(|name| {
                let path = self.path("out").join(name);
                let bytes = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                (name, bytes)
            })
            .collect()
    }

    fn state(&self) -> serde_json::Value {
        let text = fs::read(self.path("renew-state.json")).expect("state file");
        serde_json::from_slice(&text).expect("state JSON")
    }
}

fn standalone_on(port: u16) -> String {
    format!(r#"{{ type = "http-01", listen = "127.0.0.1:{port}" }}"#)
}

fn setup(challenge: String) -> Setup<'static> {
    Setup {
        challenge,
        post_renew: None,
        daemon_retry: "1m",
        account: "account.json",
    }
}

fn assert_success(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed:\n{}",
        output_text(output)
    );
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

/// notBefore, notAfter (Unix seconds) and the hex serial of the first certificate in `pem`.
fn validity(pem: &[u8]) -> (i64, i64, String) {
    let block = Pem::iter_from_buffer(pem)
        .next()
        .expect("a PEM block")
        .expect("valid PEM");
    let (_, certificate) = x509_parser::parse_x509_certificate(&block.contents).expect("X.509");
    (
        certificate.validity().not_before.timestamp(),
        certificate.validity().not_after.timestamp(),
        certificate.raw_serial_as_string().replace(':', ""),
    )
}

fn unix(rfc3339: &str) -> i64 {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .expect("RFC 3339")
        .unix_timestamp()
}

#[tokio::test(flavor = "multi_thread")]
async fn first_run_obtains_a_certificate_and_a_second_run_does_nothing() {
    let environment = Environment::mayfly().await.expect("mayfly");
    let agent = Agent::new(&environment);
    agent.write_config(&setup(agent.standalone()));

    let first = agent.run(&["--once"]).await;
    assert_success(&first, "the first run");
    verify_chain(
        &agent.path("out/fullchain.pem"),
        &environment.target().issuer_root,
        &[NAME],
    )
    .expect("the full chain verifies against the root");
    let outputs = agent.outputs();
    let fullchain = &outputs["fullchain.pem"];
    let joined = [outputs["cert.pem"].clone(), outputs["chain.pem"].clone()].concat();
    assert_eq!(&joined, fullchain, "cert + chain is the full chain");
    assert_eq!(mode(&agent.path("out/key.pem")), 0o600, "key mode");
    assert_eq!(mode(&agent.path("account.json")), 0o600, "account mode");
    assert_eq!(mode(&agent.path("renew-state.json")), 0o600, "state mode");
    let account = fs::read(agent.path("account.json")).expect("account");

    let second = agent.run(&["--once"]).await;
    assert_success(&second, "the second run");
    assert!(
        second.stdout.is_empty() && second.stderr.is_empty(),
        "the second run is not quiet:\n{}",
        output_text(&second)
    );
    assert_eq!(agent.outputs(), outputs, "the second run changed the files");
    assert_eq!(
        fs::read(agent.path("account.json")).expect("account"),
        account,
        "the account was not reused"
    );

    let verbose = agent.run(&["--once", "--verbose"]).await;
    assert_success(&verbose, "the verbose run");
    let line = String::from_utf8_lossy(&verbose.stdout);
    assert!(line.starts_with("web: not due;"), "{line}");

    let status = agent.run(&["--status"]).await;
    assert_success(&status, "--status");
    let table = String::from_utf8_lossy(&status.stdout);
    assert!(table.starts_with("CERTIFICATE"), "{table}");
    assert!(
        table.contains("web") && table.contains("renewed"),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn falls_back_to_two_thirds_of_the_lifetime_against_pebble_without_ari() {
    let environment = Environment::pebble().await.expect("pebble");
    let agent = Agent::new(&environment);
    agent.write_config(&setup(agent.standalone()));

    let output = agent.run(&["--once", "--verbose"]).await;
    assert_success(&output, "the run against Pebble");
    verify_chain(
        &agent.path("out/fullchain.pem"),
        &environment.target().issuer_root,
        &[NAME],
    )
    .expect("Pebble's chain verifies");

    let (not_before, not_after, _) = validity(&agent.outputs()["cert.pem"]);
    let expected = not_before + (not_after - not_before) * 2 / 3;
    let state = agent.state();
    let web = &state["certificates"]["web"];
    assert_eq!(web["next_renewal_reason"], "2/3 of lifetime", "{state}");
    let next = unix(web["next_renewal"].as_str().expect("next_renewal"));
    assert!(
        (next - expected).abs() <= 1,
        "next renewal {next}, expected 2/3 of the lifetime {expected}: {state}"
    );
    assert!(
        web["ari_window_start"].is_null(),
        "Pebble 2.4 offers no ARI"
    );

    let status = agent.run(&["--status"]).await;
    let table = String::from_utf8_lossy(&status.stdout);
    assert!(
        table.contains(web["next_renewal"].as_str().unwrap_or_default())
            && table.contains("2/3 of lifetime"),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_renewal_leaves_the_installed_files_untouched() {
    let environment = Environment::mayfly().await.expect("mayfly");
    let agent = Agent::new(&environment);
    agent.write_config(&setup(agent.standalone()));
    assert_success(&agent.run(&["--once"]).await, "the first run");
    let before = agent.outputs();

    // http-01 answered on a port the server does not validate: the challenge fails. A new
    // account, because the first one holds a valid authorization the server would reuse.
    let elsewhere = free_tcp_port().expect("a free port");
    agent.write_config(&Setup {
        account: "second-account.json",
        ..setup(standalone_on(elsewhere))
    });
    let refused = agent.run(&["--once", "--force"]).await;
    assert_eq!(refused.status.code(), Some(1), "{}", output_text(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("web: renewal failed; the installed files are unchanged"),
        "{stderr}"
    );
    assert_eq!(
        agent.outputs(),
        before,
        "a refused challenge changed the files"
    );

    // dns-01 whose hook fails: nothing is even asked of the server.
    agent.write_config(&Setup {
        account: "third-account.json",
        ..setup(r#"{ type = "dns-01", command = "/bin/false" }"#.to_owned())
    });
    let hook_failed = agent.run(&["--once", "--force"]).await;
    assert_eq!(
        hook_failed.status.code(),
        Some(1),
        "{}",
        output_text(&hook_failed)
    );
    assert_eq!(
        agent.outputs(),
        before,
        "a failed dns-01 hook changed the files"
    );

    let state = agent.state();
    let result = state["certificates"]["web"]["last_result"]
        .as_str()
        .unwrap_or_default();
    assert!(result.starts_with("failed:"), "{state}");
    let leftovers: Vec<_> = fs::read_dir(agent.path("out"))
        .expect("out dir")
        .map(|entry| entry.expect("entry").file_name())
        .filter(|name| name.to_string_lossy().contains("mayfly-new"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_post_renew_hook_gets_the_paths_in_its_environment() {
    let environment = Environment::mayfly().await.expect("mayfly");
    let agent = Agent::new(&environment);
    let env_file = agent.path("hook-env.txt");
    let script = format!("env > '{}'", env_file.display());
    agent.write_config(&Setup {
        post_renew: Some(&script),
        ..setup(agent.standalone())
    });
    assert_success(&agent.run(&["--once"]).await, "the run");

    let printed = fs::read_to_string(&env_file).expect("the hook ran");
    let env: BTreeMap<&str, &str> = printed
        .lines()
        .filter_map(|line| line.split_once('='))
        .collect();
    let out = agent.path("out");
    let expected = [
        ("MAYFLY_RENEW_NAME", "web".to_owned()),
        ("MAYFLY_RENEW_NAMES", NAME.to_owned()),
        (
            "MAYFLY_RENEW_CERT",
            out.join("cert.pem").display().to_string(),
        ),
        (
            "MAYFLY_RENEW_CHAIN",
            out.join("chain.pem").display().to_string(),
        ),
        (
            "MAYFLY_RENEW_FULLCHAIN",
            out.join("fullchain.pem").display().to_string(),
        ),
        (
            "MAYFLY_RENEW_KEY",
            out.join("key.pem").display().to_string(),
        ),
    ];
    for (key, value) in expected {
        assert_eq!(
            env.get(key).copied(),
            Some(value.as_str()),
            "{key} in:\n{printed}"
        );
    }
    let (_, not_after, serial) = validity(&agent.outputs()["cert.pem"]);
    let hook_not_after = env.get("MAYFLY_RENEW_NOT_AFTER").expect("NOT_AFTER");
    assert_eq!(unix(hook_not_after), not_after, "{printed}");
    assert_eq!(
        env.get("MAYFLY_RENEW_SERIAL").copied(),
        Some(serial.as_str())
    );

    // A failing hook is reported with exit code 3 and does not undo the renewal.
    agent.write_config(&Setup {
        post_renew: Some("exit 7"),
        ..setup(agent.standalone())
    });
    let before = agent.outputs();
    let output = agent.run(&["--once", "--force"]).await;
    assert_eq!(output.status.code(), Some(3), "{}", output_text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("post_renew hook failed"),
        "{}",
        output_text(&output)
    );
    assert_ne!(
        agent.outputs()["cert.pem"],
        before["cert.pem"],
        "renewal was undone"
    );
    verify_chain(
        &agent.path("out/fullchain.pem"),
        &environment.target().issuer_root,
        &[NAME],
    )
    .expect("the renewed chain verifies");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_renews_short_lived_certificates_again_and_again() {
    // The default profile shortened to 2 minutes: its ARI window opens at half the lifetime
    // (RFC 9773 windows scale with the lifetime), so the agent renews about every minute. The
    // claims must allow such a short certificate, and the backdate must stay below it.
    let environment = Environment::mayfly_with(&[
        ("MAYFLY__ACME__CLAIMS__MIN_CERT_DURATION", "1m"),
        ("MAYFLY__ACME__CLAIMS__BACKDATE", "10s"),
        ("MAYFLY__PROFILES__HOURS__VALIDITY", "2m"),
    ])
    .await
    .expect("mayfly");
    let agent = Agent::new(&environment);
    let issued = agent.path("issued");
    fs::create_dir(&issued).expect("issued dir");
    // Each renewal leaves a copy of its full chain, named by serial.
    let script = format!(
        "cp \"$MAYFLY_RENEW_FULLCHAIN\" '{}'/\"$MAYFLY_RENEW_SERIAL\".pem",
        issued.display()
    );
    agent.write_config(&Setup {
        post_renew: Some(&script),
        daemon_retry: "5s",
        ..setup(agent.standalone())
    });

    let mut command = agent.command(&["--daemon"]);
    command.env("MAYFLY_LOG", "info");
    let mut daemon = Subprocess::spawn("mayfly-renew", command.as_std_mut()).expect("daemon");

    let mut verified = std::collections::BTreeSet::new();
    let deadline = Instant::now() + DAEMON_TIMEOUT;
    while verified.len() < 3 {
        assert!(
            Instant::now() < deadline,
            "only {} certificate(s) within {DAEMON_TIMEOUT:?}; daemon log:\n{}",
            verified.len(),
            daemon.log()
        );
        assert!(
            daemon.try_exit_status().expect("status").is_none(),
            "the daemon exited:\n{}",
            daemon.log()
        );
        for entry in fs::read_dir(&issued).expect("issued dir") {
            let path = entry.expect("entry").path();
            if verified.contains(&path) {
                continue;
            }
            // Verified at once: a two-minute certificate does not stay valid for long.
            verify_chain(&path, &environment.target().issuer_root, &[NAME]).unwrap_or_else(|e| {
                panic!(
                    "{} does not verify: {e:#}\n{}",
                    path.display(),
                    daemon.log()
                )
            });
            verified.insert(path);
        }
        tokio::time::sleep(POLL).await;
    }

    let status = daemon.stop().expect("stopping the daemon");
    let log = daemon.log();
    assert!(
        status.success(),
        "the daemon did not exit cleanly ({status}):\n{log}"
    );
    assert!(log.contains("SIGTERM: renewal daemon stopped"), "{log}");
    assert!(!log.contains("FAILED"), "a renewal failed:\n{log}");
}

/// Needs issue 4 on this branch: the `renewalInfo` endpoint and the admin command that moves a
/// certificate's ARI window. The agent's ARI path (RFC 9773 with instant-acme's
/// `Account::renewal_info` and `NewOrder::replaces`) is unit-tested in `renew::schedule`; this
/// test proves it end to end, with the operator's `mayfly admin ari move`.
#[tokio::test(flavor = "multi_thread")]
async fn renews_when_the_ari_window_is_moved_to_now_through_the_admin_command() {
    let environment = Environment::mayfly().await.expect("mayfly");
    let agent = Agent::new(&environment);
    agent.write_config(&setup(agent.standalone()));
    assert_success(&agent.run(&["--once"]).await, "the first run");
    let state = agent.state();
    assert_eq!(
        state["certificates"]["web"]["next_renewal_reason"], "ARI window",
        "Mayfly offers renewal information: {state}"
    );
    let before = agent.outputs();
    let (_, _, serial) = validity(&before["cert.pem"]);

    // Not due yet: a 24-hour certificate's window is hours away.
    let quiet = agent.run(&["--once"]).await;
    assert_success(&quiet, "the run before the window moves");
    assert_eq!(agent.outputs(), before);

    let acme_tests::environment::Server::Mayfly(server) = environment.server() else {
        unreachable!("a Mayfly environment");
    };
    // A one-second window: the agent picks a random moment inside it (RFC 9773 §4.2), so a
    // wider one (renew-now gives five minutes) would make the test wait for that moment.
    // Over the admin API, with the bootstrap certificate.
    let moved = server
        .admin(&["ari", "move", &serial, "--start", "now", "--end", "now+1s"])
        .await
        .expect("admin");
    assert_success(&moved, "mayfly admin ari");
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;

    // The agent honours Retry-After between checks; --force is not used: the window decides.
    fs::remove_file(agent.path("renew-state.json")).expect("forget the last Retry-After");
    let renewed = agent.run(&["--once", "--verbose"]).await;
    assert_success(&renewed, "the run after the window moved");
    let line = String::from_utf8_lossy(&renewed.stdout);
    assert!(
        line.contains("renewed (inside the server's renewal window (ARI))"),
        "{line}"
    );
    let (_, _, new_serial) = validity(&agent.outputs()["cert.pem"]);
    assert_ne!(new_serial, serial, "no new certificate");
}

/// A Mayfly whose ACME provisioner `teams` takes tokens of the JWK provisioner `ops` instead of
/// challenges (`token_only`), and the private JWK file of `ops`.
struct TokenServer {
    server: MayflyServer,
    key_file: PathBuf,
    _dir: TempDir,
}

impl TokenServer {
    async fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("mayfly-tkauth-")
            .tempdir()
            .expect("temp dir");
        let ops = ::mayfly::jose::SigningKey::generate_p256();
        let key_file = dir.path().join("ops.jwk");
        fs::write(
            &key_file,
            serde_json::Value::Object(ops.private_jwk()).to_string(),
        )
        .expect("the private JWK");
        let public = serde_json::to_string(&ops.jwk()).expect("JSON");
        let config = dir.path().join("mayfly.toml");
        fs::write(
            &config,
            format!(
                r#"
[provisioners.teams]
type = "acme"
token_authorizers = ["ops"]
token_only = true

[provisioners.ops]
type = "jwk"
key = '{public}'
"#
            ),
        )
        .expect("mayfly.toml");
        let server = MayflyServer::start(&ServeOptions {
            data_dir: Some(dir.path().join("data")),
            config: Some(config),
            ..ServeOptions::default()
        })
        .await
        .expect("mayfly starts");
        TokenServer {
            server,
            key_file,
            _dir: dir,
        }
    }

    fn base(&self) -> String {
        format!("https://127.0.0.1:{}", self.server.port())
    }

    /// An agent on the `teams` directory.
    fn agent(&self) -> Agent {
        Agent::for_target(AcmeTarget {
            directory_url: format!("{}/acme/teams/directory", self.base()),
            tls_root: self.server.root_ca(),
            issuer_root: self.server.root_ca(),
            // token_only: the server validates nothing over the network.
            http01_port: 0,
        })
    }

    /// `mayfly token` for the name and the account key the agent passes in its environment,
    /// with `thumbprint` in place of the account's when given.
    fn token_command(&self, thumbprint: Option<&str>) -> String {
        format!(
            "'{binary}' token --provisioner ops --key '{key}' --san \"$MAYFLY_IDENTIFIER\" \
             --account-thumbprint \"{thumbprint}\" --ca-url {base}",
            binary = mayfly::binary().display(),
            key = self.key_file.display(),
            thumbprint = thumbprint.unwrap_or("$MAYFLY_ACCOUNT_THUMBPRINT"),
            base = self.base(),
        )
    }
}

fn tkauth(token_command: &str) -> String {
    format!("{{ type = \"tkauth-01\", token_command = {token_command:?} }}")
}

#[tokio::test(flavor = "multi_thread")]
async fn tkauth_01_with_a_token_command_obtains_a_certificate() {
    acme_tests::install_crypto_provider();
    let server = TokenServer::start().await;
    let agent = server.agent();
    agent.write_config(&setup(tkauth(&server.token_command(None))));

    let output = agent.run(&["--once", "--verbose"]).await;
    assert_success(&output, "the run with tkauth-01");
    assert!(
        String::from_utf8_lossy(&output.stdout).starts_with("web: renewed"),
        "{}",
        output_text(&output)
    );
    verify_chain(
        &agent.path("out/fullchain.pem"),
        &server.server.root_ca(),
        &[NAME],
    )
    .expect("the full chain verifies against the root, with the SAN");
    let outputs = agent.outputs();
    assert_eq!(
        [outputs["cert.pem"].clone(), outputs["chain.pem"].clone()].concat(),
        outputs["fullchain.pem"]
    );
    assert_eq!(mode(&agent.path("out/key.pem")), 0o600, "key mode");
}

#[tokio::test(flavor = "multi_thread")]
async fn tkauth_01_failures_name_the_cause_and_write_nothing() {
    acme_tests::install_crypto_provider();
    let server = TokenServer::start().await;
    let agent = server.agent();
    let no_files = |what: &str| {
        assert!(
            !agent.path("out").exists()
                || fs::read_dir(agent.path("out"))
                    .expect("out dir")
                    .next()
                    .is_none(),
            "{what} wrote files"
        );
    };

    agent.write_config(&setup(tkauth("echo no token today >&2; exit 3")));
    let failed = agent.run(&["--once"]).await;
    assert_eq!(failed.status.code(), Some(1), "{}", output_text(&failed));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("web: renewal failed")
            && stderr.contains("token_command of certificate \"web\" for renew.mayfly.test")
            && stderr.contains("no token today"),
        "{stderr}"
    );
    no_files("a failing token_command");

    agent.write_config(&setup(tkauth("true")));
    let empty = agent.run(&["--once", "--force"]).await;
    assert_eq!(empty.status.code(), Some(1), "{}", output_text(&empty));
    let stderr = String::from_utf8_lossy(&empty.stderr);
    assert!(stderr.contains("printed no token"), "{stderr}");
    no_files("an empty token");

    // A token bound to another key: the server refuses it and says why.
    let other = ::mayfly::jose::SigningKey::generate_p256()
        .jwk()
        .thumbprint();
    agent.write_config(&setup(tkauth(&server.token_command(Some(&other)))));
    let refused = agent.run(&["--once", "--force"]).await;
    assert_eq!(refused.status.code(), Some(1), "{}", output_text(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("tkauth-01 challenge for renew.mayfly.test is invalid")
            && stderr.contains("accountMismatch"),
        "{stderr}"
    );
    no_files("a refused token");
}
