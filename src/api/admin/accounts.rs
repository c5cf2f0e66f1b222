//! ACME accounts: list and deactivate.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use serde_json::Value;

use super::problem::AdminProblem;
use super::wire::{self, Query};
use super::{Actor, audit};
use crate::app::AppState;

/// `GET /admin/accounts?cursor=&limit=`, oldest first.
pub async fn list(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AdminProblem> {
    let query = Query::parse(raw.as_deref(), &["cursor", "limit"])?;
    let (limit, cursor) = query.paging()?;
    let accounts = state
        .0
        .authority
        .admin_accounts(cursor.as_ref(), limit)
        .await?;
    let next = (accounts.len() == limit as usize)
        .then(|| accounts.last())
        .flatten()
        .map(|a| wire::encode_cursor(a.created_at, &a.id));
    Ok(Json(wire::page(
        accounts.iter().map(wire::account).collect(),
        next,
    )))
}

/// `POST /admin/accounts/{id}/deactivate` (RFC 8555 §7.3.6): 409 if it is not valid.
pub async fn deactivate(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminProblem> {
    let account = state.0.authority.admin_deactivate_account(&id).await?;
    audit(&state, &actor, "account.deactivate", &account.id).await;
    Ok(Json(wire::account(&account)))
}
