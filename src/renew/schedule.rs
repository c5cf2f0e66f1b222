//! When to renew: a pure function of what is installed, what is configured, what the server's
//! renewal information (RFC 9773) says, `now`, and a random number the caller supplies.
//!
//! The rules, in order:
//! 1. Renew at once when the certificate is missing, unreadable, does not belong to the key
//!    beside it, names other identifiers than the configured ones, or has expired.
//! 2. With ARI, renew at a uniformly random moment inside the suggested window (RFC 9773
//!    §4.2): at once when that moment has passed. A window whose end precedes its start is
//!    ignored, as the RFC asks.
//! 3. Without ARI, renew at two thirds of the lifetime: a third of it remains to notice and
//!    repair a failed renewal.

use std::collections::BTreeSet;

use time::{Duration, OffsetDateTime};

/// What the agent found on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Current {
    Missing,
    Unreadable(String),
    Present(Installed),
}

/// A readable installed certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installed {
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// SANs, normalised as [`super::config::normalise`] does.
    pub names: BTreeSet<String>,
    /// Whether the key file holds the private key of this certificate.
    pub key_matches: bool,
}

/// A suggested renewal window (RFC 9773 §4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
}

/// Why a renewal is (or will be) due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    Missing,
    Unreadable(String),
    KeyMismatch,
    NamesDiffer,
    Expired,
    AriWindow,
    TwoThirds,
    Forced,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Missing => f.write_str("the certificate is missing"),
            Reason::Unreadable(why) => write!(f, "the certificate is unreadable: {why}"),
            Reason::KeyMismatch => f.write_str("the certificate does not match the key"),
            Reason::NamesDiffer => f.write_str("the certificate's names differ from the config"),
            Reason::Expired => f.write_str("the certificate has expired"),
            Reason::AriWindow => f.write_str("inside the server's renewal window (ARI)"),
            Reason::TwoThirds => f.write_str("two thirds of the lifetime have passed"),
            Reason::Forced => f.write_str("renewal was forced"),
        }
    }
}

/// The verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Renew now.
    Now(Reason),
    /// Nothing to do until `at`.
    At { at: OffsetDateTime, reason: Reason },
}

impl Decision {
    pub fn is_due(&self) -> bool {
        matches!(self, Decision::Now(_))
    }
}

/// Decide whether to renew. `pick` is uniform in `[0, 1)`; the caller keeps it stable for
/// one certificate so that repeated checks (cron) agree on the moment inside a window.
pub fn decide(
    now: OffsetDateTime,
    configured: &BTreeSet<String>,
    current: &Current,
    window: Option<Window>,
    pick: f64,
) -> Decision {
    let installed = match current {
        Current::Missing => return Decision::Now(Reason::Missing),
        Current::Unreadable(why) => return Decision::Now(Reason::Unreadable(why.clone())),
        Current::Present(installed) => installed,
    };
    if !installed.key_matches {
        return Decision::Now(Reason::KeyMismatch);
    }
    if &installed.names != configured {
        return Decision::Now(Reason::NamesDiffer);
    }
    if now >= installed.not_after {
        return Decision::Now(Reason::Expired);
    }
    let (at, reason) = match window.filter(|w| w.end >= w.start) {
        Some(window) => (moment_in(window, pick), Reason::AriWindow),
        None => (two_thirds(installed), Reason::TwoThirds),
    };
    if at <= now {
        Decision::Now(reason)
    } else {
        Decision::At { at, reason }
    }
}

/// `start + pick × (end − start)`, to the second.
pub fn moment_in(window: Window, pick: f64) -> OffsetDateTime {
    let span = (window.end - window.start).whole_seconds() as f64;
    let offset = (span * pick.clamp(0.0, 1.0)).floor() as i64;
    window.start + Duration::seconds(offset)
}

/// notBefore + ⅔ × (notAfter − notBefore).
pub fn two_thirds(installed: &Installed) -> OffsetDateTime {
    let lifetime = installed.not_after - installed.not_before;
    installed.not_before + lifetime * 2 / 3
}

/// Bounds on the server's `Retry-After` for renewal information: RFC 9773 §4.3.2 lets
/// clients clamp it to a reasonable range; a minute stops a server from making the agent
/// spin, a day makes sure it looks at least daily.
pub const RETRY_AFTER_MIN: Duration = Duration::MINUTE;
pub const RETRY_AFTER_MAX: Duration = Duration::DAY;

/// When to look again: the due time, or earlier when the server asked to be polled again
/// (ARI `Retry-After`), and never later than `max_sleep` from now.
pub fn next_check(
    now: OffsetDateTime,
    decision: &Decision,
    retry_after: Option<Duration>,
    max_sleep: Duration,
) -> OffsetDateTime {
    let mut next = now + max_sleep;
    if let Decision::At { at, .. } = decision {
        next = next.min(*at);
    }
    if let Some(retry) = retry_after {
        next = next.min(now + retry.clamp(RETRY_AFTER_MIN, RETRY_AFTER_MAX));
    }
    next
}

/// Delay before the next attempt after `failures` consecutive failures (≥ 1): `initial`,
/// doubled each time, never above `max`.
pub fn backoff(failures: u32, initial: Duration, max: Duration) -> Duration {
    let doublings = failures.saturating_sub(1).min(30);
    let factor = 1_i32 << doublings;
    initial.checked_mul(factor).unwrap_or(max).min(max)
}

/// A wake-up jitter: up to a twentieth of the sleep, at most five minutes, so agents that
/// got their certificates at the same moment do not all come back at the same moment.
pub fn jitter(sleep: Duration, pick: f64) -> Duration {
    let bound: Duration = sleep / 20_i32;
    let bound = bound.min(Duration::minutes(5)).max(Duration::ZERO);
    Duration::seconds((bound.whole_seconds() as f64 * pick.clamp(0.0, 1.0)) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + Duration::seconds(1_700_000_000 + seconds)
    }

    fn names(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|name| (*name).to_owned()).collect()
    }

    /// Issued at t(0) for 900 s to a.test and b.test; the key matches. Two thirds: t(600).
    fn installed() -> Installed {
        Installed {
            not_before: t(0),
            not_after: t(900),
            names: names(&["a.test", "b.test"]),
            key_matches: true,
        }
    }

    #[test]
    fn decide_table() {
        let configured = names(&["a.test", "b.test"]);
        let present = Current::Present(installed());
        let window = Window {
            start: t(400),
            end: t(500),
        };
        // (case, installed, ARI window, pick, now, expected)
        type Case = (&'static str, Current, Option<Window>, f64, i64, Decision);
        let cases: Vec<Case> = vec![
            (
                "missing",
                Current::Missing,
                None,
                0.5,
                10,
                Decision::Now(Reason::Missing),
            ),
            (
                "unreadable",
                Current::Unreadable("bad PEM".into()),
                None,
                0.5,
                10,
                Decision::Now(Reason::Unreadable("bad PEM".into())),
            ),
            (
                "key does not match",
                Current::Present(Installed {
                    key_matches: false,
                    ..installed()
                }),
                None,
                0.5,
                10,
                Decision::Now(Reason::KeyMismatch),
            ),
            (
                "a name was added to the config",
                Current::Present(Installed {
                    names: names(&["a.test"]),
                    ..installed()
                }),
                None,
                0.5,
                10,
                Decision::Now(Reason::NamesDiffer),
            ),
            (
                "expired",
                present.clone(),
                None,
                0.5,
                900,
                Decision::Now(Reason::Expired),
            ),
            (
                "expired even inside a future window",
                present.clone(),
                Some(Window {
                    start: t(2000),
                    end: t(3000),
                }),
                0.5,
                901,
                Decision::Now(Reason::Expired),
            ),
            (
                "no ARI, before two thirds",
                present.clone(),
                None,
                0.5,
                10,
                Decision::At {
                    at: t(600),
                    reason: Reason::TwoThirds,
                },
            ),
            (
                "no ARI, at two thirds",
                present.clone(),
                None,
                0.5,
                600,
                Decision::Now(Reason::TwoThirds),
            ),
            (
                "ARI, before the picked moment",
                present.clone(),
                Some(window),
                0.5,
                449,
                Decision::At {
                    at: t(450),
                    reason: Reason::AriWindow,
                },
            ),
            (
                "ARI, the picked moment has come",
                present.clone(),
                Some(window),
                0.5,
                450,
                Decision::Now(Reason::AriWindow),
            ),
            (
                "ARI window earlier than two thirds wins",
                present.clone(),
                Some(Window {
                    start: t(100),
                    end: t(100),
                }),
                0.9,
                100,
                Decision::Now(Reason::AriWindow),
            ),
            (
                "ARI window moved to the past: renew now",
                present.clone(),
                Some(Window {
                    start: t(-100),
                    end: t(-50),
                }),
                0.99,
                10,
                Decision::Now(Reason::AriWindow),
            ),
            (
                "inverted ARI window is ignored",
                present.clone(),
                Some(Window {
                    start: t(500),
                    end: t(400),
                }),
                0.5,
                10,
                Decision::At {
                    at: t(600),
                    reason: Reason::TwoThirds,
                },
            ),
        ];
        for (case, current, window, pick, now, expected) in cases {
            let decision = decide(t(now), &configured, &current, window, pick);
            assert_eq!(decision, expected, "{case}");
        }
    }

    #[test]
    fn moment_in_covers_the_window() {
        let window = Window {
            start: t(0),
            end: t(100),
        };
        assert_eq!(moment_in(window, 0.0), t(0));
        assert_eq!(moment_in(window, 0.999), t(99));
        assert_eq!(moment_in(window, 7.0), t(100), "pick is clamped");
    }

    #[test]
    fn next_check_table() {
        let due = Decision::At {
            at: t(600),
            reason: Reason::TwoThirds,
        };
        let hour = Duration::HOUR;
        let cases = [
            ("due before the max sleep", due.clone(), None, t(600)),
            (
                "Retry-After earlier than due",
                due.clone(),
                Some(Duration::seconds(120)),
                t(120),
            ),
            (
                "Retry-After below a minute is raised to a minute",
                due.clone(),
                Some(Duration::seconds(1)),
                t(60),
            ),
            (
                "due now: only Retry-After and the max sleep bound",
                Decision::Now(Reason::AriWindow),
                None,
                t(3600),
            ),
        ];
        for (case, decision, retry_after, expected) in cases {
            assert_eq!(
                next_check(t(0), &decision, retry_after, hour),
                expected,
                "{case}"
            );
        }
        let far = Decision::At {
            at: t(999_999),
            reason: Reason::TwoThirds,
        };
        assert_eq!(next_check(t(0), &far, None, hour), t(3600), "max sleep");
    }

    #[test]
    fn backoff_doubles_up_to_the_bound() {
        let initial = Duration::minutes(1);
        let max = Duration::minutes(10);
        let got: Vec<i64> = (1..=6)
            .map(|n| backoff(n, initial, max).whole_minutes())
            .collect();
        assert_eq!(got, [1, 2, 4, 8, 10, 10]);
        assert_eq!(backoff(u32::MAX, initial, max), max);
    }

    #[test]
    fn jitter_is_bounded() {
        assert_eq!(jitter(Duration::seconds(100), 0.999), Duration::seconds(4));
        assert_eq!(jitter(Duration::DAY, 1.0), Duration::minutes(5));
        assert_eq!(jitter(Duration::seconds(-5), 0.5), Duration::ZERO);
    }
}
