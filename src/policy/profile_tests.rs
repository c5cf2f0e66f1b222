use figment::Figment;
use figment::providers::{Format, Serialized, Toml};

use super::*;

fn read(text: &str) -> Result<Profiles, String> {
    Figment::from(Toml::string(text))
        .extract_inner::<Profiles>("profiles")
        .map_err(|e| e.to_string())
}

#[test]
fn the_builtin_profiles_fit_the_default_claims() {
    let profiles = Profiles::builtin();
    assert_eq!(profiles.check(&Claims::default()), Ok(()));
    assert_eq!(profiles.default, "hours");
    let cases = [
        ("shortlived", 160, 7, ExtendedKeyUsage::ServerAuth),
        ("hours", 24, 8, ExtendedKeyUsage::ServerAuth),
        ("tlsclient", 24, 8, ExtendedKeyUsage::ClientAuth),
    ];
    for (name, validity, authorization, eku) in cases {
        let p = &profiles.profiles[name];
        assert_eq!(p.validity, Some(HumanDuration::hours(validity)), "{name}");
        assert_eq!(
            p.authorization_lifetime,
            HumanDuration::hours(authorization),
            "{name}"
        );
        assert_eq!(p.extended_key_usage, vec![eku], "{name}");
        assert!(p.allows_identifier_type("dns"), "{name}");
    }
}

#[test]
fn select_gives_the_default_or_the_named_profile_and_never_guesses() {
    let profiles = Profiles::builtin();
    assert_eq!(profiles.select(None).unwrap().0, "hours");
    assert_eq!(profiles.select(Some("tlsclient")).unwrap().0, "tlsclient");
    let e = profiles.select(Some("classic")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "profile \"classic\" is not offered; the profiles are hours, shortlived, tlsclient"
    );
}

#[test]
fn descriptions_feed_meta_profiles() {
    let profiles = Profiles::builtin();
    let meta = profiles.descriptions();
    assert_eq!(meta.len(), 3);
    assert_eq!(
        meta["hours"],
        "24-hour TLS server certificates (Anchor's default)"
    );
}

#[test]
fn profiles_read_from_toml() {
    let profiles = read(
        r#"
        [profiles]
        default = "web"
        [profiles.web]
        description = "web servers"
        validity = "12h"
        [profiles.mtls]
        description = "clients"
        validity = "90m"
        identifier_types = ["dns"]
        max_names = 1
        key_usage = ["digitalSignature", "keyAgreement"]
        extended_key_usage = ["client_auth", "server_auth"]
        include_common_name = false
        "#,
    )
    .unwrap();
    assert_eq!(profiles.default, "web");
    let web = &profiles.profiles["web"];
    assert_eq!(web.validity, Some(HumanDuration::hours(12)));
    assert_eq!(web.order_lifetime, HumanDuration::hours(8));
    assert_eq!(web.max_names, 100);
    assert!(web.include_common_name);
    let mtls = &profiles.profiles["mtls"];
    assert!(!mtls.allows_identifier_type("ip"));
    assert_eq!(
        mtls.extended_key_usage,
        vec![ExtendedKeyUsage::ClientAuth, ExtendedKeyUsage::ServerAuth]
    );
    assert_eq!(
        mtls.key_usage,
        vec![KeyUsage::DigitalSignature, KeyUsage::KeyAgreement]
    );
    assert_eq!(profiles.check(&Claims::default()), Ok(()));
}

#[test]
fn profiles_survive_a_round_trip_through_figment() {
    let builtin = Profiles::builtin();
    let back: Profiles = Figment::from(Serialized::defaults(&builtin))
        .extract()
        .unwrap();
    assert_eq!(back, builtin);
}

#[test]
fn toml_errors_name_the_key() {
    let cases = [
        (
            "a misspelt key in a profile",
            "[profiles]\ndefault = \"a\"\n[profiles.a]\ndescription = \"x\"\nvalidty = \"1h\"\n",
            "validty",
        ),
        (
            "an unknown extended key usage",
            "[profiles]\ndefault = \"a\"\n[profiles.a]\ndescription = \"x\"\nextended_key_usage = [\"code_signing\"]\n",
            "code_signing",
        ),
        (
            "no default",
            "[profiles.a]\ndescription = \"x\"\n",
            "default",
        ),
    ];
    for (case, text, needle) in cases {
        let e = read(text).unwrap_err();
        assert!(e.contains(needle), "{case}: {e}");
    }
}

#[test]
fn check_names_the_offending_key() {
    let claims = Claims::default();
    let mut too_long = Profiles::builtin();
    let hours = too_long.profiles.get_mut("hours").unwrap();
    hours.validity = Some(HumanDuration::hours(200));
    hours.max_cert_duration = None;
    let mut too_short = Profiles::builtin();
    too_short.profiles.get_mut("tlsclient").unwrap().validity = Some(HumanDuration::minutes(1));
    let mut no_default = Profiles::builtin();
    no_default.default = "daily".into();
    let mut no_types = Profiles::builtin();
    no_types
        .profiles
        .get_mut("shortlived")
        .unwrap()
        .identifier_types
        .clear();
    let mut empty_window = Profiles::builtin();
    empty_window
        .profiles
        .get_mut("hours")
        .unwrap()
        .min_cert_duration = Some(HumanDuration::hours(48));
    let cases = [
        (
            too_long,
            "profiles.hours.validity (200h) is longer than the maximum certificate duration (168h)",
        ),
        (
            too_short,
            "profiles.tlsclient.validity (1m) is shorter than the minimum certificate duration (5m)",
        ),
        (
            no_default,
            "profiles.default (\"daily\") names no profile; the profiles are hours, shortlived, tlsclient",
        ),
        (
            no_types,
            "profiles.shortlived.identifier_types must name dns, ip or both",
        ),
        (
            empty_window,
            "profiles.hours.min_cert_duration and profiles.hours.max_cert_duration leave no lifetime: the minimum 48h is above the maximum 24h",
        ),
    ];
    for (profiles, text) in cases {
        assert_eq!(profiles.check(&claims), Err(text.to_owned()));
    }
}
