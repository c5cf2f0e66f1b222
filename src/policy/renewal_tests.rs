use rcgen::{
    BasicConstraints, CertificateParams, IsCa, Issuer, KeyIdMethod, KeyPair, SerialNumber,
};

use super::*;

/// 2025-01-01 12:00:00 UTC.
const ISSUED: OffsetDateTime = match OffsetDateTime::from_unix_timestamp(1_735_732_800) {
    Ok(t) => t,
    Err(_) => panic!("a valid timestamp"),
};

/// The keyIdentifier and serial of RFC 9773 §4.1's example.
const RFC_AKI: [u8; 20] = [
    0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3, 0x7B, 0x84, 0x7B, 0xA0, 0xAE, 0x2C,
    0xDE, 0x01, 0xC8, 0xD4,
];
const RFC_ID: &str = "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE";

fn hms(h: i64, m: i64, s: i64) -> Duration {
    Duration::hours(h) + Duration::minutes(m) + Duration::seconds(s)
}

#[test]
fn cert_id_formats_the_rfc_example() {
    let id = CertId {
        key_identifier: RFC_AKI.to_vec(),
        serial: vec![0x00, 0x87, 0x65, 0x43, 0x21],
    };
    assert_eq!(id.to_string(), RFC_ID);
    assert_eq!(CertId::parse(RFC_ID), Ok(id));
}

#[test]
fn cert_id_from_a_certificate_keeps_the_leading_zero_of_a_high_bit_serial() {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_identifier_method = KeyIdMethod::PreSpecified(RFC_AKI.to_vec());
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["example.com".to_owned()]).unwrap();
    leaf.serial_number = Some(SerialNumber::from_slice(&[0x87, 0x65, 0x43, 0x21]));
    leaf.use_authority_key_identifier_extension = true;
    let cert = leaf.signed_by(&leaf_key, &issuer).unwrap();

    let id = CertId::from_certificate_der(cert.der()).unwrap();
    assert_eq!(id.serial, vec![0x00, 0x87, 0x65, 0x43, 0x21]);
    assert_eq!(id.to_string(), RFC_ID);
    assert_eq!(id.to_string().parse::<CertId>(), Ok(id));

    // Without the high bit there is no leading zero.
    let mut low = CertificateParams::new(vec!["example.com".to_owned()]).unwrap();
    low.serial_number = Some(SerialNumber::from_slice(&[0x12, 0x34]));
    low.use_authority_key_identifier_extension = true;
    let cert = low.signed_by(&leaf_key, &issuer).unwrap();
    let id = CertId::from_certificate_der(cert.der()).unwrap();
    assert_eq!(id.serial, vec![0x12, 0x34]);
    assert_eq!(id.to_string(), "aYhba4dGQEHhs3uEe6CuLN4ByNQ.EjQ");
}

#[test]
fn cert_id_needs_an_authority_key_identifier() {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["example.com".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    assert_eq!(
        CertId::from_certificate_der(cert.der()),
        Err(CertIdError::NoKeyIdentifier)
    );
    assert!(matches!(
        CertId::from_certificate_der(b"not a certificate"),
        Err(CertIdError::BadCertificate(_))
    ));
}

#[test]
fn malformed_cert_ids_are_refused() {
    let cases = [
        (
            "no dot",
            "aYhba4dGQEHhs3uEe6CuLN4ByNQAIdlQyE",
            "has no \".\"",
        ),
        ("empty", "", "has no \".\""),
        ("only a dot", ".", "has an empty key identifier"),
        (
            "empty key identifier",
            ".AIdlQyE",
            "has an empty key identifier",
        ),
        (
            "empty serial",
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ.",
            "has an empty serial number",
        ),
        (
            "padding",
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ=.AIdlQyE",
            "the key identifier is not unpadded base64url",
        ),
        (
            "padded serial",
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE=",
            "the serial number is not unpadded base64url",
        ),
        (
            "standard alphabet",
            "aYhba4dGQEHhs3uEe6Cu+N4ByNQ.AIdlQyE",
            "the key identifier is not unpadded base64url",
        ),
        (
            "a second dot",
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdl.QyE",
            "the serial number is not unpadded base64url",
        ),
        (
            "non-canonical trailing bits",
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyF",
            "the serial number is not unpadded base64url",
        ),
    ];
    for (case, text, needle) in cases {
        let e = CertId::parse(text).unwrap_err();
        assert!(e.to_string().contains(needle), "{case}: {e}");
    }
}

#[test]
fn windows_scale_with_the_lifetime() {
    let settings = RenewalSettings::default();
    // (case, lifetime, expected start and end as offsets from notBefore)
    let cases = [
        // Short: centred at 1/2, ±1 % of the lifetime.
        ("1 hour", hms(1, 0, 0), hms(0, 29, 24), hms(0, 30, 36)),
        ("24 hours", hms(24, 0, 0), hms(11, 45, 36), hms(12, 14, 24)),
        (
            "24 hours and the 1-minute backdate",
            hms(24, 1, 0),
            // centre 12h0m30s, margin 864.6 s rounded down
            hms(11, 46, 6),
            hms(12, 14, 54),
        ),
        ("160 hours", hms(160, 0, 0), hms(78, 24, 0), hms(81, 36, 0)),
        (
            "one second under ten days",
            hms(240, 0, 0) - Duration::SECOND,
            // centre 119:59:59.5 → 119:59:59; margin 8639.99 s → 8639 s
            hms(117, 36, 0),
            hms(122, 23, 58),
        ),
        // Long: centred at 2/3, ±2 % of the lifetime.
        ("ten days", hms(240, 0, 0), hms(155, 12, 0), hms(164, 48, 0)),
        (
            "90 days",
            hms(2160, 0, 0),
            hms(1396, 48, 0),
            hms(1483, 12, 0),
        ),
        // The margin is at least a second, so the window is never empty.
        ("1 minute", hms(0, 1, 0), hms(0, 0, 29), hms(0, 0, 31)),
    ];
    for (case, lifetime, start, end) in cases {
        let w = suggested_window(
            ISSUED,
            ISSUED + lifetime,
            false,
            ISSUED + Duration::hours(1),
            &settings,
        );
        assert_eq!(
            w,
            SuggestedWindow {
                start: ISSUED + start,
                end: ISSUED + end
            },
            "{case}"
        );
    }
}

#[test]
fn a_revoked_certificate_gets_a_window_that_is_already_open() {
    let settings = RenewalSettings::default();
    let now = ISSUED + Duration::hours(2);
    let w = suggested_window(ISSUED, ISSUED + Duration::hours(24), true, now, &settings);
    assert_eq!(w.start, now - Duration::SECOND);
    assert_eq!(w.end, now + Duration::minutes(5));
}

#[test]
fn windows_follow_the_configured_fractions() {
    let settings = RenewalSettings {
        short_centre: Fraction::parse("3/4").unwrap(),
        short_margin: Fraction::parse("5%").unwrap(),
        ..RenewalSettings::default()
    };
    let w = suggested_window(
        ISSUED,
        ISSUED + Duration::hours(100),
        false,
        ISSUED,
        &settings,
    );
    assert_eq!(w.start, ISSUED + Duration::hours(70));
    assert_eq!(w.end, ISSUED + Duration::hours(80));
}

#[test]
fn retry_after_is_jittered_downwards_and_capped_at_a_quarter_of_the_lifetime() {
    let settings = RenewalSettings::default();
    let six_hours = Duration::hours(6);
    // (case, lifetime, random, expected)
    let cases = [
        ("90 days, no jitter", Duration::days(90), 0, six_hours),
        (
            "90 days, the most jitter",
            Duration::days(90),
            2160,
            six_hours - Duration::seconds(2160),
        ),
        (
            "90 days, the random value wraps",
            Duration::days(90),
            2161,
            six_hours,
        ),
        (
            "24 hours is exactly four times 6 h",
            Duration::hours(24),
            0,
            six_hours,
        ),
        (
            "1 hour: capped at 15 minutes",
            Duration::hours(1),
            0,
            Duration::minutes(15),
        ),
        (
            "1 hour: jitter of the capped value",
            Duration::hours(1),
            90,
            Duration::minutes(15) - Duration::seconds(90),
        ),
        (
            "2 seconds: at least 1 second",
            Duration::seconds(2),
            7,
            Duration::SECOND,
        ),
    ];
    for (case, lifetime, random, expected) in cases {
        assert_eq!(retry_after(lifetime, &settings, random), expected, "{case}");
    }
    for random in (0..50_000u64).map(|n| n.wrapping_mul(0x9E37_79B9_7F4A_7C15)) {
        for lifetime in [Duration::hours(1), Duration::hours(24), Duration::days(90)] {
            let r = retry_after(lifetime, &settings, random);
            assert!(r <= six_hours && r <= lifetime / 4, "{r} for {lifetime}");
            assert!(r >= six_hours.min(lifetime / 4) * 0.9, "{r} for {lifetime}");
        }
    }
}

#[test]
fn fractions_parse_and_print() {
    for (text, fraction, shown) in [
        ("1/2", Fraction::new(1, 2), "1/2"),
        (" 2/3 ", Fraction::new(2, 3), "2/3"),
        ("1%", Fraction::new(1, 100), "1%"),
    ] {
        let parsed = Fraction::parse(text).unwrap();
        assert_eq!(Some(parsed), fraction);
        assert_eq!(parsed.to_string(), shown);
    }
    for bad in ["", "1", "1/0", "a/b", "0.5", "-1%", "1/2/3"] {
        assert!(Fraction::parse(bad).is_err(), "{bad:?} parsed");
    }
}

#[test]
fn settings_read_from_toml_and_are_checked() {
    use figment::Figment;
    use figment::providers::{Format, Toml};
    let settings: RenewalSettings = Figment::from(Toml::string(
        "long_centre = \"3/4\"\nretry_after = \"1h\"\n",
    ))
    .extract()
    .unwrap();
    assert_eq!(settings.long_centre, Fraction::new(3, 4).unwrap());
    assert_eq!(settings.retry_after, HumanDuration::hours(1));
    assert_eq!(settings.short_margin, Fraction::new(1, 100).unwrap());
    assert_eq!(RenewalSettings::default().check("renewal"), Ok(()));
    let e = Figment::from(Toml::string("long_centre = \"0.66\"\n"))
        .extract::<RenewalSettings>()
        .unwrap_err();
    assert!(e.to_string().contains("0.66"), "{e}");

    let cases = [
        (
            RenewalSettings {
                long_centre: Fraction::new(1, 1).unwrap(),
                ..RenewalSettings::default()
            },
            "renewal.long_centre (1/1) must lie strictly between 0 and 1",
        ),
        (
            RenewalSettings {
                short_margin: Fraction::new(1, 2).unwrap(),
                ..RenewalSettings::default()
            },
            "renewal.short_margin (1/2) puts the window outside the lifetime around renewal.short_centre (1/2)",
        ),
        (
            RenewalSettings {
                long_margin: Fraction::parse("34%").unwrap(),
                ..RenewalSettings::default()
            },
            "renewal.long_margin (34%) puts the window outside the lifetime around renewal.long_centre (2/3)",
        ),
        (
            RenewalSettings {
                retry_after: HumanDuration::seconds(0),
                ..RenewalSettings::default()
            },
            "renewal.retry_after must be longer than zero",
        ),
        (
            RenewalSettings {
                retry_after_jitter: Fraction::parse("100%").unwrap(),
                ..RenewalSettings::default()
            },
            "renewal.retry_after_jitter (100%) must be under 100%",
        ),
    ];
    for (settings, text) in cases {
        assert_eq!(settings.check("renewal"), Err(text.to_owned()));
    }
}
