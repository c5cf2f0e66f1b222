//! Finalization and certificate download (RFC 8555 §7.4, §7.4.2).

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::OffsetDateTime;

use crate::acme::{Identifier, OrderStatus, Problem, ProblemType};
use crate::issuer::csr::{CsrError, ParsedCsr};
use crate::issuer::{IssuanceRequest, IssuerError, LeafCommonName, LeafProfile};
use crate::jose::{JoseError, Jwk};
use crate::policy::fixups::RequestTemplate;
use crate::policy::validators::refusal::common_name_identifier;
use crate::policy::validators::{CsrFacts, Requester};
use crate::policy::{self, Profile, Validity};
use crate::provisioner::ProvisionerPolicy;
use crate::storage::{Account, Certificate, Order, StoreError};

use super::order::OrderView;
use super::{Authority, Error, Result, found, random_id};

/// The requester, with the groups of every token that authorized one of the order's
/// identifiers through `tkauth-01`: the order passes the chain as the token's holder.
fn with_token_groups(requester: &Requester, view: &OrderView) -> Requester {
    let mut requester = requester.clone();
    let identities = view
        .authorizations
        .iter()
        .flat_map(|a| &a.challenges)
        .filter(|c| c.status == crate::acme::ChallengeStatus::Valid)
        .filter_map(|c| c.token_identity.as_ref())
        .filter_map(|v| {
            serde_json::from_value::<crate::provisioner::TokenIdentity>(v.clone()).ok()
        });
    for identity in identities {
        for group in identity.groups {
            if !requester.groups.contains(&group) {
                requester.groups.push(group);
            }
        }
    }
    requester
}

impl Authority {
    pub async fn finalize(
        &self,
        account: &Account,
        order_id: &str,
        csr_b64: &str,
        requester: &Requester,
    ) -> Result<OrderView> {
        let started = std::time::Instant::now();
        let view = self.order(account, order_id).await?;
        if view.status != OrderStatus::Ready {
            return Err(Problem::new(
                ProblemType::OrderNotReady,
                format!("the order is {}, not ready", view.status),
            )
            .into());
        }
        let csr = self.check_csr(&view, csr_b64).await?;
        let now = self.now();
        let policy = self.policy(&account.provisioner);
        let (profile_name, profile) = self.order_profile(&view.order)?;
        let validity = self.issuance_validity(&policy, &view.order, profile_name, profile, now)?;
        let requester = with_token_groups(requester, &view);
        let leaf = self.apply_chain(&policy, &view.order, &csr, profile, &requester)?;
        let request = IssuanceRequest {
            csr_der: csr.der,
            // The SANs exactly as authorized; the chain checked the template's names.
            identifiers: view.order.identifiers.clone(),
            emails: Vec::new(),
            not_before: validity.not_before,
            not_after: validity.not_after,
            crl_url: Some(self.crl_url()),
            ca_issuers_url: Some(self.ca_issuers_url()),
            leaf,
        };
        // Prepared before the order moves to processing, so a request the issuer refuses
        // leaves the order ready for a corrected CSR.
        let token = self.issuer.prepare(request).map_err(|e| match e {
            IssuerError::Request(why) => Error::from(Problem::bad_csr(why)),
            other => Error::Issuer(other),
        })?;
        if !self.store.begin_finalize(&view.order.id, now).await? {
            return Err(Problem::new(
                ProblemType::OrderNotReady,
                "the order is already being finalized",
            )
            .into());
        }
        let issued = match self.issuer.issue(token) {
            Ok(issued) => issued,
            Err(e) => {
                tracing::error!(order = %view.order.id, error = %e, "issuance failed");
                let problem = Problem::internal();
                if let Err(store_error) = self.store.fail_order(&view.order.id, &problem).await {
                    tracing::error!(order = %view.order.id, error = %store_error, "recording the failure failed");
                }
                return Err(e.into());
            }
        };
        let certificate = Certificate {
            id: random_id(),
            order_id: view.order.id.clone(),
            account_id: account.id.clone(),
            serial: issued.serial,
            chain_pem: issued.chain_pem,
            not_before: issued.not_before,
            not_after: issued.not_after,
            created_at: now,
        };
        let audited = super::audit::issued(&certificate, &view.order.identifiers, profile_name);
        if let Err(e) = self
            .store
            .complete_order_audited(&certificate, &audited)
            .await
        {
            // Without this the order would stay `processing` for ever.
            if let Err(store_error) = self
                .store
                .fail_order(&view.order.id, &Problem::internal())
                .await
            {
                tracing::error!(order = %view.order.id, error = %store_error, "recording the failure failed");
            }
            return Err(e.into());
        }
        metrics::counter!("mayfly_certificates_issued_total", "profile" => profile_name.to_owned())
            .increment(1);
        metrics::histogram!("mayfly_issuance_duration_seconds", "profile" => profile_name.to_owned()).record(started.elapsed());
        tracing::info!(
            order = %view.order.id,
            serial = %certificate.serial,
            not_after = %certificate.not_after,
            "certificate issued"
        );
        super::audit::log(&audited);
        // What the store now holds, without reading it back: the guarded update linked this
        // certificate, and an order with a certificate never changes again.
        let OrderView {
            mut order,
            authorizations,
            ..
        } = view;
        order.processing_since = Some(now);
        order.certificate_id = Some(certificate.id);
        Ok(self.view(order, authorizations))
    }

    /// The validator chain's CSR rules, the fixups and the template rules (issue 5). Returns
    /// what the leaf gets besides its names: the template's keyUsage, extendedKeyUsage and
    /// common name.
    ///
    /// The template starts from the CSR, with the common name the profile decides: none when
    /// the profile has `include_common_name = false`, else the CSR's (which `check_csr` found
    /// among the order's identifiers), else the first DNS identifier. The fixups may change it.
    pub(super) fn apply_chain(
        &self,
        policy: &ProvisionerPolicy,
        order: &Order,
        csr: &ParsedCsr,
        profile: &Profile,
        requester: &Requester,
    ) -> Result<LeafProfile> {
        let chain = &policy.chain;
        let facts = CsrFacts::from_der(&csr.der).map_err(Problem::bad_csr)?;
        chain
            .check_csr_facts(csr, &facts, requester)
            .map_err(|refusals| super::chain::refused(&refusals, requester))?;
        let mut template = RequestTemplate::new(csr, &facts, profile);
        template.common_name = if profile.include_common_name {
            template.common_name.or_else(|| {
                order.identifiers.iter().find_map(|id| match id {
                    Identifier::Dns(name) => Some(name.clone()),
                    Identifier::Ip(_) => None,
                })
            })
        } else {
            None
        };
        let applied = policy.fixups.apply(&mut template, profile);
        super::chain::audit_fixups(&applied, requester, &order.id);
        chain
            .check_template(&template, requester)
            .map_err(|refusals| super::chain::refused(&refusals, requester))?;
        let common_name = match &template.common_name {
            None => LeafCommonName::None,
            Some(cn) => match common_name_identifier(cn) {
                Some(id) if order.identifiers.contains(&id) => LeafCommonName::Given(id.value()),
                _ => {
                    return Err(Problem::bad_csr(format!(
                        "the common name {cn:?} is not one of the order's identifiers"
                    ))
                    .into());
                }
            },
        };
        Ok(LeafProfile {
            key_usage: template.key_usage,
            extended_key_usage: template.extended_key_usage,
            common_name,
        })
    }

    /// The profile the order was made under; an order from before profiles existed gets the
    /// default one. A profile removed from the configuration since is a server error: the
    /// order cannot be issued as it was promised.
    fn order_profile(&self, order: &Order) -> Result<(&str, &Profile)> {
        self.settings
            .profiles
            .select(order.profile.as_deref())
            .map_err(|e| {
                tracing::error!(order = %order.id, error = %e, "the order's profile is gone");
                Error::from(Problem::internal())
            })
    }

    /// The certificate's validity, exactly as `policy::validity` computes it. A requested
    /// notBefore was checked at newOrder and fixes the start, so it is computed again as of
    /// the order's creation; without one the certificate starts at issuance (minus the
    /// backdate), and a requested notAfter must still leave the profile's minimum lifetime.
    fn issuance_validity(
        &self,
        policy: &ProvisionerPolicy,
        order: &Order,
        profile_name: &str,
        profile: &Profile,
        now: OffsetDateTime,
    ) -> Result<Validity> {
        let at = if order.not_before.is_some() {
            order.created_at
        } else {
            now
        };
        let validity = policy::validity(
            profile_name,
            profile,
            &policy.claims,
            order.not_before,
            order.not_after,
            at,
        )
        .map_err(super::order::validity_problem)?;
        if validity.not_after <= now {
            return Err(
                Problem::malformed("the order's notAfter has passed; place a new order").into(),
            );
        }
        Ok(validity)
    }

    /// RFC 8555 §7.4: the CSR must ask for exactly the order's identifiers, and its key must
    /// not be an account key (§11.1).
    async fn check_csr(&self, view: &OrderView, csr_b64: &str) -> Result<ParsedCsr> {
        let der = URL_SAFE_NO_PAD
            .decode(csr_b64.trim_end_matches('='))
            .map_err(|_| Problem::malformed("csr is not base64url"))?;
        let csr = ParsedCsr::from_der(&der).map_err(|e| match e {
            CsrError::BadSignature => Problem::bad_csr("the CSR's signature does not verify"),
            other => Problem::bad_csr(other.to_string()),
        })?;
        if let Some(email) = csr.emails.first() {
            return Err(Problem::bad_csr(format!(
                "the CSR asks for the email address {email}; an ACME order covers DNS names and IP addresses only"
            ))
            .into());
        }
        let wanted: BTreeSet<&Identifier> = view.order.identifiers.iter().collect();
        let names = csr.names();
        let got: BTreeSet<&Identifier> = names.iter().collect();
        if wanted != got {
            return Err(Problem::bad_csr(format!(
                "the CSR asks for [{}] but the order is for [{}]",
                list(&got),
                list(&wanted)
            ))
            .into());
        }
        let key = csr_key(&csr)?;
        match self.store.account_by_thumbprint(&key.thumbprint()).await {
            Ok(_) => {
                return Err(Problem::bad_csr(
                    "the CSR's public key is an account key; use a separate key for the certificate",
                )
                .into());
            }
            Err(StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(csr)
    }

    /// The path the CRL listener serves the intermediate at (DER), named like its CRL so that
    /// a new intermediate gets a new URL.
    pub fn ca_certificate_path(&self) -> String {
        format!("/ca/{}.crt", self.issuer.crl_name())
    }

    /// The authorityInfoAccess caIssuers URL of every leaf (RFC 5280 §4.2.2.1): the
    /// intermediate, on the same plain-HTTP origin as the CRL distribution point (`crl.url`'s
    /// scheme, host and port, else `http://<crl.listen>`), at [`Self::ca_certificate_path`].
    pub fn ca_issuers_url(&self) -> String {
        let path = self.ca_certificate_path();
        url::Url::parse(&self.crl_url())
            .and_then(|crl| crl.join(&path))
            .map(String::from)
            .unwrap_or_else(|_| format!("http://{}{path}", self.settings.crl.listen))
    }

    /// The certificate chain, if it belongs to `account`.
    pub async fn certificate(&self, account: &Account, id: &str) -> Result<Certificate> {
        let certificate = found(self.store.certificate(id).await, "certificate")?;
        if certificate.account_id != account.id {
            return Err(
                Problem::unauthorized("this certificate belongs to another account").into(),
            );
        }
        Ok(certificate)
    }
}

fn list(ids: &BTreeSet<&Identifier>) -> String {
    ids.iter().map(|i| i.value()).collect::<Vec<_>>().join(", ")
}

/// The CSR's public key, which must be a key ACME would accept for an account (RFC 8555
/// §11.1's bounds): `badPublicKey` otherwise.
pub(super) fn csr_key(csr: &ParsedCsr) -> Result<Jwk> {
    let key = Jwk::from_spki(&csr.spki_der).map_err(|e| match e {
        JoseError::BadKey(why) => Problem::new(ProblemType::BadPublicKey, why),
        other => Problem::bad_csr(other.to_string()),
    })?;
    key.validate()
        .map_err(|e| Problem::new(ProblemType::BadPublicKey, format!("the CSR's key: {e}")))?;
    Ok(key)
}
