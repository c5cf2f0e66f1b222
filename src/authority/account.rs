//! Accounts (RFC 8555 §7.3): creation with optional External Account Binding, update,
//! deactivation, key change and the orders list.

use std::collections::HashMap;
use time::OffsetDateTime;

use crate::acme::AccountStatus;
use crate::acme::Problem;
use crate::acme::ProblemType;
use crate::acme::resources::{AccountUpdateRequest, NewAccountRequest};
use crate::jose::{Jwk, ParsedEab};
use crate::storage::{Account, Authorization, EabKey, EabRefusal, Order, OrderCursor, StoreError};

use super::audit::{self, AuditKind};
use super::state::{authorization_status, order_status};
use super::{Authority, Error, Result, found, random_id};

/// What `new_account` did.
#[derive(Debug, PartialEq, Eq)]
pub enum AccountOutcome {
    Created,
    /// The key already had an account (RFC 8555 §7.3.1: answer 200 with its URL).
    Existing,
}

/// External Account Binding as newAccount sees it (RFC 8555 §7.3.4).
#[derive(Clone, Copy, Debug)]
pub struct Binding<'a> {
    /// The binding the client sent, already parsed and checked against the request.
    pub presented: Option<&'a ParsedEab>,
    /// Whether the directory requires one (`external_account_required`).
    pub required: bool,
    /// The ACME provisioner whose directory the request came through; the account belongs
    /// to it.
    pub provisioner: &'a str,
    /// The client's address, for the per-address limit on new accounts (issue 7); `None`
    /// when not known.
    pub client: Option<std::net::IpAddr>,
}

/// What `change_key` did.
#[derive(Debug)]
pub enum KeyChangeOutcome {
    /// The account, now with the new key.
    Changed(Account),
    /// Another account holds the new key (RFC 8555 §7.3.5: 409 with its URL); its id.
    KeyInUse(String),
}

/// One page of an account's orders list.
#[derive(Debug)]
pub struct OrdersPage {
    /// Newest first; orders whose status is `invalid` are left out (RFC 8555 §7.1.2.1).
    pub order_ids: Vec<String>,
    /// Where the next page starts, if more orders remain.
    pub next: Option<OrderCursor>,
}

impl Authority {
    pub async fn new_account(
        &self,
        key: &Jwk,
        request: &NewAccountRequest,
        binding: Binding<'_>,
    ) -> Result<(Account, AccountOutcome)> {
        let thumbprint = key.thumbprint();
        match self.store.account_by_thumbprint(&thumbprint).await {
            // RFC 8555 §7.3.6: a deactivated account's key authorizes nothing, this included.
            Ok(account) if account.status != AccountStatus::Valid => {
                return Err(Problem::unauthorized(format!(
                    "an account with this key exists but is {}",
                    account.status
                ))
                .into());
            }
            Ok(account) => {
                self.same_directory(&account, binding.provisioner)?;
                return Ok((account, AccountOutcome::Existing));
            }
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
        let eab_key = match (binding.presented, binding.required) {
            (Some(presented), _) => Some(self.check_binding(presented).await?),
            (None, true) => {
                return Err(Problem::new(
                    ProblemType::ExternalAccountRequired,
                    "this server requires an External Account Binding (externalAccountBinding) on newAccount",
                )
                .into());
            }
            (None, false) => None,
        };
        // An EAB key tied to a provisioner binds accounts at its directory only, so that they
        // get its policy.
        if let Some(tied) = eab_key.as_ref().and_then(|k| k.provisioner.as_deref())
            && tied != binding.provisioner
        {
            return Err(Problem::unauthorized(format!(
                "the External Account Binding key is for the directory {}",
                self.links(tied).directory()
            ))
            .into());
        }
        // Only a creation counts, after every check that could refuse it.
        self.take_new_account_slot(binding.client).await?;
        let account = Account {
            provisioner: binding.provisioner.to_owned(),
            id: random_id(),
            key_thumbprint: thumbprint.clone(),
            jwk: serde_json::to_value(key)
                .map_err(|e| Error::Store(StoreError::Other(Box::new(e))))?,
            contact,
            status: AccountStatus::Valid,
            created_at: self.now(),
        };
        let inserted = match &eab_key {
            None => self.store.insert_account(&account).await,
            Some(eab_key) => match self
                .store
                .insert_account_with_eab(&account, &eab_key.id)
                .await
            {
                Ok(Ok(())) => Ok(()),
                // The key was revoked or used up since `check_binding` read it.
                Ok(Err(refusal)) => return Err(eab_refused(&eab_key.id, refusal).into()),
                Err(e) => Err(e),
            },
        };
        match inserted {
            Ok(()) => {
                self.audit_account(&account).await;
                if let Some(eab_key) = &eab_key {
                    self.audit_account_event(
                        AuditKind::EabKeyUsed,
                        &account.id,
                        serde_json::json!({"eab_key": eab_key.id, "label": eab_key.label}),
                    )
                    .await;
                }
                Ok((account, AccountOutcome::Created))
            }
            // Another request created an account for the same key first: return that one.
            Err(StoreError::Conflict(_)) => {
                let existing = self.store.account_by_thumbprint(&thumbprint).await?;
                self.same_directory(&existing, binding.provisioner)?;
                Ok((existing, AccountOutcome::Existing))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A key has one account, which belongs to the directory it was created at.
    fn same_directory(&self, account: &Account, provisioner: &str) -> Result<()> {
        if account.provisioner == provisioner {
            return Ok(());
        }
        Err(Problem::unauthorized(format!(
            "this key's account belongs to the directory {}; use that directory, or another key",
            self.links(&account.provisioner).directory()
        ))
        .into())
    }

    /// The account named by a `kid`, which must exist and be valid (RFC 8555 §6.2, §7.3.6).
    pub async fn account_for_request(&self, id: &str) -> Result<Account> {
        Self::request_account(id, self.store.account(id).await)
    }

    /// Redeems a nonce for a request verified with a cached key of account `id`, and reads
    /// the account as it is now in the same step, with the checks of `account_for_request`
    /// (api::account_keys).
    pub async fn redeem_nonce_for_account(
        &self,
        nonce: &str,
        expires_at: OffsetDateTime,
        id: &str,
    ) -> Result<(bool, Account)> {
        let (fresh, account) = self
            .store
            .redeem_nonce_reading_account(nonce, expires_at, id)
            .await?;
        let account = Self::request_account(id, account.ok_or(StoreError::NotFound))?;
        Ok((fresh, account))
    }

    fn request_account(
        id: &str,
        read: std::result::Result<Account, StoreError>,
    ) -> Result<Account> {
        let account = match read {
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

    // --- Accounts (issue 3): EAB, update, deactivation, key change, orders list ---

    /// The EAB key named by the binding, if the binding's MAC verifies with it and it may
    /// still bind an account. The MAC is checked before the key's state, so only a holder
    /// of the key learns that it was revoked or used.
    async fn check_binding(&self, binding: &ParsedEab) -> Result<EabKey> {
        let key = match self.store.eab_key(&binding.kid).await {
            Ok(key) => key,
            Err(StoreError::NotFound) => {
                return Err(eab_refused(&binding.kid, EabRefusal::Unknown).into());
            }
            Err(e) => return Err(e.into()),
        };
        if binding.verify(&key.hmac_key).is_err() {
            return Err(Problem::unauthorized(format!(
                "the externalAccountBinding MAC ({}) does not verify with the key of EAB key id {:?}",
                binding.alg.as_str(),
                binding.kid
            ))
            .into());
        }
        if key.revoked_at.is_some() {
            return Err(eab_refused(&key.id, EabRefusal::Revoked).into());
        }
        if !key.reusable && key.use_count > 0 {
            return Err(eab_refused(&key.id, EabRefusal::Used).into());
        }
        Ok(key)
    }

    /// The EAB key that bound the account, if one did (later policy reads its label).
    pub async fn account_eab_key(&self, account_id: &str) -> Result<Option<EabKey>> {
        found(self.store.account_eab_key(account_id).await, "account")
    }

    /// RFC 8555 §7.3.2 (contact) and §7.3.6 (deactivation). Deactivation wins over a
    /// contact change sent with it; the account's own status is accepted as a no-op.
    pub async fn update_account(
        &self,
        account: &Account,
        update: &AccountUpdateRequest,
    ) -> Result<Account> {
        match update.status.as_deref() {
            None => {}
            Some(status) if status == account.status.as_str() => {}
            Some("deactivated") => {
                // `false` means a concurrent request deactivated it first: same result.
                if self.store.deactivate_account(&account.id).await? {
                    self.audit_account_event(
                        AuditKind::AccountDeactivated,
                        &account.id,
                        serde_json::json!({}),
                    )
                    .await;
                }
                return self.account(&account.id).await;
            }
            Some(other) => {
                return Err(Problem::malformed(format!(
                    "an account's status can only be changed to \"deactivated\", not {other:?}"
                ))
                .into());
            }
        }
        if let Some(contact) = &update.contact {
            check_contacts(contact)?;
            found(
                self.store
                    .update_account_contact(&account.id, contact)
                    .await,
                "account",
            )?;
            self.audit_account_event(
                AuditKind::AccountContactUpdated,
                &account.id,
                serde_json::json!({"contact": contact}),
            )
            .await;
            return self.account(&account.id).await;
        }
        Ok(account.clone())
    }

    /// RFC 8555 §7.3.5, the checks on keys (the caller checked the JWS structure, the inner
    /// signature, `url` and `account`): `old_key` must be the account's current key, and
    /// `new_key` another key that no account holds.
    pub async fn change_key(
        &self,
        account: &Account,
        old_key: &Jwk,
        new_key: &Jwk,
    ) -> Result<KeyChangeOutcome> {
        if old_key.thumbprint() != account.key_thumbprint {
            return Err(
                Problem::malformed("keyChange: oldKey is not the account's current key").into(),
            );
        }
        let new_thumbprint = new_key.thumbprint();
        if new_thumbprint == account.key_thumbprint {
            return Err(
                Problem::malformed("keyChange: the new key is the account's current key").into(),
            );
        }
        match self.store.account_by_thumbprint(&new_thumbprint).await {
            Ok(holder) => return Ok(KeyChangeOutcome::KeyInUse(holder.id)),
            Err(StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
        let jwk = serde_json::to_value(new_key)
            .map_err(|e| Error::Store(StoreError::Other(Box::new(e))))?;
        match self
            .store
            .change_account_key(
                &account.id,
                &account.key_thumbprint,
                &new_thumbprint,
                &jwk,
            )
            .await
        {
            Ok(true) => {
                self.audit_account_event(
                    AuditKind::AccountKeyChanged,
                    &account.id,
                    serde_json::json!({
                        "old_thumbprint": account.key_thumbprint,
                        "new_thumbprint": new_thumbprint,
                    }),
                )
                .await;
                Ok(KeyChangeOutcome::Changed(self.account(&account.id).await?))
            }
            Ok(false) => Err(Problem::malformed(
                "keyChange: the account key was changed by another request; sign with the current key",
            )
            .into()),
            // Another account took the new key between the lookup and the update.
            Err(StoreError::Conflict(_)) => {
                let holder = self.store.account_by_thumbprint(&new_thumbprint).await?;
                Ok(KeyChangeOutcome::KeyInUse(holder.id))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// One page of the account's orders (RFC 8555 §7.1.2.1), newest first, starting after
    /// `after`. Orders whose derived status is `invalid` are left out ("SHOULD NOT include
    /// orders that are invalid"), so a page may hold fewer than `limit` orders while more
    /// remain.
    pub async fn orders_page(
        &self,
        account: &Account,
        after: Option<&OrderCursor>,
        limit: u32,
    ) -> Result<OrdersPage> {
        let now = self.now();
        // One more than asked for tells whether another page follows.
        let mut orders = self
            .store
            .orders_by_account(&account.id, after, now, limit.saturating_add(1))
            .await?;
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let next = if orders.len() > limit {
            orders.truncate(limit);
            orders.last().map(|last| OrderCursor {
                created_at: last.created_at,
                id: last.id.clone(),
            })
        } else {
            None
        };
        let mut authorization_ids: Vec<String> = orders
            .iter()
            .flat_map(|o| o.authorization_ids.iter().cloned())
            .collect();
        authorization_ids.sort_unstable();
        authorization_ids.dedup();
        let authorizations = self.store.authorizations(&authorization_ids).await?;
        let authorizations: HashMap<&str, &Authorization> =
            authorizations.iter().map(|a| (a.id.as_str(), a)).collect();
        let order_ids = orders
            .iter()
            .filter(|order| !is_invalid(order, &authorizations, now))
            .map(|order| order.id.clone())
            .collect();
        Ok(OrdersPage { order_ids, next })
    }
    // --- end of accounts (issue 3) ---

    // --- audit log and rate limits (issue 7) ---

    /// `account.created`, by the address that created it.
    async fn audit_account(&self, account: &Account) {
        let event = audit::event(
            AuditKind::AccountCreated,
            &self.request_actor(),
            audit::object("account", &account.id),
            true,
            serde_json::json!({
                "provisioner": account.provisioner,
                "contact": account.contact,
                "thumbprint": account.key_thumbprint,
            }),
            self.now(),
        );
        self.audit(event).await;
    }

    /// An event of the account, by the account itself.
    async fn audit_account_event(
        &self,
        kind: AuditKind,
        account_id: &str,
        detail: serde_json::Value,
    ) {
        let event = audit::event(
            kind,
            &audit::Actor::Account(account_id.to_owned()),
            audit::object("account", account_id),
            true,
            detail,
            self.now(),
        );
        self.audit(event).await;
    }
    // --- end of audit log and rate limits ---
}

/// Whether the order's derived status is `invalid`.
fn is_invalid(
    order: &Order,
    authorizations: &HashMap<&str, &Authorization>,
    now: time::OffsetDateTime,
) -> bool {
    let statuses: Vec<_> = order
        .authorization_ids
        .iter()
        .filter_map(|id| authorizations.get(id.as_str()))
        .map(|a| authorization_status(a, now))
        .collect();
    order_status(order, &statuses, now) == crate::acme::OrderStatus::Invalid
}

/// RFC 8555 §7.3.4 leaves the problem type open; Mayfly answers `unauthorized`, saying which
/// condition failed.
fn eab_refused(kid: &str, refusal: EabRefusal) -> Problem {
    Problem::unauthorized(match refusal {
        EabRefusal::Unknown => format!("EAB key id {kid:?} is not known to this server"),
        EabRefusal::Revoked => format!("EAB key id {kid:?} was revoked"),
        EabRefusal::Used => {
            format!("EAB key id {kid:?} already bound an account and is not reusable")
        }
    })
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
