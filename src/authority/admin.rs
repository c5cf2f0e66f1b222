//! The admin API's use cases (issue 7): what an operator may read and change. The API layer
//! has checked the caller's admin role; these only check the request itself.

use time::{Duration, OffsetDateTime};

use super::renewal::{MoveError, key_identifier, move_window};
use super::revocation::check_reason;
use super::{Authority, Error, random_bytes, random_id};
use crate::storage::{
    Account, AccountCursor, CertificateCounts, CertificateCursor, CertificateFilter,
    CertificateRecord, EabKey, StoreError,
};

/// HMAC key length of new EAB keys: 64 bytes is the block-sized key of HS512 (RFC 7518 §3.2
/// asks for at least the hash size), so one key serves HS256, HS384 and HS512.
const EAB_HMAC_KEY_BYTES: usize = 64;

/// How long a `renew-now` window stays open: long enough for a client polling at its
/// Retry-After to catch it, short enough that the window means "now" (RFC 9773 §4.2 lets
/// clients renew at any point inside it).
pub const RENEW_NOW_SPREAD: Duration = Duration::minutes(5);

/// Why an admin request failed. The API gives each its own problem type.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Malformed(String),
    /// The request conflicts with the current state (e.g. already revoked).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Internal(#[from] Error),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        AdminError::Internal(e.into())
    }
}

pub type AdminResult<T> = std::result::Result<T, AdminError>;

/// What the status endpoint reports about the CA.
#[derive(Debug)]
pub struct CaStatus {
    pub root_fingerprint: String,
    pub root_not_after: Option<OffsetDateTime>,
    pub intermediate_fingerprint: String,
    pub intermediate_not_after: OffsetDateTime,
    pub counts: CertificateCounts,
    pub now: OffsetDateTime,
}

/// How an ARI window moves.
#[derive(Clone, Copy, Debug)]
pub enum WindowMove {
    To(OffsetDateTime, OffsetDateTime),
    RenewNow,
    Reset,
}

impl Authority {
    pub async fn admin_status(&self) -> AdminResult<CaStatus> {
        let now = self.now();
        let counts = self.store.certificate_counts(now).await?;
        let root_der = x509_parser::pem::Pem::iter_from_buffer(self.issuer.root_pem().as_bytes())
            .next()
            .and_then(Result::ok)
            .map(|p| p.contents);
        let root_not_after = root_der.as_deref().and_then(|der| {
            x509_parser::parse_x509_certificate(der)
                .ok()
                .map(|(_, c)| c.validity().not_after.to_datetime())
        });
        Ok(CaStatus {
            root_fingerprint: self.issuer.root_fingerprint().to_owned(),
            root_not_after,
            intermediate_fingerprint: sha256_hex(self.issuer.intermediate_der()),
            intermediate_not_after: self.issuer.intermediate_not_after(),
            counts,
            now,
        })
    }

    /// One page of certificates matching `filter`, and the cursor of the next page when the
    /// store's page was full (a page may hold fewer than `limit` after the exact name check).
    pub async fn admin_certificates(
        &self,
        filter: &CertificateFilter,
        after: Option<&CertificateCursor>,
        limit: u32,
    ) -> AdminResult<(Vec<CertificateRecord>, Option<CertificateCursor>)> {
        let now = self.now();
        let mut records = self
            .store
            .certificate_records(filter, after, now, limit)
            .await?;
        let next = (records.len() == limit as usize)
            .then(|| records.last())
            .flatten()
            .map(|r| CertificateCursor {
                created_at: r.certificate.created_at,
                id: r.certificate.id.clone(),
            });
        records.retain(|r| filter.matches_name(&r.identifiers));
        Ok((records, next))
    }

    pub async fn admin_certificate(&self, serial: &str) -> AdminResult<CertificateRecord> {
        let serial = normalise_serial(serial)?;
        match self.store.certificate_record(&serial).await {
            Ok(record) => Ok(record),
            Err(StoreError::NotFound) => Err(AdminError::NotFound(format!(
                "no certificate with serial {serial} was issued by this CA"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Revokes through the same path as ACME revocation (RFC 8555 §7.6): the CRL is signed
    /// again at once and renewalInfo sees the revocation.
    pub async fn admin_revoke(&self, serial: &str, reason: u8) -> AdminResult<CertificateRecord> {
        check_reason(Some(i64::from(reason))).map_err(|_| {
            AdminError::Malformed(format!(
                "revocation reason {reason} is not allowed (RFC 5280 §5.3.1; 7 is unassigned, 8 is removeFromCRL)"
            ))
        })?;
        let record = self.admin_certificate(serial).await?;
        if record.revoked_at.is_some() {
            return Err(AdminError::Conflict(format!(
                "certificate {} is already revoked",
                record.certificate.serial
            )));
        }
        match self.record_revocation(&record.certificate, reason).await {
            Ok(()) => {}
            // A revocation on another replica got there between the read and the update.
            Err(Error::Problem(p)) if p.kind == crate::acme::ProblemType::AlreadyRevoked => {
                return Err(AdminError::Conflict(p.detail));
            }
            Err(e) => return Err(e.into()),
        }
        self.admin_certificate(&record.certificate.serial).await
    }

    pub async fn admin_accounts(
        &self,
        after: Option<&AccountCursor>,
        limit: u32,
    ) -> AdminResult<Vec<Account>> {
        Ok(self.store.accounts_page(after, limit).await?)
    }

    /// RFC 8555 §7.3.6 on the operator's behalf: the account's key authorizes nothing more.
    /// `Conflict` if it was not valid.
    pub async fn admin_deactivate_account(&self, id: &str) -> AdminResult<Account> {
        match self.store.deactivate_account(id).await {
            Ok(true) => Ok(self.store.account(id).await?),
            Ok(false) => Err(AdminError::Conflict(format!(
                "account {id} is not valid (it is already deactivated or revoked)"
            ))),
            Err(StoreError::NotFound) => {
                Err(AdminError::NotFound(format!("there is no account {id:?}")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A new EAB key (RFC 8555 §7.3.4) for `provisioner` (an ACME provisioner) or for
    /// whichever directory the account is created at.
    pub async fn admin_add_eab_key(
        &self,
        label: &str,
        reusable: bool,
        provisioner: Option<&str>,
    ) -> AdminResult<EabKey> {
        if let Some(name) = provisioner
            && self.provisioners.acme(name).is_none()
        {
            return Err(AdminError::Malformed(format!(
                "there is no ACME provisioner {name:?}; an EAB key binds accounts at an ACME directory"
            )));
        }
        let key = new_eab_key(label, reusable, provisioner, self.now());
        self.store.insert_eab_key(&key).await?;
        Ok(key)
    }

    pub async fn admin_eab_keys(&self) -> AdminResult<Vec<EabKey>> {
        Ok(self.store.eab_keys().await?)
    }

    /// Stops the key from binding new accounts. `Conflict` if it already was revoked.
    pub async fn admin_revoke_eab_key(&self, kid: &str) -> AdminResult<EabKey> {
        match self.store.revoke_eab_key(kid, self.now()).await {
            Ok(true) => Ok(self.store.eab_key(kid).await?),
            Ok(false) => Err(AdminError::Conflict(format!(
                "EAB key {kid} is already revoked"
            ))),
            Err(StoreError::NotFound) => Err(AdminError::NotFound(format!(
                "there is no EAB key with kid {kid:?}"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Moves the renewal window (RFC 9773) of the certificate `target` names: its serial (hex,
    /// colons allowed) or its ARI id.
    pub async fn admin_move_window(
        &self,
        target: &str,
        how: WindowMove,
    ) -> AdminResult<(CertificateRecord, Option<(OffsetDateTime, OffsetDateTime)>)> {
        let now = self.now();
        let window = match how {
            WindowMove::To(start, end) => Some((start, end)),
            WindowMove::RenewNow => Some((now, now + RENEW_NOW_SPREAD)),
            WindowMove::Reset => None,
        };
        let key_id = key_identifier(self.issuer.intermediate_der());
        let moved = match move_window(&*self.store, target, window, key_id.as_deref()).await {
            Ok(moved) => moved,
            Err(MoveError::Usage(why)) => return Err(AdminError::Malformed(why)),
            Err(e @ MoveError::Unknown(_)) => return Err(AdminError::NotFound(e.to_string())),
            Err(MoveError::Store(e)) => return Err(e.into()),
        };
        Ok((self.admin_certificate(&moved.serial).await?, window))
    }
}

/// A new EAB key with a random id and HMAC key, not stored yet.
pub fn new_eab_key(
    label: &str,
    reusable: bool,
    provisioner: Option<&str>,
    now: OffsetDateTime,
) -> EabKey {
    EabKey {
        id: random_id(),
        hmac_key: random_bytes::<EAB_HMAC_KEY_BYTES>().to_vec(),
        label: label.to_owned(),
        reusable,
        created_at: now,
        revoked_at: None,
        use_count: 0,
        provisioner: provisioner.map(str::to_owned),
    }
}

/// A serial as the operator may type it (hex, any case, colons allowed) in Mayfly's form.
pub fn normalise_serial(serial: &str) -> AdminResult<String> {
    let hex: String = serial.chars().filter(|c| *c != ':').collect();
    if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(AdminError::Malformed(format!(
            "{serial:?} is not a serial number in hex"
        )));
    }
    let trimmed = hex.to_ascii_lowercase();
    let trimmed = trimmed.trim_start_matches('0');
    Ok(if trimmed.is_empty() { "0" } else { trimmed }.to_owned())
}

fn sha256_hex(data: &[u8]) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
