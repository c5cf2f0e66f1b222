use super::*;
use crate::policy::profile::Profiles;

/// A time with a fraction, so every case also checks the truncation to whole seconds.
/// 2025-01-01 12:00:00 UTC.
const NOW: OffsetDateTime = match OffsetDateTime::from_unix_timestamp(1_735_732_800) {
    Ok(t) => t,
    Err(_) => panic!("a valid timestamp"),
};
const NOW_WITH_FRACTION: OffsetDateTime = NOW.saturating_add(Duration::milliseconds(750));

fn secs(n: i64) -> Duration {
    Duration::seconds(n)
}

const MINUTE: i64 = 60;
const HOUR: i64 = 3600;

/// What a case expects: notBefore and notAfter as offsets from NOW, or the exact error text.
#[derive(Debug)]
enum Expect {
    Ok(i64, i64),
    Err(String),
}

#[test]
fn validity_table_for_each_builtin_profile() {
    let claims = Claims::default();
    let profiles = Profiles::builtin();
    for (name, lifetime, order_lifetime) in [
        ("shortlived", 160 * HOUR, 7 * HOUR),
        ("hours", 24 * HOUR, 8 * HOUR),
        ("tlsclient", 24 * HOUR, 8 * HOUR),
    ] {
        let profile = &profiles.profiles[name];
        let min = 5 * MINUTE;
        let too_long = |start: &str, by: i64| {
            Expect::Err(format!(
                "notAfter is {} after {start}; the profile {name} allows at most {}",
                show(secs(by)),
                show(secs(lifetime))
            ))
        };
        let too_short = |start: &str, by: i64| {
            Expect::Err(format!(
                "notAfter is {} after {start}; the profile {name} requires at least 5m",
                show(secs(by))
            ))
        };
        let cases: Vec<(&str, Option<i64>, Option<i64>, Expect)> = vec![
            (
                "nothing requested",
                None,
                None,
                Expect::Ok(-MINUTE, lifetime),
            ),
            (
                "notAfter inside",
                None,
                Some(lifetime / 2),
                Expect::Ok(-MINUTE, lifetime / 2),
            ),
            (
                "notAfter exactly at the maximum",
                None,
                Some(lifetime),
                Expect::Ok(-MINUTE, lifetime),
            ),
            (
                "notAfter one second beyond the maximum",
                None,
                Some(lifetime + 1),
                too_long("the time of issuance", lifetime + 1),
            ),
            (
                "notAfter exactly at the minimum",
                None,
                Some(min),
                Expect::Ok(-MINUTE, min),
            ),
            (
                "notAfter one second below the minimum",
                None,
                Some(min - 1),
                too_short("the time of issuance", min - 1),
            ),
            (
                "notBefore and notAfter inside",
                Some(HOUR),
                Some(HOUR + lifetime / 2),
                Expect::Ok(HOUR, HOUR + lifetime / 2),
            ),
            (
                "notBefore and notAfter exactly at the maximum",
                Some(HOUR),
                Some(HOUR + lifetime),
                Expect::Ok(HOUR, HOUR + lifetime),
            ),
            (
                "notBefore and notAfter beyond the maximum",
                Some(HOUR),
                Some(HOUR + lifetime + 1),
                too_long("notBefore", lifetime + 1),
            ),
            (
                "notBefore and notAfter exactly at the minimum",
                Some(HOUR),
                Some(HOUR + min),
                Expect::Ok(HOUR, HOUR + min),
            ),
            (
                "notBefore and notAfter below the minimum",
                Some(HOUR),
                Some(HOUR + min - 1),
                too_short("notBefore", min - 1),
            ),
            (
                "notBefore alone gets the profile's lifetime",
                Some(HOUR),
                None,
                Expect::Ok(HOUR, HOUR + lifetime),
            ),
            (
                "notBefore in the past within the backdate",
                Some(-MINUTE),
                None,
                Expect::Ok(-MINUTE, -MINUTE + lifetime),
            ),
            (
                "notBefore in the past beyond the backdate",
                Some(-MINUTE - 1),
                None,
                Expect::Err(format!(
                    "notBefore is 1m1s in the past; the profile {name} allows at most 1m (the backdate)"
                )),
            ),
            (
                "notBefore exactly one order lifetime ahead",
                Some(order_lifetime),
                None,
                Expect::Ok(order_lifetime, order_lifetime + lifetime),
            ),
            (
                "notBefore beyond one order lifetime ahead",
                Some(order_lifetime + 1),
                None,
                Expect::Err(format!(
                    "notBefore is {} in the future; the profile {name} allows at most {} (the order lifetime)",
                    show(secs(order_lifetime + 1)),
                    show(secs(order_lifetime))
                )),
            ),
            (
                "notAfter equal to notBefore",
                Some(HOUR),
                Some(HOUR),
                Expect::Err("notAfter is not after notBefore".into()),
            ),
            (
                "notAfter before notBefore",
                Some(HOUR),
                Some(HOUR - 1),
                Expect::Err("notAfter is not after notBefore".into()),
            ),
            (
                "notAfter in the past",
                None,
                Some(-HOUR),
                Expect::Err("notAfter is not after the time of issuance".into()),
            ),
        ];
        for (case, not_before, not_after, expect) in cases {
            let got = super::validity(
                name,
                profile,
                &claims,
                not_before.map(|s| NOW + secs(s)),
                not_after.map(|s| NOW + secs(s)),
                NOW_WITH_FRACTION,
            );
            match (&got, &expect) {
                (Ok(v), &Expect::Ok(nb, na)) => {
                    assert_eq!(v.not_before, NOW + secs(nb), "{name}: {case}");
                    assert_eq!(v.not_after, NOW + secs(na), "{name}: {case}");
                }
                (Err(e), Expect::Err(text)) => assert_eq!(&e.to_string(), text, "{name}: {case}"),
                _ => panic!("{name}: {case}: got {got:?}, expected {expect:?}"),
            }
        }
    }
}

#[test]
fn the_issue_s_example_message() {
    let profiles = Profiles::builtin();
    let e = validity(
        "shortlived",
        &profiles.profiles["shortlived"],
        &Claims::default(),
        Some(NOW),
        Some(NOW + Duration::hours(200)),
        NOW,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "notAfter is 200h after notBefore; the profile shortlived allows at most 160h"
    );
}

#[test]
fn requested_times_are_truncated_to_seconds() {
    let profiles = Profiles::builtin();
    let v = validity(
        "hours",
        &profiles.profiles["hours"],
        &Claims::default(),
        Some(NOW + Duration::milliseconds(1_999)),
        Some(NOW + Duration::hours(2) + Duration::milliseconds(500)),
        NOW,
    )
    .unwrap();
    assert_eq!(v.not_before, NOW + Duration::seconds(1));
    assert_eq!(v.not_after, NOW + Duration::hours(2));
}

#[test]
fn a_profile_narrows_the_claims_but_cannot_widen_them() {
    let mut profile = Profiles::builtin().profiles["hours"].clone();
    profile.min_cert_duration = Some(HumanDuration::seconds(1));
    profile.max_cert_duration = Some(HumanDuration::hours(1000));
    let claims = Claims::default();
    let bounds = Bounds::new(&profile, &claims);
    assert_eq!(bounds.min, claims.min_cert_duration.0);
    assert_eq!(bounds.max, claims.max_cert_duration.0);

    profile.min_cert_duration = Some(HumanDuration::hours(1));
    profile.max_cert_duration = Some(HumanDuration::hours(30));
    let bounds = Bounds::new(&profile, &claims);
    assert_eq!(bounds.min, Duration::hours(1));
    assert_eq!(bounds.max, Duration::hours(30));
}

#[test]
fn a_profile_without_validity_uses_the_claims_default() {
    let mut profile = Profiles::builtin().profiles["hours"].clone();
    profile.validity = None;
    profile.max_cert_duration = None;
    let claims = Claims {
        default_cert_duration: HumanDuration::hours(12),
        ..Claims::default()
    };
    let v = validity("hours", &profile, &claims, None, None, NOW).unwrap();
    assert_eq!(v.not_after, NOW + Duration::hours(12));
}

#[test]
fn a_provisioner_whose_claims_exclude_the_profile_is_a_server_error() {
    let profiles = Profiles::builtin();
    let claims = Claims {
        max_cert_duration: HumanDuration::hours(12),
        default_cert_duration: HumanDuration::hours(12),
        ..Claims::default()
    };
    let e = validity(
        "hours",
        &profiles.profiles["hours"],
        &claims,
        None,
        None,
        NOW,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "the profile hours has a validity of 24h outside the claims (5m to 12h)"
    );
    assert!(matches!(e, ValidityError::Misconfigured { .. }));
}

#[test]
fn claims_merge_field_by_field() {
    let global = Claims::default();
    assert_eq!(Claims::merged(&global, None), global);
    let overrides = PartialClaims {
        max_cert_duration: Some(HumanDuration::hours(8)),
        default_cert_duration: Some(HumanDuration::hours(2)),
        allow_renewal_after_expiry: Some(true),
        disable_renewal: Some(true),
        ..PartialClaims::default()
    };
    let merged = Claims::merged(&global, Some(&overrides));
    assert_eq!(
        merged,
        Claims {
            min_cert_duration: global.min_cert_duration,
            max_cert_duration: HumanDuration::hours(8),
            default_cert_duration: HumanDuration::hours(2),
            backdate: global.backdate,
            allow_renewal_after_expiry: true,
            disable_renewal: true,
        }
    );
}

#[test]
fn claims_check_names_the_key() {
    let base = Claims::default();
    assert_eq!(base.check("acme.claims"), Ok(()));
    let cases = [
        (
            "default longer than max",
            Claims {
                default_cert_duration: HumanDuration::hours(200),
                max_cert_duration: HumanDuration::hours(160),
                ..base.clone()
            },
            "acme.claims.default_cert_duration (200h) is longer than acme.claims.max_cert_duration (160h)",
        ),
        (
            "default shorter than min",
            Claims {
                default_cert_duration: HumanDuration::minutes(2),
                ..base.clone()
            },
            "acme.claims.default_cert_duration (2m) is shorter than acme.claims.min_cert_duration (5m)",
        ),
        (
            "min longer than max",
            Claims {
                min_cert_duration: HumanDuration::hours(200),
                ..base.clone()
            },
            "acme.claims.min_cert_duration (200h) is longer than acme.claims.max_cert_duration (7d)",
        ),
        (
            "zero min",
            Claims {
                min_cert_duration: HumanDuration::seconds(0),
                ..base.clone()
            },
            "acme.claims.min_cert_duration must be longer than zero",
        ),
        (
            "backdate as long as the minimum",
            Claims {
                backdate: HumanDuration::minutes(5),
                ..base.clone()
            },
            "acme.claims.backdate (5m) must be shorter than acme.claims.min_cert_duration (5m)",
        ),
        (
            "negative backdate",
            Claims {
                backdate: HumanDuration::seconds(-1),
                ..base.clone()
            },
            "acme.claims.backdate must not be negative",
        ),
    ];
    for (case, claims, text) in cases {
        assert_eq!(claims.check("acme.claims"), Err(text.to_owned()), "{case}");
    }
    let provisioner = Claims {
        max_cert_duration: HumanDuration::hours(1),
        ..base
    };
    assert_eq!(
        provisioner.check("provisioners.internal.claims"),
        Err("provisioners.internal.claims.default_cert_duration (1d) is longer than provisioners.internal.claims.max_cert_duration (1h)".to_owned())
    );
}

#[test]
fn claims_read_from_toml_with_defaults_and_unknown_keys_refused() {
    use figment::Figment;
    use figment::providers::{Format, Toml};
    let claims: Claims = Figment::from(Toml::string(
        "min_cert_duration = \"10m\"\nbackdate = \"30s\"\n",
    ))
    .extract()
    .unwrap();
    assert_eq!(claims.min_cert_duration, HumanDuration::minutes(10));
    assert_eq!(claims.backdate, HumanDuration::seconds(30));
    assert_eq!(
        claims.max_cert_duration,
        Claims::default().max_cert_duration
    );
    let partial: PartialClaims = Figment::from(Toml::string("max_cert_duration = \"8h\"\n"))
        .extract()
        .unwrap();
    assert_eq!(partial.max_cert_duration, Some(HumanDuration::hours(8)));
    assert_eq!(partial.min_cert_duration, None);
    let e = Figment::from(Toml::string("max_duration = \"8h\"\n"))
        .extract::<Claims>()
        .unwrap_err();
    assert!(e.to_string().contains("max_duration"), "{e}");
}

#[test]
fn durations_show_in_hours() {
    for (d, text) in [
        (Duration::hours(200), "200h"),
        (Duration::minutes(90), "1h30m"),
        (Duration::seconds(90), "1m30s"),
        (Duration::ZERO, "0s"),
        (Duration::seconds(3601), "1h1s"),
    ] {
        assert_eq!(show(d), text);
    }
}
