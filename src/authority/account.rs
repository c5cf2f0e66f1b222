//! Accounts (RFC 8555 §7.3).

use crate::acme::AccountStatus;
use crate::acme::Problem;
use crate::acme::ProblemType;
use crate::acme::resources::NewAccountRequest;
use crate::jose::Jwk;
use crate::storage::{Account, StoreError};

use super::{Authority, Error, Result, found, random_id};

/// What `new_account` did.
#[derive(Debug, PartialEq, Eq)]
pub enum AccountOutcome {
    Created,
    /// The key already had an account (RFC 8555 §7.3.1: answer 200 with its URL).
    Existing,
}

impl Authority {
    pub async fn new_account(
        &self,
        key: &Jwk,
        request: &NewAccountRequest,
    ) -> Result<(Account, AccountOutcome)> {
        let thumbprint = key.thumbprint();
        match self.store.account_by_thumbprint(&thumbprint).await {
            Ok(account) => return Ok((account, AccountOutcome::Existing)),
            Err(StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
        if request.only_return_existing == Some(true) {
            return Err(Problem::new(
                ProblemType::AccountDoesNotExist,
                "no account exists for this key (onlyReturnExisting)",
            )
            .into());
        }
        if let Some(terms) = &self.settings.terms_of_service
            && request.terms_of_service_agreed != Some(true)
        {
            // RFC 8555 §7.3.3: the client is pointed at the terms it must agree to.
            return Err(Problem::new(
                ProblemType::UserActionRequired,
                "the terms of service must be agreed to (termsOfServiceAgreed: true)",
            )
            .with_link(terms.clone(), "terms-of-service")
            .into());
        }
        let contact = request.contact.clone().unwrap_or_default();
        check_contacts(&contact)?;
        let account = Account {
            id: random_id(),
            key_thumbprint: thumbprint.clone(),
            jwk: serde_json::to_value(key)
                .map_err(|e| Error::Store(StoreError::Other(Box::new(e))))?,
            contact,
            status: AccountStatus::Valid,
            created_at: self.now(),
        };
        match self.store.insert_account(&account).await {
            Ok(()) => Ok((account, AccountOutcome::Created)),
            // Another request created an account for the same key first: return that one.
            Err(StoreError::Conflict(_)) => {
                let existing = self.store.account_by_thumbprint(&thumbprint).await?;
                Ok((existing, AccountOutcome::Existing))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The account named by a `kid`, which must exist and be valid (RFC 8555 §6.2, §7.3.6).
    pub async fn account_for_request(&self, id: &str) -> Result<Account> {
        let account = match self.store.account(id).await {
            Ok(account) => account,
            Err(StoreError::NotFound) => {
                return Err(Problem::new(
                    ProblemType::AccountDoesNotExist,
                    format!("account {id} does not exist"),
                )
                .into());
            }
            Err(e) => return Err(e.into()),
        };
        if account.status != AccountStatus::Valid {
            return Err(
                Problem::unauthorized(format!("account {id} is {}", account.status)).into(),
            );
        }
        Ok(account)
    }

    pub async fn account(&self, id: &str) -> Result<Account> {
        found(self.store.account(id).await, "account")
    }
}

/// RFC 8555 §7.3: contacts are URLs; Mayfly supports `mailto:` with exactly one address and
/// no header fields (as Boulder does).
pub fn check_contacts(contacts: &[String]) -> Result<()> {
    const MAX_CONTACTS: usize = 10;
    if contacts.len() > MAX_CONTACTS {
        return Err(Problem::new(
            ProblemType::InvalidContact,
            format!("at most {MAX_CONTACTS} contacts are allowed"),
        )
        .into());
    }
    for contact in contacts {
        let Some(address) = contact.strip_prefix("mailto:") else {
            return Err(Problem::new(
                ProblemType::UnsupportedContact,
                format!("contact {contact:?} is not supported: only mailto: URLs are"),
            )
            .into());
        };
        let invalid = |why: &str| {
            Error::from(Problem::new(
                ProblemType::InvalidContact,
                format!("contact {contact:?} is invalid: {why}"),
            ))
        };
        if address.contains('?') || address.contains(',') {
            return Err(invalid("one address without header fields is allowed"));
        }
        let Some((local, domain)) = address.rsplit_once('@') else {
            return Err(invalid("it has no '@'"));
        };
        if local.is_empty() || local.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("the local part is empty or has spaces"));
        }
        if crate::acme::Identifier::parse("dns", domain).is_err() || !domain.contains('.') {
            return Err(invalid("the domain is not a valid DNS name"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(contacts: &[&str]) -> Option<ProblemType> {
        let owned: Vec<String> = contacts.iter().map(|s| s.to_string()).collect();
        match check_contacts(&owned) {
            Ok(()) => None,
            Err(Error::Problem(p)) => Some(p.kind),
            Err(e) => panic!("unexpected {e}"),
        }
    }

    #[test]
    fn contacts() {
        assert_eq!(kind(&[]), None);
        assert_eq!(kind(&["mailto:admin@example.com"]), None);
        assert_eq!(kind(&["tel:+1555"]), Some(ProblemType::UnsupportedContact));
        assert_eq!(kind(&["mailto:"]), Some(ProblemType::InvalidContact));
        assert_eq!(
            kind(&["mailto:a@b.com,c@d.com"]),
            Some(ProblemType::InvalidContact)
        );
        assert_eq!(
            kind(&["mailto:a@b.com?subject=x"]),
            Some(ProblemType::InvalidContact)
        );
        assert_eq!(
            kind(&["mailto:a@localhost"]),
            Some(ProblemType::InvalidContact)
        );
        assert_eq!(
            kind(&["mailto:a b@example.com"]),
            Some(ProblemType::InvalidContact)
        );
    }
}
