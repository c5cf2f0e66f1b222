//! `tkauth-01` (in the shape of RFC 9447): an ACME provisioner that lists `token_authorizers`
//! lets a token from one of those JWK or OIDC provisioners stand in for a network challenge.
//! The token is verified on the spot; it must allow the identifier, be bound to the account
//! key, and not have been used before on any replica.

use crate::acme::{ChallengeStatus, Identifier, Problem};
use crate::jose::Jwk;
use crate::provisioner::{TokenError, TokenErrorKind, TokenIdentity};
use crate::storage::{Account, Challenge};
use crate::validation::ChallengeType;

use super::{Authority, Result, found};

impl Authority {
    /// Verifies the token of a pending `tkauth-01` challenge and records the outcome: `valid`
    /// with the token's identity, or `invalid` with an error naming the check that failed.
    pub(super) async fn answer_token_challenge(
        &self,
        account: &Account,
        identifier: &Identifier,
        challenge: Challenge,
        token: &str,
    ) -> Result<Challenge> {
        // The TokenError kind of a refused token, for the audit log (issue 7).
        let mut refused_kind = None;
        let outcome = match self.check_token(account, identifier, token).await {
            Ok(identity) => {
                let kind = ChallengeType::TkAuth01;
                match self.check_caa(identifier, &kind, account).await {
                    Ok(()) => Ok(identity),
                    Err(problem) => Err(problem),
                }
            }
            Err(e) => {
                refused_kind = Some(e.kind.as_str());
                Err(token_problem(&e).with_identifier(identifier.clone()))
            }
        };
        let now = self.now();
        let result = if outcome.is_ok() { "valid" } else { "invalid" };
        metrics::counter!("mayfly_validations_total", "type" => ChallengeType::TkAuth01.as_str().to_owned(), "outcome" => result).increment(1);
        match &outcome {
            Ok(identity) => {
                let identity = serde_json::to_value(identity)
                    .map_err(|e| crate::storage::StoreError::Other(Box::new(e)))?;
                self.store
                    .validate_challenge_with_token(
                        &challenge.id,
                        ChallengeStatus::Pending,
                        &identity,
                        now,
                    )
                    .await?;
            }
            Err(problem) => {
                tracing::info!(
                    challenge = %challenge.id,
                    %identifier,
                    error = %problem,
                    "tkauth-01 token refused"
                );
                if let Some(kind) = refused_kind {
                    let event = super::audit::event(
                        super::audit::AuditKind::AuthRefused,
                        &super::audit::Actor::Account(account.id.clone()),
                        super::audit::object("identifier", identifier),
                        false,
                        serde_json::json!({
                            "reason": kind,
                            "challenge": challenge.id,
                            "detail": problem.detail,
                        }),
                        now,
                    );
                    self.audit(event).await;
                }
                self.store
                    .transition_challenge(
                        &challenge.id,
                        ChallengeStatus::Pending,
                        ChallengeStatus::Invalid,
                        None,
                        Some(problem),
                    )
                    .await?;
            }
        }
        found(self.store.challenge(&challenge.id).await, "challenge")
    }

    /// The token's checks, in order: signature, issuer, audience and times (by its
    /// provisioner, which must be one of the directory's `token_authorizers`); the identifier;
    /// the account binding; single use, last, so a refused token is not used up.
    async fn check_token(
        &self,
        account: &Account,
        identifier: &Identifier,
        token: &str,
    ) -> std::result::Result<TokenIdentity, TokenError> {
        let authorizers = self
            .provisioners
            .acme(&account.provisioner)
            .map(|p| p.token_authorizers.clone())
            .unwrap_or_default();
        let links = self.links(&account.provisioner);
        // A token minted for the direct API also authorizes an ACME order: either way it is
        // spent once.
        let audiences = [links.directory(), links.v1_sign()];
        let identity = self
            .provisioners
            .verify_token(token, Some(&authorizers), &audiences, self.now())
            .await?;
        let thumbprint = serde_json::from_value::<Jwk>(account.jwk.clone())
            .map(|key| key.thumbprint())
            .unwrap_or_default();
        match identity.account_thumbprint.as_deref() {
            Some(bound) if bound == thumbprint => {}
            Some(_) => {
                return Err(TokenError::new(
                    TokenErrorKind::AccountMismatch,
                    "the token is bound to another ACME account key",
                ));
            }
            None => {
                return Err(TokenError::new(
                    TokenErrorKind::AccountMismatch,
                    "the token is not bound to an ACME account: it needs cnf.jkt (or, from an \
                     OIDC provider, nonce) set to the account key's RFC 7638 thumbprint",
                ));
            }
        }
        if !identity.allows(identifier) {
            return Err(TokenError::new(
                TokenErrorKind::SanNotAllowed,
                format!(
                    "the token does not allow {identifier}; it allows {}",
                    if identity.sans.is_empty() {
                        "no names".to_owned()
                    } else {
                        identity.sans.join(", ")
                    }
                ),
            ));
        }
        match self.redeem_token(&identity).await {
            Ok(true) => Ok(identity),
            Ok(false) => Err(TokenError::new(
                TokenErrorKind::Replayed,
                "the token was used before; a token is accepted once",
            )),
            Err(e) => {
                tracing::error!(error = %e, "recording a token's use failed");
                Err(TokenError::new(
                    TokenErrorKind::ProviderUnavailable,
                    "the token's use could not be recorded; try again",
                ))
            }
        }
    }
}

/// RFC 9447 §3: a token that does not prove the right is `unauthorized`; the detail names
/// the check.
fn token_problem(e: &TokenError) -> Problem {
    Problem::unauthorized(format!(
        "tkauth-01 token refused ({}): {}",
        e.kind.as_str(),
        e.detail
    ))
}
