//! ACME Renewal Information (RFC 9773): the renewalInfo use case, `replaces` in newOrder, and
//! the window an administrator moves for an incident.
//!
//! A replaced certificate is marked when the replacing order is created, not when it is
//! finalized (Boulder marks at finalize): the mark is what makes a second newOrder naming the
//! same certificate fail with `alreadyReplaced`, and setting it with the order, in one
//! transaction, closes the race between two replicas. An order that can no longer produce a
//! certificate (it failed, or expired unfinished) releases the mark, so a client whose
//! renewal failed can try again.

use time::{Duration, OffsetDateTime};
use x509_parser::extensions::ParsedExtension;
use x509_parser::oid_registry::OID_X509_EXT_SUBJECT_KEY_IDENTIFIER;

use crate::acme::{Problem, ProblemType};
use crate::issuer::serial_hex;
use crate::policy::renewal::{CertId, RenewalSettings, SuggestedWindow, retry_after};
use crate::storage::{Account, Authorization, Certificate, Order, RenewalState, Store, StoreError};

use super::{Authority, Result, found, random_bytes};

/// What a renewalInfo response says about one certificate (RFC 9773 §4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RenewalInfo {
    pub window: SuggestedWindow,
    /// How long the client should wait before asking again.
    pub retry_after: Duration,
}

impl Authority {
    /// RFC 9773 §4: the suggested window of the certificate `cert_id` names. A malformed id
    /// is `malformed`; an id of another CA's certificate, or of no certificate, is a 404.
    pub async fn renewal_info(&self, cert_id: &str) -> Result<RenewalInfo> {
        let id = CertId::parse(cert_id).map_err(|e| Problem::malformed(e.to_string()))?;
        let state = self.renewal_state(&id).await?.ok_or_else(|| {
            Problem::not_found(format!(
                "no certificate issued by this CA has the id {cert_id}"
            ))
        })?;
        let now = self.now();
        let settings = &self.settings.renewal;
        let lifetime = state.certificate.not_after - state.certificate.not_before;
        Ok(RenewalInfo {
            window: window(&state, now, settings),
            retry_after: retry_after(lifetime, settings, u64::from_be_bytes(random_bytes::<8>())),
        })
    }

    /// Stores a new order; with `replaces` (RFC 9773 §5), only if it names a certificate of
    /// the same account that shares an identifier with the order and that no other order
    /// replaces, and marks that certificate in the same transaction.
    pub(super) async fn insert_order_replacing(
        &self,
        account: &Account,
        order: &Order,
        new_authorizations: &[Authorization],
    ) -> Result<()> {
        let Some(cert_id) = &order.replaces else {
            self.store.insert_order(order, new_authorizations).await?;
            return Ok(());
        };
        let replaced = self.replaceable(account, order, cert_id).await?;
        let inserted = found(
            self.store
                .insert_replacing_order(order, new_authorizations, &replaced.id, self.now())
                .await,
            "certificate",
        )?;
        if !inserted {
            return Err(Problem::new(
                ProblemType::AlreadyReplaced,
                format!(
                    "the certificate {cert_id} (serial {}) is already replaced by another order; \
                     a certificate can be replaced only once",
                    replaced.serial
                ),
            )
            .into());
        }
        tracing::info!(order = %order.id, serial = %replaced.serial, "order replaces a certificate");
        Ok(())
    }

    /// The certificate `replaces` names, if this order may replace it.
    async fn replaceable(
        &self,
        account: &Account,
        order: &Order,
        cert_id: &str,
    ) -> Result<Certificate> {
        let malformed = |detail: String| Problem::malformed(format!("replaces: {detail}"));
        let id = CertId::parse(cert_id).map_err(|e| malformed(e.to_string()))?;
        let state = self.renewal_state(&id).await?.ok_or_else(|| {
            malformed(format!(
                "no certificate issued by this CA has the id {cert_id}"
            ))
        })?;
        let certificate = state.certificate;
        if certificate.account_id != order.account_id || account.id != order.account_id {
            return Err(malformed(format!(
                "the certificate {cert_id} was issued to another account; an order can only \
                 replace a certificate of its own account"
            ))
            .into());
        }
        let issued_for = found(self.store.order(&certificate.order_id).await, "order")?.identifiers;
        if !issued_for.iter().any(|i| order.identifiers.contains(i)) {
            let list = |ids: &[crate::acme::Identifier]| {
                ids.iter()
                    .map(|i| i.value().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(malformed(format!(
                "the certificate {cert_id} is for {} and shares no identifier with this order ({})",
                list(&issued_for),
                list(&order.identifiers)
            ))
            .into());
        }
        Ok(certificate)
    }

    /// Whether `replaces` names a certificate of `account` whose renewal window has opened
    /// (RFC 9773 §4.2): such a replacement order is exempt from the new-orders limit. A value
    /// that names no such certificate is not exempt; `replaceable` refuses it later.
    pub(super) async fn replacement_in_window(
        &self,
        account: &Account,
        replaces: Option<&str>,
    ) -> Result<bool> {
        let Some(id) = replaces.and_then(|r| CertId::parse(r).ok()) else {
            return Ok(false);
        };
        let Some(state) = self.renewal_state(&id).await? else {
            return Ok(false);
        };
        let now = self.now();
        // A revoked certificate's window is already open (`window`).
        Ok(state.certificate.account_id == account.id
            && window(&state, now, &self.settings.renewal).start <= now)
    }

    /// The stored facts of the certificate `id` names, if this CA issued it: its key
    /// identifier must be our intermediate's.
    async fn renewal_state(&self, id: &CertId) -> Result<Option<RenewalState>> {
        if key_identifier(self.issuer.intermediate_der()).as_deref()
            != Some(id.key_identifier.as_slice())
        {
            return Ok(None);
        }
        match self.store.renewal_state(&serial_hex(&id.serial)).await {
            Ok(state) => Ok(Some(state)),
            Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// The window for a certificate: the one an administrator chose wins; a revoked certificate
/// gets one that is already open; otherwise the lifetime decides (`policy::renewal`).
pub fn window(
    state: &RenewalState,
    now: OffsetDateTime,
    settings: &RenewalSettings,
) -> SuggestedWindow {
    if let Some((start, end)) = state.window {
        return SuggestedWindow { start, end };
    }
    crate::policy::renewal::suggested_window(
        state.certificate.not_before,
        state.certificate.not_after,
        state.revoked_at.is_some(),
        now,
        settings,
    )
}

/// The keyIdentifier of a CA certificate's Subject Key Identifier: what the Authority Key
/// Identifier of every certificate it signs carries, and so the first half of their ARI ids.
pub fn key_identifier(ca_der: &[u8]) -> Option<Vec<u8>> {
    let (_, cert) = x509_parser::parse_x509_certificate(ca_der).ok()?;
    let extension = cert
        .get_extension_unique(&OID_X509_EXT_SUBJECT_KEY_IDENTIFIER)
        .ok()??;
    match extension.parsed_extension() {
        ParsedExtension::SubjectKeyIdentifier(ski) => Some(ski.0.to_vec()),
        _ => None,
    }
}

/// Why an administrator's window move did not happen.
#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    #[error("{0}")]
    Usage(String),
    #[error("no certificate {0} was issued by this CA")]
    Unknown(String),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
}

/// Moves the renewal window of the certificate `target` names (its serial in hex, colons
/// allowed, or its ARI id) to `window`, or back to the computed one with `None`.
/// `intermediate_key_id`, when known, is checked against an ARI id's key identifier.
/// `mayfly admin ari` runs this against the database, so every replica sees the move.
pub async fn move_window(
    store: &dyn Store,
    target: &str,
    window: Option<(OffsetDateTime, OffsetDateTime)>,
    intermediate_key_id: Option<&[u8]>,
) -> std::result::Result<Certificate, MoveError> {
    if let Some((start, end)) = window
        && end <= start
    {
        return Err(MoveError::Usage(
            "the window must end after it starts (RFC 9773 §4.2)".to_owned(),
        ));
    }
    let serial = if target.contains('.') {
        let id = CertId::parse(target).map_err(|e| MoveError::Usage(e.to_string()))?;
        if intermediate_key_id.is_some_and(|ours| ours != id.key_identifier.as_slice()) {
            return Err(MoveError::Unknown(target.to_owned()));
        }
        serial_hex(&id.serial)
    } else {
        let mut hex: String = target.chars().filter(|c| *c != ':').collect();
        // Stored serials have no leading zero digit, so they may be of odd length.
        if hex.len() % 2 == 1 {
            hex.insert(0, '0');
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| {
                hex.get(i..i + 2)
                    .and_then(|pair| u8::from_str_radix(pair, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| {
                MoveError::Usage(format!(
                    "{target:?} is neither a serial number in hex nor an ARI certificate id"
                ))
            })?;
        serial_hex(&bytes)
    };
    let certificate = match store.renewal_state(&serial).await {
        Ok(state) => state.certificate,
        Err(StoreError::NotFound) => return Err(MoveError::Unknown(target.to_owned())),
        Err(e) => return Err(e.into()),
    };
    store.set_renewal_window(&certificate.id, window).await?;
    Ok(certificate)
}
