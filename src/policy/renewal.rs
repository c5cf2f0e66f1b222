//! ACME Renewal Information (RFC 9773): certificate identifiers, the suggested renewal window
//! and the `Retry-After` that goes with it. Pure: the caller passes `now` and the randomness.
//!
//! The window scales with the lifetime. A short-lived certificate is renewed at half of its
//! lifetime (Boulder's rule for certificates under ten days), which leaves the second half to
//! notice and repair a failed renewal before the certificate expires; longer ones at two thirds.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::{Duration, OffsetDateTime};
use x509_parser::extensions::ParsedExtension;
use x509_parser::oid_registry::OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER;

use crate::config::HumanDuration;

/// A certificate identifier (RFC 9773 §4.1): the keyIdentifier of the certificate's Authority
/// Key Identifier extension and the content octets of its DER-encoded serial number (without
/// tag and length, so with the leading zero octet a serial whose high bit is set carries).
/// The text form is `base64url(keyIdentifier) "." base64url(serial)`, without padding.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CertId {
    pub key_identifier: Vec<u8>,
    pub serial: Vec<u8>,
}

/// Why a certificate identifier could not be read. The wiring answers `malformed`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CertIdError {
    #[error("certificate identifier {0:?} has no \".\" between its two parts (RFC 9773 §4.1)")]
    NoDot(String),
    #[error("certificate identifier {id:?} has an empty {part} (RFC 9773 §4.1)")]
    EmptyPart { id: String, part: &'static str },
    #[error("certificate identifier {id:?}: the {part} is not unpadded base64url (RFC 9773 §4.1)")]
    BadBase64 { id: String, part: &'static str },
    #[error("the certificate cannot be parsed: {0}")]
    BadCertificate(String),
    #[error("the certificate has no Authority Key Identifier with a keyIdentifier")]
    NoKeyIdentifier,
}

impl CertId {
    /// Parses the text form. Padding, the standard base64 alphabet and non-canonical trailing
    /// bits are refused, so each identifier has exactly one text form.
    pub fn parse(text: &str) -> Result<CertId, CertIdError> {
        let (aki, serial) = text
            .split_once('.')
            .ok_or_else(|| CertIdError::NoDot(text.to_owned()))?;
        let decode = |part: &str, what: &'static str| {
            if part.is_empty() {
                return Err(CertIdError::EmptyPart {
                    id: text.to_owned(),
                    part: what,
                });
            }
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| CertIdError::BadBase64 {
                    id: text.to_owned(),
                    part: what,
                })
        };
        Ok(CertId {
            key_identifier: decode(aki, "key identifier")?,
            serial: decode(serial, "serial number")?,
        })
    }

    /// The identifier of a DER-encoded certificate.
    pub fn from_certificate_der(der: &[u8]) -> Result<CertId, CertIdError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| CertIdError::BadCertificate(e.to_string()))?;
        let extension = cert
            .get_extension_unique(&OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER)
            .map_err(|e| CertIdError::BadCertificate(e.to_string()))?
            .ok_or(CertIdError::NoKeyIdentifier)?;
        let ParsedExtension::AuthorityKeyIdentifier(aki) = extension.parsed_extension() else {
            return Err(CertIdError::NoKeyIdentifier);
        };
        let key_identifier = aki
            .key_identifier
            .as_ref()
            .ok_or(CertIdError::NoKeyIdentifier)?;
        Ok(CertId {
            key_identifier: key_identifier.0.to_vec(),
            serial: cert.tbs_certificate.raw_serial().to_vec(),
        })
    }
}

impl std::fmt::Display for CertId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&self.key_identifier),
            URL_SAFE_NO_PAD.encode(&self.serial)
        )
    }
}

impl std::str::FromStr for CertId {
    type Err = CertIdError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        CertId::parse(text)
    }
}

/// A share of a certificate's lifetime, written `"1/2"`, `"2/3"` or `"1%"`. Kept as a ratio
/// of integers so that windows are exact to the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fraction {
    numerator: u32,
    denominator: u32,
}

impl Fraction {
    /// `numerator / denominator`; `None` for a zero denominator.
    pub const fn new(numerator: u32, denominator: u32) -> Option<Fraction> {
        if denominator == 0 {
            return None;
        }
        Some(Fraction {
            numerator,
            denominator,
        })
    }

    const fn percent(n: u32) -> Fraction {
        Fraction {
            numerator: n,
            denominator: 100,
        }
    }

    pub fn parse(text: &str) -> Result<Fraction, String> {
        let bad = || format!("{text:?} is not a fraction (write it as \"2/3\" or \"5%\")");
        let number = |s: &str| s.trim().parse::<u32>().map_err(|_| bad());
        let text = text.trim();
        if let Some(percent) = text.strip_suffix('%') {
            return Ok(Fraction::percent(number(percent)?));
        }
        let (n, d) = text.split_once('/').ok_or_else(bad)?;
        Fraction::new(number(n)?, number(d)?).ok_or_else(bad)
    }

    /// This share of `d`, rounded down to whole seconds.
    /// (numerator, denominator).
    pub const fn parts(self) -> (u32, u32) {
        (self.numerator, self.denominator)
    }

    pub fn of(self, d: Duration) -> Duration {
        let secs = i128::from(d.whole_seconds()) * i128::from(self.numerator)
            / i128::from(self.denominator);
        Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX))
    }

    /// Whether this is strictly between 0 and 1.
    fn is_proper(self) -> bool {
        self.numerator > 0 && self.numerator < self.denominator
    }
}

impl std::fmt::Display for Fraction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.denominator == 100 {
            write!(f, "{}%", self.numerator)
        } else {
            write!(f, "{}/{}", self.numerator, self.denominator)
        }
    }
}

impl Serialize for Fraction {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Fraction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Fraction::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// `[renewal]`: how renewal windows and `Retry-After` are computed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RenewalSettings {
    /// Certificates with a lifetime under this are "short" (Boulder uses ten days).
    pub short_threshold: HumanDuration,
    /// Where in a short certificate's lifetime the window is centred.
    pub short_centre: Fraction,
    /// Half the width of a short certificate's window, as a share of its lifetime.
    pub short_margin: Fraction,
    /// Where in a longer certificate's lifetime the window is centred.
    pub long_centre: Fraction,
    /// Half the width of a longer certificate's window, as a share of its lifetime.
    pub long_margin: Fraction,
    /// How long a revoked certificate's window stays open: a few minutes spread the renewals
    /// after a mass revocation instead of having every client renew in the same second.
    pub revoked_spread: HumanDuration,
    /// The `Retry-After` of a renewalInfo response before jitter and the lifetime cap.
    pub retry_after: HumanDuration,
    /// How much shorter than `retry_after` the jitter can make it, so that clients started
    /// together do not poll together.
    pub retry_after_jitter: Fraction,
}

impl Default for RenewalSettings {
    fn default() -> Self {
        RenewalSettings {
            short_threshold: HumanDuration::hours(10 * 24),
            short_centre: Fraction {
                numerator: 1,
                denominator: 2,
            },
            short_margin: Fraction::percent(1),
            long_centre: Fraction {
                numerator: 2,
                denominator: 3,
            },
            // Twice the short margin: a 90-day certificate gets a window of about 3.6 days,
            // wide enough to spread load, and still ends well before the last third.
            long_margin: Fraction::percent(2),
            revoked_spread: HumanDuration::minutes(5),
            retry_after: HumanDuration::hours(6),
            retry_after_jitter: Fraction::percent(10),
        }
    }
}

impl RenewalSettings {
    /// Start-up checks; `key_prefix` is normally `renewal`.
    pub fn check(&self, key_prefix: &str) -> Result<(), String> {
        let key = |field: &str| format!("{key_prefix}.{field}");
        for (field, value) in [
            ("short_threshold", self.short_threshold),
            ("revoked_spread", self.revoked_spread),
            ("retry_after", self.retry_after),
        ] {
            if value.0 <= Duration::ZERO {
                return Err(format!("{} must be longer than zero", key(field)));
            }
        }
        for (centre_key, centre, margin_key, margin) in [
            (
                "short_centre",
                self.short_centre,
                "short_margin",
                self.short_margin,
            ),
            (
                "long_centre",
                self.long_centre,
                "long_margin",
                self.long_margin,
            ),
        ] {
            if !centre.is_proper() {
                return Err(format!(
                    "{} ({centre}) must lie strictly between 0 and 1",
                    key(centre_key)
                ));
            }
            // The window must start after issuance and end before expiry:
            // margin < centre and centre + margin < 1, compared as exact ratios.
            let (cn, cd) = (u64::from(centre.numerator), u64::from(centre.denominator));
            let (mn, md) = (u64::from(margin.numerator), u64::from(margin.denominator));
            if mn * cd >= cn * md || cn * md + mn * cd >= cd * md {
                return Err(format!(
                    "{} ({margin}) puts the window outside the lifetime around {} ({centre})",
                    key(margin_key),
                    key(centre_key)
                ));
            }
        }
        if self.retry_after_jitter.numerator >= self.retry_after_jitter.denominator {
            return Err(format!(
                "{} ({}) must be under 100%",
                key("retry_after_jitter"),
                self.retry_after_jitter
            ));
        }
        Ok(())
    }
}

/// The `suggestedWindow` of a renewalInfo response (RFC 9773 §4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SuggestedWindow {
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
}

/// The window in which the client should renew the certificate valid from `not_before` to
/// `not_after`. Short certificates get a window centred at `short_centre` of the lifetime,
/// `short_margin` of the lifetime either side; longer ones the same with the `long_` settings.
/// The margin is at least one second, since RFC 9773 §4.2 wants `end` after `start`.
///
/// A revoked certificate gets a window that is already open (`start` is one second before
/// `now`), so the client renews at once (RFC 9773 §4.2: a window in the past means now).
pub fn suggested_window(
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    revoked: bool,
    now: OffsetDateTime,
    settings: &RenewalSettings,
) -> SuggestedWindow {
    if revoked {
        return SuggestedWindow {
            start: now - Duration::SECOND,
            end: now + settings.revoked_spread.0,
        };
    }
    let lifetime = (not_after - not_before).max(Duration::ZERO);
    let (centre, margin) = if lifetime < settings.short_threshold.0 {
        (settings.short_centre, settings.short_margin)
    } else {
        (settings.long_centre, settings.long_margin)
    };
    let centre = not_before + centre.of(lifetime);
    let margin = margin.of(lifetime).max(Duration::SECOND);
    SuggestedWindow {
        start: centre - margin,
        end: centre + margin,
    }
}

/// The `Retry-After` for a renewalInfo response about a certificate of `lifetime`: the
/// configured value, never more than a quarter of the lifetime (a client polling less often
/// could miss a whole window), then shortened by up to `retry_after_jitter` of itself.
/// `random` is any uniformly distributed number the caller draws; the jitter only ever
/// shortens, so the cap holds without clamping and no two clients are pushed onto the cap.
/// At least one second.
pub fn retry_after(lifetime: Duration, settings: &RenewalSettings, random: u64) -> Duration {
    let quarter = Fraction {
        numerator: 1,
        denominator: 4,
    };
    let base = settings.retry_after.0.min(quarter.of(lifetime));
    let span = settings.retry_after_jitter.of(base).whole_seconds();
    let cut = match u64::try_from(span) {
        Ok(span) if span > 0 => i64::try_from(random % (span + 1)).unwrap_or(0),
        _ => 0,
    };
    (base - Duration::seconds(cut)).max(Duration::SECOND)
}

#[cfg(test)]
#[path = "renewal_tests.rs"]
mod tests;
