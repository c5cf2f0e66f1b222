//! `JwkProvisioner`: its configuration checks and every check of `verify`.

use super::mint::{TokenRequest, mint_token};
use super::*;
use crate::jose::{SigningKey, sign_jwt};
use serde_json::json;

const NOW: i64 = 1_700_000_000;
const AUDIENCE: &str = "https://ca.test/v1/sign";

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(NOW).expect("valid time")
}

fn config_for(key: &SigningKey) -> JwkProvisionerConfig {
    JwkProvisionerConfig {
        key: Some(serde_json::to_string(&key.jwk()).expect("json")),
        ..JwkProvisionerConfig::default()
    }
}

fn provisioner(key: &SigningKey) -> JwkProvisioner {
    JwkProvisioner::new("ops", &config_for(key)).expect("valid provisioner")
}

fn verify(p: &JwkProvisioner, token: &str) -> Result<TokenIdentity, TokenError> {
    let jwt = UnverifiedJwt::parse(token).expect("parses");
    p.verify(&jwt, token, &[AUDIENCE.to_owned()], now())
}

fn claims() -> Value {
    json!({
        "iss": "ops",
        "aud": AUDIENCE,
        "sub": "web.test",
        "sans": ["web.test", "www.web.test"],
        "iat": NOW,
        "nbf": NOW,
        "exp": NOW + 300,
        "jti": "j1",
    })
}

/// How a case's token is signed.
enum Signer {
    /// The provisioner's key, with its kid.
    Right,
    /// The provisioner's key, naming this kid (or none).
    Kid(Option<&'static str>),
    /// Another key of the same type, with the provisioner's kid.
    OtherKey,
    /// A P-384 key (ES384), with the provisioner's kid.
    OtherAlgorithm,
}

/// One case per check of `verify`, in its order, asserting the exact kind.
#[test]
fn verify_checks_in_order() {
    let key = SigningKey::generate_p256();
    let other = SigningKey::generate_p256();
    let p384 = SigningKey::generate_p384();
    let p = provisioner(&key);
    let kid = p.kid().to_owned();
    type Edit = Box<dyn Fn(&mut Value)>;
    let set = |name: &'static str, value: Value| -> Edit {
        Box::new(move |c: &mut Value| c[name] = value.clone())
    };
    let remove = |name: &'static str| -> Edit {
        Box::new(move |c: &mut Value| {
            c.as_object_mut().map(|o| o.remove(name));
        })
    };
    let none: Edit = Box::new(|_| {});
    use Signer::*;
    use TokenErrorKind::*;
    let cases: Vec<(&str, Signer, Edit, Result<(), TokenErrorKind>)> = vec![
        ("valid", Right, none, Ok(())),
        (
            "another kid",
            Kid(Some("k2")),
            Box::new(|_| {}),
            Err(UnknownKey),
        ),
        ("no kid", Kid(None), Box::new(|_| {}), Err(UnknownKey)),
        ("another key", OtherKey, Box::new(|_| {}), Err(BadSignature)),
        (
            "algorithm unsuited to the key",
            OtherAlgorithm,
            Box::new(|_| {}),
            Err(BadSignature),
        ),
        (
            "another iss",
            Right,
            set("iss", json!("dev")),
            Err(BadIssuer),
        ),
        ("no iss", Right, remove("iss"), Err(BadIssuer)),
        (
            "another aud",
            Right,
            set("aud", json!("https://other.test/v1/sign")),
            Err(BadAudience),
        ),
        (
            "aud array with the expected one",
            Right,
            set("aud", json!(["https://other.test", AUDIENCE])),
            Ok(()),
        ),
        ("no aud", Right, remove("aud"), Err(BadAudience)),
        ("no exp", Right, remove("exp"), Err(Malformed)),
        (
            "exp a string",
            Right,
            set("exp", json!("soon")),
            Err(Malformed),
        ),
        (
            "expired beyond the skew",
            Right,
            Box::new(|c| {
                c["nbf"] = json!(NOW - 200);
                c["iat"] = json!(NOW - 200);
                c["exp"] = json!(NOW - 30);
            }),
            Err(Expired),
        ),
        (
            "expired within the skew",
            Right,
            Box::new(|c| {
                c["nbf"] = json!(NOW - 200);
                c["iat"] = json!(NOW - 200);
                c["exp"] = json!(NOW - 29);
            }),
            Ok(()),
        ),
        (
            "nbf beyond the skew",
            Right,
            set("nbf", json!(NOW + 31)),
            Err(NotYetValid),
        ),
        (
            "nbf within the skew",
            Right,
            set("nbf", json!(NOW + 30)),
            Ok(()),
        ),
        (
            "iat beyond the skew",
            Right,
            set("iat", json!(NOW + 31)),
            Err(NotYetValid),
        ),
        (
            "neither nbf nor iat",
            Right,
            Box::new(|c| {
                let o = c.as_object_mut().expect("object");
                o.remove("nbf");
                o.remove("iat");
            }),
            Err(Malformed),
        ),
        ("iat without nbf", Right, remove("nbf"), Ok(())),
        (
            "exp not after nbf",
            Right,
            set("exp", json!(NOW)),
            Err(Malformed),
        ),
        (
            "lifetime one second too long",
            Right,
            set("exp", json!(NOW + 301)),
            Err(LifetimeTooLong),
        ),
        (
            "lifetime from iat too long",
            Right,
            Box::new(|c| {
                c.as_object_mut().map(|o| o.remove("nbf"));
                c["iat"] = json!(NOW - 290);
                c["exp"] = json!(NOW + 20);
            }),
            Err(LifetimeTooLong),
        ),
        ("no sub", Right, remove("sub"), Err(Malformed)),
        ("empty sub", Right, set("sub", json!("")), Err(Malformed)),
        ("sub a number", Right, set("sub", json!(7)), Err(Malformed)),
        (
            "sans a string",
            Right,
            set("sans", json!("web.test")),
            Err(Malformed),
        ),
        (
            "sans with a number",
            Right,
            set("sans", json!(["a", 1])),
            Err(Malformed),
        ),
        (
            "sans with an empty name",
            Right,
            set("sans", json!([""])),
            Err(Malformed),
        ),
        ("no jti", Right, remove("jti"), Err(Malformed)),
        ("empty jti", Right, set("jti", json!("")), Err(Malformed)),
        (
            "groups not strings",
            Right,
            set("groups", json!([1])),
            Err(Malformed),
        ),
        (
            "cnf not an object",
            Right,
            set("cnf", json!("x")),
            Err(Malformed),
        ),
        (
            "cnf without jkt",
            Right,
            set("cnf", json!({"jwk": {}})),
            Err(Malformed),
        ),
        ("cnf.jkt", Right, set("cnf", json!({"jkt": "T"})), Ok(())),
    ];
    for (name, signer, edit, expected) in cases {
        let mut c = claims();
        edit(&mut c);
        let token = match signer {
            Right => sign_jwt(&key, Some(&kid), &c),
            Kid(k) => sign_jwt(&key, k, &c),
            OtherKey => sign_jwt(&other, Some(&kid), &c),
            OtherAlgorithm => sign_jwt(&p384, Some(&kid), &c),
        };
        let got = verify(&p, &token).map(|_| ()).map_err(|e| {
            assert!(!e.detail.is_empty(), "{name}: empty detail");
            e.kind
        });
        assert_eq!(got, expected, "{name}");
    }
}

#[test]
fn details_say_what_was_expected() {
    let key = SigningKey::generate_p256();
    let p = provisioner(&key);
    let mut c = claims();
    c["aud"] = json!("https://other.test");
    let e = verify(&p, &sign_jwt(&key, Some(p.kid()), &c)).expect_err("bad aud");
    assert_eq!(
        e.detail,
        format!("the token's aud [\"https://other.test\"] is none of [\"{AUDIENCE}\"]")
    );
    let e = verify(&p, &sign_jwt(&key, Some("k9"), &claims())).expect_err("bad kid");
    assert!(e.detail.contains(p.kid()), "{}", e.detail);
    let mut c = claims();
    c.as_object_mut().map(|o| o.remove("jti"));
    let e = verify(&p, &sign_jwt(&key, Some(p.kid()), &c)).expect_err("no jti");
    assert!(
        e.detail.starts_with("one-time tokens need a jti"),
        "{}",
        e.detail
    );
    let mut c = claims();
    c["exp"] = json!(NOW + 600);
    let e = verify(&p, &sign_jwt(&key, Some(p.kid()), &c)).expect_err("too long");
    assert_eq!(
        e.detail,
        "the token lives 10m (exp - nbf); provisioner \"ops\" allows at most 5m"
    );
    assert_eq!(e.kind.as_str(), "tokenLifetimeTooLong");
}

#[test]
fn minted_tokens_verify_for_every_key_type() {
    for key in [
        SigningKey::generate_p256(),
        SigningKey::generate_p384(),
        SigningKey::generate_ed25519(),
        SigningKey::generate_rsa2048(),
    ] {
        let p = provisioner(&key);
        let mut request = TokenRequest::new("ops", AUDIENCE, &["a.test", "b.test"]);
        request.groups = vec!["web".into()];
        request.account_thumbprint = Some("acct-thumbprint".into());
        request.jti = Some("id-1".into());
        let token = mint_token(&key, p.kid(), &request, now());
        let identity = verify(&p, &token).unwrap_or_else(|e| panic!("{}: {e}", key.alg()));
        assert_eq!(
            identity,
            TokenIdentity {
                provisioner: "ops".into(),
                subject: "a.test".into(),
                sans: vec!["a.test".into(), "b.test".into()],
                email: None,
                groups: vec!["web".into()],
                admin: false,
                token_id: "id-1".into(),
                expires_at: now() + time::Duration::minutes(5),
                account_thumbprint: Some("acct-thumbprint".into()),
            },
            "{}",
            key.alg()
        );
    }
}

#[test]
fn sans_default_to_the_subject() {
    let key = SigningKey::generate_ed25519();
    let p = provisioner(&key);
    for (name, sans) in [("absent", None), ("empty", Some(json!([])))] {
        let mut c = claims();
        match sans {
            Some(sans) => c["sans"] = sans,
            None => {
                c.as_object_mut().map(|o| o.remove("sans"));
            }
        }
        let identity = verify(&p, &sign_jwt(&key, Some(p.kid()), &c)).expect(name);
        assert_eq!(identity.sans, vec!["web.test".to_owned()], "{name}");
        assert_eq!(identity.groups, Vec::<String>::new(), "{name}");
        assert_eq!(identity.account_thumbprint, None, "{name}");
    }
}

#[test]
fn configuration_is_checked() {
    let key = SigningKey::generate_p256();
    let jwk = serde_json::to_value(key.jwk()).expect("json");
    let dir = tempfile::tempdir().expect("tempdir");
    let key_file = dir.path().join("ops.pub.json");
    std::fs::write(&key_file, jwk.to_string()).expect("write");
    let jwe = crate::jose::jwe::encrypt(b"{}", b"pw", None, 1000);
    let with = |f: &dyn Fn(&mut JwkProvisionerConfig)| {
        let mut c = JwkProvisionerConfig::default();
        f(&mut c);
        JwkProvisioner::new("ops", &c).map(|p| p.kid().to_owned())
    };
    let text = |v: Value| Some(v.to_string());
    let mut labelled = jwk.clone();
    labelled["kid"] = json!("ops-2025");
    labelled["alg"] = json!("ES256");
    let mut wrong_alg = jwk.clone();
    wrong_alg["alg"] = json!("RS256");
    let private = Value::Object(key.private_jwk());
    /// The name, the kid `new` gave or its error, and the kid or the error's start.
    type Case<'a> = (&'a str, Result<String, String>, Result<&'a str, &'a str>);
    let cases: Vec<Case> = vec![
        (
            "key",
            with(&|c| c.key = text(jwk.clone())),
            Ok("thumbprint"),
        ),
        (
            "key_file",
            with(&|c| c.key_file = Some(key_file.clone())),
            Ok("thumbprint"),
        ),
        (
            "kid and alg members",
            with(&|c| c.key = text(labelled.clone())),
            Ok("ops-2025"),
        ),
        (
            "encrypted_key",
            with(&|c| {
                c.key = text(jwk.clone());
                c.encrypted_key = Some(jwe.clone());
            }),
            Ok("thumbprint"),
        ),
        ("neither", with(&|_| {}), Err("key: set key")),
        (
            "both",
            with(&|c| {
                c.key = text(jwk.clone());
                c.key_file = Some(key_file.clone());
            }),
            Err("key: set key or key_file, not both"),
        ),
        (
            "missing key_file",
            with(&|c| c.key_file = Some(dir.path().join("nope"))),
            Err("key_file: cannot read"),
        ),
        (
            "not JSON",
            with(&|c| c.key = Some("{".into())),
            Err("key: the public JWK is not JSON"),
        ),
        (
            "a private key",
            with(&|c| c.key = text(private.clone())),
            Err("key: this is a private key"),
        ),
        (
            "alg unsuited",
            with(&|c| c.key = text(wrong_alg.clone())),
            Err("key: the JWK's alg is \"RS256\""),
        ),
        (
            "invalid key",
            with(&|c| c.key = text(json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}))),
            Err("key: the JWK member \"x\" has 1 bytes"),
        ),
        (
            "encrypted_key not a JWE",
            with(&|c| {
                c.key = text(jwk.clone());
                c.encrypted_key = Some("eyJ.a.b".into());
            }),
            Err("encrypted_key: a compact JWE has five"),
        ),
        (
            "both encrypted keys",
            with(&|c| {
                c.key = text(jwk.clone());
                c.encrypted_key = Some(jwe.clone());
                c.encrypted_key_file = Some(key_file.clone());
            }),
            Err("encrypted_key: set encrypted_key or encrypted_key_file, not both"),
        ),
        (
            "encrypted_key_file holding a public key",
            with(&|c| {
                c.key = text(jwk.clone());
                c.encrypted_key_file = Some(key_file.clone());
            }),
            Err("encrypted_key_file: a compact JWE has five"),
        ),
        (
            "zero lifetime",
            with(&|c| {
                c.key = text(jwk.clone());
                c.max_token_lifetime = HumanDuration::seconds(0);
            }),
            Err("max_token_lifetime: must be longer than 0s"),
        ),
    ];
    let thumbprint = key.jwk().thumbprint();
    for (name, got, expected) in cases {
        match (got, expected) {
            (Ok(kid), Ok("thumbprint")) => assert_eq!(kid, thumbprint, "{name}"),
            (Ok(kid), Ok(expected)) => assert_eq!(kid, expected, "{name}"),
            (Err(e), Err(prefix)) => assert!(e.starts_with(prefix), "{name}: {e}"),
            (got, expected) => panic!("{name}: got {got:?}, expected {expected:?}"),
        }
    }
}

/// The registry picks the JWK provisioner by `iss` and this code verifies.
#[tokio::test]
async fn registry_dispatches_by_issuer() {
    let key = SigningKey::generate_p256();
    let mut config = crate::config::Config::default();
    config.provisioners.insert(
        "ops".into(),
        super::super::ProvisionerConfig::Jwk(config_for(&key)),
    );
    let registry = super::super::Provisioners::from_config(&config, &reqwest::Client::new())
        .expect("valid configuration");
    let kid = key.jwk().thumbprint();
    let token = mint_token(
        &key,
        &kid,
        &TokenRequest::new("ops", AUDIENCE, &["a.test"]),
        now(),
    );
    let audiences = [AUDIENCE.to_owned()];
    let identity = registry
        .verify_token(&token, None, &audiences, now())
        .await
        .expect("verifies");
    assert_eq!(identity.provisioner, "ops");
    let other = mint_token(
        &key,
        &kid,
        &TokenRequest::new("dev", AUDIENCE, &["a.test"]),
        now(),
    );
    let error = registry
        .verify_token(&other, None, &audiences, now())
        .await
        .expect_err("unknown issuer");
    assert_eq!(error.kind, TokenErrorKind::UnknownProvisioner);
}
