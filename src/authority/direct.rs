//! The direct API's use cases (issue 6), beside ACME, in the style of Anchor and step-ca:
//! - [`Authority::direct_sign`]: a CSR signed for a one-time token (`POST /v1/sign`);
//! - [`Authority::direct_renew`]: a certificate issued again for the holder of its key, who
//!   proved it with mutual TLS (`POST /v1/renew`);
//! - [`Authority::direct_revoke`]: a certificate revoked by serial for a token
//!   (`POST /v1/revoke`).
//!
//! Certificates issued here are stored like ACME ones, because revocation, the CRL, ARI and
//! renewal need them. The schema ties a certificate to an order and an account, so an issuance
//! is recorded as an order (identifiers = the certificate's DNS names and IP addresses, no
//! authorizations; its certificate makes it valid) under one synthetic account per token
//! provisioner, `prov-<name>`, created on first use. That account's key is a fresh P-256
//! public key whose private half is thrown away at once, so no ACME request can ever be signed
//! for it; its `provisioner` is the token provisioner, whose policy therefore also applies to
//! renewals and revocations. A renewal is recorded under the account of the certificate it
//! renews, so an ACME certificate renewed here stays with its ACME account.
//!
//! Errors carry a stable `kind` (the `type` of the API's JSON error): the token checks'
//! [`TokenErrorKind::as_str`](crate::provisioner::TokenErrorKind::as_str) names (401), the
//! ACME problem type names (`badCSR`, `malformed`, `rejectedIdentifier`, …) for refused
//! requests, and the names below.

use std::collections::BTreeSet;

use time::OffsetDateTime;

use crate::acme::identifier::IdentifierJson;
use crate::acme::{AccountStatus, Identifier, Problem, ProblemType};
use crate::issuer::csr::{CsrError, ParsedCsr};
use crate::issuer::reissue::IssuedLeaf;
use crate::issuer::{IssuanceRequest, IssuerError, LeafProfile};
use crate::jose::SigningKey;
use crate::policy::validators::{CsrFacts, Requester};
use crate::policy::{self, Profile, Validity};
use crate::provisioner::{ProvisionerPolicy, TokenError, TokenErrorKind, TokenIdentity};
use crate::storage::{Account, Certificate, Order, StoreError};

use super::{Authority, Error, random_id};

/// 401: `/v1/renew` without a TLS client certificate.
pub const CERTIFICATE_REQUIRED: &str = "certificateRequired";
/// 401: the TLS client certificate is not one this CA issued (or not as stored).
pub const UNKNOWN_CERTIFICATE: &str = "unknownCertificate";
/// 403: the certificate to renew was revoked.
pub const CERTIFICATE_REVOKED: &str = "certificateRevoked";
/// 403: the certificate to renew expired, and its provisioner does not renew expired ones.
pub const CERTIFICATE_EXPIRED: &str = "certificateExpired";
/// 403: the certificate's provisioner has `disable_renewal`.
pub const RENEWAL_DISABLED: &str = "renewalDisabled";
/// 403: the profile asked for is not one the token's provisioner issues under.
pub const PROFILE_NOT_ALLOWED: &str = "profileNotAllowed";
/// 403: a revocation token's `sub` is not the serial it asks to revoke.
pub const SERIAL_MISMATCH: &str = "serialMismatch";
/// 403: a revocation token comes from another provisioner than the certificate's.
pub const PROVISIONER_MISMATCH: &str = "provisionerMismatch";
/// 404: no certificate with that serial.
pub const NOT_FOUND: &str = "notFound";

/// Why a direct API request was not served.
#[derive(Debug, thiserror::Error)]
pub enum DirectError {
    /// The client's fault or the policy's refusal: a stable `kind`, an HTTP status, a detail.
    #[error("{kind}: {detail}")]
    Refused {
        status: u16,
        kind: &'static str,
        detail: String,
    },
    /// The server's fault; the API answers a generic 500 and logs this.
    #[error(transparent)]
    Internal(Error),
}

impl DirectError {
    pub fn refused(status: u16, kind: &'static str, detail: impl Into<String>) -> Self {
        DirectError::Refused {
            status,
            kind,
            detail: detail.into(),
        }
    }
}

impl From<Error> for DirectError {
    fn from(e: Error) -> Self {
        match e {
            Error::Problem(problem) => {
                let kind = match problem.status {
                    404 => NOT_FOUND,
                    _ => problem.kind.code_and_status().0,
                };
                DirectError::refused(problem.status, kind, describe(&problem))
            }
            internal => DirectError::Internal(internal),
        }
    }
}

impl From<Problem> for DirectError {
    fn from(problem: Problem) -> Self {
        Error::from(problem).into()
    }
}

/// Every token failure is a 401, named by its kind.
impl From<TokenError> for DirectError {
    fn from(e: TokenError) -> Self {
        DirectError::refused(401, e.kind.as_str(), e.detail)
    }
}

impl From<StoreError> for DirectError {
    fn from(e: StoreError) -> Self {
        DirectError::Internal(e.into())
    }
}

type DirectResult<T> = std::result::Result<T, DirectError>;

/// A problem's detail with its subproblems' (the validator chain names one rule per name).
fn describe(problem: &Problem) -> String {
    let mut detail = problem.detail.clone();
    for sub in &problem.subproblems {
        match &sub.identifier {
            Some(id) => detail.push_str(&format!("; {}: {}", id.value(), sub.detail)),
            None => detail.push_str(&format!("; {}", sub.detail)),
        }
    }
    detail
}

/// `POST /v1/sign`, as the API parsed it.
#[derive(Clone, Debug)]
pub struct SignRequest {
    /// The CSR, DER.
    pub csr_der: Vec<u8>,
    /// The profile to issue under; default: the provisioner's first, else the global default.
    pub profile: Option<String>,
    /// A requested notAfter, within the profile's and the claims' bounds.
    pub not_after: Option<OffsetDateTime>,
}

/// A certificate the direct API issued.
#[derive(Clone, Debug)]
pub struct DirectCertificate {
    /// Lower-case hex, as [`Certificate::serial`].
    pub serial: String,
    /// The leaf, then the intermediate, PEM.
    pub chain_pem: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl DirectCertificate {
    /// The PEM blocks of the chain, leaf first.
    pub fn certificates(&self) -> Vec<String> {
        const END: &str = "-----END CERTIFICATE-----";
        self.chain_pem
            .split_inclusive(END)
            .map(str::trim_start)
            .filter(|block| block.ends_with(END))
            .map(|block| format!("{block}\n"))
            .collect()
    }
}

/// The id of the synthetic account a token provisioner's certificates are recorded under.
pub fn provisioner_account_id(provisioner: &str) -> String {
    format!("prov-{provisioner}")
}

impl Authority {
    /// `POST /v1/sign`: verifies the token (for `audience`, the `/v1/sign` URL) and uses it up,
    /// checks that it allows every name of the CSR, and issues under its provisioner's policy
    /// (claims, profiles, validator chain with the token's groups, fixups). `caller` carries
    /// the network facts for the chain's `source_cidrs`.
    pub async fn direct_sign(
        &self,
        credentials: &Credentials,
        audience: &str,
        request: SignRequest,
        caller: Requester,
    ) -> DirectResult<DirectCertificate> {
        let identity = match credentials {
            Credentials::Token(token) => self.redeemed_identity(token, audience).await?,
            Credentials::Static {
                provisioner,
                user,
                secret,
            } => self.static_identity(provisioner, user, secret)?,
        };
        let mut csr = parse_csr(&request.csr_der)?;
        check_binding(&identity, &csr)?;
        check_allowed(&identity, &csr)?;
        check_key(&csr)?;
        // A CN that repeats one of the email addresses is dropped: only DNS names and IP
        // addresses may be common names of a leaf (the leaf still carries the address).
        if let Some(cn) = &csr.common_name
            && csr.emails.iter().any(|e| e.eq_ignore_ascii_case(cn))
        {
            csr.common_name = None;
        }
        let policy = self.policy(&identity.provisioner);
        let requester = Requester {
            provisioner: Some(identity.provisioner.clone()),
            account_id: Some(identity.subject.clone()),
            groups: identity.groups.clone(),
            ..caller
        };
        let (profile_name, profile) = self.direct_profile(&policy, request.profile.as_deref())?;
        let identifiers = csr.names();
        self.check_direct_names(&identifiers, &csr.emails, profile_name, profile)?;
        policy
            .chain
            .check_identifiers(&identifiers, &requester)
            .map_err(|refusals| super::chain::refused(&refusals, &requester))?;
        let now = self.now();
        let validity = policy::validity(
            profile_name,
            profile,
            &policy.claims,
            None,
            request.not_after,
            now,
        )
        .map_err(super::order::validity_problem)?;
        let account = self.provisioner_account(&identity.provisioner).await?;
        let order = direct_order(&account, identifiers, profile_name, request.not_after, now);
        let leaf = self.apply_chain(&policy, &order, &csr, profile, &requester)?;
        let spki_der = csr.spki_der.clone();
        self.issue_recorded(
            order,
            Reissue {
                emails: csr.emails,
                leaf,
                validity,
                csr_der: csr.der,
                spki_der,
            },
        )
        .await
    }

    /// `POST /v1/renew`: `client_chain` is the TLS client certificate chain (leaf first) the
    /// listener verified; the handshake proved that the client holds the leaf's key. The leaf
    /// must be one this CA issued and stored, not revoked, and unexpired unless its
    /// provisioner's claims allow renewal after expiry; renewal must not be disabled. The new
    /// certificate has the same names, common name and key usages, a validity from the claims
    /// (under the original order's profile) and the same key, or the key of `csr_der` when
    /// given (which must ask for exactly the same names).
    pub async fn direct_renew(
        &self,
        client_chain: &[Vec<u8>],
        csr_der: Option<Vec<u8>>,
        caller: Requester,
    ) -> DirectResult<DirectCertificate> {
        let Some(leaf_der) = client_chain.first() else {
            return Err(DirectError::refused(
                401,
                CERTIFICATE_REQUIRED,
                "present the certificate to renew as the TLS client certificate",
            ));
        };
        let (old, stored) = self.renewable(leaf_der).await?;
        let account = self.store.account(&stored.account_id).await?;
        let policy = self.policy(&account.provisioner);
        if policy.claims.disable_renewal {
            return Err(DirectError::refused(
                403,
                RENEWAL_DISABLED,
                format!(
                    "the provisioner {:?} does not renew its certificates (disable_renewal)",
                    policy.name
                ),
            ));
        }
        let now = self.now();
        if now >= old.not_after && !policy.claims.allow_renewal_after_expiry {
            return Err(DirectError::refused(
                403,
                CERTIFICATE_EXPIRED,
                format!(
                    "certificate {} expired at {}; the provisioner {:?} does not renew expired certificates",
                    old.serial, old.not_after, policy.name
                ),
            ));
        }
        let requester = Requester {
            provisioner: Some(account.provisioner.clone()),
            account_id: Some(account.id.clone()),
            ..caller
        };
        let (csr_der, spki_der) = match csr_der {
            None => (Vec::new(), old.spki_der.clone()),
            Some(der) => self.rekey(&der, &old, &policy, &requester)?,
        };
        let original = self.store.order(&stored.order_id).await?;
        let (profile_name, profile) = self.renewal_profile(&original)?;
        let validity = policy::validity(profile_name, profile, &policy.claims, None, None, now)
            .map_err(super::order::validity_problem)?;
        let order = direct_order(&account, old.identifiers.clone(), profile_name, None, now);
        tracing::info!(
            target: "mayfly::audit",
            event = "renew",
            provisioner = %account.provisioner,
            account = %account.id,
            serial = %old.serial,
            "a certificate is renewed over mutual TLS"
        );
        self.issue_recorded(
            order,
            Reissue {
                emails: old.emails,
                leaf: old.leaf,
                validity,
                csr_der,
                spki_der,
            },
        )
        .await
    }

    /// `POST /v1/revoke`: verifies the token (for `audience`, the `/v1/revoke` URL) and uses it
    /// up. Unless it is an admin's (OIDC), its `sub` must be the serial (as step-ca's revoke
    /// tokens) and its provisioner the certificate's. Then revokes as ACME revocation does,
    /// signing a new CRL. Returns the serial as stored.
    pub async fn direct_revoke(
        &self,
        token: &str,
        audience: &str,
        serial: &str,
        reason: Option<i64>,
    ) -> DirectResult<String> {
        let reason = super::revocation::check_reason(reason)?;
        let serial = normalise_serial(serial).ok_or_else(|| {
            Problem::malformed(format!(
                "serial {serial:?} is not a hexadecimal serial number"
            ))
        })?;
        let identity = self.redeemed_identity(token, audience).await?;
        if !identity.admin && normalise_serial(&identity.subject).as_deref() != Some(&serial) {
            return Err(DirectError::refused(
                403,
                SERIAL_MISMATCH,
                format!(
                    "the token is for {:?}, not for serial {serial}",
                    identity.subject
                ),
            ));
        }
        let stored = match self.store.certificate_by_serial(&serial).await {
            Ok(stored) => stored,
            Err(StoreError::NotFound) => {
                return Err(DirectError::refused(
                    404,
                    NOT_FOUND,
                    format!("no certificate with serial {serial} was issued by this CA"),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        let account = self.store.account(&stored.account_id).await?;
        if !identity.admin && account.provisioner != identity.provisioner {
            return Err(DirectError::refused(
                403,
                PROVISIONER_MISMATCH,
                format!(
                    "certificate {serial} was issued through the provisioner {:?}; a token of {:?} cannot revoke it",
                    account.provisioner, identity.provisioner
                ),
            ));
        }
        self.record_revocation(&stored, reason).await?;
        Ok(stored.serial)
    }

    /// A verified token, recorded as used; `tokenReplayed` if it was used before.
    /// A static provisioner's user and secret (Anchor's `user`/`secret`; development only).
    /// The user may ask for any names: the provisioner's validator chain decides.
    fn static_identity(
        &self,
        provisioner: &str,
        user: &str,
        secret: &str,
    ) -> DirectResult<TokenIdentity> {
        let Some(config) = self.provisioners.static_provisioner(provisioner) else {
            return Err(TokenError::new(
                TokenErrorKind::UnknownProvisioner,
                format!("there is no static provisioner {provisioner:?}"),
            )
            .into());
        };
        // Both compared in constant time, so a wrong guess reveals nothing of either.
        let user_ok = aws_lc_rs::constant_time::verify_slices_are_equal(
            user.as_bytes(),
            config.user.as_bytes(),
        )
        .is_ok();
        let secret_ok = aws_lc_rs::constant_time::verify_slices_are_equal(
            secret.as_bytes(),
            config.secret.as_bytes(),
        )
        .is_ok();
        if !(user_ok && secret_ok) {
            return Err(DirectError::refused(
                401,
                BAD_CREDENTIALS,
                format!("the user or the secret of static provisioner {provisioner:?} is wrong"),
            ));
        }
        Ok(TokenIdentity {
            provisioner: provisioner.to_owned(),
            subject: user.to_owned(),
            sans: Vec::new(),
            email: None,
            groups: Vec::new(),
            admin: true,
            token_id: String::new(),
            expires_at: self.now(),
            account_thumbprint: None,
        })
    }

    async fn redeemed_identity(&self, token: &str, audience: &str) -> DirectResult<TokenIdentity> {
        let now = self.now();
        let identity = self
            .provisioners
            .verify_token(token, None, &[audience.to_owned()], now)
            .await?;
        if !self.redeem_token(&identity).await? {
            return Err(TokenError::new(
                TokenErrorKind::Replayed,
                "this token was used before; every token is good for one request",
            )
            .into());
        }
        Ok(identity)
    }

    /// The profile asked for, or the provisioner's first, or the global default; it must be
    /// one the provisioner issues under.
    fn direct_profile<'a>(
        &'a self,
        policy: &ProvisionerPolicy,
        requested: Option<&str>,
    ) -> DirectResult<(&'a str, &'a Profile)> {
        let wanted = requested.or_else(|| policy.profiles.first().map(String::as_str));
        let (name, profile) = self
            .settings
            .profiles
            .select(wanted)
            .map_err(|e| Problem::new(ProblemType::InvalidProfile, e.to_string()))?;
        if !policy.allows_profile(name) {
            return Err(DirectError::refused(
                403,
                PROFILE_NOT_ALLOWED,
                format!(
                    "the provisioner {:?} does not issue under the profile {name:?}; it issues under {}",
                    policy.name,
                    policy.profiles.join(", ")
                ),
            ));
        }
        Ok((name, profile))
    }

    /// The profile's identifier types and most names, as for a new order; email addresses
    /// count towards the most names.
    fn check_direct_names(
        &self,
        identifiers: &[Identifier],
        emails: &[String],
        profile_name: &str,
        profile: &Profile,
    ) -> DirectResult<()> {
        if identifiers.is_empty() && emails.is_empty() {
            return Err(Problem::bad_csr("the CSR asks for no name").into());
        }
        if !identifiers.is_empty() {
            let wire: Vec<IdentifierJson> = identifiers.iter().map(IdentifierJson::from).collect();
            self.check_identifiers(&wire, profile_name, profile)?;
        }
        let count = identifiers.len() + emails.len();
        if count > profile.max_names {
            return Err(Problem::new(
                ProblemType::RejectedIdentifier,
                format!(
                    "the CSR asks for {count} names; the profile {profile_name} allows at most {}",
                    profile.max_names
                ),
            )
            .into());
        }
        Ok(())
    }

    /// The stored certificate the TLS client presented, exactly as stored and not revoked.
    async fn renewable(&self, leaf_der: &[u8]) -> DirectResult<(IssuedLeaf, Certificate)> {
        let unknown = |detail: String| DirectError::refused(401, UNKNOWN_CERTIFICATE, detail);
        let old = IssuedLeaf::from_der(leaf_der)
            .map_err(|e| unknown(format!("the client certificate cannot be renewed: {e}")))?;
        let state = match self.store.renewal_state(&old.serial).await {
            Ok(state) => state,
            Err(StoreError::NotFound) => {
                return Err(unknown(format!(
                    "the client certificate (serial {}) was not issued by this CA",
                    old.serial
                )));
            }
            Err(e) => return Err(e.into()),
        };
        let stored_der =
            x509_parser::pem::Pem::iter_from_buffer(state.certificate.chain_pem.as_bytes())
                .next()
                .and_then(|pem| pem.ok())
                .map(|pem| pem.contents);
        if stored_der.as_deref() != Some(leaf_der) {
            return Err(unknown(format!(
                "the client certificate (serial {}) is not the one this CA issued",
                old.serial
            )));
        }
        if state.revoked_at.is_some() {
            return Err(DirectError::refused(
                403,
                CERTIFICATE_REVOKED,
                format!("certificate {} is revoked", old.serial),
            ));
        }
        Ok((old, state.certificate))
    }

    /// A renewal with a new key: the CSR must ask for exactly the old names, and passes the
    /// chain's CSR rules (key policy, extensions). Returns the CSR and its public key.
    fn rekey(
        &self,
        der: &[u8],
        old: &IssuedLeaf,
        policy: &ProvisionerPolicy,
        requester: &Requester,
    ) -> DirectResult<(Vec<u8>, Vec<u8>)> {
        let csr = parse_csr(der)?;
        let wanted: BTreeSet<&Identifier> = old.identifiers.iter().collect();
        let names = csr.names();
        let got: BTreeSet<&Identifier> = names.iter().collect();
        let lower = |emails: &[String]| -> BTreeSet<String> {
            emails.iter().map(|e| e.to_ascii_lowercase()).collect()
        };
        if wanted != got || lower(&old.emails) != lower(&csr.emails) {
            return Err(Problem::bad_csr(
                "a renewal keeps the names: the CSR must ask for exactly the names of the certificate it renews",
            )
            .into());
        }
        check_key(&csr)?;
        let facts = CsrFacts::from_der(&csr.der).map_err(Problem::bad_csr)?;
        policy
            .chain
            .check_csr_facts(&csr, &facts, requester)
            .map_err(|refusals| super::chain::refused(&refusals, requester))?;
        Ok((csr.der, csr.spki_der))
    }

    /// The profile of the order that issued a certificate; if it is gone from the
    /// configuration, the default one.
    fn renewal_profile(&self, order: &Order) -> DirectResult<(&str, &Profile)> {
        let profiles = &self.settings.profiles;
        profiles
            .select(order.profile.as_deref())
            .or_else(|_| profiles.select(None))
            .map_err(|e| {
                tracing::error!(error = %e, "the default profile is missing");
                DirectError::Internal(Problem::internal().into())
            })
    }

    /// The synthetic account of a token provisioner (see the module comment), created on first
    /// use; of two requests (on any replicas) creating it at once, the second reads the first
    /// one's.
    async fn provisioner_account(&self, provisioner: &str) -> DirectResult<Account> {
        let id = provisioner_account_id(provisioner);
        match self.store.account(&id).await {
            Ok(account) => return Ok(account),
            Err(StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
        // The private key is dropped here: nobody can sign for this account.
        let key = SigningKey::generate_p256().jwk();
        let account = Account {
            id,
            key_thumbprint: key.thumbprint(),
            jwk: serde_json::to_value(&key).map_err(|e| StoreError::Other(Box::new(e)))?,
            contact: Vec::new(),
            status: AccountStatus::Valid,
            created_at: self.now(),
            provisioner: provisioner.to_owned(),
        };
        match self.store.insert_account(&account).await {
            Ok(()) => Ok(account),
            Err(StoreError::Conflict(_)) => Ok(self.store.account(&account.id).await?),
            Err(e) => Err(e.into()),
        }
    }

    /// Stores the order (already processing), signs, and stores the certificate; a failure
    /// after the order is stored is recorded on it, as finalize does.
    async fn issue_recorded(
        &self,
        order: Order,
        reissue: Reissue,
    ) -> DirectResult<DirectCertificate> {
        let started = std::time::Instant::now();
        let request = IssuanceRequest {
            csr_der: reissue.csr_der,
            identifiers: order.identifiers.clone(),
            emails: reissue.emails,
            not_before: reissue.validity.not_before,
            not_after: reissue.validity.not_after,
            crl_url: Some(self.crl_url()),
            ca_issuers_url: Some(self.ca_issuers_url()),
            leaf: reissue.leaf,
        };
        let token = self
            .issuer
            .prepare_for_key(request, &reissue.spki_der)
            .map_err(|e| match e {
                IssuerError::Request(why) => DirectError::from(Problem::bad_csr(why)),
                other => DirectError::Internal(other.into()),
            })?;
        self.store.insert_order(&order, &[]).await?;
        let issued = match self.issuer.issue(token) {
            Ok(issued) => issued,
            Err(e) => {
                tracing::error!(order = %order.id, error = %e, "issuance failed");
                self.fail_direct_order(&order.id).await;
                return Err(DirectError::Internal(e.into()));
            }
        };
        let certificate = Certificate {
            id: random_id(),
            order_id: order.id.clone(),
            account_id: order.account_id.clone(),
            serial: issued.serial,
            chain_pem: issued.chain_pem,
            not_before: issued.not_before,
            not_after: issued.not_after,
            created_at: order.created_at,
        };
        let audited = super::audit::issued(
            &certificate,
            &order.identifiers,
            order.profile.as_deref().unwrap_or_default(),
        );
        if let Err(e) = self
            .store
            .complete_order_audited(&certificate, &audited)
            .await
        {
            self.fail_direct_order(&order.id).await;
            return Err(e.into());
        }
        let profile = order.profile.clone().unwrap_or_default();
        metrics::counter!("mayfly_certificates_issued_total", "profile" => profile.clone())
            .increment(1);
        metrics::histogram!("mayfly_issuance_duration_seconds", "profile" => profile)
            .record(started.elapsed());
        tracing::info!(
            order = %order.id,
            account = %order.account_id,
            serial = %certificate.serial,
            not_after = %certificate.not_after,
            "certificate issued (direct API)"
        );
        super::audit::log(&audited);
        Ok(DirectCertificate {
            serial: certificate.serial,
            chain_pem: certificate.chain_pem,
            not_before: certificate.not_before,
            not_after: certificate.not_after,
        })
    }

    /// Without this the order would stay `processing` for ever.
    async fn fail_direct_order(&self, order_id: &str) {
        if let Err(e) = self.store.fail_order(order_id, &Problem::internal()).await {
            tracing::error!(order = %order_id, error = %e, "recording the failure failed");
        }
    }
}

/// What goes into a certificate besides the order's identifiers.
struct Reissue {
    emails: Vec<String>,
    leaf: LeafProfile,
    validity: Validity,
    /// The CSR, DER; empty for a renewal that keeps the key.
    csr_der: Vec<u8>,
    /// The subject public key, DER.
    spki_der: Vec<u8>,
}

/// The order a direct issuance is recorded as: no authorizations, processing from the start
/// (its certificate or its error follows at once), usable by no ACME request.
fn direct_order(
    account: &Account,
    identifiers: Vec<Identifier>,
    profile: &str,
    not_after: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Order {
    Order {
        id: random_id(),
        account_id: account.id.clone(),
        identifiers,
        authorization_ids: Vec::new(),
        not_before: None,
        not_after,
        expires: now,
        created_at: now,
        processing_since: Some(now),
        certificate_id: None,
        error: None,
        profile: Some(profile.to_owned()),
        replaces: None,
    }
}

fn parse_csr(der: &[u8]) -> DirectResult<ParsedCsr> {
    ParsedCsr::from_der(der).map_err(|e| {
        Problem::bad_csr(match e {
            CsrError::BadSignature => "the CSR's signature does not verify".to_owned(),
            other => other.to_string(),
        })
        .into()
    })
}

/// The CSR's key must be a key ACME would accept for an account (RFC 8555 §11.1's bounds).
fn check_key(csr: &ParsedCsr) -> DirectResult<()> {
    super::finalize::csr_key(csr)?;
    Ok(())
}

/// Every name of the CSR must be one the token allows ([`TokenIdentity::allows`]); an email
/// address only if the token lists it among its names (an OIDC user's own, verified address)
/// or comes from an admin.
/// A token bound to a key (`cnf.jkt`, minted for an ACME account) is only good for a CSR of
/// that key: the CSR's signature proves possession, so a stolen token is useless to anyone
/// else here too.
/// How a `/v1/sign` caller proves who they are.
#[derive(Clone, Debug)]
pub enum Credentials {
    /// A one-time token: a JWK provisioner's JWT or an OIDC ID token.
    Token(String),
    /// A static provisioner's user and secret (development only).
    Static {
        provisioner: String,
        user: String,
        secret: String,
    },
}

/// The `/v1` error type of a wrong static user or secret.
const BAD_CREDENTIALS: &str = "badCredentials";

fn check_binding(identity: &TokenIdentity, csr: &ParsedCsr) -> DirectResult<()> {
    let Some(bound) = identity.account_thumbprint.as_deref() else {
        return Ok(());
    };
    let csr_key = crate::jose::Jwk::from_spki(&csr.spki_der)
        .map(|key| key.thumbprint())
        .unwrap_or_default();
    if csr_key == bound {
        return Ok(());
    }
    Err(DirectError::refused(
        401,
        TokenErrorKind::AccountMismatch.as_str(),
        "the token is bound to a key (cnf.jkt) that is not the CSR's key",
    ))
}

fn check_allowed(identity: &TokenIdentity, csr: &ParsedCsr) -> DirectResult<()> {
    let mut refused: Vec<String> = csr
        .names()
        .iter()
        .filter(|id| !identity.allows(id))
        .map(Identifier::value)
        .collect();
    refused.extend(
        csr.emails
            .iter()
            .filter(|email| {
                !identity.admin && !identity.sans.iter().any(|s| s.eq_ignore_ascii_case(email))
            })
            .cloned(),
    );
    if refused.is_empty() {
        return Ok(());
    }
    Err(DirectError::refused(
        403,
        TokenErrorKind::SanNotAllowed.as_str(),
        format!(
            "the token of provisioner {:?} does not allow {}; it allows {}",
            identity.provisioner,
            refused.join(", "),
            if identity.sans.is_empty() {
                "no names".to_owned()
            } else {
                identity.sans.join(", ")
            }
        ),
    ))
}

/// A serial number as the store keeps it (lower-case hex without leading zeros), from hex
/// with or without colons, in either case; `None` if it is not hex.
pub fn normalise_serial(serial: &str) -> Option<String> {
    let hex: String = serial
        .chars()
        .filter(|c| *c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let trimmed = hex.trim_start_matches('0');
    Some(if trimmed.is_empty() { "0" } else { trimmed }.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_normalise() {
        for (input, want) in [
            ("4A0B", Some("4a0b")),
            ("00:4a:0b", Some("4a0b")),
            ("000", Some("0")),
            ("", None),
            ("xyz", None),
            ("4a 0b", None),
        ] {
            assert_eq!(normalise_serial(input).as_deref(), want, "{input:?}");
        }
    }

    #[test]
    fn chains_split_into_pem_blocks() {
        let block =
            |n: u8| format!("-----BEGIN CERTIFICATE-----\nMII{n}\n-----END CERTIFICATE-----\n");
        let certificate = DirectCertificate {
            serial: "1".into(),
            chain_pem: format!("{}{}", block(1), block(2)),
            not_before: OffsetDateTime::UNIX_EPOCH,
            not_after: OffsetDateTime::UNIX_EPOCH,
        };
        assert_eq!(certificate.certificates(), vec![block(1), block(2)]);
    }

    fn identity(sans: &[&str], admin: bool) -> TokenIdentity {
        TokenIdentity {
            provisioner: "ops".into(),
            subject: "alice".into(),
            sans: sans.iter().map(|s| (*s).to_owned()).collect(),
            email: None,
            groups: Vec::new(),
            admin,
            token_id: "jti".into(),
            expires_at: OffsetDateTime::UNIX_EPOCH,
            account_thumbprint: None,
        }
    }

    fn csr(names: &[&str], emails: &[&str]) -> ParsedCsr {
        let key = rcgen::KeyPair::generate().expect("a key");
        let mut params = rcgen::CertificateParams::new(
            names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>(),
        )
        .expect("params");
        for email in emails {
            params.subject_alt_names.push(rcgen::SanType::Rfc822Name(
                (*email).try_into().expect("an IA5 string"),
            ));
        }
        params.distinguished_name = rcgen::DistinguishedName::new();
        let der = params
            .serialize_request(&key)
            .expect("a CSR")
            .der()
            .to_vec();
        ParsedCsr::from_der(&der).expect("parses")
    }

    #[test]
    fn names_must_be_allowed_by_the_token() {
        let cases = [
            (
                "every name listed",
                &["a.test", "b.test"][..],
                &[][..],
                false,
                true,
            ),
            ("case does not matter", &["A.test"], &[], false, true),
            ("an unlisted name", &["a.test", "c.test"], &[], false, false),
            (
                "an unlisted email",
                &["a.test"],
                &["eve@x.test"],
                false,
                false,
            ),
            (
                "a listed email",
                &["a.test"],
                &["Alice@X.test"],
                false,
                true,
            ),
            (
                "an admin gets anything",
                &["z.test"],
                &["eve@x.test"],
                true,
                true,
            ),
        ];
        let allowed = ["a.test", "b.test", "alice@x.test"];
        for (name, names, emails, admin, ok) in cases {
            let result = check_allowed(&identity(&allowed, admin), &csr(names, emails));
            assert_eq!(result.is_ok(), ok, "{name}: {result:?}");
            if let Err(DirectError::Refused { status, kind, .. }) = result {
                assert_eq!((status, kind), (403, "sanNotAllowed"), "{name}");
            }
        }
    }
}
