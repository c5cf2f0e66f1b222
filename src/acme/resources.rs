//! The JSON shapes of ACME resources (RFC 8555 §7.1) as clients see them, and the payloads
//! clients send. Requests reject unknown fields only where the RFC allows no extensions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::identifier::IdentifierJson;
use super::{AccountStatus, AuthorizationStatus, ChallengeStatus, OrderStatus, Problem};

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Directory {
    pub new_nonce: String,
    pub new_account: String,
    pub new_order: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoke_cert: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_change: Option<String>,
    /// Pre-authorization (RFC 8555 §7.4.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_authz: Option<String>,
    /// ACME Renewal Information (RFC 9773 §4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renewal_info: Option<String>,
    pub meta: DirectoryMeta,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryMeta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terms_of_service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    pub caa_identities: Vec<String>,
    pub external_account_required: bool,
    /// Each profile's name and description (draft-ietf-acme-profiles §3).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub profiles: BTreeMap<String, String>,
}

/// The `newAccount` payload (RFC 8555 §7.3).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewAccountRequest {
    #[serde(default)]
    pub contact: Option<Vec<String>>,
    #[serde(default)]
    pub terms_of_service_agreed: Option<bool>,
    #[serde(default)]
    pub only_return_existing: Option<bool>,
    #[serde(default)]
    pub external_account_binding: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountResource {
    pub status: AccountStatus,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub contact: Vec<String>,
    /// The orders list URL (RFC 8555 §7.1.2.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orders: Option<String>,
    /// The account key, echoed for clients that display it.
    pub key: serde_json::Value,
    pub created_at: String,
}

// --- Accounts (issue 3) ---

/// The payload of a POST to the account URL (RFC 8555 §7.3.2, §7.3.6). Clients may echo the
/// whole account object back (certbot does), so other fields are ignored.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct AccountUpdateRequest {
    #[serde(default)]
    pub contact: Option<Vec<String>>,
    /// Only `deactivated` changes anything; the account's current status is a no-op.
    #[serde(default)]
    pub status: Option<String>,
}

/// The payload of the inner keyChange JWS (RFC 8555 §7.3.5).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyChangeRequest {
    /// The account URL.
    pub account: String,
    /// The account's current key, as a JWK.
    pub old_key: serde_json::Value,
}

/// An account's orders list (RFC 8555 §7.1.2.1).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OrdersList {
    pub orders: Vec<String>,
}

// --- end of accounts (issue 3) ---

/// The `newOrder` payload (RFC 8555 §7.4).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewOrderRequest {
    pub identifiers: Vec<IdentifierJson>,
    #[serde(default)]
    pub not_before: Option<String>,
    #[serde(default)]
    pub not_after: Option<String>,
    /// The profile to issue under (draft-ietf-acme-profiles §4); absent: the default one.
    #[serde(default)]
    pub profile: Option<String>,
    /// The ARI certificate identifier of the certificate this order replaces (RFC 9773 §5).
    #[serde(default)]
    pub replaces: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderResource {
    pub status: OrderStatus,
    pub expires: String,
    pub identifiers: Vec<IdentifierJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    /// The profile the order is issued under (draft-ietf-acme-profiles §4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
    pub authorizations: Vec<String>,
    pub finalize: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// Echoed from newOrder (RFC 9773 §5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationResource {
    pub identifier: IdentifierJson,
    pub status: AuthorizationStatus,
    pub expires: String,
    pub challenges: Vec<ChallengeResource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wildcard: Option<bool>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChallengeResource {
    #[serde(rename = "type")]
    pub kind: String,
    pub url: String,
    pub status: ChallengeStatus,
    pub token: String,
    /// RFC 9447 §3: the kind of token a `tkauth-01` challenge takes; Mayfly's are JWTs
    /// (`atc`, the Authority Token of RFC 9448 §4's registry).
    #[serde(rename = "tkauth-type", skip_serializing_if = "Option::is_none")]
    pub tkauth_type: Option<String>,
    /// The provisioners whose tokens answer a `tkauth-01` challenge (a Mayfly extension:
    /// RFC 9447's `token-authority` is one URL, and a JWK provisioner has none).
    #[serde(rename = "token-authorities", skip_serializing_if = "Option::is_none")]
    pub token_authorities: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validated: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
}

/// A renewalInfo response (RFC 9773 §4.2).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RenewalInfoResource {
    pub suggested_window: SuggestedWindowResource,
    #[serde(rename = "explanationURL", skip_serializing_if = "Option::is_none")]
    pub explanation_url: Option<String>,
}

/// RFC 3339 times; `end` is after `start`.
#[derive(Clone, Debug, Serialize)]
pub struct SuggestedWindowResource {
    pub start: String,
    pub end: String,
}

/// The `newAuthz` payload (RFC 8555 §7.4.1).
#[derive(Clone, Debug, Deserialize)]
pub struct NewAuthzRequest {
    pub identifier: IdentifierJson,
}

/// The `finalize` payload (RFC 8555 §7.4).
#[derive(Clone, Debug, Deserialize)]
pub struct FinalizeRequest {
    /// base64url DER of the CSR.
    pub csr: String,
}

/// The `revokeCert` payload (RFC 8555 §7.6).
#[derive(Clone, Debug, Deserialize)]
pub struct RevocationRequest {
    /// base64url DER of the certificate.
    pub certificate: String,
    /// An RFC 5280 §5.3.1 CRLReason; any integer parses, so that a bad one gets
    /// `badRevocationReason` rather than `malformed`.
    #[serde(default)]
    pub reason: Option<i64>,
}
