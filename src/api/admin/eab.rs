//! External Account Binding keys (RFC 8555 §7.3.4): add, list, revoke.

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use super::problem::AdminProblem;
use super::wire;
use super::{Actor, audit};
use crate::app::AppState;
use crate::jose::base64url;

/// `GET /admin/eab-keys`: every key, oldest first, never its HMAC key.
pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, AdminProblem> {
    let keys = state.0.authority.admin_eab_keys().await?;
    Ok(Json(wire::page(
        keys.iter().map(wire::eab_key).collect(),
        None,
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddRequest {
    #[serde(default)]
    label: String,
    #[serde(default)]
    reusable: bool,
    provisioner: Option<String>,
}

/// `POST /admin/eab-keys` with `{"label", "reusable", "provisioner"}`: 201 with the key and,
/// this once, its HMAC key (base64url).
pub async fn add(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), AdminProblem> {
    let request: AddRequest = wire::body(&body)?;
    let key = state
        .0
        .authority
        .admin_add_eab_key(
            &request.label,
            request.reusable,
            request.provisioner.as_deref(),
        )
        .await?;
    audit(&state, &actor, "eab_key.add", &key.id).await;
    let mut value = wire::eab_key(&key);
    value["hmac_key"] = Value::String(base64url(&key.hmac_key));
    Ok((StatusCode::CREATED, Json(value)))
}

/// `POST /admin/eab-keys/{kid}/revoke`: 409 if it already is revoked.
pub async fn revoke(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(kid): Path<String>,
) -> Result<Json<Value>, AdminProblem> {
    let key = state.0.authority.admin_revoke_eab_key(&kid).await?;
    audit(&state, &actor, "eab_key.revoke", &key.id).await;
    Ok(Json(wire::eab_key(&key)))
}
