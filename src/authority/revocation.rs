//! Revocation (RFC 8555 §7.6) and the CRL of the issuer (RFC 5280 §5).
//!
//! Who may revoke: the account that was issued the certificate, an account holding valid
//! authorizations for every identifier in it, or whoever signs with the certificate's own key
//! (a `jwk` request, or an account whose key is the certificate's key).
//!
//! The CRL lists every revoked certificate that has not expired yet (RFC 5280 §3.3 lets a CA
//! drop entries once the certificate expires; short-lived certificates drop off within a day).
//! Each replica signs its own CRL from the database on a schedule and right after each
//! revocation it records, and serves the latest one it signed. CRL numbers come from one
//! counter row per issuer in the database, so they increase across replicas.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;

use crate::acme::{Problem, ProblemType};
use crate::config::Config;
use crate::issuer::crl::{ALLOWED_REASONS, CrlEntry, CrlRequest};
use crate::issuer::serial_hex;
use crate::jose::Jwk;
use crate::storage::{Account, Certificate, StoreError};

use super::{Authority, Error, Result, found};

/// The CRL settings, from `[crl]`.
#[derive(Clone, Debug)]
pub struct CrlSettings {
    /// `crl.url`; `None` derives `http://<listen>/crl/<issuer>.crl`.
    pub url: Option<String>,
    pub listen: SocketAddr,
    /// nextUpdate = thisUpdate + this.
    pub next_update: Duration,
}

impl CrlSettings {
    pub fn from_config(config: &Config) -> Self {
        CrlSettings {
            url: config.crl.url.clone(),
            listen: config.crl.listen,
            next_update: config.crl.next_update.0,
        }
    }
}

/// Who signed a revocation request (RFC 8555 §7.6): an account (`kid`) or a key (`jwk`).
#[derive(Debug)]
pub enum Signer {
    Account(Account),
    Key(Jwk),
}

/// A signed CRL.
#[derive(Debug)]
pub struct Crl {
    /// DER, served as `application/pkix-crl`.
    pub der: Vec<u8>,
    pub number: u64,
    pub this_update: OffsetDateTime,
    pub next_update: OffsetDateTime,
    /// How many certificates it lists.
    pub entries: usize,
}

/// The latest CRL this replica signed.
#[derive(Debug, Default)]
pub struct CrlCache(RwLock<Option<Arc<Crl>>>);

impl CrlCache {
    fn latest(&self) -> Option<Arc<Crl>> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Keeps `crl` unless a CRL with a higher number is already here: two regenerations that
    /// race (the schedule and a revocation) may finish in either order.
    fn offer(&self, crl: Arc<Crl>) -> Arc<Crl> {
        let mut latest = self.0.write().unwrap_or_else(|e| e.into_inner());
        match &*latest {
            Some(current) if current.number > crl.number => current.clone(),
            _ => {
                *latest = Some(crl.clone());
                crl
            }
        }
    }
}

impl Authority {
    /// The CRL distribution point put in every leaf.
    pub fn crl_url(&self) -> String {
        match &self.settings.crl.url {
            Some(url) => url.clone(),
            None => format!("http://{}{}", self.settings.crl.listen, self.crl_path()),
        }
    }

    /// The path the CRL listener serves this issuer's CRL at.
    pub fn crl_path(&self) -> String {
        format!("/crl/{}.crl", self.issuer.crl_name())
    }

    /// RFC 8555 §7.6. `certificate_b64` is the base64url DER of the certificate; `reason` an
    /// RFC 5280 CRLReason (absent means unspecified).
    pub async fn revoke(
        &self,
        signer: &Signer,
        certificate_b64: &str,
        reason: Option<i64>,
    ) -> Result<()> {
        let reason = check_reason(reason)?;
        let der = URL_SAFE_NO_PAD
            .decode(certificate_b64.trim_end_matches('='))
            .map_err(|_| Problem::malformed("certificate is not base64url"))?;
        let (rest, cert) = X509Certificate::from_der(&der)
            .map_err(|_| Problem::malformed("certificate is not a DER X.509 certificate"))?;
        if !rest.is_empty() {
            return Err(Problem::malformed("certificate has trailing bytes after the DER").into());
        }
        let serial = serial_hex(cert.raw_serial());
        let stored = self.issued_certificate(&serial, &der).await?;
        let certificate_key = Jwk::from_spki(cert.public_key().raw)
            .ok()
            .map(|key| key.thumbprint());
        self.authorize_revocation(signer, &stored, certificate_key.as_deref())
            .await?;
        self.record_revocation(&stored, reason).await
    }

    /// Marks an authorized revocation and signs a new CRL; `alreadyRevoked` if it was.
    pub(super) async fn record_revocation(&self, stored: &Certificate, reason: u8) -> Result<()> {
        let serial = &stored.serial;
        let now = self.now();
        let audited = super::audit::event(
            super::audit::AuditKind::CertificateRevoked,
            &self.request_actor(),
            super::audit::object("serial", serial),
            true,
            serde_json::json!({"reason": reason, "account": stored.account_id}),
            now,
        );
        if !found(
            self.store
                .revoke_certificate_audited(&stored.id, reason, now, &audited)
                .await,
            "certificate",
        )? {
            return Err(Problem::new(
                ProblemType::AlreadyRevoked,
                format!("certificate {serial} is already revoked"),
            )
            .into());
        }
        tracing::info!(%serial, reason, "certificate revoked");
        super::audit::log(&audited);
        // The revocation is recorded; a CRL that fails to sign now is signed by the schedule.
        if let Err(e) = self.regenerate_crl().await {
            tracing::error!(error = %e, "signing the CRL after a revocation failed");
        }
        Ok(())
    }

    /// The stored certificate with this serial, if it is exactly `der`. Anything else is the
    /// same 404: a serial we issued with other bytes is not a certificate we issued.
    async fn issued_certificate(&self, serial: &str, der: &[u8]) -> Result<Certificate> {
        let unknown = || {
            Error::from(Problem::not_found(format!(
                "no certificate with serial {serial} was issued by this CA"
            )))
        };
        let stored = match self.store.certificate_by_serial(serial).await {
            Ok(stored) => stored,
            Err(StoreError::NotFound) => return Err(unknown()),
            Err(e) => return Err(e.into()),
        };
        let stored_der = Pem::iter_from_buffer(stored.chain_pem.as_bytes())
            .next()
            .and_then(|pem| pem.ok())
            .map(|pem| pem.contents);
        if stored_der.as_deref() != Some(der) {
            return Err(unknown());
        }
        Ok(stored)
    }

    /// RFC 8555 §7.6: the issuing account, an account authorized for every identifier, or the
    /// holder of the certificate's key.
    async fn authorize_revocation(
        &self,
        signer: &Signer,
        certificate: &Certificate,
        certificate_key: Option<&str>,
    ) -> Result<()> {
        let account = match signer {
            Signer::Key(key) => {
                if certificate_key == Some(key.thumbprint().as_str()) {
                    return Ok(());
                }
                return Err(Problem::unauthorized(
                    "the request is signed with a jwk that is not the certificate's key",
                )
                .into());
            }
            Signer::Account(account) => account,
        };
        if account.id == certificate.account_id
            || certificate_key == Some(account.key_thumbprint.as_str())
        {
            return Ok(());
        }
        let order = found(self.store.order(&certificate.order_id).await, "order")?;
        let now = self.now();
        for identifier in &order.identifiers {
            if !self
                .store
                .has_valid_authorization(&account.id, identifier, now)
                .await?
            {
                return Err(Problem::unauthorized(format!(
                    "account {} did not request this certificate and holds no valid \
                     authorization for {identifier}",
                    account.id
                ))
                .into());
            }
        }
        Ok(())
    }

    /// Signs a fresh CRL from the database and keeps it as this replica's latest.
    pub async fn regenerate_crl(&self) -> Result<Arc<Crl>> {
        let name = self.issuer.crl_name();
        let now = self.now();
        let number = self.store.next_crl_number(&name).await?;
        let number = u64::try_from(number).map_err(|_| {
            StoreError::Other(format!("CRL number {number} of {name} is negative").into())
        })?;
        let entries: Vec<CrlEntry> = self
            .store
            .revoked_certificates(now)
            .await?
            .into_iter()
            .map(|revoked| CrlEntry {
                serial: revoked.serial,
                revoked_at: revoked.revoked_at,
                reason: revoked.reason,
            })
            .collect();
        let request = CrlRequest {
            number,
            this_update: now,
            next_update: now + self.settings.crl.next_update,
            entries,
        };
        let der = self.issuer.sign_crl(&request)?;
        let crl = Arc::new(Crl {
            der,
            number,
            this_update: request.this_update,
            next_update: request.next_update,
            entries: request.entries.len(),
        });
        tracing::debug!(number, entries = crl.entries, "signed a CRL");
        Ok(self.crls.offer(crl))
    }

    /// Sets `mayfly_crl_age_seconds` from the latest CRL signed here, if any (at scrape time:
    /// an age set when the CRL is signed would never grow).
    pub fn observe_crl_age(&self) {
        if let Some(crl) = self.crls.latest() {
            let age = (self.now() - crl.this_update).as_seconds_f64();
            metrics::gauge!("mayfly_crl_age_seconds", "issuer" => self.issuer.crl_name()).set(age);
        }
    }

    /// The CRL named `name` (the file name without `.crl`), if it is this issuer's: the latest
    /// one signed here, signing one first if there is none yet.
    pub async fn crl(&self, name: &str) -> Result<Option<Arc<Crl>>> {
        if name != self.issuer.crl_name() {
            return Ok(None);
        }
        match self.crls.latest() {
            Some(crl) => Ok(Some(crl)),
            None => Ok(Some(self.regenerate_crl().await?)),
        }
    }
}

/// RFC 5280 §5.3.1 reason codes, minus the unassigned 7 and removeFromCRL (8).
pub(super) fn check_reason(reason: Option<i64>) -> Result<u8> {
    let Some(reason) = reason else {
        return Ok(0);
    };
    match u8::try_from(reason) {
        Ok(code) if ALLOWED_REASONS.contains(&code) => Ok(code),
        _ => Err(Problem::new(
            ProblemType::BadRevocationReason,
            format!(
                "revocation reason {reason} is not allowed; use one of {}",
                ALLOWED_REASONS.map(|r| r.to_string()).join(", ")
            ),
        )
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons() {
        for (name, reason, want) in [
            ("absent is unspecified", None, Some(0)),
            ("keyCompromise", Some(1), Some(1)),
            ("certificateHold", Some(6), Some(6)),
            ("unassigned 7", Some(7), None),
            ("removeFromCRL", Some(8), None),
            ("aACompromise", Some(10), Some(10)),
            ("beyond the list", Some(11), None),
            ("negative", Some(-1), None),
            ("huge", Some(1 << 40), None),
        ] {
            let got = check_reason(reason);
            assert_eq!(got.as_ref().ok().copied(), want, "{name}");
            if want.is_none() {
                match got {
                    Err(Error::Problem(p)) => {
                        assert_eq!(p.kind, ProblemType::BadRevocationReason, "{name}");
                        assert!(p.detail.contains("0, 1, 2, 3, 4, 5, 6, 9, 10"), "{name}");
                    }
                    other => panic!("{name}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn the_cache_keeps_the_highest_number() {
        let cache = CrlCache::default();
        let crl = |number| {
            Arc::new(Crl {
                der: vec![],
                number,
                this_update: OffsetDateTime::UNIX_EPOCH,
                next_update: OffsetDateTime::UNIX_EPOCH,
                entries: 0,
            })
        };
        assert!(cache.latest().is_none());
        assert_eq!(cache.offer(crl(2)).number, 2);
        assert_eq!(cache.offer(crl(1)).number, 2);
        assert_eq!(cache.offer(crl(3)).number, 3);
        assert_eq!(cache.latest().map(|c| c.number), Some(3));
    }
}
