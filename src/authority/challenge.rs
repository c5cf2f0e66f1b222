//! Responding to challenges (RFC 8555 §7.5.1). Validation runs in the background, bounded by
//! the validator, and the answer waits a bounded time for it; its outcome is recorded with a
//! conditional update.

use crate::acme::{AuthorizationStatus, ChallengeStatus, Problem};
use crate::jose::{Jwk, key_authorization};
use crate::storage::{Account, Challenge};
use crate::validation::ChallengeType;
use crate::validation::caa::CaaRequest;

use super::state::authorization_status;
use super::{Authority, Result, found};

/// What the client sent when it answered a challenge.
#[derive(Clone, Debug, Default)]
pub struct ChallengeAnswer {
    /// A `tkauth-01` answer's token (RFC 9447 §3); other challenges carry none.
    pub token: Option<String>,
}

impl Authority {
    /// The challenge and the id of its authorization, if it belongs to `account`.
    pub async fn challenge(&self, account: &Account, challenge_id: &str) -> Result<Challenge> {
        Ok(self.challenge_of(account, challenge_id).await?.0)
    }

    /// The challenge, if it belongs to `account`, with its authorization: one read.
    async fn challenge_of(
        &self,
        account: &Account,
        challenge_id: &str,
    ) -> Result<(Challenge, crate::storage::Authorization)> {
        let authz = found(
            self.store.authorization_of_challenge(challenge_id).await,
            "challenge",
        )?;
        if authz.account_id != account.id {
            return Err(Problem::unauthorized("this challenge belongs to another account").into());
        }
        let challenge = authz
            .challenges
            .iter()
            .find(|c| c.id == challenge_id)
            .cloned()
            .ok_or(crate::storage::StoreError::NotFound);
        Ok((found(challenge, "challenge")?, authz))
    }

    /// The client says the challenge is ready. A pending challenge moves to `processing`
    /// and is validated in the background, and the answer waits up to `answer_within` for it
    /// to pass; any other state is returned as it is, so a repeated POST is harmless.
    pub async fn respond_to_challenge(
        &self,
        account: &Account,
        challenge_id: &str,
        answer: ChallengeAnswer,
    ) -> Result<Challenge> {
        let (challenge, authz) = self.challenge_of(account, challenge_id).await?;
        if challenge.status != ChallengeStatus::Pending {
            return Ok(challenge);
        }
        let status = authorization_status(&authz, self.now());
        match status {
            AuthorizationStatus::Pending => {}
            // RFC 8555 §7.1.6: one valid challenge makes the authorization valid; the others
            // need no answer, and answering one changes nothing.
            AuthorizationStatus::Valid => return Ok(challenge),
            _ => {
                return Err(Problem::malformed(format!(
                    "the authorization is {status}; its challenges can no longer be answered"
                ))
                .into());
            }
        }
        // Only one challenge of an authorization needs to pass, so only one is validated at a
        // time: while another is processing, this one stays as it is.
        if authz
            .challenges
            .iter()
            .any(|c| c.id != challenge.id && c.status == ChallengeStatus::Processing)
        {
            return Ok(challenge);
        }
        if ChallengeType::parse(&challenge.kind) == ChallengeType::TkAuth01 {
            let token = answer.token.ok_or_else(|| {
                Problem::malformed(
                    "tkauth-01 is answered with the token: {\"atc\": \"<token>\"} (RFC 9447 §3)",
                )
            })?;
            return self
                .answer_token_challenge(account, &authz.identifier, challenge, &token)
                .await;
        }
        let moved = self
            .store
            .transition_challenge(
                &challenge.id,
                ChallengeStatus::Pending,
                ChallengeStatus::Processing,
                None,
                None,
            )
            .await?;
        if moved {
            let key: Jwk = serde_json::from_value(account.jwk.clone())
                .map_err(|e| crate::storage::StoreError::Other(Box::new(e)))?;
            let key_authorization = key_authorization(&challenge.token, &key);
            let authority = self.clone();
            let identifier = authz.identifier.clone();
            let background = challenge.clone();
            let account = account.clone();
            let validation = tokio::spawn(async move {
                authority
                    .validate_and_record(background, identifier, key_authorization, account)
                    .await
            });
            // RFC 8555 §7.5.1 lets the answer carry `processing` or the outcome. A validation
            // that passes soon is answered `valid`, which saves the client its polls; past the
            // bound it goes on in the background (dropping the handle detaches it). A failure
            // is left for the poll to find: instant-acme, for one, takes an `invalid`
            // challenge in this answer for a failed request, not for a failed validation.
            if !self.settings.answer_within.is_zero() {
                let outcome =
                    match tokio::time::timeout(self.settings.answer_within, validation).await {
                        // What this validation recorded: no need to read it back.
                        Ok(Ok(Some(recorded))) => Some(recorded),
                        // Not recorded here (another writer moved it, or the task failed).
                        Ok(_) => Some(found(
                            self.store.challenge(&challenge.id).await,
                            "challenge",
                        )?),
                        Err(_) => None,
                    };
                if let Some(outcome) = outcome.filter(|c| c.status == ChallengeStatus::Valid) {
                    return Ok(outcome);
                }
            }
            return Ok(Challenge {
                status: ChallengeStatus::Processing,
                ..challenge
            });
        }
        found(self.store.challenge(&challenge.id).await, "challenge")
    }

    async fn validate_and_record(
        &self,
        challenge: Challenge,
        identifier: crate::acme::Identifier,
        key_authorization: String,
        account: Account,
    ) -> Option<Challenge> {
        let kind = ChallengeType::parse(&challenge.kind);
        let mut outcome = self
            .validator
            .validate(&kind, &identifier, &challenge.token, &key_authorization)
            .await;
        if outcome.is_ok() {
            outcome = self.check_caa(&identifier, &kind, &account).await;
        }
        let now = self.now();
        let (to, error) = match &outcome {
            Ok(()) => (ChallengeStatus::Valid, None),
            Err(problem) => (ChallengeStatus::Invalid, Some(problem)),
        };
        tracing::info!(
            challenge = %challenge.id,
            %identifier,
            outcome = %to,
            error = error.map(|p| p.to_string()).unwrap_or_default(),
            "validation finished"
        );
        metrics::counter!("mayfly_validations_total", "type" => kind.as_str().to_owned(), "outcome" => to.to_string()).increment(1);
        if outcome.is_err() {
            self.count_failed_validation(&account.id, &identifier).await;
        }
        let validated_at = outcome.is_ok().then_some(now);
        match self
            .store
            .transition_challenge(
                &challenge.id,
                ChallengeStatus::Processing,
                to,
                validated_at,
                error,
            )
            .await
        {
            Ok(true) => Some(Challenge {
                status: to,
                validated_at,
                error: error.cloned(),
                ..challenge
            }),
            Ok(false) => None,
            Err(e) => {
                // The challenge stays `processing`; its authorization expires in time, so a
                // client polling it is not left waiting for ever.
                tracing::error!(challenge = %challenge.id, error = %e, "recording a validation failed");
                None
            }
        }
    }

    /// CAA (RFC 8659), after control of the name is proven and before the authorization
    /// becomes valid, unless the account's ACME provisioner turns it off (`caa_check`). IP
    /// identifiers have no CAA.
    pub(super) async fn check_caa(
        &self,
        identifier: &crate::acme::Identifier,
        kind: &ChallengeType,
        account: &Account,
    ) -> std::result::Result<(), Problem> {
        let enabled = self
            .provisioners
            .acme(&account.provisioner)
            .map_or(self.settings.caa_check, |p| p.caa_check);
        if !enabled {
            return Ok(());
        }
        let account_uri = self.links(&account.provisioner).account(&account.id);
        let request = CaaRequest {
            ca_identities: &self.settings.caa_identities,
            account_uri: &account_uri,
            validation_method: kind.as_str(),
        };
        self.validator.check_caa(identifier, &request).await
    }
}
