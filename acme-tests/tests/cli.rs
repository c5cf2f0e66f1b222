//! The `mayfly` command line: first start, restart, passphrases, version and help.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use acme_tests::mayfly::{self, DEFAULT_DATA_DIR, MayflyServer, PASSPHRASE_ENV, ServeOptions};
use acme_tests::ports::free_tcp_port;

/// How long serve may take to refuse a wrong passphrase (it derives a key, so not instant).
const WRONG_PASSPHRASE_TIMEOUT: Duration = Duration::from_secs(15);
/// Bound on `--version` and `--help`.
const QUICK_COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread")]
async fn serve_without_config_creates_data_dir_and_second_start_reuses_it() {
    let cwd = tempfile::tempdir().expect("temp dir");
    let options = ServeOptions {
        cwd: Some(cwd.path().to_owned()),
        ..ServeOptions::default()
    };
    let data_dir = cwd.path().join(DEFAULT_DATA_DIR);

    let first = MayflyServer::start(&options).await.expect("first start");
    for file in [
        "root-ca.pem",
        "intermediate-ca.pem",
        "server.pem",
        "server.key",
    ] {
        assert!(data_dir.join(file).is_file(), "{file} was not created");
    }
    for key in ["root-ca.key", "intermediate-ca.key"] {
        assert_eq!(mode(&data_dir.join(key)), 0o600, "{key} mode");
    }
    assert!(
        has_sqlite_file(&data_dir),
        "no SQLite database file in {}",
        data_dir.display()
    );
    let root = fs::read(data_dir.join("root-ca.pem")).expect("root");
    let server_cert = fs::read(data_dir.join("server.pem")).expect("server.pem");
    first.stop().expect("first stop");

    let second = MayflyServer::start(&options).await.expect("second start");
    assert_eq!(
        fs::read(data_dir.join("root-ca.pem")).expect("root"),
        root,
        "the root changed on restart"
    );
    assert_eq!(
        fs::read(data_dir.join("server.pem")).expect("server.pem"),
        server_cert,
        "the server certificate changed on restart"
    );
    second.stop().expect("second stop");
}

#[tokio::test(flavor = "multi_thread")]
async fn init_with_passphrase_then_wrong_passphrase_is_a_clear_error() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    mayfly::init(data_dir.path(), Some("a"))
        .await
        .expect("init with a passphrase");

    let options = ServeOptions {
        data_dir: Some(data_dir.path().to_owned()),
        passphrase: Some("b".to_owned()),
        ..ServeOptions::default()
    };
    let started = Instant::now();
    let output = mayfly::run(
        options.command(free_tcp_port().expect("port")),
        WRONG_PASSPHRASE_TIMEOUT,
    )
    .await
    .expect("serve exits by itself on a wrong passphrase");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "serve accepted a wrong passphrase"
    );
    assert!(
        stderr.to_lowercase().contains("passphrase"),
        "stderr does not mention the passphrase:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "serve panicked:\n{stderr}");
    eprintln!("wrong passphrase refused in {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn init_without_passphrase_warns() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let output = mayfly::init(data_dir.path(), None)
        .await
        .expect("init without a passphrase");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.to_lowercase().contains("passphrase") || stderr.contains(PASSPHRASE_ENV),
        "no warning about the unencrypted keys:\n{stderr}"
    );
    for file in [
        "root-ca.pem",
        "intermediate-ca.pem",
        "root-ca.key",
        "intermediate-ca.key",
    ] {
        assert!(
            data_dir.path().join(file).is_file(),
            "{file} was not created"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn version_and_help() {
    let version = run_quick(&["--version"]).await;
    assert!(
        String::from_utf8_lossy(&version.stdout).contains("mayfly"),
        "--version does not name the program"
    );
    for args in [["serve", "--help"], ["init", "--help"]] {
        let help = run_quick(&args).await;
        assert!(!help.stdout.is_empty(), "{args:?} printed nothing");
    }
}

async fn run_quick(args: &[&str]) -> std::process::Output {
    let mut command = mayfly::command();
    command.args(args);
    let output = mayfly::run(command, QUICK_COMMAND_TIMEOUT)
        .await
        .expect("mayfly runs");
    assert!(
        output.status.success(),
        "mayfly {args:?} failed: {}",
        mayfly::output_text(&output)
    );
    output
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn has_sqlite_file(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            [".db", ".sqlite", ".sqlite3"]
                .iter()
                .any(|extension| name.ends_with(extension))
        })
    })
}

/// `mayfly check-config` runs the same checks as start-up, provisioners included, and names
/// the key that is wrong; exit code 2 for a bad configuration.
#[tokio::test(flavor = "multi_thread")]
async fn check_config_explains_a_bad_provisioner() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases: [(&str, &str, i32, &str); 3] = [
        (
            "good",
            "[provisioners.teams]\ntype = \"acme\"\n",
            0,
            "provisioner teams: directory https://127.0.0.1:14000/acme/teams/directory",
        ),
        (
            "an authorizer that does not exist",
            "[provisioners.teams]\ntype = \"acme\"\ntoken_authorizers = [\"nope\"]\n",
            2,
            "provisioners.teams.token_authorizers: \"nope\" is not a JWK or OIDC provisioner",
        ),
        (
            "a JWK that is not one",
            "[provisioners.ops]\ntype = \"jwk\"\nkey = \"{}\"\n",
            2,
            "provisioners.ops.key:",
        ),
    ];
    for (name, toml, code, want) in cases {
        let file = dir.path().join("mayfly.toml");
        fs::write(&file, toml).expect("config");
        let mut command = mayfly::command();
        command.arg("check-config").arg(&file);
        let output = mayfly::run(command, QUICK_COMMAND_TIMEOUT)
            .await
            .expect("check-config runs");
        let text = mayfly::output_text(&output);
        assert_eq!(output.status.code(), Some(code), "{name}: {text}");
        assert!(text.contains(want), "{name}: {text}");
    }
}

/// `mayfly healthcheck` (the container health check) asks the running server over HTTPS,
/// trusting the data directory's root: exit 0 when ready or live, 1 once it is gone.
#[tokio::test(flavor = "multi_thread")]
async fn healthcheck_answers_for_a_running_server_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    let server = MayflyServer::start(&ServeOptions {
        data_dir: Some(data_dir.clone()),
        ..ServeOptions::default()
    })
    .await
    .expect("mayfly starts");
    let listen = format!("127.0.0.1:{}", server.port());
    let check = |live: bool| {
        let mut command = mayfly::command();
        command
            .arg("healthcheck")
            .arg("--data-dir")
            .arg(&data_dir)
            .env("MAYFLY__SERVER__LISTEN", &listen);
        if live {
            command.arg("--live");
        }
        command
    };
    for live in [false, true] {
        let output = mayfly::run(check(live), QUICK_COMMAND_TIMEOUT)
            .await
            .expect("healthcheck runs");
        assert_eq!(
            output.status.code(),
            Some(0),
            "live={live}: {}",
            mayfly::output_text(&output)
        );
    }
    server.stop().expect("stop");
    let output = mayfly::run(check(false), QUICK_COMMAND_TIMEOUT)
        .await
        .expect("healthcheck runs");
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        mayfly::output_text(&output)
    );
    assert!(
        mayfly::output_text(&output).contains("/ready"),
        "{}",
        mayfly::output_text(&output)
    );
}

/// `MAYFLY_CA_PASSPHRASE_FILE` (a Docker secret, a systemd credential) encrypts the keys as
/// `MAYFLY_CA_PASSPHRASE` does; a file that cannot be read stops the command before any key
/// is created, instead of creating unencrypted ones.
#[tokio::test(flavor = "multi_thread")]
async fn the_passphrase_can_come_from_a_file() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let secret = data_dir.path().join("ca-passphrase");
    let ca = data_dir.path().join("ca");
    let init = |file: &Path| {
        let mut command = mayfly::command();
        command
            .args(["init", "--data-dir"])
            .arg(&ca)
            .env_remove(PASSPHRASE_ENV)
            .env("MAYFLY_CA_PASSPHRASE_FILE", file);
        command
    };

    let output = mayfly::run(init(&secret), Duration::from_secs(30))
        .await
        .expect("init runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("MAYFLY_CA_PASSPHRASE_FILE=") && stderr.contains("cannot read"),
        "{stderr}"
    );
    assert!(!ca.join("root-ca.key").exists(), "a key was created anyway");

    // A trailing newline (`echo secret > file`) is not part of the passphrase.
    std::fs::write(&secret, "from a file\n").expect("the secret is written");
    let output = mayfly::run(init(&secret), Duration::from_secs(30))
        .await
        .expect("init runs");
    assert!(output.status.success(), "{}", mayfly::output_text(&output));
    let key = std::fs::read_to_string(ca.join("intermediate-ca.key")).expect("the key");
    assert!(
        key.contains("ENCRYPTED"),
        "the key is not encrypted:\n{key}"
    );
    // The same passphrase given directly opens it.
    let options = ServeOptions {
        data_dir: Some(ca.clone()),
        passphrase: Some("from a file".to_owned()),
        ..ServeOptions::default()
    };
    let server = MayflyServer::start(&options)
        .await
        .expect("serve opens the keys");
    server.stop().expect("stop");
}
