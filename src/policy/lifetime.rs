//! Certificate lifetimes: claims (the bounds, global and per provisioner, as step-ca has them)
//! and the validity computation that turns a profile, the claims and an optional RFC 8555 §7.4
//! `notBefore`/`notAfter` request into the exact notBefore and notAfter of a certificate.
//!
//! Everything here is pure: the caller passes `now`. Times are whole seconds, because an X.509
//! `Validity` (RFC 5280 §4.1.2.5) carries no fractions; "exact to the second" means the
//! certificate says exactly what this module computed.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::config::HumanDuration;
use crate::policy::profile::Profile;

/// The lifetime bounds for certificates, as step-ca's claims: set globally under
/// `[acme.claims]` and overridden per provisioner with [`PartialClaims`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Claims {
    /// No certificate is shorter than this.
    pub min_cert_duration: HumanDuration,
    /// No certificate is longer than this.
    pub max_cert_duration: HumanDuration,
    /// The validity when neither the profile nor the request says otherwise.
    pub default_cert_duration: HumanDuration,
    /// notBefore is set this far before the time of issuance, so that a relying party whose
    /// clock is a little behind does not see a certificate from the future.
    pub backdate: HumanDuration,
    /// Whether an expired certificate may still be renewed (step-ca's `allowRenewalAfterExpiry`).
    pub allow_renewal_after_expiry: bool,
    /// Whether `POST /v1/renew` refuses this provisioner's certificates (step-ca's
    /// `disableRenewal`); a new certificate then needs a new token or a new ACME order.
    pub disable_renewal: bool,
}

impl Default for Claims {
    /// step-ca's defaults (5 minutes, 24 hours), except the maximum: seven days, so that the
    /// built-in `shortlived` profile (160 hours, as Let's Encrypt's) fits.
    fn default() -> Self {
        Claims {
            min_cert_duration: HumanDuration::minutes(5),
            max_cert_duration: HumanDuration::hours(7 * 24),
            default_cert_duration: HumanDuration::hours(24),
            backdate: HumanDuration::minutes(1),
            allow_renewal_after_expiry: false,
            disable_renewal: false,
        }
    }
}

/// A provisioner's `claims`: each field, when present, overrides the global one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PartialClaims {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_cert_duration: Option<HumanDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_cert_duration: Option<HumanDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_cert_duration: Option<HumanDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backdate: Option<HumanDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_renewal_after_expiry: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_renewal: Option<bool>,
}

impl Claims {
    /// The claims a provisioner works with: its overrides over the global claims, field by
    /// field, as step-ca merges a provisioner's `claims` over the authority's.
    pub fn merged(global: &Claims, overrides: Option<&PartialClaims>) -> Claims {
        let Some(o) = overrides else {
            return global.clone();
        };
        Claims {
            min_cert_duration: o.min_cert_duration.unwrap_or(global.min_cert_duration),
            max_cert_duration: o.max_cert_duration.unwrap_or(global.max_cert_duration),
            default_cert_duration: o
                .default_cert_duration
                .unwrap_or(global.default_cert_duration),
            backdate: o.backdate.unwrap_or(global.backdate),
            allow_renewal_after_expiry: o
                .allow_renewal_after_expiry
                .unwrap_or(global.allow_renewal_after_expiry),
            disable_renewal: o.disable_renewal.unwrap_or(global.disable_renewal),
        }
    }

    /// Start-up checks. `key_prefix` is where these claims live in the configuration (such as
    /// `acme.claims` or `provisioners.internal.claims`), so the error names the full key.
    pub fn check(&self, key_prefix: &str) -> Result<(), String> {
        let key = |field: &str| format!("{key_prefix}.{field}");
        for (field, value) in [
            ("min_cert_duration", self.min_cert_duration),
            ("max_cert_duration", self.max_cert_duration),
            ("default_cert_duration", self.default_cert_duration),
        ] {
            if value.0 <= Duration::ZERO {
                return Err(format!("{} must be longer than zero", key(field)));
            }
        }
        if self.min_cert_duration.0 > self.max_cert_duration.0 {
            return Err(format!(
                "{} ({}) is longer than {} ({})",
                key("min_cert_duration"),
                self.min_cert_duration,
                key("max_cert_duration"),
                self.max_cert_duration
            ));
        }
        if self.default_cert_duration.0 < self.min_cert_duration.0 {
            return Err(format!(
                "{} ({}) is shorter than {} ({})",
                key("default_cert_duration"),
                self.default_cert_duration,
                key("min_cert_duration"),
                self.min_cert_duration
            ));
        }
        if self.default_cert_duration.0 > self.max_cert_duration.0 {
            return Err(format!(
                "{} ({}) is longer than {} ({})",
                key("default_cert_duration"),
                self.default_cert_duration,
                key("max_cert_duration"),
                self.max_cert_duration
            ));
        }
        if self.backdate.0 < Duration::ZERO {
            return Err(format!("{} must not be negative", key("backdate")));
        }
        // A backdate as long as the shortest certificate would let a certificate be expired,
        // or nearly so, on arrival.
        if self.backdate.0 >= self.min_cert_duration.0 {
            return Err(format!(
                "{} ({}) must be shorter than {} ({})",
                key("backdate"),
                self.backdate,
                key("min_cert_duration"),
                self.min_cert_duration
            ));
        }
        Ok(())
    }
}

/// The bounds that apply to one order: the claims narrowed by the profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    pub min: Duration,
    pub max: Duration,
    /// The validity when the order requests none.
    pub default: Duration,
    pub backdate: Duration,
    /// How far ahead a requested notBefore may lie: the order lifetime, since an order that
    /// cannot be finalized before then has no use for a later start.
    pub max_future_not_before: Duration,
}

impl Bounds {
    /// A profile can narrow the claims but never widen them: its minimum is at least the
    /// claims' minimum, its maximum at most the claims' maximum.
    pub fn new(profile: &Profile, claims: &Claims) -> Bounds {
        let min = match profile.min_cert_duration {
            Some(own) => own.0.max(claims.min_cert_duration.0),
            None => claims.min_cert_duration.0,
        };
        let max = match profile.max_cert_duration {
            Some(own) => own.0.min(claims.max_cert_duration.0),
            None => claims.max_cert_duration.0,
        };
        Bounds {
            min,
            max,
            default: profile
                .validity
                .map_or(claims.default_cert_duration.0, |v| v.0),
            backdate: claims.backdate.0,
            max_future_not_before: profile.order_lifetime.0,
        }
    }
}

/// The validity of a certificate to issue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

/// Why a requested notBefore/notAfter was refused. The wiring answers `malformed` (RFC 8555
/// §7.4) with this text as the detail, except for [`ValidityError::Misconfigured`], which is a
/// server error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValidityError {
    #[error(
        "notBefore is {} in the past; the profile {profile} allows at most {} (the backdate)",
        show(*by),
        show(*allowed)
    )]
    NotBeforeInPast {
        profile: String,
        by: Duration,
        allowed: Duration,
    },
    #[error(
        "notBefore is {} in the future; the profile {profile} allows at most {} (the order lifetime)",
        show(*by),
        show(*allowed)
    )]
    NotBeforeTooFarAhead {
        profile: String,
        by: Duration,
        allowed: Duration,
    },
    #[error("notAfter is not after {start}")]
    NotAfterBeforeStart { start: Start },
    #[error(
        "notAfter is {} after {start}; the profile {profile} requires at least {}",
        show(*lifetime),
        show(*min)
    )]
    TooShort {
        profile: String,
        start: Start,
        lifetime: Duration,
        min: Duration,
    },
    #[error(
        "notAfter is {} after {start}; the profile {profile} allows at most {}",
        show(*lifetime),
        show(*max)
    )]
    TooLong {
        profile: String,
        start: Start,
        lifetime: Duration,
        max: Duration,
    },
    /// The profile's own validity lies outside the claims in force: a configuration error
    /// that the start-up checks should have caught.
    #[error(
        "the profile {profile} has a validity of {} outside the claims ({} to {})",
        show(*validity),
        show(*min),
        show(*max)
    )]
    Misconfigured {
        profile: String,
        validity: Duration,
        min: Duration,
        max: Duration,
    },
}

/// What a requested lifetime is measured from, for the error text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// The requested notBefore.
    NotBefore,
    /// The time of issuance, when no notBefore was requested.
    Issuance,
}

impl std::fmt::Display for Start {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Start::NotBefore => "notBefore",
            Start::Issuance => "the time of issuance",
        })
    }
}

/// Computes the validity of a certificate under `profile` (named `profile_name`, for errors)
/// and `claims`, at `now`.
///
/// - Nothing requested: notBefore = now − backdate, notAfter = now + the profile's validity.
/// - A requested notBefore (RFC 8555 §7.4) is honoured as is, if it is not earlier than
///   now − backdate and not later than now + the order lifetime.
/// - A requested notAfter is honoured if it falls between the minimum and the maximum
///   lifetime after the requested notBefore or, without one, after `now`: the backdate is an
///   allowance for clock skew and does not count against the lifetime.
/// - Without a requested notAfter, notAfter = notBefore (or `now`) + the profile's validity.
///
/// Requested times are truncated to whole seconds. Call this at `newOrder` to check the request;
/// at issuance, reuse the stored requested times rather than checking them again, since a
/// notBefore that was near `now` at `newOrder` lies in the past by then.
pub fn validity(
    profile_name: &str,
    profile: &Profile,
    claims: &Claims,
    requested_not_before: Option<OffsetDateTime>,
    requested_not_after: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Result<Validity, ValidityError> {
    let bounds = Bounds::new(profile, claims);
    let name = || profile_name.to_owned();
    if bounds.default < bounds.min || bounds.default > bounds.max {
        return Err(ValidityError::Misconfigured {
            profile: name(),
            validity: bounds.default,
            min: bounds.min,
            max: bounds.max,
        });
    }
    let now = whole_seconds(now);
    let (start, start_kind, not_before) = match requested_not_before.map(whole_seconds) {
        None => (now, Start::Issuance, now - bounds.backdate),
        Some(requested) => {
            if requested < now - bounds.backdate {
                return Err(ValidityError::NotBeforeInPast {
                    profile: name(),
                    by: now - requested,
                    allowed: bounds.backdate,
                });
            }
            if requested > now + bounds.max_future_not_before {
                return Err(ValidityError::NotBeforeTooFarAhead {
                    profile: name(),
                    by: requested - now,
                    allowed: bounds.max_future_not_before,
                });
            }
            (requested, Start::NotBefore, requested)
        }
    };
    let Some(not_after) = requested_not_after.map(whole_seconds) else {
        return Ok(Validity {
            not_before,
            not_after: start + bounds.default,
        });
    };
    let lifetime = not_after - start;
    if lifetime <= Duration::ZERO {
        return Err(ValidityError::NotAfterBeforeStart { start: start_kind });
    }
    if lifetime < bounds.min {
        return Err(ValidityError::TooShort {
            profile: name(),
            start: start_kind,
            lifetime,
            min: bounds.min,
        });
    }
    if lifetime > bounds.max {
        return Err(ValidityError::TooLong {
            profile: name(),
            start: start_kind,
            lifetime,
            max: bounds.max,
        });
    }
    Ok(Validity {
        not_before,
        not_after,
    })
}

fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

/// A duration for people: hours as the largest unit ("200h", "1h30m", "90s" as "1m30s").
pub(crate) fn show(d: Duration) -> String {
    let secs = d.whole_seconds().unsigned_abs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut text = String::new();
    if h > 0 {
        text.push_str(&format!("{h}h"));
    }
    if m > 0 {
        text.push_str(&format!("{m}m"));
    }
    if s > 0 || text.is_empty() {
        text.push_str(&format!("{s}s"));
    }
    text
}

#[cfg(test)]
#[path = "lifetime_tests.rs"]
mod tests;
