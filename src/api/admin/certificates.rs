//! Certificates: list with filters, one by serial, revoke, and move an ARI window.

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::problem::AdminProblem;
use super::wire::{self, Query};
use super::{Actor, audit};
use crate::app::AppState;
use crate::authority::admin::WindowMove;
use crate::storage::{CertificateFilter, CertificateStatus};

/// `GET /admin/certificates?name=&account=&status=&expiring_before=&cursor=&limit=`, oldest
/// first. `name` matches one of the identifiers; `*` matches any run of characters.
pub async fn list(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AdminProblem> {
    let query = Query::parse(
        raw.as_deref(),
        &[
            "name",
            "account",
            "status",
            "expiring_before",
            "cursor",
            "limit",
        ],
    )?;
    let (limit, cursor) = query.paging()?;
    let filter = filter(&query)?;
    let authority = &state.0.authority;
    let (records, next) = authority
        .admin_certificates(&filter, cursor.as_ref(), limit)
        .await?;
    let now = authority.now();
    let next = next.map(|c| wire::encode_cursor(c.created_at, &c.id));
    let items = records
        .iter()
        .map(|r| wire::certificate(r, now, false))
        .collect();
    Ok(Json(wire::page(items, next)))
}

fn filter(query: &Query) -> Result<CertificateFilter, AdminProblem> {
    let status = match query.get("status") {
        None => None,
        Some("active") => Some(CertificateStatus::Active),
        Some("expired") => Some(CertificateStatus::Expired),
        Some("revoked") => Some(CertificateStatus::Revoked),
        Some(other) => {
            return Err(AdminProblem::malformed(format!(
                "status {other:?} is not one of active, expired, revoked"
            )));
        }
    };
    let name = query.get("name").map(str::to_owned);
    if let Some(name) = &name
        && !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-*:_".contains(c))
    {
        return Err(AdminProblem::malformed(format!(
            "name {name:?} may hold letters, digits, '.', '-', ':', '_' and the wildcard '*'"
        )));
    }
    let expiring_before = query
        .get("expiring_before")
        .map(|t| wire::parse_time("expiring_before", t))
        .transpose()?;
    Ok(CertificateFilter {
        name,
        account_id: query.get("account").map(str::to_owned),
        status,
        expiring_before,
    })
}

/// `GET /admin/certificates/{serial}`: one certificate with its chain (PEM).
pub async fn one(
    State(state): State<AppState>,
    Path(serial): Path<String>,
) -> Result<Json<Value>, AdminProblem> {
    let authority = &state.0.authority;
    let record = authority.admin_certificate(&serial).await?;
    Ok(Json(wire::certificate(&record, authority.now(), true)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeRequest {
    /// An RFC 5280 CRLReason, by name or number; default unspecified.
    #[serde(default)]
    reason: Option<Value>,
}

/// `POST /admin/certificates/{serial}/revoke` with `{"reason": "keyCompromise"}`: 409 if it
/// is already revoked.
pub async fn revoke(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(serial): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AdminProblem> {
    let request: RevokeRequest = wire::body(&body)?;
    let reason = match &request.reason {
        None => 0,
        Some(value) => wire::parse_reason(value)?,
    };
    let authority = &state.0.authority;
    let record = authority.admin_revoke(&serial, reason).await?;
    audit(
        &state,
        &actor,
        "certificate.revoke",
        &format!(
            "{} reason={}",
            record.certificate.serial,
            wire::reason_name(reason)
        ),
    )
    .await;
    Ok(Json(wire::certificate(&record, authority.now(), false)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowRequest {
    /// `move`, `renew-now` or `reset`.
    action: String,
    start: Option<String>,
    end: Option<String>,
}

/// `POST /admin/renewal-windows/{certificate}` (serial or ARI id) with `{"action": "move",
/// "start": …, "end": …}`, `{"action": "renew-now"}` or `{"action": "reset"}` (RFC 9773).
pub async fn move_window(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(certificate): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AdminProblem> {
    let request: WindowRequest = wire::body(&body)?;
    let how = match (request.action.as_str(), &request.start, &request.end) {
        ("move", Some(start), Some(end)) => WindowMove::To(
            wire::parse_time("start", start)?,
            wire::parse_time("end", end)?,
        ),
        ("move", _, _) => {
            return Err(AdminProblem::malformed("action move needs start and end"));
        }
        ("renew-now" | "reset", None, None) => {
            if request.action == "reset" {
                WindowMove::Reset
            } else {
                WindowMove::RenewNow
            }
        }
        ("renew-now" | "reset", _, _) => {
            return Err(AdminProblem::malformed(format!(
                "action {} takes no start or end",
                request.action
            )));
        }
        (other, _, _) => {
            return Err(AdminProblem::malformed(format!(
                "action {other:?} is not one of move, renew-now, reset"
            )));
        }
    };
    let authority = &state.0.authority;
    let (record, window) = authority.admin_move_window(&certificate, how).await?;
    audit(
        &state,
        &actor,
        &format!("renewal_window.{}", request.action),
        &record.certificate.serial,
    )
    .await;
    Ok(Json(json!({
        "certificate": wire::certificate(&record, authority.now(), false),
        "window": window.map(|(start, end)| json!({
            "start": wire::rfc3339(start),
            "end": wire::rfc3339(end),
        })),
    })))
}
