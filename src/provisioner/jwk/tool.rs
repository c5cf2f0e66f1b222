//! The operator's side of a JWK provisioner: `mayfly provisioner jwk-create` makes the key
//! pair (the public JWK for `key_file`, the private one encrypted for `encrypted_key_file`),
//! and `mayfly token` mints one-time tokens with it.

use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail, ensure};
use figment::Figment;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::mint::{TokenRequest, mint_token};
use crate::cli::{JwkCreateArgs, JwkKeyType, ProvisionerCommand, TokenArgs};
use crate::config::Config;
use crate::jose::{SigningKey, jwe};
use crate::provisioner::ProvisionerConfig;

/// Runs `mayfly provisioner …`; returns what to print on stdout.
pub fn run_provisioner(command: &ProvisionerCommand) -> anyhow::Result<String> {
    match command {
        ProvisionerCommand::JwkCreate(args) => create(args, jwe::DEFAULT_ITERATIONS),
    }
}

/// A new provisioner key, ready to be written.
pub struct CreatedKey {
    /// The RFC 7638 thumbprint, which is also the `kid` of both JWKs.
    pub kid: String,
    /// The public JWK with `kid`, `alg` and `use: "sig"`.
    pub public_jwk: Value,
    /// The private JWK (same members, plus the private ones) as a PBES2 JWE.
    pub encrypted_key: String,
}

/// Generates a key of `key_type` and encrypts its private JWK with `password` (PBKDF2 with
/// `iterations`; `jwe::DEFAULT_ITERATIONS` outside tests).
pub fn create_key(key_type: JwkKeyType, password: &[u8], iterations: u32) -> CreatedKey {
    let key = match key_type {
        JwkKeyType::P256 => SigningKey::generate_p256(),
        JwkKeyType::P384 => SigningKey::generate_p384(),
        JwkKeyType::Ed25519 => SigningKey::generate_ed25519(),
        JwkKeyType::Rsa2048 => SigningKey::generate_rsa2048(),
    };
    let kid = key.jwk().thumbprint();
    let label = |mut members: Map<String, Value>| {
        members.insert("kid".into(), json!(kid));
        members.insert("alg".into(), json!(key.alg()));
        members.insert("use".into(), json!("sig"));
        Value::Object(members)
    };
    let Ok(Value::Object(public)) = serde_json::to_value(key.jwk()) else {
        unreachable!("a JWK serialises to an object");
    };
    let public_jwk = label(public);
    let private_jwk = label(key.private_jwk());
    let encrypted_key = jwe::encrypt(
        private_jwk.to_string().as_bytes(),
        password,
        Some("jwk+json"),
        iterations,
    );
    CreatedKey {
        kid,
        public_jwk,
        encrypted_key,
    }
}

/// `mayfly provisioner jwk-create`: writes both files (neither if either exists, unless
/// `--force`) and returns the configuration to paste.
fn create(args: &JwkCreateArgs, iterations: u32) -> anyhow::Result<String> {
    crate::provisioner::check_name(&args.name).map_err(|e| anyhow!("--name: {e}"))?;
    ensure!(
        args.public_out != args.encrypted_out,
        "--public-out and --encrypted-out name the same file"
    );
    let password = read_password_file(&args.password_file)?;
    if !args.force {
        for path in [&args.public_out, &args.encrypted_out] {
            ensure!(
                !path.exists(),
                "{} exists; pass --force to overwrite it",
                path.display()
            );
        }
    }
    let created = create_key(args.key_type, &password, iterations);
    let public = serde_json::to_string_pretty(&created.public_jwk)? + "\n";
    write_file(&args.public_out, public.as_bytes(), 0o644, args.force)?;
    let encrypted = created.encrypted_key.clone() + "\n";
    write_file(&args.encrypted_out, encrypted.as_bytes(), 0o600, args.force)?;
    Ok(format!(
        "# JWK provisioner {name:?}, key {kid}. Add to the configuration:\n\
         [provisioners.{name}]\n\
         type = \"jwk\"\n\
         key_file = {public}\n\
         encrypted_key_file = {encrypted}\n",
        name = args.name,
        kid = created.kid,
        public = toml_path(&args.public_out)?,
        encrypted = toml_path(&args.encrypted_out)?,
    ))
}

/// `mayfly token`: the token, signed with the key `--key` or `--password-file` selects.
pub fn run_token(args: &TokenArgs, now: OffsetDateTime) -> anyhow::Result<String> {
    ensure!(
        args.lifetime.0 > time::Duration::ZERO,
        "--lifetime must be longer than 0s"
    );
    let load_config = || Config::load(args.config.as_deref(), Figment::new());
    let mut config = None;
    let (key, kid) = match (&args.key, &args.password_file) {
        (Some(path), _) => read_private_jwk(path)?,
        (None, Some(password_file)) => {
            let password = read_password_file(password_file)?;
            let loaded = config.insert(load_config()?);
            decrypt_provisioner_key(loaded, &args.provisioner, &password)?
        }
        (None, None) => bail!("pass --key FILE or --password-file FILE"),
    };
    let audience = match (&args.audience, &args.ca_url) {
        (Some(audience), _) => audience.clone(),
        (None, Some(url)) => format!("{}/v1/sign", url.trim_end_matches('/')),
        (None, None) => {
            let base_url = match &config {
                Some(config) => config.base_url(),
                None => load_config()?.base_url(),
            };
            format!("{base_url}/v1/sign")
        }
    };
    let sans: Vec<&str> = args.sans.iter().map(String::as_str).collect();
    let mut request = TokenRequest::new(&args.provisioner, &audience, &sans);
    if let Some(subject) = &args.subject {
        request.subject = subject.clone();
    }
    ensure!(!request.subject.is_empty(), "the subject is empty");
    request.lifetime = args.lifetime.0;
    request.groups = args.groups.clone();
    request.account_thumbprint = args.account_thumbprint.clone();
    Ok(mint_token(&key, &kid, &request, now))
}

/// The provisioner's encrypted key, decrypted with `password`, and the `kid` of its public
/// key; the two must be one key pair.
pub fn decrypt_provisioner_key(
    config: &Config,
    name: &str,
    password: &[u8],
) -> anyhow::Result<(SigningKey, String)> {
    let provisioner = match config.provisioners.get(name) {
        Some(ProvisionerConfig::Jwk(provisioner)) => provisioner,
        Some(_) => bail!("provisioners.{name} is not a JWK provisioner"),
        None => bail!("the configuration has no provisioner {name:?} (pass --config FILE)"),
    };
    let (public, kid) = provisioner
        .public_key()
        .map_err(|e| anyhow!("provisioners.{name}.{e}"))?;
    let jwe = provisioner
        .encrypted_key()
        .map_err(|e| anyhow!("provisioners.{name}.{e}"))?
        .ok_or_else(|| {
            anyhow!(
                "provisioners.{name} has no encrypted_key or encrypted_key_file; pass --key with \
                 the private JWK instead"
            )
        })?;
    let plaintext = jwe
        .decrypt(password)
        .map_err(|e| anyhow!("provisioners.{name}: {e}"))?;
    let value: Value = serde_json::from_slice(&plaintext)
        .map_err(|_| anyhow!("provisioners.{name}.encrypted_key: the JWE does not hold a JWK"))?;
    let key = SigningKey::from_private_jwk(&value)
        .map_err(|e| anyhow!("provisioners.{name}.encrypted_key: {e}"))?;
    ensure!(
        key.jwk() == public,
        "provisioners.{name}: the encrypted key is not the private half of the public key"
    );
    Ok((key, kid))
}

/// A private JWK file and its `kid` (its own, else its thumbprint).
fn read_private_jwk(path: &Path) -> anyhow::Result<(SigningKey, String)> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| anyhow!("{}: not a JSON JWK: {e}", path.display()))?;
    let key =
        SigningKey::from_private_jwk(&value).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let kid = match value.get("kid").and_then(Value::as_str) {
        Some(kid) if !kid.is_empty() => kid.to_owned(),
        _ => key.jwk().thumbprint(),
    };
    Ok((key, kid))
}

/// A password file's contents without trailing whitespace (as step reads them); not empty.
pub fn read_password_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    ensure!(end > 0, "the password file {} is empty", path.display());
    Ok(bytes[..end].to_vec())
}

/// Creates `path` with `mode`; an existing file is an error unless `force` replaces it.
fn write_file(path: &Path, contents: &[u8], mode: u32, force: bool) -> anyhow::Result<()> {
    if force {
        match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("cannot replace {}", path.display()));
            }
            _ => {}
        }
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// An absolute path as a TOML basic string (a JSON string is one).
fn toml_path(path: &Path) -> anyhow::Result<String> {
    let absolute: PathBuf = std::path::absolute(path)
        .with_context(|| format!("cannot make {} absolute", path.display()))?;
    let text = absolute
        .to_str()
        .ok_or_else(|| anyhow!("{} is not UTF-8", absolute.display()))?;
    Ok(Value::String(text.to_owned()).to_string())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;
    use crate::config::HumanDuration;
    use crate::jose::UnverifiedJwt;
    use crate::provisioner::jwk::{JwkProvisioner, JwkProvisionerConfig};

    /// Cheap PBKDF2 for tests; `mayfly provisioner jwk-create` uses 600,000.
    const ITERATIONS: u32 = jwe::MIN_ITERATIONS;

    struct Setup {
        dir: tempfile::TempDir,
        create: JwkCreateArgs,
    }

    impl Setup {
        fn new(key_type: JwkKeyType) -> Setup {
            let dir = tempfile::tempdir().expect("tempdir");
            let password_file = dir.path().join("password");
            fs::write(&password_file, "correct horse\n").expect("write");
            let create = JwkCreateArgs {
                name: "ops".into(),
                key_type,
                public_out: dir.path().join("ops.pub.json"),
                encrypted_out: dir.path().join("ops.jwe"),
                password_file,
                force: false,
            };
            Setup { dir, create }
        }

        /// Runs jwk-create and writes a configuration file with its snippet.
        fn create_with_config(&self) -> PathBuf {
            let snippet = create(&self.create, ITERATIONS).expect("creates");
            let config = self.dir.path().join("mayfly.toml");
            let text = format!("[server]\nexternal_url = \"https://ca.test:8443/\"\n{snippet}");
            fs::write(&config, text).expect("write");
            config
        }

        fn token_args(&self, config: Option<PathBuf>) -> TokenArgs {
            TokenArgs {
                provisioner: "ops".into(),
                sans: vec!["a.test".into(), "b.test".into()],
                subject: None,
                audience: None,
                ca_url: None,
                lifetime: HumanDuration::minutes(5),
                account_thumbprint: None,
                groups: Vec::new(),
                key: None,
                password_file: Some(self.create.password_file.clone()),
                config,
            }
        }

        fn provisioner(&self) -> JwkProvisioner {
            let config = JwkProvisionerConfig {
                key_file: Some(self.create.public_out.clone()),
                encrypted_key_file: Some(self.create.encrypted_out.clone()),
                ..JwkProvisionerConfig::default()
            };
            JwkProvisioner::new("ops", &config).expect("valid provisioner")
        }
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("valid time")
    }

    /// create → encrypted file → decrypt with the password → mint → verify, per key type.
    #[test]
    fn created_keys_mint_tokens_that_verify() {
        for key_type in [JwkKeyType::P256, JwkKeyType::Ed25519, JwkKeyType::Rsa2048] {
            let setup = Setup::new(key_type);
            let config = setup.create_with_config();
            let mut args = setup.token_args(Some(config));
            args.groups = vec!["web".into()];
            args.account_thumbprint = Some("T".into());
            let token = run_token(&args, now()).expect("mints");
            let jwt = UnverifiedJwt::parse(&token).expect("parses");
            let identity = setup
                .provisioner()
                .verify(
                    &jwt,
                    &token,
                    &["https://ca.test:8443/v1/sign".into()],
                    now(),
                )
                .unwrap_or_else(|e| panic!("{key_type:?}: {e}"));
            assert_eq!(identity.subject, "a.test");
            assert_eq!(identity.sans, ["a.test", "b.test"]);
            assert_eq!(identity.groups, ["web"]);
            assert_eq!(identity.account_thumbprint.as_deref(), Some("T"));
            assert_eq!(jwt.claims["iat"], jwt.claims["nbf"]);
        }
    }

    #[test]
    fn created_files() {
        let setup = Setup::new(JwkKeyType::P256);
        let snippet = create(&setup.create, ITERATIONS).expect("creates");
        let mode = |p: &Path| fs::metadata(p).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode(&setup.create.encrypted_out), 0o600);
        let public: Value =
            serde_json::from_str(&fs::read_to_string(&setup.create.public_out).expect("read"))
                .expect("json");
        let kid = public["kid"].as_str().expect("kid").to_owned();
        assert_eq!(public["alg"], "ES256");
        assert_eq!(public["use"], "sig");
        assert!(public.get("d").is_none());
        let jwe_text = fs::read_to_string(&setup.create.encrypted_out).expect("read");
        let parsed = jwe::Pbes2Jwe::parse(&jwe_text).expect("a JWE");
        assert_eq!(parsed.content_type.as_deref(), Some("jwk+json"));
        let private: Value =
            serde_json::from_slice(&parsed.decrypt(b"correct horse").expect("decrypts"))
                .expect("json");
        assert_eq!(private["kid"], kid.as_str());
        assert!(private.get("d").is_some());
        assert!(snippet.contains("[provisioners.ops]\ntype = \"jwk\"\nkey_file = \"/"));
        assert!(snippet.contains(&kid), "{snippet}");

        // Again: refused without --force, and nothing changes.
        let error = create(&setup.create, ITERATIONS).expect_err("exists");
        assert!(error.to_string().contains("pass --force"), "{error}");
        assert_eq!(
            fs::read_to_string(&setup.create.encrypted_out).expect("read"),
            jwe_text
        );
        let forced = JwkCreateArgs {
            force: true,
            ..setup.create
        };
        create(&forced, ITERATIONS).expect("--force overwrites");
        assert_ne!(
            fs::read_to_string(&forced.encrypted_out).expect("read"),
            jwe_text
        );
        assert_eq!(mode(&forced.encrypted_out), 0o600);
    }

    #[test]
    fn create_refusals() {
        let setup = Setup::new(JwkKeyType::P256);
        let base = || JwkCreateArgs {
            name: setup.create.name.clone(),
            key_type: setup.create.key_type,
            public_out: setup.create.public_out.clone(),
            encrypted_out: setup.create.encrypted_out.clone(),
            password_file: setup.create.password_file.clone(),
            force: false,
        };
        let empty_password = setup.dir.path().join("empty");
        fs::write(&empty_password, " \n").expect("write");
        let cases: Vec<(&str, JwkCreateArgs, &str)> = vec![
            (
                "bad name",
                JwkCreateArgs {
                    name: "Ops!".into(),
                    ..base()
                },
                "--name: a provisioner name is",
            ),
            (
                "same file twice",
                JwkCreateArgs {
                    encrypted_out: setup.create.public_out.clone(),
                    ..base()
                },
                "name the same file",
            ),
            (
                "empty password",
                JwkCreateArgs {
                    password_file: empty_password,
                    ..base()
                },
                "is empty",
            ),
            (
                "missing password file",
                JwkCreateArgs {
                    password_file: setup.dir.path().join("nope"),
                    ..base()
                },
                "cannot read",
            ),
        ];
        for (name, args, fragment) in cases {
            let error = format!("{:#}", create(&args, ITERATIONS).expect_err(name));
            assert!(error.contains(fragment), "{name}: {error}");
            assert!(!setup.create.public_out.exists(), "{name}: wrote a file");
        }
    }

    #[test]
    fn token_options() {
        let setup = Setup::new(JwkKeyType::P256);
        let config = setup.create_with_config();
        let claims = |args: &TokenArgs| {
            let token = run_token(args, now()).expect("mints");
            UnverifiedJwt::parse(&token).expect("parses").claims
        };
        let base = setup.token_args(Some(config.clone()));
        let c = claims(&base);
        assert_eq!(c["aud"], "https://ca.test:8443/v1/sign");
        assert_eq!(c["iss"], "ops");
        assert_eq!(c["exp"], 1_700_000_300);
        assert!(c.get("groups").is_none() && c.get("cnf").is_none());
        // A 128-bit jti, base64url: 22 characters.
        assert_eq!(c["jti"].as_str().map(str::len), Some(22));
        assert_ne!(c["jti"], claims(&base)["jti"]);

        let c = claims(&TokenArgs {
            ca_url: Some("https://other.test/".into()),
            subject: Some("svc".into()),
            lifetime: HumanDuration::minutes(2),
            ..setup.token_args(Some(config.clone()))
        });
        assert_eq!(c["aud"], "https://other.test/v1/sign");
        assert_eq!(c["sub"], "svc");
        assert_eq!(c["exp"], 1_700_000_120);
        let c = claims(&TokenArgs {
            audience: Some("https://ca.test/acme/teams/directory".into()),
            ca_url: Some("https://ignored.test".into()),
            ..setup.token_args(Some(config.clone()))
        });
        assert_eq!(c["aud"], "https://ca.test/acme/teams/directory");

        // --key: a private JWK file, named by its kid.
        let key_file = setup.dir.path().join("private.json");
        let key = SigningKey::generate_ed25519();
        let mut private = key.private_jwk();
        private.insert("kid".into(), json!("mine"));
        fs::write(&key_file, Value::Object(private).to_string()).expect("write");
        let token = run_token(
            &TokenArgs {
                key: Some(key_file),
                password_file: None,
                ca_url: Some("https://ca.test".into()),
                ..setup.token_args(None)
            },
            now(),
        )
        .expect("mints");
        let jwt = UnverifiedJwt::parse(&token).expect("parses");
        assert_eq!(jwt.header.kid.as_deref(), Some("mine"));
        jwt.verify(&key.jwk()).expect("signed by the file's key");
    }

    #[test]
    fn token_refusals() {
        let setup = Setup::new(JwkKeyType::P256);
        let config = setup.create_with_config();
        let wrong_password = setup.dir.path().join("wrong");
        fs::write(&wrong_password, "incorrect horse").expect("write");
        let no_encrypted_key = setup.dir.path().join("public-only.toml");
        fs::write(
            &no_encrypted_key,
            format!(
                "[provisioners.ops]\ntype = \"jwk\"\nkey_file = {}\n",
                toml_path(&setup.create.public_out).expect("path")
            ),
        )
        .expect("write");
        let mismatched = setup.dir.path().join("mismatched.toml");
        let other_public = setup.dir.path().join("other.pub.json");
        fs::write(
            &other_public,
            serde_json::to_string(&SigningKey::generate_p256().jwk()).expect("json"),
        )
        .expect("write");
        fs::write(
            &mismatched,
            format!(
                "[provisioners.ops]\ntype = \"jwk\"\nkey_file = {}\nencrypted_key_file = {}\n",
                toml_path(&other_public).expect("path"),
                toml_path(&setup.create.encrypted_out).expect("path")
            ),
        )
        .expect("write");
        let cases: Vec<(&str, TokenArgs, &str)> = vec![
            (
                "wrong password",
                TokenArgs {
                    password_file: Some(wrong_password),
                    ..setup.token_args(Some(config.clone()))
                },
                "provisioners.ops: the password does not decrypt the key",
            ),
            (
                "unknown provisioner",
                TokenArgs {
                    provisioner: "dev".into(),
                    ..setup.token_args(Some(config.clone()))
                },
                "the configuration has no provisioner \"dev\"",
            ),
            (
                "no encrypted key",
                setup.token_args(Some(no_encrypted_key)),
                "provisioners.ops has no encrypted_key or encrypted_key_file",
            ),
            (
                "encrypted key of another key pair",
                setup.token_args(Some(mismatched)),
                "the encrypted key is not the private half of the public key",
            ),
            (
                "zero lifetime",
                TokenArgs {
                    lifetime: HumanDuration::seconds(0),
                    ..setup.token_args(Some(config.clone()))
                },
                "--lifetime must be longer than 0s",
            ),
            (
                "--key with a public key",
                TokenArgs {
                    key: Some(setup.create.public_out.clone()),
                    password_file: None,
                    ..setup.token_args(Some(config.clone()))
                },
                "it is a public key",
            ),
        ];
        for (name, args, fragment) in cases {
            let error = format!("{:#}", run_token(&args, now()).expect_err(name));
            assert!(error.contains(fragment), "{name}: {error}");
            assert!(!error.contains('\n'), "{name}: one line: {error}");
        }
    }
}
