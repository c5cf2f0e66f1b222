//! Status, the CA chain, and regenerating the CRL.

use axum::Extension;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::problem::AdminProblem;
use super::wire::rfc3339;
use super::{Actor, audit};
use crate::app::AppState;

/// `GET /admin/status`: the CA's fingerprints and expiries, and the certificate and account
/// counts (active = not revoked and not expired now).
pub async fn status(State(state): State<AppState>) -> Result<Json<Value>, AdminProblem> {
    let status = state.0.authority.admin_status().await?;
    let counts = status.counts;
    Ok(Json(json!({
        "now": rfc3339(status.now),
        "root": {
            "sha256_fingerprint": status.root_fingerprint,
            "not_after": status.root_not_after.map(rfc3339),
        },
        "intermediate": {
            "sha256_fingerprint": status.intermediate_fingerprint,
            "not_after": rfc3339(status.intermediate_not_after),
        },
        "certificates": {
            "issued": counts.issued,
            "active": counts.active,
            "expired": counts.expired,
            "revoked": counts.revoked,
        },
        "accounts": counts.accounts,
    })))
}

/// `GET /admin/ca`: the root and the intermediate (PEM), and the chain leaves are issued
/// under (intermediate then root).
pub async fn chain(State(state): State<AppState>) -> Json<Value> {
    let issuer = state.0.authority.issuer();
    Json(json!({
        "root_pem": issuer.root_pem(),
        "intermediate_pem": issuer.intermediate_pem(),
        "chain_pem": format!("{}{}", issuer.intermediate_pem(), issuer.root_pem()),
        "root_sha256_fingerprint": issuer.root_fingerprint(),
    }))
}

/// `POST /admin/crl`: signs a fresh CRL now (as after a revocation) and describes it.
pub async fn regenerate_crl(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Result<Json<Value>, AdminProblem> {
    let authority = &state.0.authority;
    let crl = authority
        .regenerate_crl()
        .await
        .map_err(|e| AdminProblem::from(crate::authority::admin::AdminError::Internal(e)))?;
    audit(&state, &actor, "crl.regenerate", &crl.number.to_string()).await;
    Ok(Json(json!({
        "number": crl.number,
        "this_update": rfc3339(crl.this_update),
        "next_update": rfc3339(crl.next_update),
        "entries": crl.entries,
        "url": authority.crl_url(),
    })))
}
