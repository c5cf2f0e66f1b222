//! Status is derived, facts are stored (ARCHITECTURE decision 3): pure functions from the
//! stored facts and `now` to the statuses of RFC 8555 §7.1.6.

use time::OffsetDateTime;

use crate::acme::{AuthorizationStatus, ChallengeStatus, OrderStatus};
use crate::storage::{Authorization, Order};

/// RFC 8555 §7.1.6, authorization diagram: pending → valid | invalid; valid → expired |
/// deactivated | revoked; pending → deactivated | expired (when it runs out).
pub fn authorization_status(authz: &Authorization, now: OffsetDateTime) -> AuthorizationStatus {
    if authz.deactivated {
        return AuthorizationStatus::Deactivated;
    }
    let statuses = || authz.challenges.iter().map(|c| c.status);
    // "If one of the challenges listed in the authorization transitions to the valid state,
    // then the authorization also changes to the valid state" — until it expires.
    if statuses().any(|s| s == ChallengeStatus::Valid) {
        return if now >= authz.expires {
            AuthorizationStatus::Expired
        } else {
            AuthorizationStatus::Valid
        };
    }
    // "If the client attempts to fulfill a challenge and fails ... the authorization
    // transitions to the invalid state."
    if statuses().any(|s| s == ChallengeStatus::Invalid) {
        return AuthorizationStatus::Invalid;
    }
    if now >= authz.expires {
        return AuthorizationStatus::Expired;
    }
    AuthorizationStatus::Pending
}

/// RFC 8555 §7.1.6, order diagram: pending → ready → processing → valid, and any state →
/// invalid on error, expiry or a failed authorization.
pub fn order_status(
    order: &Order,
    authorizations: &[AuthorizationStatus],
    now: OffsetDateTime,
) -> OrderStatus {
    // A certificate was issued: the order is done for good, even after it "expires".
    if order.certificate_id.is_some() {
        return OrderStatus::Valid;
    }
    if order.error.is_some() {
        return OrderStatus::Invalid;
    }
    // Finalization started: "processing" until the certificate or an error is recorded.
    if order.processing_since.is_some() {
        return OrderStatus::Processing;
    }
    // "invalid: The certificate will not be issued ... the order has expired, or one of the
    // authorizations failed".
    if now >= order.expires {
        return OrderStatus::Invalid;
    }
    if authorizations.iter().any(|s| {
        matches!(
            s,
            AuthorizationStatus::Invalid
                | AuthorizationStatus::Deactivated
                | AuthorizationStatus::Expired
                | AuthorizationStatus::Revoked
        )
    }) {
        return OrderStatus::Invalid;
    }
    // "ready: The server agrees that the requirements have been fulfilled".
    if !authorizations.is_empty()
        && authorizations
            .iter()
            .all(|s| *s == AuthorizationStatus::Valid)
    {
        return OrderStatus::Ready;
    }
    OrderStatus::Pending
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acme::{Identifier, Problem};
    use crate::storage::Challenge;
    use time::Duration;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn authz(
        challenges: &[ChallengeStatus],
        deactivated: bool,
        expires_in: Duration,
    ) -> Authorization {
        Authorization {
            id: "a".into(),
            account_id: "acct".into(),
            identifier: Identifier::Dns("example.com".into()),
            expires: now() + expires_in,
            created_at: now() - Duration::hours(1),
            deactivated,
            challenges: challenges
                .iter()
                .enumerate()
                .map(|(i, s)| Challenge {
                    id: format!("c{i}"),
                    authorization_id: "a".into(),
                    kind: "http-01".into(),
                    token: "t".into(),
                    status: *s,
                    validated_at: None,
                    error: None,
                    token_identity: None,
                })
                .collect(),
        }
    }

    #[test]
    fn authorization_transitions() {
        use AuthorizationStatus as A;
        use ChallengeStatus as C;
        let hour = Duration::hours(1);
        let cases: &[(&str, &[C], bool, Duration, A)] = &[
            ("new is pending", &[C::Pending], false, hour, A::Pending),
            (
                "processing challenge is still pending",
                &[C::Processing],
                false,
                hour,
                A::Pending,
            ),
            (
                "one valid challenge makes it valid",
                &[C::Invalid, C::Valid],
                false,
                hour,
                A::Valid,
            ),
            (
                "a failed challenge makes it invalid",
                &[C::Invalid, C::Pending],
                false,
                hour,
                A::Invalid,
            ),
            (
                "pending runs out: expired",
                &[C::Pending],
                false,
                -hour,
                A::Expired,
            ),
            (
                "valid runs out: expired",
                &[C::Valid],
                false,
                -hour,
                A::Expired,
            ),
            (
                "expires exactly now: expired",
                &[C::Pending],
                false,
                Duration::ZERO,
                A::Expired,
            ),
            (
                "invalid stays invalid after expiry",
                &[C::Invalid],
                false,
                -hour,
                A::Invalid,
            ),
            (
                "deactivated pending",
                &[C::Pending],
                true,
                hour,
                A::Deactivated,
            ),
            ("deactivated valid", &[C::Valid], true, hour, A::Deactivated),
        ];
        for (name, challenges, deactivated, expires_in, want) in cases {
            let got = authorization_status(&authz(challenges, *deactivated, *expires_in), now());
            assert_eq!(got, *want, "{name}");
        }
    }

    fn order() -> Order {
        Order {
            id: "o".into(),
            account_id: "acct".into(),
            identifiers: vec![Identifier::Dns("example.com".into())],
            authorization_ids: vec!["a".into()],
            not_before: None,
            not_after: None,
            expires: now() + Duration::hours(1),
            created_at: now() - Duration::hours(1),
            processing_since: None,
            certificate_id: None,
            error: None,
            profile: None,
            replaces: None,
        }
    }

    #[test]
    fn order_transitions() {
        use AuthorizationStatus as A;
        use OrderStatus as O;
        let expired = Order {
            expires: now() - Duration::seconds(1),
            ..order()
        };
        let processing = Order {
            processing_since: Some(now()),
            ..order()
        };
        let valid = Order {
            processing_since: Some(now()),
            certificate_id: Some("c".into()),
            ..order()
        };
        let failed = Order {
            processing_since: Some(now()),
            error: Some(Problem::internal()),
            ..order()
        };
        let valid_after_expiry = Order {
            expires: now() - Duration::hours(2),
            ..valid.clone()
        };
        let cases: Vec<(&str, Order, Vec<A>, O)> = vec![
            (
                "pending while an authorization is pending",
                order(),
                vec![A::Valid, A::Pending],
                O::Pending,
            ),
            (
                "ready when every authorization is valid",
                order(),
                vec![A::Valid, A::Valid],
                O::Ready,
            ),
            (
                "invalid when an authorization failed",
                order(),
                vec![A::Valid, A::Invalid],
                O::Invalid,
            ),
            (
                "invalid when an authorization expired",
                order(),
                vec![A::Expired],
                O::Invalid,
            ),
            (
                "invalid when an authorization was deactivated",
                order(),
                vec![A::Deactivated],
                O::Invalid,
            ),
            (
                "invalid when an authorization was revoked",
                order(),
                vec![A::Revoked],
                O::Invalid,
            ),
            (
                "invalid when the order expired",
                expired,
                vec![A::Valid],
                O::Invalid,
            ),
            (
                "processing once finalize began",
                processing,
                vec![A::Valid],
                O::Processing,
            ),
            (
                "valid once the certificate is stored",
                valid,
                vec![A::Valid],
                O::Valid,
            ),
            (
                "valid stays valid after expiry",
                valid_after_expiry,
                vec![A::Expired],
                O::Valid,
            ),
            (
                "invalid when issuance failed",
                failed,
                vec![A::Valid],
                O::Invalid,
            ),
            (
                "no authorizations is never ready",
                order(),
                vec![],
                O::Pending,
            ),
        ];
        for (name, o, authzs, want) in cases {
            assert_eq!(order_status(&o, &authzs, now()), want, "{name}");
        }
    }
}
