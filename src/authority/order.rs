//! Orders and authorizations (RFC 8555 §7.4, §7.5).

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::acme::identifier::IdentifierJson;
use crate::acme::resources::NewOrderRequest;
use crate::acme::{
    AuthorizationStatus, ChallengeStatus, Identifier, IdentifierError, OrderStatus, Problem,
    ProblemType,
};
use crate::policy::validators::Requester;
use crate::policy::{self, Profile, ValidityError};
use crate::storage::{Account, Authorization, Challenge, Order};
use crate::validation::ChallengeType;

use super::state::{authorization_status, order_status};
use super::{Authority, Result, found, random_bytes, random_id};

/// A valid authorization is reused only if it stays valid at least this long: the new order
/// expires with it, and the client needs time to finalize. Ten minutes is ample for an order
/// that is ready at once.
const REUSE_MIN_REMAINING: Duration = Duration::minutes(10);

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
    /// newOrder (RFC 8555 §7.4) under a profile (draft-ietf-acme-profiles): the named one or
    /// the default. The profile decides which identifiers are allowed and how many, how long
    /// the order and its new authorizations last, and bounds a requested notBefore/notAfter.
    pub async fn new_order(
        &self,
        account: &Account,
        request: &NewOrderRequest,
        requester: &Requester,
    ) -> Result<OrderView> {
        let policy = self.policy(&account.provisioner);
        // A provisioner that lists its profiles offers the first of them as its default.
        let wanted = request
            .profile
            .as_deref()
            .or_else(|| policy.profiles.first().map(String::as_str));
        let (profile_name, profile) = self
            .settings
            .profiles
            .select(wanted)
            .map_err(|e| Problem::new(ProblemType::InvalidProfile, e.to_string()))?;
        if !policy.allows_profile(profile_name) {
            return Err(Problem::new(
                ProblemType::InvalidProfile,
                format!(
                    "the profile {profile_name:?} is not offered by this directory; it offers {}",
                    policy.profiles.join(", ")
                ),
            )
            .into());
        }
        let identifiers = self.check_identifiers(&request.identifiers, profile_name, profile)?;
        // The validator chain's identifier rules (issue 5), after parsing and de-duplication.
        // Where a token may authorize the order, who asks is known only once it is presented:
        // the rules then run at finalize, whose CSR stage sees every name with the token's
        // groups.
        if !self.token_authorized(account) {
            self.check_identifier_rules(&policy, &identifiers, requester)?;
        }
        let not_before = requested_time("notBefore", request.not_before.as_deref())?;
        let not_after = requested_time("notAfter", request.not_after.as_deref())?;
        let now = self.now();
        // Checked now, against this moment; finalization issues from the stored request.
        policy::validity(
            profile_name,
            profile,
            &policy.claims,
            not_before,
            not_after,
            now,
        )
        .map_err(validity_problem)?;
        // Rate limits (issue 7), after every check that could refuse the order. An ARI
        // replacement whose renewal window is open is exempt, as at Let's Encrypt.
        self.check_failed_validations(account, &identifiers).await?;
        if !self
            .replacement_in_window(account, request.replaces.as_deref())
            .await?
        {
            self.take_new_order_slot(account).await?;
        }
        let authorization_lifetime = profile.authorization_lifetime.0;
        let mut authorizations = Vec::with_capacity(identifiers.len());
        let mut created = Vec::new();
        for identifier in &identifiers {
            match self
                .reusable_authorization(account, identifier, authorization_lifetime)
                .await?
            {
                Some(reused) => authorizations.push(reused),
                None => {
                    let fresh =
                        self.fresh_authorization(account, identifier, authorization_lifetime);
                    created.push(fresh.clone());
                    authorizations.push(fresh);
                }
            }
        }
        // An order cannot outlive the authorizations it needs, reused ones included, nor
        // use a reused one longer than this profile's authorizations last.
        let lifetime = profile.order_lifetime.0.min(authorization_lifetime);
        let expires = authorizations
            .iter()
            .map(|a| usable_until(a, authorization_lifetime))
            .fold(now + lifetime, OffsetDateTime::min);
        let order = Order {
            id: random_id(),
            account_id: account.id.clone(),
            identifiers,
            authorization_ids: authorizations.iter().map(|a| a.id.clone()).collect(),
            not_before: not_before.map(whole_seconds),
            not_after: not_after.map(whole_seconds),
            expires,
            created_at: now,
            processing_since: None,
            certificate_id: None,
            error: None,
            profile: Some(profile_name.to_owned()),
            replaces: request.replaces.clone(),
        };
        // RFC 9773 §5: with `replaces`, checked and marked in the same transaction.
        self.insert_order_replacing(account, &order, &created)
            .await?;
        Ok(self.view(order, authorizations))
    }

    /// Pre-authorization (RFC 8555 §7.4.1): a valid authorization of the account for the
    /// identifier if there is one to reuse, else a new pending one. Wildcards are refused:
    /// "pre-authorization cannot be used to authorize issuance of certificates containing
    /// wildcard domain names" (§7.4.1).
    pub async fn new_authorization(
        &self,
        account: &Account,
        requested: &IdentifierJson,
    ) -> Result<AuthorizationView> {
        // Outside any order, the default profile's rules apply.
        let (profile_name, profile) = self
            .settings
            .profiles
            .select(None)
            .map_err(|e| Problem::new(ProblemType::InvalidProfile, e.to_string()))?;
        let authorization_lifetime = profile.authorization_lifetime.0;
        let identifier = self
            .check_identifiers(std::slice::from_ref(requested), profile_name, profile)?
            .remove(0);
        if identifier.is_wildcard() {
            return Err(Problem::new(
                ProblemType::RejectedIdentifier,
                format!(
                    "{} is a wildcard; RFC 8555 §7.4.1 does not allow pre-authorization of \
                     wildcards, request it in an order",
                    requested.value
                ),
            )
            .with_identifier(identifier)
            .into());
        }
        self.check_failed_validations(account, std::slice::from_ref(&identifier))
            .await?;
        let authorization = match self
            .reusable_authorization(account, &identifier, authorization_lifetime)
            .await?
        {
            Some(reused) => reused,
            None => {
                let fresh = self.fresh_authorization(account, &identifier, authorization_lifetime);
                self.store.insert_authorization(&fresh).await?;
                fresh
            }
        };
        let status = authorization_status(&authorization, self.now());
        Ok(AuthorizationView {
            authorization,
            status,
        })
    }

    /// A valid authorization of `account` for exactly `identifier` that stays usable long
    /// enough to finalize an order with it, under a profile whose authorizations last
    /// `authorization_lifetime`: one made under a profile with longer authorizations is
    /// reused only while it is younger than this profile allows (see [`usable_until`]).
    async fn reusable_authorization(
        &self,
        account: &Account,
        identifier: &Identifier,
        authorization_lifetime: Duration,
    ) -> Result<Option<Authorization>> {
        let valid_at = self.now() + REUSE_MIN_REMAINING;
        Ok(self
            .store
            .valid_authorization(&account.id, identifier, valid_at)
            .await?
            .filter(|a| usable_until(a, authorization_lifetime) >= valid_at))
    }

    /// A new pending authorization with one challenge per type offered for `identifier`.
    fn fresh_authorization(
        &self,
        account: &Account,
        identifier: &Identifier,
        lifetime: Duration,
    ) -> Authorization {
        let now = self.now();
        let id = random_id();
        Authorization {
            challenges: self
                .offered_challenges(account, identifier)
                .iter()
                .map(|kind| Challenge {
                    id: random_id(),
                    authorization_id: id.clone(),
                    kind: kind.as_str().to_owned(),
                    // RFC 8555 §8.3: at least 128 bits of entropy.
                    token: URL_SAFE_NO_PAD.encode(random_bytes::<32>()),
                    status: ChallengeStatus::Pending,
                    validated_at: None,
                    error: None,
                    token_identity: None,
                })
                .collect(),
            id,
            account_id: account.id.clone(),
            identifier: identifier.clone(),
            expires: now + lifetime,
            created_at: now,
            deactivated: false,
        }
    }

    /// Whether the account's ACME provisioner lets tokens authorize its orders.
    fn token_authorized(&self, account: &Account) -> bool {
        self.provisioners
            .acme(&account.provisioner)
            .is_some_and(|p| !p.token_authorizers.is_empty())
    }

    /// The challenges an authorization offers: the network ones for the identifier, and
    /// `tkauth-01` when the account's ACME provisioner has token authorizers (only it with
    /// `token_only`).
    fn offered_challenges(&self, account: &Account, identifier: &Identifier) -> Vec<ChallengeType> {
        let provisioner = self.provisioners.acme(&account.provisioner);
        let tokens = provisioner.is_some_and(|p| !p.token_authorizers.is_empty());
        let token_only = tokens && provisioner.is_some_and(|p| p.token_only);
        let mut offered = if token_only {
            Vec::new()
        } else {
            ChallengeType::offered_for(identifier).to_vec()
        };
        if tokens {
            offered.push(ChallengeType::TkAuth01);
        }
        offered
    }

    /// Parses, normalises and de-duplicates the requested identifiers, and applies the
    /// profile's identifier types and most names. Every refused identifier is reported as a
    /// subproblem (RFC 8555 §6.7.1).
    pub(super) fn check_identifiers(
        &self,
        requested: &[IdentifierJson],
        profile_name: &str,
        profile: &Profile,
    ) -> Result<Vec<Identifier>> {
        if requested.is_empty() {
            return Err(Problem::malformed("the order has no identifiers").into());
        }
        if requested.len() > profile.max_names {
            return Err(Problem::new(
                ProblemType::RejectedIdentifier,
                format!(
                    "the order has {} identifiers; the profile {profile_name} allows at most {}",
                    requested.len(),
                    profile.max_names
                ),
            )
            .into());
        }
        let mut accepted = BTreeSet::new();
        let mut ordered = Vec::new();
        let mut refused: Vec<Problem> = Vec::new();
        for json in requested {
            match Identifier::parse(&json.kind, &json.value) {
                Ok(id) if !profile.allows_identifier_type(id.kind()) => refused.push(
                    Problem::new(
                        ProblemType::RejectedIdentifier,
                        format!(
                            "the profile {profile_name} does not allow {} identifiers (it allows {})",
                            id.kind(),
                            allowed_types(profile)
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
                // RFC 8555 §6.7.1: the shared type, or `compound` when the causes differ.
                let mut top = Problem::new(
                    if same { kind } else { ProblemType::Compound },
                    format!("{n} identifiers were refused; see subproblems"),
                );
                top.subproblems = refused;
                Err(top.into())
            }
        }
    }

    /// The order, if it belongs to `account`.
    pub async fn order(&self, account: &Account, order_id: &str) -> Result<OrderView> {
        let (order, authorizations) = found(
            self.store.order_with_authorizations(order_id).await,
            "order",
        )?;
        if order.account_id != account.id {
            return Err(Problem::unauthorized("this order belongs to another account").into());
        }
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

/// When an authorization stops being usable for an order under a profile whose
/// authorizations last `lifetime`: its own expiry, or earlier if it is older than such a
/// profile allows. Mayfly's authorizations expire a fixed time after their creation, so an
/// authorization made under a 8-hour profile is not used past 7 hours by a 7-hour one.
fn usable_until(authorization: &Authorization, lifetime: Duration) -> OffsetDateTime {
    authorization
        .expires
        .min(authorization.created_at + lifetime)
}

/// A `notBefore` or `notAfter` of newOrder: an RFC 3339 date-time (RFC 8555 §7.4).
fn requested_time(field: &str, value: Option<&str>) -> Result<Option<OffsetDateTime>> {
    let Some(text) = value else {
        return Ok(None);
    };
    OffsetDateTime::parse(text, &Rfc3339)
        .map(Some)
        .map_err(|_| {
            Problem::malformed(format!("{field} {text:?} is not an RFC 3339 date-time")).into()
        })
}

/// A requested validity outside the profile's bounds is `malformed` (RFC 8555 §7.4 lets the
/// server refuse it), with the bound that was crossed; a profile outside the claims is this
/// server's fault.
pub(super) fn validity_problem(error: ValidityError) -> super::Error {
    if let ValidityError::Misconfigured { .. } = error {
        tracing::error!(%error, "a profile does not fit the claims");
        return Problem::internal().into();
    }
    Problem::malformed(error.to_string()).into()
}

/// X.509 times carry whole seconds; the order echoes what the certificate will say.
fn whole_seconds(time: OffsetDateTime) -> OffsetDateTime {
    time.replace_nanosecond(0).unwrap_or(time)
}

fn allowed_types(profile: &Profile) -> String {
    profile
        .identifier_types
        .iter()
        .map(|t| t.as_str())
        .collect::<Vec<_>>()
        .join(" and ")
}
