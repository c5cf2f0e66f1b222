//! Orders and authorizations (RFC 8555 §7.4, §7.5).

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::acme::identifier::IdentifierJson;
use crate::acme::resources::NewOrderRequest;
use crate::acme::{
    AuthorizationStatus, ChallengeStatus, Identifier, IdentifierError, OrderStatus, Problem,
    ProblemType,
};
use crate::storage::{Account, Authorization, Challenge, Order};

use super::state::{authorization_status, order_status};
use super::{Authority, Result, found, random_bytes, random_id};

/// An order with its authorizations and its derived status.
#[derive(Clone, Debug)]
pub struct OrderView {
    pub order: Order,
    pub authorizations: Vec<Authorization>,
    pub status: OrderStatus,
}

/// An authorization with its derived status.
#[derive(Clone, Debug)]
pub struct AuthorizationView {
    pub authorization: Authorization,
    pub status: AuthorizationStatus,
}

impl Authority {
    pub async fn new_order(
        &self,
        account: &Account,
        request: &NewOrderRequest,
    ) -> Result<OrderView> {
        if request.not_before.is_some() || request.not_after.is_some() {
            return Err(Problem::malformed(
                "notBefore and notAfter are not supported; the validity comes from the server's policy",
            )
            .into());
        }
        let identifiers = self.check_identifiers(&request.identifiers)?;
        let now = self.now();
        let authz_expires = now + self.settings.authorization_lifetime;
        let authorizations: Vec<Authorization> = identifiers
            .iter()
            .map(|identifier| {
                let id = random_id();
                Authorization {
                    challenges: vec![Challenge {
                        id: random_id(),
                        authorization_id: id.clone(),
                        kind: "http-01".into(),
                        // RFC 8555 §8.3: at least 128 bits of entropy.
                        token: URL_SAFE_NO_PAD.encode(random_bytes::<32>()),
                        status: ChallengeStatus::Pending,
                        validated_at: None,
                        error: None,
                    }],
                    id,
                    account_id: account.id.clone(),
                    identifier: identifier.clone(),
                    expires: authz_expires,
                    created_at: now,
                    deactivated: false,
                }
            })
            .collect();
        let order = Order {
            id: random_id(),
            account_id: account.id.clone(),
            identifiers,
            authorization_ids: authorizations.iter().map(|a| a.id.clone()).collect(),
            not_before: None,
            not_after: None,
            // An order cannot outlive the authorizations it needs.
            expires: now
                + self
                    .settings
                    .order_lifetime
                    .min(self.settings.authorization_lifetime),
            created_at: now,
            processing_since: None,
            certificate_id: None,
            error: None,
        };
        self.store.insert_order(&order, &authorizations).await?;
        Ok(self.view(order, authorizations))
    }

    /// Parses, normalises and de-duplicates the requested identifiers. Every refused
    /// identifier is reported as a subproblem (RFC 8555 §6.7.1).
    fn check_identifiers(&self, requested: &[IdentifierJson]) -> Result<Vec<Identifier>> {
        if requested.is_empty() {
            return Err(Problem::malformed("the order has no identifiers").into());
        }
        if requested.len() > self.settings.max_names {
            return Err(Problem::new(
                ProblemType::RejectedIdentifier,
                format!(
                    "the order has {} identifiers; at most {} are allowed",
                    requested.len(),
                    self.settings.max_names
                ),
            )
            .into());
        }
        let mut accepted = BTreeSet::new();
        let mut ordered = Vec::new();
        let mut refused: Vec<Problem> = Vec::new();
        for json in requested {
            match Identifier::parse(&json.kind, &json.value) {
                Ok(id) if id.is_wildcard() => refused.push(
                    Problem::new(
                        ProblemType::RejectedIdentifier,
                        format!(
                            "{} is a wildcard; wildcards need dns-01, which is not offered yet",
                            json.value
                        ),
                    )
                    .with_identifier(id),
                ),
                Ok(id) => {
                    if accepted.insert(id.clone()) {
                        ordered.push(id);
                    }
                }
                Err(IdentifierError::UnsupportedType(kind)) => refused.push(Problem::new(
                    ProblemType::UnsupportedIdentifier,
                    format!("identifier type {kind:?} is not supported (dns and ip are)"),
                )),
                Err(e) => {
                    refused.push(Problem::new(ProblemType::RejectedIdentifier, e.to_string()))
                }
            }
        }
        match refused.len() {
            0 => Ok(ordered),
            1 => Err(refused.remove(0).into()),
            n => {
                let kind = refused[0].kind;
                let same = refused.iter().all(|p| p.kind == kind);
                let mut top = Problem::new(
                    if same {
                        kind
                    } else {
                        ProblemType::RejectedIdentifier
                    },
                    format!("{n} identifiers were refused; see subproblems"),
                );
                top.subproblems = refused;
                Err(top.into())
            }
        }
    }

    /// The order, if it belongs to `account`.
    pub async fn order(&self, account: &Account, order_id: &str) -> Result<OrderView> {
        let order = found(self.store.order(order_id).await, "order")?;
        if order.account_id != account.id {
            return Err(Problem::unauthorized("this order belongs to another account").into());
        }
        let authorizations = self.store.authorizations(&order.authorization_ids).await?;
        Ok(self.view(order, authorizations))
    }

    pub(super) fn view(&self, order: Order, authorizations: Vec<Authorization>) -> OrderView {
        let now = self.now();
        let statuses: Vec<AuthorizationStatus> = authorizations
            .iter()
            .map(|a| authorization_status(a, now))
            .collect();
        let status = order_status(&order, &statuses, now);
        OrderView {
            order,
            authorizations,
            status,
        }
    }

    /// The authorization, if it belongs to `account`.
    pub async fn authorization(
        &self,
        account: &Account,
        authz_id: &str,
    ) -> Result<AuthorizationView> {
        let authorization = found(self.store.authorization(authz_id).await, "authorization")?;
        if authorization.account_id != account.id {
            return Err(
                Problem::unauthorized("this authorization belongs to another account").into(),
            );
        }
        let status = authorization_status(&authorization, self.now());
        Ok(AuthorizationView {
            authorization,
            status,
        })
    }
}
